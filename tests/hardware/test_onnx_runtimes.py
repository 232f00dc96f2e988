"""ONNX Runtime and OpenVINO run the exported model for real (export shared per session)."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import Config
from hardware.base import BenchmarkSpec
from hardware.registry import get_adapter

FAST = dict(iterations=3, warmup=1, min_time_s=0.0, max_time_s=120.0, time_limit_s=300.0)


def _require(name: str) -> None:
    ok, why = get_adapter(name).available()
    if not ok:
        pytest.skip(why)


@pytest.mark.parametrize("adapter,precision,threads", [("onnxruntime", "fp32", 1), ("openvino", "bf16", 2)])
def test_runs_exported_model(adapter: str, precision: str, threads: int, cpu_id: str, shared_cache: Path) -> None:
    _require(adapter)
    c = Config("distilbert-base-uncased", cpu_id, 2, 8, precision, "inference", get_adapter(adapter).runtime, threads)
    m = get_adapter(adapter).run(BenchmarkSpec(c, **FAST))
    assert m.status == "ok", m.error
    assert len(m.samples_ms) >= 3 and m.latency.median_ms > 0
    assert m.throughput == pytest.approx(2 / (m.latency.median_ms / 1000))
    assert m.memory_peak_mib and m.memory_peak_mib > 50
    assert adapter in m.versions
    # the export landed in the (test) cache and is reused
    assert list((shared_cache / "onnx").glob("distilbert-base-uncased-fp32-*.onnx"))
