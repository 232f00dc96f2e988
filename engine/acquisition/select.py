"""Choose the next q benchmarks: one entry point for every acquisition, one typed answer.

``select(name, predictor, candidates, q, ...)`` returns a :class:`Selection` whose items carry,
besides the configuration, the numbers a person (and ``perfcast suggest``'s JSON) needs:

* ``acquisition_value`` — what the acquisition maximised at that greedy step: the information
  the item adds given the pending configurations and the items picked before it, per predicted
  benchmark-second when cost-aware (``eig``: integrated variance reduction, log units²; ``bald``:
  nats; ``max-variance``: predictive variance of the log metric; ``random``: 0);
* ``information_gain`` — the same yardstick for every acquisition: the mutual information in
  nats between the item's new measurement and the latent surface at that configuration, given
  the pending configurations and the earlier items of the batch, ½·log(1 + Var[f|·]/σ²);
* ``uncertainty`` — the relative width of the 90% predictive interval of the metric,
  (q95 − q05) / median;
* ``diversity`` — 1 − the largest |posterior correlation| of the item's latent value with any
  other item of the batch or any pending configuration (1 = independent of the rest, 0 = a copy);
* ``cost_s`` — predicted benchmark seconds (see :mod:`engine.acquisition.cost`).

Acquisitions (see :mod:`engine.acquisition.functions` for the maths):

=============  ==================================================================================
eig            GP: integrated posterior variance reduction over ``mc_points`` pool points
               (BoTorch qNIPV in closed form), batches by ``optimize_acqf_discrete``, cost-aware.
bald           hierarchical model (latent posterior draws) or GP: mutual information with the
               parameters, greedy-joint batches by ``optimize_acqf_discrete``, cost-aware.
max-variance   the old system's uncertainty sampling: the q largest predictive variances.
random         q configurations uniformly at random (seeded).
=============  ==================================================================================
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from engine.config import Config
from engine.errors import InvalidValueError, NotAvailableError

ACQUISITIONS: dict[str, str] = {
    "eig": "expected information gain (GP integrated variance reduction), per benchmark-second",
    "bald": "mutual information with the model parameters (hierarchical draws or GP), per benchmark-second",
    "max-variance": "largest predictive variance first (the old system's uncertainty sampling)",
    "random": "uniformly random (baseline)",
}
#: acquisition metric -> PredictionSet metric
PREDICTION_METRIC: dict[str, str] = {"latency": "latency_ms", "latency_ms": "latency_ms", "throughput": "throughput",
                                     "memory": "memory_mib", "memory_mib": "memory_mib",
                                     "latency_p90_ms": "latency_p90_ms"}


def check_acquisition(name: str) -> str:
    if name not in ACQUISITIONS:
        raise InvalidValueError("acquisition", name, ", ".join(ACQUISITIONS))
    return name


def check_cost_exponent(value: float) -> float:
    """The exponent of information / cost**α: 0 ignores cost, 1 is information per benchmark-second."""
    if not 0.0 <= value <= 1.0:
        raise InvalidValueError("cost_exponent", value, "a number in [0, 1]")
    return float(value)


@dataclass
class SelectedItem:
    config: Config
    pool_index: int
    acquisition_value: float
    information_gain: Optional[float]
    uncertainty: float
    sd_log: float
    diversity: Optional[float]
    cost_s: Optional[float]
    predicted_median: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)  # recurses: the config is already a plain mapping
        d["config_key"] = self.config.key
        return d


@dataclass
class Selection:
    """The chosen batch, in the order the greedy construction picked it."""

    items: list[SelectedItem]
    acquisition: str
    metric: str
    pool_size: int
    n_pending: int
    mc_points: int
    cost_aware: bool
    elapsed_s: float
    integrated_variance: Optional[float] = None  # IPV of the pool before the batch (eig only)
    cost_exponent: Optional[float] = None  # information / cost**this, when cost-aware
    notes: list[str] = field(default_factory=list)

    @property
    def configs(self) -> list[Config]:
        return [it.config for it in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "items"}
        d["items"] = [it.to_dict() for it in self.items]
        return d


def subset_predictions(ps: Any, index: Sequence[int]) -> Any:
    """The rows ``index`` of a PredictionSet (same predictor, same metrics)."""
    from engine.models.base import PredictionSet

    idx = np.asarray(index, dtype=int)
    return PredictionSet(configs=[ps.configs[i] for i in idx], predictor=ps.predictor,
                         mu_log={k: v[idx] for k, v in ps.mu_log.items()},
                         sigma_log={k: v[idx] for k, v in ps.sigma_log.items()},
                         samples={k: v[:, idx] for k, v in ps.samples.items()},
                         floor={k: v[idx] for k, v in ps.floor.items()}, at_least=dict(ps.at_least))


# -- covariance sources -----------------------------------------------------------------------------
def has_latent_draws(predictor: Any) -> bool:
    return callable(getattr(predictor, "sample_latent", None))


def latent_draws(predictor: Any, configs: Sequence[Config], metric: str, n: int, seed: int) -> tuple[np.ndarray, float]:
    """(S × n) joint draws of E[log y | θ] and the noise variance of a new run (log units).

    The hierarchical model exposes them as ``sample_latent(configs, n, metric, seed)`` (natural
    units, like ``sample``) and ``noise_var_log(metric)``; a predictor without them cannot do BALD.
    """
    if not has_latent_draws(predictor):
        raise NotAvailableError(f"acquisition 'bald' needs posterior draws of the latent surface; predictor "
                                f"'{getattr(predictor, 'name', predictor)}' has none (use the hierarchical model or the gp)")
    draws = np.asarray(predictor.sample_latent(list(configs), n=n, metric=metric, seed=seed), dtype=float)
    noise = predictor.noise_var_log(metric) if callable(getattr(predictor, "noise_var_log", None)) else None
    if noise is None:
        raise NotAvailableError("acquisition 'bald' needs the predictor's noise variance (noise_var_log)")
    return np.log(draws), float(noise)


def _source(acquisition: str, predictor: Any, table: list[Config], mc_index: Any, metric: str, seed: int,
            n_draws: int) -> Any:
    """The covariance source an acquisition works on (None when the predictor offers none)."""
    import torch

    from engine.acquisition.covariance import DrawsCovariance, GPCovariance
    from engine.acquisition.gp_seam import gp_surface, is_gp

    mc = torch.as_tensor(np.asarray(mc_index), dtype=torch.long)
    src_metric = "latency_ms" if metric == "throughput" else metric
    if acquisition == "bald" and has_latent_draws(predictor):
        draws, noise = latent_draws(predictor, table, src_metric, n_draws, seed)
        return DrawsCovariance(draws, mc, noise)
    if is_gp(predictor):
        s = gp_surface(predictor, table, src_metric)
        return GPCovariance(s.model, s.X, mc, s.noise_var)
    if has_latent_draws(predictor):
        draws, noise = latent_draws(predictor, table, src_metric, n_draws, seed)
        return DrawsCovariance(draws, mc, noise)
    if acquisition in ("eig", "bald"):
        raise NotAvailableError(f"acquisition '{acquisition}' needs a gp{' or hierarchical' if acquisition == 'bald' else ''} "
                                f"predictor; '{getattr(predictor, 'name', predictor)}' has no posterior covariance")
    return None


# -- batch diagnostics --------------------------------------------------------------------------------
def batch_diagnostics(sigma: np.ndarray, noise_var: float, n_sel: int) -> tuple[list[float], list[float]]:
    """Per selected item: MI in nats given the pending rows and earlier items, and diversity.

    ``sigma`` is the latent covariance of [selected items in order, then pending rows].
    """
    m = sigma.shape[0]
    info, div = [], []
    sd = np.sqrt(np.maximum(np.diag(sigma), 1e-300))
    corr = sigma / np.outer(sd, sd)
    pend = list(range(n_sel, m))
    for j in range(n_sel):
        cond = pend + list(range(j))
        v = sigma[j, j]
        if cond:
            A = sigma[np.ix_(cond, cond)] + noise_var * np.eye(len(cond))
            c = sigma[j, cond]
            v = v - c @ np.linalg.solve(A, c)
        info.append(float(0.5 * np.log1p(max(v, 0.0) / noise_var)))
        others = [k for k in range(m) if k != j]
        div.append(float(1.0 - np.max(np.abs(corr[j, others]))) if others else 1.0)
    return info, div


def batch_diversity(predictor: Any, configs: Sequence[Config], pending: Sequence[Config] = (),
                    metric: str = "latency_ms", seed: int = 0, n_draws: int = 256) -> Optional[list[float]]:
    """:func:`batch_diagnostics`' diversity of a batch assembled from several selections (a new
    device's random start, then eig): each selection saw only the items before it, so an early
    item's "1 − largest correlation with any other item" missed the later ones (audit S: 0.33
    reported, 0.08 against the whole batch). None when the predictor has no covariance."""
    try:
        src = _source("max-variance", predictor, [*configs, *pending], np.arange(len(configs)),
                      PREDICTION_METRIC.get(metric, metric), seed, n_draws)
        if src is None:
            return None
        from engine.acquisition.covariance import submatrix

        return batch_diagnostics(submatrix(src, list(range(len(configs) + len(pending)))), src.noise_var,
                                 len(configs))[1]
    except NotAvailableError:
        return None


# -- the entry point -------------------------------------------------------------------------------
def calibration_weights(src: Any, sd_log: np.ndarray, mc_index: np.ndarray, floor_var: float = 0.0,
                        outside_var: Optional[np.ndarray] = None) -> np.ndarray:
    """s_m² per integration point m: the reported predictive variance (calibrated, per stratum)
    over the covariance source's own (latent + new-run noise + ``floor_var``, the GP's roughness
    τ²: reported, but no benchmark reduces it, so it is the multiplier's, not the weight's).

    The calibration widens the intervals where leave-one-out errors are larger than the model
    believes (int8 and training runs on the shipped data); weighting the integral with it makes
    the acquisition reduce the uncertainty that is reported, not the uncalibrated one.
    ``outside_var`` (per candidate) is reported variance the source does not model at all (the GP
    memory's activation-factor spread, :meth:`engine.models.gp.GPPredictor.irreducible_var`): it is
    taken out of the reported variance first, so it weighs nothing (without it, a large batch's
    memory, whose correction the GP scales by its base share, weighed as if all of it were reducible)."""
    m = np.asarray(mc_index, dtype=int)
    own = src.variance().numpy()[m] + float(src.noise_var) + float(floor_var)
    reported = np.asarray(sd_log, dtype=float)[m] ** 2
    if outside_var is not None:
        reported = np.maximum(reported - np.asarray(outside_var, dtype=float)[m], 0.0)
    w = reported / np.maximum(own, 1e-300)
    return np.where(np.isfinite(w), w, 1.0)


def select(acquisition: str, predictor: Any, candidates: Sequence[Config], q: int, *, metric: str = "latency_ms",
           pending: Sequence[Config] = (), cost: Optional[np.ndarray] = None, predictions: Any = None,
           mc_points: int = 128, seed: int = 0, n_draws: int = 256, cost_exponent: float = 1.0) -> Selection:
    """Pick ``q`` configurations of ``candidates`` (see the module docstring).

    ``cost`` (seconds, aligned with ``candidates``) makes ``eig``/``bald`` cost-aware: they
    maximise information / cost**``cost_exponent`` (1: per benchmark-second; a loop lowers the
    exponent as its budget is spent, see :func:`cooled_cost_exponent`);
    ``predictions`` (aligned with ``candidates``) saves a predict call; ``pending`` are
    configurations being benchmarked right now (never re-picked, conditioned on).
    """
    import torch

    check_acquisition(acquisition)
    if q < 1:
        raise InvalidValueError("q", q, "an integer >= 1")
    check_cost_exponent(cost_exponent)
    if not 64 <= mc_points <= 4096 and acquisition == "eig":
        raise InvalidValueError("mc_points", mc_points, "an integer in [64, 4096]")
    pmetric = PREDICTION_METRIC.get(metric)
    if pmetric is None:
        raise InvalidValueError("metric", metric, "latency, throughput, memory")
    t0 = time.perf_counter()
    candidates = list(candidates)
    pend = list(dict.fromkeys(pending))
    pend_keys = {c.key for c in pend}
    keep = [i for i, c in enumerate(candidates) if c.key not in pend_keys]
    cand = [candidates[i] for i in keep]
    n = len(cand)
    cost_arr = None if cost is None else np.asarray(cost, dtype=float)[keep]
    if n == 0:
        return Selection([], acquisition, metric, 0, len(pend), 0, cost is not None, time.perf_counter() - t0)
    q = min(q, n)
    if predictions is None:
        predictions = predictor.predict(cand)
    elif len(keep) != len(candidates):
        predictions = subset_predictions(predictions, keep)
    qs = predictions.quantiles(pmetric, [0.05, 0.5, 0.95])
    rel_width = (qs[2] - qs[0]) / qs[1]
    if pmetric in predictions.sigma_log:
        sd_log = np.asarray(predictions.sigma_log[pmetric], dtype=float)
    else:
        sd_log = np.std(np.log(predictions.samples[pmetric]), axis=0)

    rng = np.random.default_rng(seed)
    mc_index = np.sort(rng.choice(n, size=min(mc_points, n), replace=False))
    table = cand + pend
    notes: list[str] = []
    ipv = None
    src = None
    if acquisition in ("eig", "bald"):
        from botorch.optim import optimize_acqf_discrete

        from engine.acquisition.functions import BatchBALD, IntegratedVarianceReduction
        from engine.acquisition.gp_seam import roughness_var

        src = _source(acquisition, predictor, table, mc_index, pmetric, seed, n_draws)
        cost_t = None
        if cost_arr is not None:
            cost_t = torch.ones(len(table), dtype=torch.float64)
            cost_t[:n] = torch.as_tensor(np.maximum(cost_arr, 1e-3)) ** cost_exponent
        X_pending = (torch.arange(n, len(table), dtype=torch.float64).unsqueeze(-1) if pend else None)
        acq: Any
        if acquisition == "eig":
            outside = getattr(predictor, "irreducible_var", None)
            acq = IntegratedVarianceReduction(src, cost=cost_t, X_pending=X_pending,
                                              mc_weights=calibration_weights(
                                                  src, sd_log, mc_index, roughness_var(predictor, pmetric),
                                                  outside(cand, pmetric) if outside is not None else None))
            ipv = acq.integrated_variance()
        else:
            acq = BatchBALD(src, cost=cost_t, X_pending=X_pending)
        choices = torch.arange(n, dtype=torch.float64).unsqueeze(-1)
        with torch.no_grad():
            picked, values = optimize_acqf_discrete(acq, q=q, choices=choices, max_batch_size=16384, unique=True)
        order = [int(round(float(v))) for v in picked[:, 0]]
        vals = [float(v) for v in values.reshape(-1)]
    elif acquisition == "max-variance":
        order = [int(i) for i in np.argsort(-sd_log, kind="stable")[:q]]
        vals = [float(sd_log[i] ** 2) for i in order]
    else:  # random
        order = [int(i) for i in rng.choice(n, size=q, replace=False)]
        vals = [0.0] * q

    # diagnostics on the small block [selected, pending]
    info: list[Optional[float]] = [None] * len(order)
    div: list[Optional[float]] = [None] * len(order)
    try:
        if src is None:
            src = _source(acquisition, predictor, [cand[i] for i in order] + pend, np.arange(len(order)), pmetric,
                          seed, n_draws)
            rows = list(range(len(order) + len(pend)))
        else:
            rows = order + list(range(n, len(table)))
        if src is not None:
            from engine.acquisition.covariance import submatrix

            sigma = submatrix(src, rows)
            info_f, div_f = batch_diagnostics(sigma, src.noise_var, len(order))
            info, div = list(info_f), list(div_f)
    except NotAvailableError as e:
        notes.append(str(e))
    items = [SelectedItem(config=cand[i], pool_index=keep[i], acquisition_value=vals[j], information_gain=info[j],
                          uncertainty=float(rel_width[i]), sd_log=float(sd_log[i]), diversity=div[j],
                          cost_s=None if cost_arr is None else float(cost_arr[i]), predicted_median=float(qs[1][i]))
             for j, i in enumerate(order)]
    cost_aware = cost_arr is not None and acquisition in ("eig", "bald")
    return Selection(items, acquisition, metric, n, len(pend), int(len(mc_index)), cost_aware,
                     time.perf_counter() - t0, integrated_variance=ipv, notes=notes,
                     cost_exponent=cost_exponent if cost_aware else None)


def cooled_cost_exponent(spent_fraction: Optional[float], start: float = 1.0) -> float:
    """The exponent of the cost in information / cost**α, cooled as a loop's budget is spent.

    α = start × (1 − share of the budget spent). With start = 1 this is EI-cool (Lee et al.,
    "Cost-aware Bayesian optimization", 2020). Pure information per second (α = 1 throughout) is
    myopic: it keeps buying cheap runs that teach little about the expensive part of the space and
    leaves the informative, costly corners for last — replayed on the shipped data
    (``bench/active_learning.py``) it needed more benchmarks than random. Cooling spends cheaply
    while the map is rough and lets information decide once most of the budget is gone. The loops
    start at 0.25 (``acquisition.cost_exponent``): on 36 replay seeds (session 10), start 0.25
    needed 1.56× fewer benchmarks and 1.81× fewer benchmark-seconds than random, start 0.5 1.40× /
    1.72×, and ignoring cost (0) 1.56× / 1.61×; on 12 fresh seeds 1.50× / 1.72× against start 0.5's
    1.36× / 1.65× (start 1, session 6: 1.08× / 1.43×). Without a budget (``None``) nothing cools:
    α = start.
    """
    if spent_fraction is None:
        return float(start)
    return float(min(1.0, max(0.0, start * (1.0 - spent_fraction))))
