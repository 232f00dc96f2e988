from __future__ import annotations

import time

import numpy as np

from engine.config import Config
from hardware.base import BenchmarkSpec
from hardware.isolation import classify_exception
from hardware.protocol import MemorySampler, time_iterations

CFG = Config("bert-base-uncased", "cpu-test", 1, 8)


def test_timing_needs_both_min_count_and_min_time() -> None:
    calls = []

    def step() -> None:
        calls.append(1)
        time.sleep(0.01)

    samples = time_iterations(step, BenchmarkSpec(CFG, iterations=3, warmup=2, min_time_s=0.15, max_time_s=5))
    assert len(samples) >= 10  # 0.15 s of 10 ms steps, more than the 3-iteration minimum
    assert len(calls) == len(samples) + 2
    assert all(s >= 9.0 for s in samples)
    samples = time_iterations(step, BenchmarkSpec(CFG, iterations=7, warmup=0, min_time_s=0.0))
    assert len(samples) == 7


def test_timing_stops_at_the_time_cap() -> None:
    samples = time_iterations(lambda: time.sleep(0.05), BenchmarkSpec(CFG, iterations=1000, warmup=0,
                                                                        min_time_s=0.0, max_time_s=0.2))
    assert 2 <= len(samples) <= 6


def test_memory_sampler_sees_a_temporary_allocation() -> None:
    with MemorySampler(interval_s=0.005) as mem:
        base = mem.samples_mib[0]
        x = np.ones((64, 2**20 // 8 * 4))  # 256 MiB touched
        time.sleep(0.1)
        del x
    assert mem.peak_mib is not None and mem.peak_mib > base + 150
    assert 0 < mem.avg_mib <= mem.peak_mib


def test_allocation_failures_classify_as_oom() -> None:
    assert classify_exception(MemoryError()) == "oom"
    assert classify_exception(RuntimeError("[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: "
                                           "can't allocate memory: you tried to allocate 1 bytes")) == "oom"
    assert classify_exception(ValueError("shape mismatch")) == "failed"


def test_spec_round_trips_and_validates() -> None:
    spec = BenchmarkSpec(CFG, iterations=4, memory_limit_mib=100)
    assert BenchmarkSpec.from_dict(spec.to_dict()) == spec
    import pytest

    from engine.errors import InvalidValueError

    with pytest.raises(InvalidValueError):
        BenchmarkSpec(CFG, iterations=0)
