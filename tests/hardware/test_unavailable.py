"""GPU/NPU adapters: run where present, skip cleanly with the adapter's own reason elsewhere."""
from __future__ import annotations

import pytest

from engine.config import Config
from hardware.base import BenchmarkSpec
from hardware.registry import get_adapter


@pytest.mark.parametrize("name", ["torch-cuda", "torch-mps"])
def test_gpu_adapter_runs_or_skips(name: str) -> None:
    a = get_adapter(name)
    ok, why = a.available()
    if not ok:
        assert why
        pytest.skip(f"{name}: {why}")
    c = Config("distilbert-base-uncased", a.hardware_id(), 1, 8, "fp16", "inference", "torch", 0)
    m = a.run(BenchmarkSpec(c, iterations=3, warmup=1, min_time_s=0))
    assert m.status == "ok", m.error
    assert m.latency.median_ms > 0 and m.memory_peak_mib > 0


def test_unavailable_adapter_run_is_a_failed_measurement() -> None:
    a = get_adapter("qnn")
    ok, why = a.available()
    assert not ok and "not available on this machine" in why
    m = a.run(BenchmarkSpec(Config("resnet50", "qnn-hexagon", 1, 0, "int8", "inference", "qnn", 0)))
    assert m.status == "failed" and "not available" in (m.error or "")
