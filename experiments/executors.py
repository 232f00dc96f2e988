"""Where benchmarks run: a small asynchronous protocol, a local and a replay implementation.

The loop never runs a benchmark itself; it talks to an :class:`Executor`:

* ``check(configs)`` — the configurations this executor can run (the rest are recorded in
  ``skipped`` with the reason, and the loop leaves them out of the pool rather than hang);
* ``free(configs=None)`` — idle worker slots: how many configurations to pick jointly now;
* ``submit(spec)`` — start one benchmark, return a handle at once (``handle.config``);
* ``wait(timeout=None)`` — the next finished benchmark (``result.measurement``,
  ``result.config``), or None on timeout / when nothing is in flight;
* ``pending()`` — configurations submitted and not yet returned: the acquisition's ``X_pending``;
* ``close()`` — stop what is still running.

:class:`experiments.ray_executor.RayExecutor` (the distributed one, ``--executor ray``) follows the
same protocol; :data:`EXECUTORS` maps the CLI names to the classes.
"""
from __future__ import annotations

import concurrent.futures as cf
import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Protocol, Sequence, runtime_checkable

from engine.config import Config
from engine.errors import InvalidValueError, NotAvailableError
from engine.records import LatencyStats, Measurement

if TYPE_CHECKING:
    import pandas as pd

    from hardware.base import BenchmarkSpec


@runtime_checkable
class Executor(Protocol):
    name: str
    skipped: dict[str, str]

    def check(self, configs: Sequence[Config]) -> list[Config]: ...

    def free(self, configs: Optional[Iterable[Config]] = None) -> int: ...

    def submit(self, spec: "BenchmarkSpec") -> Any: ...

    def wait(self, timeout: Optional[float] = None) -> Any: ...

    def pending(self) -> list[Config]: ...

    def close(self) -> None: ...


@dataclass
class Handle:
    config: Config
    spec: Any
    seq: int
    submitted_at: float = field(default_factory=time.time)

    @property
    def key(self) -> str:
        return self.config.key


@dataclass
class Result:
    handle: Handle
    measurement: Measurement

    @property
    def config(self) -> Config:
        return self.handle.config


class _QueueExecutor:
    """Shared bookkeeping: in-flight handles in submission order, results in completion order."""

    name = "base"

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise InvalidValueError("workers", workers, "an integer >= 1")
        self.workers = int(workers)
        self.skipped: dict[str, str] = {}
        self._seq = itertools.count()
        self._inflight: dict[int, Handle] = {}

    def free(self, configs: Optional[Iterable[Config]] = None) -> int:
        return max(self.workers - len(self._inflight), 0)

    def pending(self) -> list[Config]:
        return [h.config for h in self._inflight.values()]

    def __len__(self) -> int:
        return len(self._inflight)


class LocalExecutor(_QueueExecutor):
    """Benchmarks on this machine, each in an isolated child process (:mod:`hardware.isolation`).

    ``workers`` threads each drive one child at a time; the default 1 keeps benchmarks from
    disturbing each other on a small machine. ``runner(adapter_name, spec) -> Measurement``
    defaults to :func:`hardware.isolation.run_isolated` (tests pass a stand-in).
    """

    name = "local"

    def __init__(self, workers: int = 1, runner: Optional[Callable[[str, "BenchmarkSpec"], Measurement]] = None) -> None:
        super().__init__(workers)
        self._runner = runner
        self._pool = cf.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="perfcast-bench")
        self._futures: dict[cf.Future, Handle] = {}
        self._adapters: dict[tuple[str, str, str, str], tuple[Optional[str], str]] = {}

    def _adapter(self, config: Config) -> tuple[Optional[str], str]:
        # per device, runtime, precision and mode: an adapter refuses some of those (its refusal)
        key = (config.hardware, config.runtime, config.precision, config.mode)
        if key not in self._adapters:
            from experiments.space import adapter_for

            self._adapters[key] = adapter_for(config)
        return self._adapters[key]

    def check(self, configs: Sequence[Config]) -> list[Config]:
        ok = []
        for c in configs:
            name, why = self._adapter(c)
            if name is None:
                self.skipped[c.key] = why
            else:
                ok.append(c)
        return ok

    def _run(self, adapter: str, spec: "BenchmarkSpec") -> Measurement:
        t0 = time.monotonic()
        try:
            if self._runner is not None:
                return self._runner(adapter, spec)
            from hardware.isolation import run_isolated

            return run_isolated(adapter, spec)
        except Exception as exc:  # noqa: BLE001 - a broken harness is a failed run, not a dead loop
            return Measurement.failed(spec.config, "failed", f"executor error: {type(exc).__name__}: {exc}",
                                      wall_time_s=time.monotonic() - t0, adapter=adapter)

    def submit(self, spec: "BenchmarkSpec") -> Handle:
        name, why = self._adapter(spec.config)
        if name is None:
            self.skipped[spec.config.key] = why
            raise NotAvailableError(why)
        h = Handle(spec.config, spec, next(self._seq))
        self._inflight[h.seq] = h
        self._futures[self._pool.submit(self._run, name, spec)] = h
        return h

    def wait(self, timeout: Optional[float] = None) -> Optional[Result]:
        if not self._futures:
            return None
        done, _ = cf.wait(list(self._futures), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        if not done:
            return None
        fut = min(done, key=lambda f: self._futures[f].seq)
        h = self._futures.pop(fut)
        self._inflight.pop(h.seq, None)
        return Result(h, fut.result())

    def close(self) -> None:
        running = [f for f in self._futures if not f.done()]
        for f in list(self._futures):
            f.cancel()
        self._futures.clear()
        self._inflight.clear()
        if running and self._runner is None:
            # the children ignore SIGINT (hardware.isolation): end them, or the worker threads would
            # keep this process alive until their benchmarks finish
            from hardware.isolation import kill_running

            kill_running()
        self._pool.shutdown(wait=False, cancel_futures=True)


def measurement_from_row(row: dict[str, Any], source: str = "replay") -> Measurement:
    """A stored run (a row of ``Store.measurements()`` or a dataset export) as a Measurement."""
    import math

    c = Config.from_mapping(row)

    def num(k: str) -> Optional[float]:
        v = row.get(k)
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None
        return None if math.isnan(f) else f

    status = str(row.get("status") or "ok")
    wall = num("wall_time_s")
    if status != "ok":
        return Measurement.failed(c, status, str(row.get("error") or "failed (recorded)"), wall_time_s=wall,
                                  source=source, adapter=str(row.get("adapter") or ""))
    samples = row.get("samples_ms")
    samples = [float(x) for x in samples] if isinstance(samples, (list, tuple)) or hasattr(samples, "tolist") else []
    lat = LatencyStats(mean_ms=num("latency_mean_ms") or num("latency_median_ms"), median_ms=num("latency_median_ms"),
                       min_ms=num("latency_min_ms") or num("latency_median_ms"),
                       max_ms=num("latency_max_ms") or num("latency_median_ms"),
                       p90_ms=num("latency_p90_ms") or num("latency_median_ms"),
                       p99_ms=num("latency_p99_ms") or num("latency_median_ms"), std_ms=num("latency_std_ms") or 0.0)
    return Measurement(config=c, status="ok", latency=lat, samples_ms=samples,
                       throughput=num("throughput_items_s") or c.batch_size / (lat.median_ms / 1000.0),
                       memory_peak_mib=num("memory_peak_mib"), memory_avg_mib=num("memory_avg_mib"),
                       first_token_ms=num("first_token_ms"), decode_token_ms=num("decode_token_ms"),
                       load_time_s=num("load_time_s"), power_w=num("power_w"),
                       iterations=int(num("iterations") or len(samples) or 0), warmup=int(num("warmup") or 0),
                       wall_time_s=wall, host=str(row.get("host") or ""), adapter=str(row.get("adapter") or ""),
                       device_name=str(row.get("device_name") or ""), source=source)


class OracleExecutor(_QueueExecutor):
    """Replay: answers with the measurement recorded in a dataset, and its recorded cost.

    The loop sees exactly what a real run would have produced — latency samples, memory, status
    (a run that failed when measured fails again) and ``wall_time_s``, the benchmark-seconds the
    run really cost — without running anything. ``time_scale`` > 0 sleeps ``wall_time_s ×
    time_scale`` before answering (to exercise asynchronous scheduling and kills in tests).
    Configurations not in the dataset are refused by :meth:`check`.
    """

    name = "oracle"

    def __init__(self, data: "pd.DataFrame", workers: int = 1, time_scale: float = 0.0) -> None:
        super().__init__(workers)
        self.time_scale = float(time_scale)
        df = data.sort_values("started_at") if "started_at" in data else data
        self.rows: dict[str, dict[str, Any]] = {}
        for rec in df.to_dict("records"):
            key = rec.get("config_key") or Config.from_mapping(rec).key
            # the first successful run of a configuration answers (a failure only if it never succeeded)
            if key not in self.rows or (self.rows[key].get("status") != "ok" and rec.get("status") == "ok"):
                self.rows[key] = rec
        self._done: list[Result] = []
        self._due: dict[int, float] = {}

    def check(self, configs: Sequence[Config]) -> list[Config]:
        ok = []
        for c in configs:
            if c.key in self.rows:
                ok.append(c)
            else:
                self.skipped[c.key] = "not in the replay dataset"
        return ok

    def truth(self, configs: Sequence[Config], column: str = "latency_median_ms") -> list[Optional[float]]:
        """The recorded value of ``column`` per configuration (None where not ok / absent)."""
        out: list[Optional[float]] = []
        for c in configs:
            r = self.rows.get(c.key)
            v = r.get(column) if r is not None and r.get("status") == "ok" else None
            out.append(None if v is None or v != v else float(v))
        return out

    def submit(self, spec: "BenchmarkSpec") -> Handle:
        c = spec.config
        if c.key not in self.rows:
            self.skipped[c.key] = "not in the replay dataset"
            raise NotAvailableError(f"{c.key} is not in the replay dataset")
        h = Handle(c, spec, next(self._seq))
        self._inflight[h.seq] = h
        wall = self.rows[c.key].get("wall_time_s") or 0.0
        self._due[h.seq] = time.monotonic() + self.time_scale * float(wall if wall == wall else 0.0)
        return h

    def wait(self, timeout: Optional[float] = None) -> Optional[Result]:
        if not self._inflight:
            return None
        seq = min(self._due, key=lambda s: (self._due[s], s))
        delay = self._due[seq] - time.monotonic()
        if delay > 0:
            if timeout is not None and timeout < delay:
                time.sleep(max(timeout, 0.0))
                return None
            time.sleep(delay)
        h = self._inflight.pop(seq)
        self._due.pop(seq)
        m = measurement_from_row(self.rows[h.config.key])
        m.started_at = Measurement(config=h.config).started_at  # when it was "run" in this replay
        return Result(h, m)

    def close(self) -> None:
        self._inflight.clear()
        self._due.clear()


#: ``--executor`` name -> "module:Class"
EXECUTORS: dict[str, str] = {
    "local": "experiments.executors:LocalExecutor",
    "ray": "experiments.ray_executor:RayExecutor",
}


def make_executor(name: str, **kw: Any) -> Executor:
    """An executor by its CLI name (``local`` or ``ray``); keyword arguments go to its constructor."""
    import importlib

    target = EXECUTORS.get(name)
    if target is None:
        raise InvalidValueError("executor", name, ", ".join(EXECUTORS))
    module, cls = target.split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise NotAvailableError(f"executor '{name}' is not available: {e}") from None
    return getattr(mod, cls)(**kw)
