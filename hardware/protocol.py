"""The timing protocol shared by every adapter: warm-up, then timed iterations, memory sampling.

Why "both a minimum count and a minimum time": a 2 ms model timed 10 times gives a median that
jitters with the scheduler, a 2 s model timed for 1 s gives a single sample. Requiring both, and
capping with a maximum time, gives stable medians at bounded cost. Every iteration's latency is
kept (``raw_samples``) so later models can look at the spread, not just the summary.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from hardware.base import BenchmarkSpec

if TYPE_CHECKING:
    from engine.records import Measurement


class TimedSamples(list):
    """Latencies in ms (a plain list to every reader) that also say how busy the machine was.

    ``foreign_cpu_cores``: CPU cores that *other* processes kept busy on average while the timed
    iterations ran — the machine's busy CPU time minus this process's own (all its threads), over
    the wall time. ``Measurement.from_samples`` stores it with the run.
    """

    foreign_cpu_cores: Optional[float] = None


def time_iterations(step: Callable[[], object], spec: BenchmarkSpec,
                    timer: Optional[Callable[[Callable[[], object]], float]] = None) -> TimedSamples:
    """Run ``step`` ``spec.warmup`` times untimed, then timed; returns latencies in ms.

    ``timer(step) -> ms`` replaces the default wall-clock timer (CUDA events on a GPU). The CPU use
    of other processes is measured over the timed iterations (:class:`TimedSamples`): on a 2-core
    machine a 2-thread benchmark next to one spinning process ran 2.2× slower than on the quiet
    machine (distilbert-base-uncased b1 s32: 96.7 against 43.7 ms). The figure is machine-wide, as
    the kernel reports it: in a container that sees the host's CPUs it counts the host's other work.
    """
    timer = timer or _wall_ms
    for _ in range(spec.warmup):
        step()
    samples = TimedSamples()
    probe = _CpuProbe()
    start = time.perf_counter()
    while True:
        samples.append(timer(step))
        elapsed = time.perf_counter() - start
        enough = len(samples) >= spec.iterations and elapsed >= spec.min_time_s
        capped = elapsed >= spec.max_time_s or len(samples) >= spec.max_iterations
        if enough or (capped and len(samples) >= 1):
            samples.foreign_cpu_cores = probe.foreign_cores()
            return samples


class _CpuProbe:
    """Busy CPU seconds of the whole machine and of this process, from a start point."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.start = self._read()

    @staticmethod
    def _read() -> Optional[tuple[float, float]]:
        try:
            import psutil

            sys_t = psutil.cpu_times()
            busy = sum(getattr(sys_t, f) for f in ("user", "nice", "system", "irq", "softirq", "steal")
                       if hasattr(sys_t, f))
            own = psutil.Process().cpu_times()
            return busy, own.user + own.system
        except Exception:  # noqa: BLE001 - a missing figure must never fail a benchmark
            return None

    def foreign_cores(self) -> Optional[float]:
        end = self._read()
        wall = time.perf_counter() - self.t0
        if self.start is None or end is None or wall <= 0:
            return None
        busy = end[0] - self.start[0]
        own = end[1] - self.start[1]
        return round(max(busy - own, 0.0) / wall, 3)


def foreign_load(seconds: float = 1.0) -> Optional[float]:
    """CPU cores other processes keep busy right now, watched for ``seconds`` while this one sleeps.

    What a loop checks before it reruns a benchmark that was disturbed: rerunning while the
    disturbance lasts would only measure it again. None where the figure cannot be read.
    """
    probe = _CpuProbe()
    time.sleep(max(seconds, 0.05))
    return probe.foreign_cores()


def busy_machine(foreign_cpu_cores: Optional[float], threads_used: int, cores: Optional[int] = None) -> bool:
    """Whether other processes competed for the cores a run used.

    A run on ``threads_used`` of ``cores`` cores leaves ``cores − threads_used`` idle; other
    processes using more than that (plus a quarter core of slack for the system's own noise)
    must have taken time from the benchmark's threads.
    """
    if foreign_cpu_cores is None:
        return False
    n, used = _cores_used(threads_used, cores)
    return foreign_cpu_cores > (n - used) + 0.25


def cores_of(hardware_id: Optional[str]) -> Optional[int]:
    """The logical core count a CPU id names (``cpu-amd-epyc-2c`` -> 2, the format of
    :func:`hardware.detect.local_cpu_id`), else None (GPUs, catalog ids, other formats).

    A run's foreign load must be judged against the cores of the machine that recorded it: 1.5
    busy cores starve a 2-core VM but not a 64-core worker of the same Ray cluster."""
    m = re.fullmatch(r"cpu-.+-(\d+)c", hardware_id or "")
    return int(m.group(1)) if m and int(m.group(1)) > 0 else None


def busy_only(keys: Sequence[str], threads: Sequence[int], foreign_cpu_cores: Sequence[Optional[float]],
              hardware: Optional[Sequence[str]] = None) -> dict[str, tuple[float, int]]:
    """Configurations whose every successful run was timed on a busy machine.

    One row per successful run (parallel sequences). Returns key -> (the least foreign load among
    its runs, its number of runs), oldest key first. These are the runs worth repeating: the fits
    keep a busy run only while no quieter run of its configuration exists
    (``engine.models.targets.superseded_busy_runs``). A run without the figure (older stores,
    imported data) is never called busy, so its configuration is never listed. ``hardware`` (the
    runs' hardware ids) judges each run against its own machine's cores (:func:`cores_of`); without
    it, or for ids that name no core count, this machine's.
    """
    seen: dict[str, list[Optional[float]]] = {}
    busy: dict[str, bool] = {}
    hw: Sequence[Optional[str]] = hardware if hardware is not None else [None] * len(keys)
    for k, t, f, h in zip(keys, threads, foreign_cpu_cores, hw):
        f = None if f is None or f != f else float(f)  # NaN from a DataFrame = no figure
        seen.setdefault(k, []).append(f)
        busy[k] = busy.get(k, True) and run_was_busy(f, int(t), h)
    return {k: (min(f for f in fs if f is not None), len(fs)) for k, fs in seen.items() if busy[k]}


def _cores_used(threads_used: int, cores: Optional[int] = None) -> tuple[int, int]:
    """(cores of this machine, cores a run with ``threads_used`` threads occupies; 0 = all)."""
    import os

    n = cores or os.cpu_count() or 1
    return n, min(max(int(threads_used or n), 1), n)


def run_was_busy(foreign_cpu_cores: Optional[float], threads: int, hardware: Optional[str]) -> bool:
    """Whether a stored run's timing was slowed by other processes: :func:`busy_machine` on the
    cores of the CPU that ran it (:func:`cores_of` its id, else this machine's). Only runs on a CPU
    (``cpu-…`` ids, as :func:`hardware.detect.local_cpu_id` makes them) are judged. A GPU run is
    stored with 0 threads, which reads as "every core"; judged against the host's cores, half a
    core of background load dropped a GPU's runs from every fit (session 24's review), while its
    timing is the GPU's. ``hardware`` None (a run of this machine whose id is not at hand) counts
    as a CPU run."""
    if hardware is not None and not str(hardware).startswith("cpu-"):
        return False
    return busy_machine(foreign_cpu_cores, threads, cores_of(hardware))


def busy_note(m: "Measurement") -> Optional[str]:
    """One line for a person when a run's timing was probably slowed by other processes, else None."""
    cores = cores_of(m.config.hardware)
    if not m.ok or not run_was_busy(m.foreign_cpu_cores, m.config.threads, m.config.hardware):
        return None
    n, used = _cores_used(m.config.threads, cores)
    return (f"machine busy: other processes kept {m.foreign_cpu_cores:.2f} CPU cores busy while {m.config.key} "
            f"was timed on {used} of {n} cores; this timing is probably slow (rerun on a quiet machine)")


def busy_summary(measurements: Sequence["Measurement"]) -> Optional[str]:
    """One line for a whole command's runs (``benchmark`` over a grid): which of them were timed
    while other processes kept the cores busy, with a count, else None. A line per run repeated
    the same advice 7 times on a loaded machine; one busy run keeps its own detailed line."""
    busy = [m for m in measurements if busy_note(m)]
    if len(busy) <= 1:
        return busy_note(busy[0]) if busy else None
    loads = [float(m.foreign_cpu_cores or 0.0) for m in busy]
    span = f"{min(loads):.2f}" if f"{min(loads):.2f}" == f"{max(loads):.2f}" else f"{min(loads):.2f}–{max(loads):.2f}"
    keys = ", ".join(m.config.key for m in busy[:5]) + (f", … and {len(busy) - 5} more" if len(busy) > 5 else "")
    return (f"machine busy: {len(busy)} of {len(measurements)} runs were timed while other processes kept {span} "
            f"CPU cores busy ({keys}); their timings are probably slow (rerun them on a quiet machine)")


def _wall_ms(step: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    step()
    return (time.perf_counter() - t0) * 1000.0


@dataclass
class MemorySampler:
    """Samples this process's resident set size from a background thread.

    A thread rather than a before/after reading because activations live only during forward():
    the peak is what decides whether a config fits, and it is invisible after the call returns.
    Runtimes release the GIL inside their kernels, so the thread keeps sampling.
    """

    interval_s: float = 0.01
    samples_mib: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: Optional[threading.Thread] = None

    def __enter__(self) -> "MemorySampler":
        import psutil

        proc = psutil.Process()

        def loop() -> None:
            while not self._stop.is_set():
                self.samples_mib.append(proc.memory_info().rss / 2**20)
                self._stop.wait(self.interval_s)

        self.samples_mib.append(proc.memory_info().rss / 2**20)
        self._thread = threading.Thread(target=loop, name="perfcast-mem", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    @property
    def peak_mib(self) -> Optional[float]:
        return max(self.samples_mib) if self.samples_mib else None

    @property
    def avg_mib(self) -> Optional[float]:
        return sum(self.samples_mib) / len(self.samples_mib) if self.samples_mib else None
