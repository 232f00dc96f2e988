"""The timing protocol shared by every adapter: warm-up, then timed iterations, memory sampling.

Why "both a minimum count and a minimum time": a 2 ms model timed 10 times gives a median that
jitters with the scheduler, a 2 s model timed for 1 s gives a single sample. Requiring both, and
capping with a maximum time, gives stable medians at bounded cost. Every iteration's latency is
kept (``raw_samples``) so later models can look at the spread, not just the summary.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from hardware.base import BenchmarkSpec


def time_iterations(step: Callable[[], object], spec: BenchmarkSpec,
                    timer: Optional[Callable[[Callable[[], object]], float]] = None) -> list[float]:
    """Run ``step`` ``spec.warmup`` times untimed, then timed; returns latencies in ms.

    ``timer(step) -> ms`` replaces the default wall-clock timer (CUDA events on a GPU).
    """
    timer = timer or _wall_ms
    for _ in range(spec.warmup):
        step()
    samples: list[float] = []
    start = time.perf_counter()
    while True:
        samples.append(timer(step))
        elapsed = time.perf_counter() - start
        enough = len(samples) >= spec.iterations and elapsed >= spec.min_time_s
        capped = elapsed >= spec.max_time_s or len(samples) >= spec.max_iterations
        if enough or (capped and len(samples) >= 1):
            return samples


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
