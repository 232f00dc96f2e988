"""OpenVINO's fp16 is measured as fp16 or not at all.

Audit (2026-12-08): on an AMD EPYC whose OpenVINO CPU plugin offers BF16 but not FP16,
``perfcast benchmark --runtime openvino --precision fp16 --save`` compiled the model at bf16 and
stored an ok run labelled fp16, which every fit prices at this CPU's fp16 GEMM peak (3 GFLOP/s).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.config import Config

NO_FP16 = ("BF16", "WINOGRAD", "FP32", "INT8", "BIN", "EXPORT_IMPORT")  # what this AMD EPYC's plugin says


def test_fp16_is_refused_where_the_cpu_plugin_has_no_f16_inference() -> None:
    from hardware.openvino_adapter import executed_mismatch, fp16_refusal

    why = fp16_refusal(NO_FP16)
    assert why and "no fp16 inference" in why and why.endswith("valid precisions: fp32, bf16, int8")
    assert fp16_refusal(("FP16", "BF16", "FP32", "INT8")) is None
    assert fp16_refusal(None) is None  # OpenVINO could not say: nothing refused on its account
    assert "compiled the fp16 hint as bf16" in (executed_mismatch("fp16", "bf16") or "")
    assert executed_mismatch("fp16", "f16") is None
    assert executed_mismatch("bf16", "f32") is None  # bf16's documented fall-back stays a bf16 run


def test_the_adapter_refuses_fp16_before_any_child_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    import hardware.openvino_adapter as ova

    adapter = ova.OpenVINOAdapter()
    monkeypatch.setattr(ova, "cpu_capabilities", lambda: NO_FP16)
    assert "no fp16 inference" in (adapter.refusal(Config("gpt2", "cpu-x-2c", precision="fp16", runtime="openvino"))
                                   or "")
    for p in ("fp32", "bf16", "int8"):
        assert adapter.refusal(Config("gpt2", "cpu-x-2c", precision=p, runtime="openvino")) is None
    assert "inference only" in (adapter.refusal(Config("gpt2", "cpu-x-2c", precision="fp16", mode="training",
                                                       runtime="openvino")) or "")
    monkeypatch.setattr(ova, "cpu_capabilities", lambda: ("FP16", *NO_FP16))
    assert adapter.refusal(Config("gpt2", "cpu-x-2c", precision="fp16", runtime="openvino")) is None


def test_benchmark_refuses_openvino_fp16_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import hardware.openvino_adapter as ova
    from engine.cli.main import cli
    from hardware.registry import get_adapter

    ok, why = get_adapter("openvino").available()
    if not ok:
        pytest.skip(why)
    monkeypatch.setattr(ova, "cpu_capabilities", lambda: NO_FP16)
    r = CliRunner().invoke(cli, ["benchmark", "--model", "distilbert-base-uncased", "--runtime", "openvino",
                                 "--precision", "fp16"])
    assert r.exit_code == 2, r.output
    assert "invalid configuration 'openvino fp16/inference'" in r.output and "no fp16 inference" in r.output


@pytest.mark.slow
def test_a_compiled_model_at_another_precision_fails_instead_of_being_stored_as_fp16(
        monkeypatch: pytest.MonkeyPatch, cpu_id: str, shared_cache: Path) -> None:
    """The run's own check, for a plugin that claims FP16 and still compiles another precision:
    run here with the capability check bypassed, on a CPU whose plugin has no f16."""
    import hardware.openvino_adapter as ova
    from hardware.base import BenchmarkSpec

    adapter = ova.OpenVINOAdapter()
    ok, why = adapter.available()
    if not ok:
        pytest.skip(why)
    real = ova.cpu_capabilities()
    if real is None or "FP16" in real:
        pytest.skip(f"this CPU's OpenVINO plugin runs f16 ({real})")
    monkeypatch.setattr(ova, "cpu_capabilities", lambda: ("FP16", *real))
    spec = BenchmarkSpec(Config("distilbert-base-uncased", cpu_id, 1, 8, "fp16", "inference", "openvino", 1),
                         iterations=2, warmup=1, min_time_s=0.0, isolate=False)
    with pytest.raises(ValueError, match="compiled the fp16 hint as"):
        adapter.run_inline(spec)
