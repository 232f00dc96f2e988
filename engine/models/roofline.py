"""The roofline: perfcast's physical prior, and the "physics only" baseline predictor.

    latency ≈ overhead + max(FLOPs / (eff_c · peak at precision), bytes / (eff_m · bandwidth))
    memory  ≈ mem_overhead + weights at precision · (1 inference, 4 training: weights, grads,
              two Adam moments) + live activations and KV cache (the descriptor's working set,
              not the activation traffic, which counts every layer's output once), or the weights
              held while the model is built if more (``build_bytes``: int8 is quantized from fp32)

On a CPU the peak is scaled by threads used / cores (a 1-thread run cannot use both cores).

Role 1 — prior mean. The GP models log(latency) − log(roofline); the hierarchical model puts the
same equation inside its likelihood with pooled efficiencies. Learned models correct it, they
never replace it.

Role 2 — standalone baseline. As a predictor it is deliberately simple: ``fit`` calibrates only
four global scalars (compute efficiency, memory efficiency, fixed overhead, and the p90/median
ratio) by robust least squares on log latency, and three memory scalars (weight factor,
activation factor with a log-normal prior around 1, runtime overhead), the weight factor and the
overhead then scaled per runtime (:data:`RUNTIME_PRIOR_SD`). Its uncertainty is a FIXED log-normal spread — not learned
— of ``SIGMA_LATENCY`` (≈ ×/÷ 2.3 at 90%) for latency and ``SIGMA_MEMORY`` for memory: what a
spec-sheet calculation is typically off by across devices and software stacks. Evaluation shows
how (in)accurate that honest-but-crude answer is next to the learned models.
"""
from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from engine.config import Config
from engine.models.assemble import lognormal_set, memory_floor_mib
from engine.models.base import PredictionSet
from engine.models.features import FeatureFrame, Featurizer, default_featurizer, uses_catalog, with_legacy_builds

if TYPE_CHECKING:
    import pandas as pd

#: Fixed log-scale spreads of the standalone roofline (documented, not fitted).
SIGMA_LATENCY = 0.5
SIGMA_P90 = 0.5
SIGMA_MEMORY = 0.35

#: Multiplier on weight bytes for training: weights + gradients + two Adam moments.
TRAINING_WEIGHT_FACTOR = 4.0
#: Prior sd of log(activation_factor) in the memory fit, around 1 (the counted working set). On the
#: shipped runs it moves in-sample memory APE by 0.2 points (21.3% against 21.5% unregularised, with
#: the factor at 0.52 instead of 0.06; session 22, /tmp/s22/memfit.py).
ACTIVATION_PRIOR_SD = 0.5
#: Prior sd of the log of a runtime's multipliers of the memory weight factor and overhead. One
#: weight factor for every runtime left OpenVINO's int8 -0.8 and torch's fp32 +0.17 in log on the
#: shipped CPU, and the GP, whose prior mean this is, carried the compromise to devices it never
#: saw. Per runtime (torch 1.15 / 0.66, onnxruntime 1.34 / 0.84, openvino 1.88 / 1.33 on the
#: shipped runs), fitted on the shipped EPYC and scored on 102 runs built today on a Xeon
#: (bench/memory_builds.py --store, 2026-12-07): GP memory median APE 10.9% -> 5.2% (50/90%
#: coverage 58/98 -> 88/99%), roofline 25.7% -> 6.5%; leaving each model out, GP 6.4% -> 5.6%
#: (90% coverage 89 -> 90%), roofline 21.3% -> 16.0%; ten random splits, GP 1.10% -> 1.19% (90%
#: coverage 90.4 -> 88.6%); with the counted working set and the GP's base share that followed,
#: 5.2%, 6.9%, 7.7%, 16.5% and 1.14% (docs/evaluation.md, "Session 30"). The global scalars are fitted first and unchanged: the
#: hierarchical model centres its priors on them.
RUNTIME_PRIOR_SD = 0.5


@dataclass
class RooflineParams:
    """Global calibration of the roofline (defaults: typical framework efficiencies)."""

    eff_compute: float = 0.3
    eff_memory: float = 0.6
    overhead_ms: float = 0.05
    p90_ratio: float = 1.08
    weight_factor: float = 1.0
    activation_factor: float = 1.0
    mem_overhead_mib: float = 300.0
    #: Per runtime, multipliers of ``weight_factor`` and ``mem_overhead_mib`` (1 where absent).
    runtime_weight: dict = field(default_factory=dict)
    runtime_overhead: dict = field(default_factory=dict)


def roofline_time_ms(ff: FeatureFrame, p: RooflineParams) -> np.ndarray:
    """The compute/memory part of the roofline: max(FLOPs / (eff_c · peak), bytes / (eff_m · bw))."""
    return np.maximum(ff.phys["t_compute_ms"] / p.eff_compute, ff.phys["t_memory_ms"] / p.eff_memory)


def roofline_latency_ms(ff: FeatureFrame, p: RooflineParams) -> np.ndarray:
    return p.overhead_ms + roofline_time_ms(ff, p)


def _per_runtime(ff: FeatureFrame, table: dict) -> np.ndarray:
    return np.array([table.get(r, 1.0) for r in ff.cats["runtime"]], float) if table else np.ones(len(ff))


def peak_mib(c0: np.ndarray, cw: np.ndarray, ca: float, w: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The memory equation (module docstring), in MiB: overhead ``c0`` plus the larger of the build
    ``b`` and the run (weights ``w``, already ×4 in training, and live activations ``a``), the
    weights scaled by ``cw`` and the activations by ``ca``. One equation for the prediction, the
    fits and :func:`memory_base_share`."""
    return c0 + np.maximum(cw * b, cw * w + ca * a)


def _memory_inputs(ff: FeatureFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights held by the run, live activations, build) in MiB; training holds the weights, their
    gradients and AdamW's two moments (``TRAINING_WEIGHT_FACTOR``)."""
    train = (ff.cats["mode"] == "training").astype(float)
    mib = 1.0 / 2**20
    w = ff.phys["weight_bytes"] * (1.0 + (TRAINING_WEIGHT_FACTOR - 1.0) * train) * mib
    return w, ff.phys["live_bytes"] * mib, ff.phys["build_bytes"] * mib


def _factors(ff: FeatureFrame, p: RooflineParams) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the overhead and the weight factor, scaled by the row's runtime."""
    return (p.mem_overhead_mib * _per_runtime(ff, getattr(p, "runtime_overhead", {})),
            p.weight_factor * _per_runtime(ff, getattr(p, "runtime_weight", {})))


def roofline_memory_mib(ff: FeatureFrame, p: RooflineParams) -> np.ndarray:
    c0, cw = _factors(ff, p)
    return peak_mib(c0, cw, p.activation_factor, *_memory_inputs(ff))


def memory_base_share(ff: FeatureFrame, p: RooflineParams, floor: float = 0.1) -> np.ndarray:
    """The share of :func:`roofline_memory_mib` that is not the run's live activations: the
    overhead and the weights (or the build). A learned correction of the memory prior that was
    fitted where the process and the weights are the peak applies to that part, not to a large
    batch's activations (the GP's memory output, :data:`engine.models.gp.MEMORY_ACTIVATION_SD`).
    Bounded below by ``floor`` (a correction is never ignored outright)."""
    c0, cw = _factors(ff, p)
    w, a, b = _memory_inputs(ff)
    return np.clip(peak_mib(c0, cw, 0.0, w, a, b) / peak_mib(c0, cw, p.activation_factor, w, a, b), floor, 1.0)


class RooflinePredictor:
    """Physics-only predictor; also the prior mean used by the GP. See the module docstring."""

    name = "roofline"
    CACHE_VERSION = 2  # 2: memory weight factor and overhead per runtime

    def __init__(self, params: Optional[RooflineParams] = None, featurizer: Optional[Featurizer] = None) -> None:
        self.params = params or RooflineParams()
        self.featurizer = featurizer
        self.n_train = 0

    # -- pickling: the featuriser holds callables and caches; the default is rebuilt on load
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["featurizer"] = None
        return state

    def _ff(self, configs: Sequence[Config] | "pd.DataFrame") -> FeatureFrame:
        return (self.featurizer or default_featurizer())(configs)

    # -- the physics ------------------------------------------------------------------------------
    def latency_ms(self, ff: FeatureFrame) -> np.ndarray:
        return roofline_latency_ms(ff, self.params)

    def memory_mib(self, ff: FeatureFrame) -> np.ndarray:
        return roofline_memory_mib(ff, self.params)

    # -- Predictor protocol -------------------------------------------------------------------------
    def fit(self, data: "pd.DataFrame") -> "RooflinePredictor":
        """Calibrate the global scalars by robust (soft-L1) least squares on the log scale."""
        from scipy.optimize import least_squares

        from engine.models.targets import targets_from_measurements

        tg = targets_from_measurements(data, catalog_models_only=uses_catalog(self.featurizer))
        ff = with_legacy_builds(self._ff(tg.frame), tg.legacy_build)
        t_c, t_m = ff.phys["t_compute_ms"], ff.phys["t_memory_ms"]
        y = tg.log_latency

        def resid(z: np.ndarray) -> np.ndarray:
            pred = np.exp(z[2]) + np.maximum(t_c * np.exp(-z[0]), t_m * np.exp(-z[1]))
            return np.log(pred) - y

        p = self.params
        z0 = np.log([p.eff_compute, p.eff_memory, p.overhead_ms])
        # efficiencies in [1e-4, 3] (above 1 only if a spec-sheet peak is understated)
        sol = least_squares(resid, z0, loss="soft_l1", f_scale=0.2,
                            bounds=(np.log([1e-4, 1e-4, 1e-4]), np.log([3.0, 3.0, 1e5])))
        p.eff_compute, p.eff_memory, p.overhead_ms = (float(v) for v in np.exp(sol.x))
        p.p90_ratio = float(np.exp(np.median(tg.log_p90 - tg.log_latency)))

        has = tg.has_memory
        if has.sum() >= 3:
            w, a, b = (v[has] for v in _memory_inputs(ff))
            ym = tg.log_memory[has]

            def mresid(z: np.ndarray) -> np.ndarray:
                r = np.log(peak_mib(np.exp(z[2]), np.exp(z[0]), np.exp(z[1]), w, a, b)) - ym
                # the activation factor's prior, log N(0, ACTIVATION_PRIOR_SD²), as one more residual:
                # small-batch runs barely see activations, and fitted freely the factor fell to its
                # bound (0.001), so P(fits) ignored a 36 GiB working set at batch 64 × 1024 tokens
                return np.append(r, z[1] / ACTIVATION_PRIOR_SD * math.sqrt(0.2))

            z0m = np.log([p.weight_factor, p.activation_factor, p.mem_overhead_mib])
            solm = least_squares(mresid, z0m, loss="soft_l1", f_scale=0.2,
                                 bounds=(np.log([0.05, 1e-3, 1.0]), np.log([20.0, 50.0, 1e6])))
            p.weight_factor, p.activation_factor, p.mem_overhead_mib = (float(v) for v in np.exp(solm.x))
            self._fit_runtimes(ff.cats["runtime"][has], w, a, b, ym)
        self.n_train = len(tg)
        return self

    def _fit_runtimes(self, runtime: np.ndarray, w: np.ndarray, a: np.ndarray, b: np.ndarray, ym: np.ndarray) -> None:
        """Per runtime, the weight factor's and the overhead's multipliers, shrunk towards 1 (a runtime
        with a few runs stays near the global fit; one the fit never saw gets 1)."""
        from scipy.optimize import least_squares

        p = self.params
        names = sorted(set(runtime))
        idx = np.array([names.index(r) for r in runtime])
        k = len(names)

        def resid(z: np.ndarray) -> np.ndarray:
            cw = p.weight_factor * np.exp(z[:k])[idx]
            c0 = p.mem_overhead_mib * np.exp(z[k:])[idx]
            r = np.log(peak_mib(c0, cw, p.activation_factor, w, a, b)) - ym
            return np.append(r, z / RUNTIME_PRIOR_SD * math.sqrt(0.2))

        sol = least_squares(resid, np.zeros(2 * k), loss="soft_l1", f_scale=0.2)
        p.runtime_weight = {r: float(np.exp(sol.x[i])) for i, r in enumerate(names)}
        p.runtime_overhead = {r: float(np.exp(sol.x[k + i])) for i, r in enumerate(names)}

    def predict(self, configs: Sequence[Config]) -> PredictionSet:
        ff = self._ff(configs)
        return self.predict_features(ff, configs)

    def predict_features(self, ff: FeatureFrame, configs: Sequence[Config]) -> PredictionSet:
        n = len(ff)
        mu = np.log(self.latency_ms(ff))
        mem = np.log(self.memory_mib(ff))
        return lognormal_set(configs, self.name, ff.phys["batch"],
                             latency=(mu, np.full(n, SIGMA_LATENCY)),
                             p90=(mu + np.log(self.params.p90_ratio), np.full(n, SIGMA_P90)),
                             memory=(mem, np.full(n, SIGMA_MEMORY)), memory_floor=memory_floor_mib(ff.phys))

    def sample(self, configs: Sequence[Config], n: int, metric: str = "latency_ms", seed: int = 0) -> np.ndarray:
        """Independent log-normal draws (the roofline has no model of correlated errors)."""
        ps = self.predict(configs)
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, len(configs)))
        draws = np.exp(ps.mu_log[metric][None, :] + ps.sigma_log[metric][None, :] * z)
        if metric in ps.floor:  # memory: never below what must be resident
            draws = np.maximum(draws, ps.floor[metric][None, :])
        other = ps.at_least.get(metric)
        if other is not None:  # p90: never below the median, drawn from the same z (comonotone, as predict)
            draws = np.maximum(draws, np.exp(ps.mu_log[other][None, :] + ps.sigma_log[other][None, :] * z))
        return draws
