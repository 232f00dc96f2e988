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


def test_timing_measures_how_busy_other_processes_kept_the_machine() -> None:
    """A process spinning on one core while a sleeping step is timed: about one foreign core
    (this process's own CPU time is subtracted), and the figure reaches the Measurement."""
    import subprocess
    import sys

    from engine.records import Measurement

    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        samples = time_iterations(lambda: time.sleep(0.02), BenchmarkSpec(CFG, iterations=5, warmup=0,
                                                                           min_time_s=0.6, max_time_s=2))
    finally:
        spin.kill()
        spin.wait()
    assert samples.foreign_cpu_cores is not None and samples.foreign_cpu_cores >= 0.6
    assert Measurement.from_samples(CFG, samples).foreign_cpu_cores == samples.foreign_cpu_cores
    assert Measurement.from_samples(CFG, [1.0, 2.0]).foreign_cpu_cores is None  # a plain list: not measured


def test_busy_machine_means_other_processes_needed_the_runs_cores() -> None:
    from hardware.protocol import busy_machine

    assert not busy_machine(None, 2, cores=2)
    assert not busy_machine(0.1, 2, cores=2)  # background noise
    assert busy_machine(0.7, 2, cores=2)  # both cores used by the run, 0.7 taken by others
    assert not busy_machine(1.0, 1, cores=2)  # the other core was free for them
    assert busy_machine(1.6, 1, cores=2)
    assert busy_machine(0.5, 0, cores=2)  # threads 0 = the runtime's default, all cores


def test_busy_note_names_the_run_and_the_load() -> None:
    import os

    from engine.records import Measurement
    from hardware.protocol import busy_note

    n = os.cpu_count() or 1
    c = CFG.with_(threads=n)
    note = busy_note(Measurement.from_samples(c, [1.0], foreign_cpu_cores=0.9))
    assert note is not None and c.key in note and "0.90" in note
    assert busy_note(Measurement.from_samples(c, [1.0], foreign_cpu_cores=0.05)) is None
    assert busy_note(Measurement.failed(c, "oom", "x", foreign_cpu_cores=3.0)) is None


def test_a_run_is_judged_against_the_cores_of_the_machine_that_recorded_it() -> None:
    """1.5 busy cores starve a 2-core VM, not a 64-core worker: the CPU id names its core count."""
    from engine.records import Measurement
    from hardware.protocol import busy_note, busy_only, cores_of

    assert cores_of("cpu-amd-epyc-2c") == 2 and cores_of("cpu-intel-xeon-platinum-8480-64c") == 64
    assert cores_of("h100-sxm") is None and cores_of("cpu-x") is None and cores_of(None) is None
    keys, threads, load = ["a", "b"], [8, 2], [1.5, 1.5]
    flagged = busy_only(keys, threads, load, ["cpu-big-box-64c", "cpu-amd-epyc-2c"])
    assert set(flagged) == {"b"}
    big = CFG.with_(hardware="cpu-big-box-64c", threads=8)
    small = CFG.with_(hardware="cpu-amd-epyc-2c", threads=2)
    assert busy_note(Measurement.from_samples(big, [1.0], foreign_cpu_cores=1.5)) is None
    note = busy_note(Measurement.from_samples(small, [1.0], foreign_cpu_cores=1.5))
    assert note is not None and "2 of 2 cores" in note
