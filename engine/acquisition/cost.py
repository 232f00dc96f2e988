"""What a benchmark will cost, in seconds, before it is run.

Information per benchmark-second needs the denominator: the predicted wall time of a run,

    cost = setup + (warmup + n_timed) · latency

* ``latency`` is the posterior mean of the configuration's latency (seconds per iteration).
* ``n_timed`` follows the measuring protocol of :class:`hardware.base.BenchmarkSpec`: timed
  iterations go on until both ``iterations`` and ``min_time_s`` are reached, and stop at
  ``max_time_s`` or ``max_iterations``.
* ``setup`` is everything else a run pays: child-process start, building the model, ONNX export
  for ONNX Runtime/OpenVINO, the first (load) run, decode timing for generators. It is learned
  from the store: for every stored run with a wall time, ``setup = wall_time_s − (warmup +
  iterations) · median latency``; the prediction for a configuration is the median over the most
  specific group that has runs (the same device first: model+runtime+precision+mode, model+runtime,
  runtime; then the same groups across devices, then everything), else :data:`DEFAULT_SETUP_S`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from engine.config import Config

if TYPE_CHECKING:
    import pandas as pd

    from engine.models.base import PredictionSet

#: Setup seconds assumed when the store has no run with a wall time (a small model on a CPU).
DEFAULT_SETUP_S = 8.0
#: The groups tried in order, most specific first.
#: The device's own runs come first: setup (a child's start, an ONNX export) runs at the machine's
#: speed, and the shipped runs of another CPU predicted a third to a seventh of what a new machine's
#: runs took (audit S); with no run of the device, the groups across devices as before.
SETUP_GROUPS: tuple[tuple[str, ...], ...] = (("hardware", "model", "runtime", "precision", "mode"),
                                             ("hardware", "model", "runtime"), ("hardware", "runtime"),
                                             ("model", "runtime", "precision", "mode"), ("model", "runtime"),
                                             ("runtime",), ())


@dataclass(frozen=True)
class MeasuringPlan:
    """The measuring protocol's knobs that decide how long the timed part takes."""

    iterations: int = 10
    warmup: int = 2
    min_time_s: float = 1.0
    max_time_s: float = 30.0
    max_iterations: int = 1000

    def timed_seconds(self, latency_s: np.ndarray) -> np.ndarray:
        """Warm-up plus timed iterations, as :func:`hardware.protocol.time_iterations` runs them."""
        lat = np.maximum(np.asarray(latency_s, dtype=float), 1e-6)
        n = np.maximum(self.iterations, np.ceil(self.min_time_s / lat))
        n = np.minimum(n, self.max_iterations)
        timed = np.minimum(n * lat, np.maximum(self.max_time_s, lat))  # at least one iteration
        return self.warmup * lat + timed


@dataclass
class SetupModel:
    """Median setup seconds per group of similar runs (see the module docstring)."""

    tables: list[tuple[tuple[str, ...], dict[tuple, float]]] = field(default_factory=list)
    default_s: float = DEFAULT_SETUP_S
    n_runs: int = 0

    @classmethod
    def from_runs(cls, runs: Optional["pd.DataFrame"], default_s: float = DEFAULT_SETUP_S) -> "SetupModel":
        """``runs``: rows of ``Store.measurements()`` (ok runs with wall_time_s, latency, iterations)."""
        if runs is None or len(runs) == 0 or "wall_time_s" not in runs:
            return cls(default_s=default_s)
        df = runs[runs["wall_time_s"].notna() & runs["latency_median_ms"].notna()].copy()
        if len(df) == 0:
            return cls(default_s=default_s)
        its = df["iterations"].fillna(10).astype(float) if "iterations" in df else 10.0
        wu = df["warmup"].fillna(2).astype(float) if "warmup" in df else 2.0
        df["setup_s"] = (df["wall_time_s"] - (its + wu) * df["latency_median_ms"] / 1000.0).clip(lower=0.0)
        tables = []
        for cols in SETUP_GROUPS:
            if not set(cols) <= set(df.columns):
                continue
            if cols:
                med = df.groupby(list(cols))["setup_s"].median()
                tables.append((cols, {(k if isinstance(k, tuple) else (k,)): float(v) for k, v in med.items()}))
            else:
                tables.append((cols, {(): float(df["setup_s"].median())}))
        return cls(tables=tables, default_s=default_s, n_runs=len(df))

    def predict(self, configs: Sequence[Config]) -> np.ndarray:
        out = np.full(len(configs), self.default_s)
        for i, c in enumerate(configs):
            for cols, table in self.tables:
                key = tuple(getattr(c, k) for k in cols)
                if key in table:
                    out[i] = table[key]
                    break
        return out


@dataclass
class CostModel:
    """Predicted wall seconds of benchmarking each configuration (see the module docstring)."""

    plan: MeasuringPlan = field(default_factory=MeasuringPlan)
    setup: SetupModel = field(default_factory=SetupModel)

    @classmethod
    def from_store(cls, store: Any, plan: Optional[MeasuringPlan] = None) -> "CostModel":
        return cls(plan or MeasuringPlan(), SetupModel.from_runs(store.measurements(status="ok")))

    def predict(self, configs: Sequence[Config], predictions: "PredictionSet") -> np.ndarray:
        """Seconds per configuration, from the posterior mean latency (aligned with ``configs``)."""
        if "latency_ms" in predictions.samples:
            lat_ms = predictions.samples["latency_ms"].mean(axis=0)
        else:
            lat_ms = np.exp(predictions.mu_log["latency_ms"] + 0.5 * predictions.sigma_log["latency_ms"] ** 2)
        return self.setup.predict(configs) + self.plan.timed_seconds(lat_ms / 1000.0)
