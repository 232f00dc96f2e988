"""Who runs an evaluation: the local adapters (isolated child process), a replay oracle, or Ray.

The optimiser only needs ``executor.run(config) -> Measurement``. ``LocalExecutor`` is the real
thing: the adapter for the configuration's platform and runtime measures it in a child process
(:func:`hardware.isolation.run_isolated`), so a crash or out-of-memory comes back as a failed
measurement instead of killing the loop. ``ReplayExecutor`` answers from a measurements frame
(the shipped dataset as an oracle) for benchmarks of the optimiser itself. ``executor="ray"``
uses the Ray executor of :mod:`experiments` when that module provides one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from engine.config import Config
from engine.errors import InvalidValueError, NotAvailableError
from engine.records import LatencyStats, Measurement

if TYPE_CHECKING:
    import pandas as pd

EXECUTORS: tuple[str, ...] = ("local", "ray")


@runtime_checkable
class Executor(Protocol):
    """Runs one configuration; never raises for the benchmark's own failures (status says)."""

    def check(self, configs: Sequence[Config]) -> list[Config]:
        """The configurations this executor can run (called once, before anything runs)."""
        ...

    def run(self, config: Config) -> Measurement:
        ...


@dataclass
class LocalExecutor:
    """Benchmarks through the hardware adapters on this machine, one isolated child per run.

    ``iterations``/``min_time_s`` are small by default: an optimiser needs a good-enough median
    per configuration, and every second spent measuring is a second not spent exploring.
    """

    iterations: int = 10
    warmup: int = 2
    min_time_s: float = 0.5
    max_time_s: float = 10.0
    time_limit_s: float = 600.0
    memory_limit_mib: Optional[float] = None

    def adapter_for(self, config: Config) -> Any:
        from engine.catalog import resolve_hardware
        from engine.optimize.spec import adapter_platform
        from hardware.registry import resolve

        return resolve(adapter_platform(resolve_hardware(config.hardware).kind), config.runtime)

    def check(self, configs: Sequence[Config]) -> list[Config]:
        """Keep configurations whose adapter is installed and measures exactly that hardware id."""
        ok: list[Config] = []
        reasons: dict[tuple[str, str], str] = {}
        verdict: dict[tuple[str, str], bool] = {}
        for c in configs:
            key = (c.hardware, c.runtime)
            if key not in verdict:
                try:
                    adapter = self.adapter_for(c)
                    avail, why = adapter.available()
                    if avail and adapter.hardware_id() != c.hardware:
                        avail, why = False, (f"adapter {adapter.name} measures {adapter.hardware_id()}, "
                                             f"not {c.hardware}")
                except Exception as exc:  # noqa: BLE001 - becomes the one-line reason below
                    avail, why = False, str(exc)
                verdict[key] = bool(avail)
                if not avail:
                    reasons[key] = why
            if verdict[key]:
                ok.append(c)
        if not ok:
            hw, rt = next(iter(reasons))
            raise NotAvailableError(f"no configuration of the space can be benchmarked here: {hw} with {rt}: "
                                    f"{reasons[(hw, rt)]}; use online=False (posterior only) or another space")
        self.skipped = reasons
        return ok

    def run(self, config: Config) -> Measurement:
        from hardware.base import BenchmarkSpec

        adapter = self.adapter_for(config)
        spec = BenchmarkSpec(config, iterations=self.iterations, warmup=self.warmup, min_time_s=self.min_time_s,
                             max_time_s=self.max_time_s, time_limit_s=self.time_limit_s,
                             memory_limit_mib=self.memory_limit_mib, isolate=True)
        return adapter.run(spec)


class ReplayExecutor:
    """Answers from recorded measurements: the shipped dataset as an oracle.

    A configuration measured several times returns one of its runs at random (seeded), so the
    optimiser sees the real run-to-run noise. Unrecorded configurations are not in the space:
    :meth:`check` drops them.
    """

    def __init__(self, frame: "pd.DataFrame", seed: int = 0) -> None:
        from engine.models.features import configs_from_frame

        df = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
        df = df[df["latency_median_ms"].notna()].reset_index(drop=True)
        self.rows: dict[str, list[int]] = {}
        for i, c in enumerate(configs_from_frame(df)):
            self.rows.setdefault(c.key, []).append(i)
        self.frame = df
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def check(self, configs: Sequence[Config]) -> list[Config]:
        return [c for c in configs if c.key in self.rows]

    def run(self, config: Config) -> Measurement:
        self.calls += 1
        idx = self.rows.get(config.key)
        if not idx:
            return Measurement.failed(config, "failed", "not in the replay dataset")
        r = self.frame.iloc[int(self.rng.choice(idx))]
        return measurement_from_row(config, r)


def measurement_from_row(config: Config, r: Any) -> Measurement:
    """A Measurement from one row of ``Store.measurements()`` (status ok)."""

    def num(name: str) -> Optional[float]:
        v = r.get(name) if hasattr(r, "get") else None
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None
        return f if np.isfinite(f) else None

    med = float(r["latency_median_ms"])
    stats = LatencyStats(mean_ms=num("latency_mean_ms") or med, median_ms=med, min_ms=num("latency_min_ms") or med,
                         max_ms=num("latency_max_ms") or med, p90_ms=num("latency_p90_ms") or med,
                         p99_ms=num("latency_p99_ms") or med, std_ms=num("latency_std_ms") or 0.0)
    return Measurement(config=config, status="ok", latency=stats, throughput=config.batch_size / med * 1e3,
                       memory_peak_mib=num("memory_peak_mib"), iterations=int(num("iterations") or 0),
                       wall_time_s=num("wall_time_s"), adapter="replay", source="shipped")


def make_executor(executor: Union[str, Executor, None], iterations: Optional[int] = None) -> Executor:
    """``"local"`` / ``"ray"`` / an object with ``check`` and ``run`` -> an executor."""
    if executor is None or executor == "local":
        return LocalExecutor(iterations=iterations or 10)
    if isinstance(executor, str):
        if executor == "ray":
            return _ray_executor(iterations)
        raise InvalidValueError("executor", executor, ", ".join(EXECUTORS) + " or an Executor object")
    if not hasattr(executor, "run"):
        raise InvalidValueError("executor", type(executor).__name__, "'local', 'ray' or an object with run(config)")
    if not hasattr(executor, "check"):
        return _CheckAll(executor)
    return executor


@dataclass
class _CheckAll:
    """Wraps an object with only ``run``: every configuration is assumed runnable."""

    inner: Any

    def check(self, configs: Sequence[Config]) -> list[Config]:
        return list(configs)

    def run(self, config: Config) -> Measurement:
        return self.inner.run(config)


def _ray_executor(iterations: Optional[int]) -> Executor:
    """The Ray executor of :mod:`experiments.ray_executor` (issue 7): it already offers
    ``check(configs)`` and a blocking ``run(config) -> Measurement``; Ray's own errors and the
    install hint come from there (RAY_ADDRESS or a local cluster)."""
    try:
        from experiments.ray_executor import RayExecutor
    except ImportError as exc:
        raise NotAvailableError(f"executor 'ray' is not available here ({exc}); use executor='local'") from None
    return RayExecutor(iterations=iterations or 10)
