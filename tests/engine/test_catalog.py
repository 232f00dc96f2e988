"""Hardware catalog figures, platform resolution, close-match errors, and the catalog CLI commands."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.catalog import (
    PLATFORMS,
    HardwareEntry,
    all_hardware,
    catalog_hardware,
    get_model,
    reference_device,
    resolve_hardware,
)
from engine.cli.main import cli
from engine.errors import UnknownNameError
from hardware.detect import local_cpu_id

REQUIRED = ("t4", "l4", "a10g", "a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "rtx-3090", "rtx-4090",
            "mi250x", "mi300x", "apple-m1", "apple-m2", "apple-m3-max", "xeon-8480", "snapdragon-8g3-npu",
            "webgpu-laptop", "webnn-laptop")


def _has_gpu() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def test_catalog_has_every_required_device_with_sources_and_positive_figures() -> None:
    hw = catalog_hardware()
    for hid in REQUIRED:
        assert hid in hw, hid
    for hid, e in hw.items():
        assert e.kind in PLATFORMS, hid
        assert e.sources.get("peak") and e.sources.get("price"), hid
        peaks = [v for v in e.peak_tflops.values() if v is not None]
        assert peaks and all(v > 0 for v in peaks), hid
        assert set(e.peak_tflops) == {"fp32", "fp16", "bf16", "int8"}, hid
        for v in (e.memory_bandwidth_gbs, e.memory_gib, e.tdp_w if e.kind != "cpu" else 1.0):
            assert v is not None and v > 0, hid
        assert e.price_per_hour_usd is None or e.price_per_hour_usd > 0, hid
    # the tensor-core parts are far faster at fp16 than fp32; bandwidths are ordered as on the datasheets
    assert hw["h100-sxm"].peak_tflops["fp16"] > 10 * hw["h100-sxm"].peak_tflops["fp32"]
    assert hw["h200"].memory_bandwidth_gbs > hw["h100-sxm"].memory_bandwidth_gbs > hw["a100-80gb"].memory_bandwidth_gbs
    assert "estimate" in hw["webgpu-laptop"].sources["peak"].lower()
    # the machine that recorded the shipped dataset is listed with measured figures
    assert hw[local_cpu_id()].sources["peak"].startswith("measured") if local_cpu_id() in hw else True


def test_each_platform_but_cpu_has_exactly_one_reference_device() -> None:
    for p in PLATFORMS:
        refs = [e.id for e in catalog_hardware().values() if e.reference_for == p]
        assert len(refs) == (0 if p == "cpu" else 1), (p, refs)
        if p != "cpu":
            assert catalog_hardware()[refs[0]].kind == p
    assert reference_device("cuda").id == "a100-80gb"


def test_cpu_resolves_to_this_machine() -> None:
    e = resolve_hardware("cpu")
    assert e.id == local_cpu_id()
    assert e.detected and e.kind == "cpu"
    assert resolve_hardware(local_cpu_id()).id == local_cpu_id()


@pytest.mark.skipif(_has_gpu(), reason="a GPU is present: cuda resolves to it, not to the catalog reference")
def test_cuda_without_a_gpu_resolves_to_the_catalog_reference() -> None:
    e = resolve_hardware("cuda")
    assert e.id == reference_device("cuda").id and not e.detected


def test_openvino_resolves_to_the_local_cpu_when_installed() -> None:
    import importlib.util

    e = resolve_hardware("openvino")
    if importlib.util.find_spec("openvino") is not None:
        assert e.id == local_cpu_id()
    else:
        assert e.id == "xeon-8480"


def test_catalog_ids_and_other_platforms_resolve() -> None:
    assert resolve_hardware("h100-sxm").name.startswith("NVIDIA H100")
    assert resolve_hardware("qnn").id == "snapdragon-8g3-npu"
    assert resolve_hardware("webgpu").kind == "webgpu"


def test_unknown_names_suggest_the_closest_valid_ones() -> None:
    with pytest.raises(UnknownNameError) as ei:
        resolve_hardware("h100-sx")
    assert "h100-sxm" in ei.value.suggestions and ei.value.exit_code == 2
    with pytest.raises(UnknownNameError) as ei:
        get_model("bert-base-uncase")
    assert "did you mean 'bert-base-uncased'" in str(ei.value)


def test_a_name_in_other_letter_case_is_the_first_suggestion() -> None:
    """Audit: `--model GPT2` was answered "did you mean 'gpt2-medium'?", never gpt2 itself."""
    with pytest.raises(UnknownNameError) as ei:
        get_model("GPT2")
    assert str(ei.value).startswith("unknown model 'GPT2'; did you mean 'gpt2' or 'gpt2-medium'")
    with pytest.raises(UnknownNameError) as ei:
        get_model("Bert-Base-Uncased")
    assert "did you mean 'bert-base-uncased'" in str(ei.value)


def test_store_rows_join_the_catalog_and_round_trip(tmp_path: pytest.TempPathFactory) -> None:
    from engine.store import Store

    store = Store(tmp_path / "hw.duckdb", seed=False)  # type: ignore[operator]
    mine = HardwareEntry(id="tpu-v5e-test", name="Test TPU", kind="cuda", vendor="x",
                         peak_tflops={"fp32": 1.0, "fp16": 197.0, "bf16": 197.0, "int8": 394.0},
                         memory_bandwidth_gbs=819.0, memory_gib=16.0, tdp_w=200.0, price_per_hour_usd=1.2,
                         sources={"peak": "a test"}, details={"x": 1})
    store.upsert_hardware([mine.to_row()])
    hw = all_hardware(store)
    assert "tpu-v5e-test" in hw and "h100-sxm" in hw and local_cpu_id() in hw
    back = hw["tpu-v5e-test"]
    assert back.peak_tflops == mine.peak_tflops and back.sources == mine.sources
    assert back.details == {"x": 1} and back.memory_bandwidth_gbs == 819.0
    assert resolve_hardware("tpu-v5e-test", store).price_per_hour_usd == 1.2


# -- CLI ------------------------------------------------------------------------------------------
def test_models_show_unknown_name_exits_2_with_the_close_match() -> None:
    from engine.cli.main import cli

    res = CliRunner().invoke(cli, ["models", "show", "bert-base-uncase"])
    assert res.exit_code == 2
    assert "did you mean 'bert-base-uncased'" in res.output


def test_models_show_json_has_descriptors() -> None:
    from engine.cli.main import cli

    res = CliRunner().invoke(cli, ["models", "show", "gpt2", "--batch-size", "2", "--precision", "fp16", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["descriptor"]["flops"] > 0 and data["descriptor"]["batch_size"] == 2
    assert data["decode"]["kv_cache_bytes"] > 0
    assert 0.9 < data["descriptor"]["linear_flops"] / data["descriptor"]["flops"] <= 1.0


def test_models_show_reports_the_int8_share() -> None:
    from engine.cli.main import cli

    res = CliRunner().invoke(cli, ["models", "show", "resnet50", "--batch-size", "2"])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if "weight matmuls" in ln)
    assert line.split()[-1] == "0.1%"  # convolutions are not quantized dynamically
    assert "int8" not in line  # only an int8 pass runs them in int8
    int8 = CliRunner().invoke(cli, ["models", "show", "resnet50", "--precision", "int8"])
    assert "weight matmuls (run in int8)" in int8.output


def test_models_show_says_when_no_adapter_runs_the_pass() -> None:
    """Audit: `models show gpt2 --mode training --precision int8` labelled 98% of the FLOPs "run in
    int8" for a pass no adapter runs (predict and benchmark refuse int8 training)."""
    from engine.cli.main import cli

    res = CliRunner().invoke(cli, ["models", "show", "gpt2", "--mode", "training", "--precision", "int8"])
    assert res.exit_code == 0, res.output
    assert "(run in int8)" not in res.output
    assert "no adapter runs torch int8 training on a CPU (int8 training is not supported" in " ".join(res.output.split())
    d = json.loads(CliRunner().invoke(cli, ["models", "show", "gpt2", "--runtime", "onnxruntime", "--mode", "training",
                                            "--json"]).stdout)
    assert d["refused_on_cpu"].startswith("onnxruntime measures inference only")
    d = json.loads(CliRunner().invoke(cli, ["models", "show", "gpt2", "--precision", "int8", "--json"]).stdout)
    assert d["refused_on_cpu"] is None


def test_models_list_json_params_within_2_percent() -> None:
    from engine.cli.main import cli

    res = CliRunner().invoke(cli, ["models", "list", "--family", "vision", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["models"]
    assert {r["model"] for r in rows} == {"vit-base-patch16-224", "resnet50"}
    assert all(abs(r["params_rel_diff"]) <= 0.02 for r in rows)


def test_hardware_list_filters_by_kind() -> None:
    from engine.cli.main import cli

    res = CliRunner().invoke(cli, ["hardware", "list", "--kind", "rocm", "--json", "--no-detect"])
    assert res.exit_code == 0, res.output
    assert {h["id"] for h in json.loads(res.stdout)["hardware"]} == {"mi250x", "mi300x"}
    bad = CliRunner().invoke(cli, ["hardware", "list", "--kind", "tpu"])
    assert bad.exit_code == 2


def test_a_cpu_the_catalog_measured_is_not_re_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped dataset's CPU resolves to its catalog figures even on that very machine: a fresh
    micro-benchmark (a percent or two off each time) must not change features, fits or evaluations."""
    import hardware.detect
    from engine import catalog

    monkeypatch.setattr(hardware.detect, "local_cpu_id", lambda: "cpu-amd-epyc-2c")
    monkeypatch.setattr(catalog, "_detected_of_kind", lambda kind: pytest.fail("detection ran"))
    assert resolve_hardware("cpu-amd-epyc-2c") == catalog_hardware()["cpu-amd-epyc-2c"]


def test_the_platform_name_cpu_also_gets_the_catalog_figures_of_a_pinned_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--hardware cpu` and `--hardware cpu-amd-epyc-2c` must describe the same device the same way."""
    from dataclasses import replace

    from engine import catalog

    pinned = catalog_hardware()["cpu-amd-epyc-2c"]
    fresh = replace(pinned, memory_bandwidth_gbs=(pinned.memory_bandwidth_gbs or 10.0) * 1.02, detected=True)
    monkeypatch.setattr(catalog, "_detected_of_kind", lambda kind: fresh if kind == "cpu" else None)
    got = resolve_hardware("cpu")
    assert got.detected and (got.peak_tflops, got.memory_bandwidth_gbs) == (pinned.peak_tflops,
                                                                            pinned.memory_bandwidth_gbs)
    other = replace(fresh, id="cpu-some-laptop-8c")
    monkeypatch.setattr(catalog, "_detected_of_kind", lambda kind: other if kind == "cpu" else None)
    assert resolve_hardware("cpu") == other


def test_hardware_lists_show_the_pinned_figures_predictions_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """`perfcast hardware list` must show for this CPU the figures that predictions use."""
    from dataclasses import replace

    import hardware.detect
    from engine.catalog import all_hardware

    pinned = catalog_hardware()["cpu-amd-epyc-2c"]
    fresh = replace(pinned, memory_bandwidth_gbs=(pinned.memory_bandwidth_gbs or 10.0) * 1.02, detected=True)
    monkeypatch.setattr(hardware.detect, "detect_local", lambda *a, **k: [fresh])
    got = all_hardware(None)["cpu-amd-epyc-2c"]
    assert got.detected and got.memory_bandwidth_gbs == pinned.memory_bandwidth_gbs


def test_a_store_row_under_a_pinned_id_does_not_override_the_catalog_figures() -> None:
    """A store written before CPU ids named the ISA tier holds a Zen 3 host's detected figures under
    the shipped Zen 4's id; predictions for that id must keep the catalog's measured figures."""
    from dataclasses import replace

    from engine.catalog import all_hardware

    pinned = catalog_hardware()["cpu-amd-epyc-2c"]
    stale = replace(pinned, peak_tflops={"fp32": 0.035, "fp16": 0.0007, "bf16": 0.0004, "int8": 0.077},
                    memory_bandwidth_gbs=11.7, detected=True, name="AMD EPYC (2 cores)")

    class _Store:
        def hardware_rows(self) -> list[dict]:
            return [stale.to_row()]

    got = all_hardware(_Store(), detect=False)["cpu-amd-epyc-2c"]
    assert (got.peak_tflops, got.memory_bandwidth_gbs) == (pinned.peak_tflops, pinned.memory_bandwidth_gbs)
    assert resolve_hardware("cpu-amd-epyc-2c", _Store()).peak_tflops == pinned.peak_tflops
    # one id, one name: the detected "AMD EPYC (2 cores)" and the catalog's name alternated between commands
    assert got.name == resolve_hardware("cpu-amd-epyc-2c", _Store()).name == pinned.name != stale.name


def test_bf16_without_bf16_units_runs_at_the_fp32_peak_not_the_fp16_tensor_cores() -> None:
    """A T4 lists fp16 at 65 TFLOP/s and fp32 at 8.1; bf16 borrowed the 65 (8x optimistic)."""
    from engine.catalog import resolve_hardware
    from engine.models.features import HardwareFacts

    t4 = resolve_hardware("t4")
    assert t4.peak_flops("bf16") == t4.peak_flops("fp32") < t4.peak_flops("fp16")
    facts = HardwareFacts.from_entry(t4)
    assert facts.peak("bf16") == facts.peak("fp32")
    a100 = resolve_hardware("a100-80gb")  # lists bf16: unchanged
    assert a100.peak_flops("bf16") == a100.peak_tflops["bf16"] * 1e12


def test_hardware_list_shows_reference_markers_and_whole_numbers() -> None:
    r = CliRunner(env={"COLUMNS": "80"}).invoke(cli, ["hardware", "list"])
    assert r.exit_code == 0 and "a100-80gb ^" in r.output and "…" not in r.output
    from engine.catalog import all_hardware

    lines = r.output.splitlines()
    # every id whole on one line at 80 columns (the longest CPU ids folded until session 24)
    for hid in all_hardware(detect=False):
        assert any(line.lstrip().startswith(f"{hid} ") for line in lines), hid
    wide = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["hardware", "list"])
    assert "(ref: cuda)" in wide.output  # the marker rich once read as a style tag and dropped


def test_models_show_names_what_building_the_model_holds() -> None:
    """torch's int8 is quantized from the fp32 model: its build holds more than its run (the
    memory posterior's floor is the larger of the two)."""
    from engine.cli.main import cli

    res = CliRunner().invoke(cli, ["models", "show", "gpt2", "--precision", "int8", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)["descriptor"]
    assert d["build_bytes"] > 2 * d["floor_bytes"]
    text = CliRunner().invoke(cli, ["models", "show", "gpt2", "--precision", "int8"]).output
    assert "held while building the model" in text
