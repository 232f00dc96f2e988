"""The recommender's roofline sentence uses the ridge point the models use, not the nominal peak."""
from __future__ import annotations

import pytest

from engine.catalog import resolve_hardware
from engine.config import Config
from engine.recommend.recommender import _roofline_bound

CPU = "cpu-amd-epyc-2c"


def _cfg(precision: str, runtime: str, threads: int = 2) -> Config:
    return Config("bert-base-uncased", CPU, 8, 128, precision, "inference", runtime, threads)


def test_fp32_ridge_is_the_peak_over_the_bandwidth_and_scales_with_threads():
    e = resolve_hardware(CPU)
    nominal = e.peak_flops("fp32") / (e.memory_bandwidth_gbs * 1e9)
    ai, ridge, bound = _roofline_bound(_cfg("fp32", "torch"), e)
    assert ridge == pytest.approx(nominal, rel=1e-9)
    assert ai > 0 and bound == ("compute" if ai >= ridge else "memory")
    _, ridge_1t, _ = _roofline_bound(_cfg("fp32", "torch", threads=1), e)
    assert ridge_1t == pytest.approx(nominal / 2, rel=1e-9)  # one of two cores: half the peak


def test_int8_ridge_is_below_the_nominal_int8_peak_and_openvino_runs_it_at_fp32():
    e = resolve_hardware(CPU)
    fp32 = e.peak_flops("fp32") / (e.memory_bandwidth_gbs * 1e9)
    int8_nominal = e.peak_flops("int8") / (e.memory_bandwidth_gbs * 1e9)
    _, torch_int8, _ = _roofline_bound(_cfg("int8", "torch"), e)
    _, ov_int8, _ = _roofline_bound(_cfg("int8", "openvino"), e)
    # torch: weight matmuls at the int8 peak, the rest (attention, softmax, ...) at fp32
    assert fp32 < torch_int8 < int8_nominal
    # OpenVINO compiles the quantized graph at the f32 hint: the whole pass at the fp32 peak
    assert ov_int8 == pytest.approx(fp32, rel=1e-9)
