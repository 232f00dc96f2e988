"""The contract every predictor honours: fit on measurements, predict a posterior per config.

Posteriors are stored per metric either as a log-normal (GP: Gaussian in log space, exact
quantiles at any level, cheap for 100k configurations) or as draws (hierarchical model: NUTS
posterior predictive). Both answer the same questions: median, mean, ``interval(0.9)``,
``prob_below(bound)``. Throughput is derived from latency (items/s = batch / latency), so the two
are never inconsistent.
"""
from __future__ import annotations

import math
import numbers

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from engine.config import Config

if TYPE_CHECKING:
    import pandas as pd

METRICS: tuple[str, ...] = ("latency_ms", "latency_p90_ms", "throughput", "memory_mib")
#: each metric's natural unit (throughput: items, i.e. samples or sequences, per second)
UNITS: dict[str, str] = {"latency_ms": "ms", "latency_p90_ms": "ms", "throughput": "items/s", "memory_mib": "MiB"}
#: metric -> the metric of the same run it can never fall below (a run's p90 latency is at least its
#: median); predictions take the comonotone maximum (:attr:`MetricPrediction.at_least`)
AT_LEAST: dict[str, str] = {"latency_p90_ms": "latency_ms"}


#: a floor this many sds below the log-normal's median changes nothing a float can hold
#: (Phi(-8.3) < 1e-16): there the plain formulas answer, bit for bit as without a floor
IRRELEVANT_FLOOR_Z = -8.3


def _floor_z(mu: np.ndarray, sd: np.ndarray, floor: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """The floor in standard units of log space (None: no floor)."""
    if floor is None:
        return None
    with np.errstate(divide="ignore"):  # a zero floor is no floor (a = -inf); sd 0 is a point mass
        return (np.log(np.asarray(floor, dtype=float)) - mu) / np.maximum(sd, 1e-12)


def lognormal_quantile(mu: np.ndarray, sd: np.ndarray, q: np.ndarray,
                       floor: Optional[np.ndarray] = None) -> np.ndarray:
    """Quantiles of a log-normal, truncated below at ``floor`` (natural units) where given.

    Why a floor: peak memory can never be below the weights' own bytes, but a log-normal far from
    the data put a 13B model's bf16 run at P(fits 23.5 GiB) = 0.16 when its weights alone take
    24.2 GiB. Conditioning on the certain bound is the Bayesian answer; computed in log space
    (``ndtri_exp``) so a floor far above the bulk gives quantiles just above it, not inf or nan."""
    from scipy.special import log_ndtr, ndtri, ndtri_exp

    mu, sd, q = np.asarray(mu, dtype=float), np.asarray(sd, dtype=float), np.asarray(q, dtype=float)
    plain = np.exp(mu + sd * ndtri(q))
    a = _floor_z(mu, sd, floor)
    if a is None:
        return plain
    # P(Z > z) = (1 - q) P(Z > a)  ->  -z = ndtri_exp(log(1 - q) + log Phi(-a))
    z = -ndtri_exp(np.log1p(-q) + log_ndtr(-a))
    return np.where(a < IRRELEVANT_FLOOR_Z, plain, np.exp(mu + np.maximum(sd, 1e-12) * np.maximum(z, a)))


def _z(mu: np.ndarray, sd: np.ndarray, x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.log(np.asarray(x, dtype=float)) - mu) / sd


def lognormal_cdf(mu: np.ndarray, sd: np.ndarray, x: np.ndarray, floor: Optional[np.ndarray] = None) -> np.ndarray:
    """P(X <= x) of the (truncated, see :func:`lognormal_quantile`) log-normal."""
    from scipy.special import log_ndtr, ndtr

    mu, sd = np.asarray(mu, dtype=float), np.asarray(sd, dtype=float)
    plain = ndtr(_z(mu, sd, x))
    a = _floor_z(mu, sd, floor)
    if a is None:
        return plain
    zx = _z(mu, np.maximum(sd, 1e-12), x)
    # 1 - P(Z > zx) / P(Z > a), 0 below the floor
    with np.errstate(over="ignore", invalid="ignore"):  # the masked side may overflow
        trunc = np.where(zx <= a, 0.0, -np.expm1(log_ndtr(-zx) - log_ndtr(-a)))
    # a floor deep in the lower tail changes nothing, except that nothing lies below it (audit O: a cap
    # below the resident bytes read 6.6e-129, not 0, and that tiny number reordered the ranking)
    return np.where(a < IRRELEVANT_FLOOR_Z, np.where(zx <= a, 0.0, plain), trunc)


def lognormal_sf(mu: np.ndarray, sd: np.ndarray, x: np.ndarray, floor: Optional[np.ndarray] = None) -> np.ndarray:
    """P(X > x), computed as a tail (not 1 - cdf): a lower-bound constraint's P(feasible) of 1e-107
    must stay 1e-107, not round to 0, or every infeasible candidate ties and the ranking is lost."""
    from scipy.special import log_ndtr, ndtr

    mu, sd = np.asarray(mu, dtype=float), np.asarray(sd, dtype=float)
    plain = ndtr(-_z(mu, sd, x))
    a = _floor_z(mu, sd, floor)
    if a is None:
        return plain
    zx = _z(mu, np.maximum(sd, 1e-12), x)
    with np.errstate(over="ignore", invalid="ignore"):
        trunc = np.where(zx <= a, 1.0, np.exp(log_ndtr(-zx) - log_ndtr(-a)))
    return np.where(a < IRRELEVANT_FLOOR_Z, np.where(zx <= a, 1.0, plain), trunc)


def lognormal_mean(mu: np.ndarray, sd: np.ndarray, floor: Optional[np.ndarray] = None,
                   power: int = 1) -> np.ndarray:
    """E[X] (``power`` 1) or E[1/X] (``power`` -1) of the (truncated) log-normal:
    exp(p·mu + sd²/2) Phi(p·sd - a) / Phi(-a), a the floor in standard units."""
    from scipy.special import log_ndtr

    if power not in (1, -1):
        raise ValueError(f"invalid power {power!r}; valid: 1 or -1")
    mu, sd = np.asarray(mu, dtype=float), np.asarray(sd, dtype=float)
    plain = np.exp(power * mu + 0.5 * sd**2)
    a = _floor_z(mu, sd, floor)
    if a is None:
        return plain
    s = np.maximum(sd, 1e-12)
    fl = np.asarray(floor, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        moment = np.exp(power * mu + 0.5 * s**2 + log_ndtr(power * s - a) - log_ndtr(-a))
    # X never below the floor, so E[X] never below it and E[1/X] never above 1/floor (far above the
    # bulk the two log tails cancel to no digits); a floor of 0 is no floor
    if power == 1:
        trunc = np.maximum(moment, fl)
    else:
        trunc = np.minimum(moment, np.divide(1.0, fl, out=np.full(np.broadcast(fl).shape, np.inf), where=fl > 0))
    return np.where(a < IRRELEVANT_FLOOR_Z, plain, trunc)


def lognormal_max_mean(mu: np.ndarray, sd: np.ndarray, mu2: np.ndarray, sd2: np.ndarray) -> np.ndarray:
    """E[max(X, Y)] of two comonotone log-normals (X = exp(mu + sd Z), Y = exp(mu2 + sd2 Z), one Z).

    Why: p90 latency is at least the median latency of the same run, so its posterior is the
    comonotone maximum of its own log-normal and the median's (:attr:`MetricPrediction.at_least`).
    Closed form: the two lines mu + sd z and mu2 + sd2 z cross at z* = (mu2 - mu) / (sd - sd2); on
    each side the larger one's partial expectation is exp(m + s²/2) Phi(±(z* - s))."""
    from scipy.special import ndtr

    mu, sd, mu2, sd2 = (np.asarray(v, dtype=float) for v in (mu, sd, mu2, sd2))
    m1, m2 = np.exp(mu + 0.5 * sd**2), np.exp(mu2 + 0.5 * sd2**2)
    diff = sd - sd2
    with np.errstate(divide="ignore", invalid="ignore"):
        zc = (mu2 - mu) / diff
    # sd > sd2: X is the larger above z*, Y below; sd < sd2: the other way round
    above_x = m1 * ndtr(sd - zc) + m2 * ndtr(zc - sd2)
    below_x = m1 * ndtr(zc - sd) + m2 * ndtr(sd2 - zc)
    equal = np.where(mu >= mu2, m1, m2)
    return np.where(diff > 0, above_x, np.where(diff < 0, below_x, equal))


Pair = tuple[np.ndarray, np.ndarray]  # (mu_log, sigma_log) of a log-normal


# The posterior of one metric in log-normal form: its own log-normal, truncated below at ``floor``
# (memory) and raised to ``at_least`` where that is larger (p90: the median's log-normal, comonotone).
# MetricPrediction, PredictionSet and optimize's ranking all answer through these four.
def posterior_quantile(mu: np.ndarray, sd: np.ndarray, q: np.ndarray, floor: Optional[np.ndarray] = None,
                       at_least: Optional[Pair] = None) -> np.ndarray:
    """Quantiles: the larger of the (truncated) own one and ``at_least``'s."""
    out = lognormal_quantile(mu, sd, q, floor)
    return out if at_least is None else np.maximum(out, lognormal_quantile(at_least[0], at_least[1], q))


def posterior_cdf(mu: np.ndarray, sd: np.ndarray, x: np.ndarray, floor: Optional[np.ndarray] = None,
                  at_least: Optional[Pair] = None) -> np.ndarray:
    """P(X <= x): comonotone, max(X, Y) <= x only where both are, so the smaller probability."""
    p = lognormal_cdf(mu, sd, x, floor)
    return p if at_least is None else np.minimum(p, lognormal_cdf(at_least[0], at_least[1], x))


def posterior_sf(mu: np.ndarray, sd: np.ndarray, x: np.ndarray, floor: Optional[np.ndarray] = None,
                 at_least: Optional[Pair] = None) -> np.ndarray:
    """P(X > x) as a tail (see :func:`lognormal_sf`): the larger of the two."""
    p = lognormal_sf(mu, sd, x, floor)
    return p if at_least is None else np.maximum(p, lognormal_sf(at_least[0], at_least[1], x))


def posterior_mean(mu: np.ndarray, sd: np.ndarray, floor: Optional[np.ndarray] = None,
                   at_least: Optional[Pair] = None) -> np.ndarray:
    """E[X]: :func:`lognormal_max_mean` with ``at_least``, else the (truncated) log-normal's."""
    return lognormal_mean(mu, sd, floor) if at_least is None else lognormal_max_mean(mu, sd, *at_least)


def posterior_inverse_mean(mu: np.ndarray, sd: np.ndarray, floor: Optional[np.ndarray] = None,
                           at_least: Optional[Pair] = None) -> np.ndarray:
    """E[1/X]: the expected rate of a metric to minimise (items per ms, per MiB), which is what
    optimize's ranking scores. Plain: exp(-mu + sd²/2). Truncated at ``floor``:
    exp(-mu + sd²/2) Phi(-a - sd) / Phi(-a) (:func:`lognormal_mean`, power -1). With ``at_least``
    (comonotone max): 1/max(X, Y) = min(1/X, 1/Y), and E[min] = E[1/X] + E[1/Y] - E[max(1/X, 1/Y)],
    the last again two comonotone log-normals (:func:`lognormal_max_mean`)."""
    if at_least is not None:
        mu, sd = np.asarray(mu, dtype=float), np.asarray(sd, dtype=float)
        plain = np.exp(-mu + 0.5 * sd**2)
        mu2, sd2 = (np.asarray(v, dtype=float) for v in at_least)
        other = np.exp(-mu2 + 0.5 * sd2**2)
        return np.clip(plain + other - lognormal_max_mean(-mu, sd, -mu2, sd2), 0.0, np.minimum(plain, other))
    return lognormal_mean(mu, sd, floor, power=-1)


@dataclass(frozen=True)
class MetricPrediction:
    """Posterior predictive of one metric for one configuration, in the metric's natural unit
    (:data:`UNITS`: ms, items/s, MiB)."""

    metric: str
    mu_log: Optional[float] = None  # log-normal form
    sigma_log: Optional[float] = None
    samples: Optional[np.ndarray] = None  # draws form
    #: a value the metric cannot fall below (memory: the weights' bytes); the log-normal form is
    #: truncated there, draws are clipped to it (see :func:`lognormal_quantile`)
    floor: Optional[float] = None
    #: (mu_log, sigma_log) of a log-normal this metric can never fall below, comonotone with it
    #: (p90 latency: the median latency of the same run). Without it the two marginals, each a
    #: log-normal with its own spread, put p90's 5% quantile below the median's in 66 of 96
    #: configurations of a predict grid, by up to 8%. The posterior is then max(own, that one).
    at_least: Optional[tuple[float, float]] = None

    def __repr__(self) -> str:
        lo, hi = self.interval(0.9)
        return f"<{self.metric}: median {self.median:.4g} {self.unit}, 90% interval {lo:.4g}–{hi:.4g} {self.unit}>"

    @property
    def unit(self) -> str:
        return UNITS.get(self.metric, "")

    def quantile(self, q: float | np.ndarray) -> float | np.ndarray:
        """The posterior's q-quantile(s), q in (0, 1) (``quantile(0.95)``, or an array of levels)."""
        qa = np.asarray(q, dtype=float) if not isinstance(q, bool) else np.asarray(np.nan)
        if not np.all((qa > 0) & (qa < 1)):
            raise ValueError(f"invalid quantile {q!r}; valid: a number (or array of numbers) in (0, 1)")
        if self.samples is not None:
            return np.quantile(self.samples, q)
        assert self.mu_log is not None and self.sigma_log is not None
        out = posterior_quantile(self.mu_log, self.sigma_log, qa, self.floor, self.at_least)
        return float(out) if np.ndim(out) == 0 else out

    @property
    def median(self) -> float:
        return float(self.quantile(0.5))

    @property
    def mean(self) -> float:
        if self.samples is not None:
            return float(np.mean(self.samples))
        return float(posterior_mean(self.mu_log, self.sigma_log, self.floor, self.at_least))

    def interval(self, level: float = 0.9) -> tuple[float, float]:
        """Central credible interval, e.g. ``interval(0.9)`` = (5%, 95%) quantiles."""
        if not isinstance(level, numbers.Real) or isinstance(level, bool) or not 0 < level < 1:
            raise ValueError(f"invalid interval level {level!r}; valid: a number in (0, 1)")
        lo, hi = self.quantile(np.array([(1 - level) / 2, (1 + level) / 2]))
        return float(lo), float(hi)

    def prob_below(self, bound: float) -> float:
        """P(value <= bound); a bound that is not a positive number is an error, not nan."""
        if not isinstance(bound, numbers.Real) or isinstance(bound, bool) or not bound > 0 or math.isinf(bound):
            raise ValueError(f"invalid bound {bound!r}; valid: a positive finite number")
        if self.samples is not None:
            return float(np.mean(self.samples <= bound))
        return float(posterior_cdf(self.mu_log, self.sigma_log, bound, self.floor, self.at_least))

    def summary(self) -> dict[str, float]:
        """median, mean and the 5/25/75/95% quantiles: what ``--json`` prints per metric."""
        q = self.quantile(np.array([0.05, 0.25, 0.5, 0.75, 0.95]))
        return {"median": float(q[2]), "mean": self.mean, "q05": float(q[0]), "q25": float(q[1]),
                "q75": float(q[3]), "q95": float(q[4])}


@dataclass(frozen=True)
class Prediction:
    """Everything perfcast says about one configuration."""

    config: Config
    metrics: dict[str, MetricPrediction]
    predictor: str
    device_name: str = ""
    n_nearby: int = 0  # measurements close to this configuration (same model and hardware)
    memory_capacity_mib: Optional[float] = None
    #: predict's cautions for this answer (an unmeasured device kind, a device without usable runs,
    #: a borrowed peak, a configuration no adapter measures): what the CLI prints under it
    warnings: list[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> MetricPrediction:
        """``p.latency_ms``, ``p.throughput``, ...: the metric's posterior."""
        metrics = self.__dict__.get("metrics", {})
        if name in metrics:
            return metrics[name]
        if name.startswith("_") or "metrics" not in self.__dict__:  # copy/pickle probe
            raise AttributeError(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}; its metrics are "
                             f"{', '.join(metrics)}")

    def __dir__(self) -> list[str]:  # tab completion offers the metrics
        return sorted({*super().__dir__(), *self.__dict__.get("metrics", {})})

    def __repr__(self) -> str:
        head = f"Prediction({self.config.key}, predictor={self.predictor!r}"
        body = "".join(f"\n  {m!r}" for m in self.metrics.values())
        tail = "".join(f"\n  caution: {w}" for w in self.warnings)
        return f"{head}){body}{tail}"

    def prob_latency_below(self, bound_ms: float, metric: str = "latency_ms") -> float:
        """P(latency <= ``bound_ms``) under the posterior (``metric="latency_p90_ms"`` for the tail)."""
        if metric not in self.metrics:
            raise ValueError(f"invalid metric {metric!r}; valid: {', '.join(self.metrics)}")
        return self.metrics[metric].prob_below(bound_ms)

    def prob_fits_memory(self) -> Optional[float]:
        """P(memory <= the device's capacity); None when the device lists no capacity."""
        if self.memory_capacity_mib is None or "memory_mib" not in self.metrics:
            return None
        return self.metrics["memory_mib"].prob_below(self.memory_capacity_mib)


@dataclass
class PredictionSet:
    """Vectorised predictions for many configurations.

    ``mu_log``/``sigma_log`` map metric -> array (n,), or ``samples`` maps metric -> (S, n).
    """

    configs: list[Config]
    predictor: str
    mu_log: dict[str, np.ndarray] = field(default_factory=dict)
    sigma_log: dict[str, np.ndarray] = field(default_factory=dict)
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    #: metric -> (n,) values it cannot fall below (memory: the weights' bytes; see MetricPrediction)
    floor: dict[str, np.ndarray] = field(default_factory=dict)
    #: metric -> the metric it can never fall below, comonotone (p90 latency -> median latency;
    #: see :attr:`MetricPrediction.at_least`); log-normal form only
    at_least: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.configs)

    def __getitem__(self, i: int) -> Prediction:
        ms: dict[str, MetricPrediction] = {}
        for m in self.metric_names():
            if m in self.samples:
                ms[m] = MetricPrediction(m, samples=self.samples[m][:, i])
            else:
                fl = self.floor.get(m)
                pair = self._below(m)
                below = None if pair is None else (float(pair[0][i]), float(pair[1][i]))
                ms[m] = MetricPrediction(m, mu_log=float(self.mu_log[m][i]), sigma_log=float(self.sigma_log[m][i]),
                                         floor=None if fl is None else float(fl[i]), at_least=below)
        return Prediction(self.configs[i], ms, self.predictor)

    def __iter__(self) -> Iterator[Prediction]:
        for i in range(len(self)):
            yield self[i]

    def metric_names(self) -> list[str]:
        return [m for m in METRICS if m in self.samples or m in self.mu_log]

    def quantiles(self, metric: str, qs: Sequence[float]) -> np.ndarray:
        """(len(qs), n) quantiles without building per-config objects."""
        qs_arr = np.asarray(qs, dtype=float)
        if metric in self.samples:
            return np.quantile(self.samples[metric], qs_arr, axis=0)
        fl = self.floor.get(metric)
        below = self._below(metric)
        return posterior_quantile(self.mu_log[metric][None, :], self.sigma_log[metric][None, :], qs_arr[:, None],
                                  None if fl is None else np.asarray(fl)[None, :],
                                  None if below is None else (below[0][None, :], below[1][None, :]))

    def _below(self, metric: str) -> Optional[Pair]:
        """(mu_log, sigma_log) arrays of the metric ``metric`` can never fall below, or None."""
        other = self.at_least.get(metric)
        return None if other is None else (self.mu_log[other], self.sigma_log[other])

    def cdf(self, metric: str, x: np.ndarray) -> np.ndarray:
        """(n,) P(metric <= x) per configuration (x broadcast), floors and draws respected."""
        x = np.broadcast_to(np.asarray(x, dtype=float), (len(self),))
        if metric in self.samples:
            return np.mean(self.samples[metric] <= x[None, :], axis=0)
        below = self._below(metric)
        return posterior_cdf(self.mu_log[metric], np.maximum(self.sigma_log[metric], 1e-12), x, self.floor.get(metric),
                             None if below is None else (below[0], np.maximum(below[1], 1e-12)))

    def mean(self, metric: str) -> np.ndarray:
        """(n,) posterior means of one metric, floors, draws and :attr:`at_least` respected."""
        if metric in self.samples:
            return np.mean(self.samples[metric], axis=0)
        return posterior_mean(self.mu_log[metric], self.sigma_log[metric], self.floor.get(metric), self._below(metric))


@runtime_checkable
class Predictor(Protocol):
    """fit(measurements) -> self; predict(configs) -> PredictionSet; sample for joint questions."""

    name: str

    def fit(self, data: "pd.DataFrame") -> "Predictor":
        """``data`` is ``Store.measurements()`` (status ok): one row per successful run."""
        ...

    def predict(self, configs: Sequence[Config]) -> PredictionSet:
        ...

    def sample(self, configs: Sequence[Config], n: int, metric: str = "latency_ms",
               seed: int = 0) -> np.ndarray:
        """(n, len(configs)) JOINT posterior draws of a metric: for 'which is best' questions."""
        ...
