"""Proper scores and calibration checks for predictive distributions of positive quantities.

Why these: a point error (APE) says how close the median is; coverage says whether the
intervals mean what they claim (a 90% interval should hold the truth 90% of the time); CRPS
rewards both at once and reduces to the absolute error for a point prediction, so a posterior
and a point-prediction baseline are compared on one scale.

CRPS is reported on the **log scale** (``crps_log``, natural-log units: 0.1 ~ a 10% miss),
because latencies span five orders of magnitude and a natural-scale CRPS would be decided by the
slowest configurations alone; the natural-scale CRPS (``crps``, in the metric's unit) is reported
too. Both forms come in closed form for a log-normal (Gaussian in log space) and through the
sample estimator ``E|X - y| - E|X - X'| / 2`` for posterior draws.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
from scipy.stats import norm, spearmanr

QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)


def crps_gaussian(mu: np.ndarray, sigma: np.ndarray, x: np.ndarray) -> np.ndarray:
    """CRPS of N(mu, sigma^2) at x (Gneiting & Raftery 2007); sigma = 0 gives |x - mu|."""
    mu, sigma, x = np.broadcast_arrays(np.asarray(mu, float), np.asarray(sigma, float), np.asarray(x, float))
    out = np.abs(x - mu).astype(float)
    pos = sigma > 0
    if np.any(pos):
        s = sigma[pos]
        z = (x[pos] - mu[pos]) / s
        out[pos] = s * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))
    return out


def crps_lognormal(mu_log: np.ndarray, sigma_log: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of LogNormal(mu, sigma) at y > 0 on the natural scale (Baran & Lerch 2015).

    ``y (2 Phi(z) - 1) - 2 e^{mu + s^2/2} (Phi(z - s) + Phi(s / sqrt 2) - 1)``, z = (log y - mu)/s;
    sigma = 0 gives |y - e^mu|.
    """
    mu, s, y = np.broadcast_arrays(np.asarray(mu_log, float), np.asarray(sigma_log, float), np.asarray(y, float))
    out = np.abs(y - np.exp(mu)).astype(float)
    pos = s > 0
    if np.any(pos):
        sp, mp, yp = s[pos], mu[pos], y[pos]
        z = (np.log(yp) - mp) / sp
        out[pos] = yp * (2 * norm.cdf(z) - 1) - 2 * np.exp(mp + sp**2 / 2) * (
            norm.cdf(z - sp) + norm.cdf(sp / math.sqrt(2)) - 1)
    return out


def crps_samples(samples: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample CRPS estimator per column: ``mean|X - y| - mean|X - X'| / 2``.

    ``samples`` is (S, n), ``y`` is (n,). The pairwise term uses the sorted-sample identity
    ``sum_ij |x_i - x_j| = 2 sum_i (2i - S - 1) x_(i)`` so it costs O(S log S), not O(S^2).
    """
    x = np.asarray(samples, float)
    if x.ndim == 1:
        x = x[:, None]
    y = np.asarray(y, float).reshape(1, -1)
    m = x.shape[0]
    term1 = np.mean(np.abs(x - y), axis=0)
    xs = np.sort(x, axis=0)
    w = (2 * np.arange(1, m + 1) - m - 1)[:, None]
    term2 = np.sum(w * xs, axis=0) / (m * m)  # = mean|X - X'| / 2
    return term1 - term2


@dataclass(frozen=True)
class Scores:
    """Accuracy and calibration of one predictor on one metric; None = not applicable (n/a)."""

    n: int
    median_ape: Optional[float]
    mape: Optional[float]
    spearman: Optional[float]
    coverage_50: Optional[float]
    coverage_90: Optional[float]
    mean_rel_width_90: Optional[float]
    crps_log: Optional[float]
    crps: Optional[float]

    def to_dict(self) -> dict[str, Optional[float]]:
        return asdict(self)


@dataclass
class RowScores:
    """Per-row pieces, kept so folds can be pooled before aggregating."""

    y: np.ndarray
    q: np.ndarray  # (5, n) at QUANTILES
    crps_log: np.ndarray
    crps: np.ndarray

    @classmethod
    def concat(cls, parts: list["RowScores"]) -> "RowScores":
        return cls(np.concatenate([p.y for p in parts]), np.concatenate([p.q for p in parts], axis=1),
                   np.concatenate([p.crps_log for p in parts]), np.concatenate([p.crps for p in parts]))

    def subset(self, mask: np.ndarray) -> "RowScores":
        """The rows where ``mask`` holds (e.g. one software path), to score them on their own."""
        return RowScores(self.y[mask], self.q[:, mask], self.crps_log[mask], self.crps[mask])


def row_scores(y: np.ndarray, *, mu_log: Optional[np.ndarray] = None, sigma_log: Optional[np.ndarray] = None,
               samples: Optional[np.ndarray] = None, quantiles: Optional[np.ndarray] = None) -> RowScores:
    """Quantiles and CRPS per observation, from a log-normal (mu_log, sigma_log) or draws (S, n);
    ``quantiles`` (len(QUANTILES), n), where known exactly, replace the draws' estimates."""
    y = np.asarray(y, float)
    qs = np.asarray(QUANTILES)
    if samples is not None and quantiles is not None:
        s = np.asarray(samples, float)
        return RowScores(y, np.asarray(quantiles, float), crps_samples(np.log(s), np.log(y)), crps_samples(s, y))
    if samples is not None:
        # heavy-tailed (Student-t in log space) draws can overflow to inf; clip to finite so the
        # log-scale CRPS stays defined (an inf draw would otherwise turn the mean into NaN)
        s = np.clip(np.nan_to_num(np.asarray(samples, float), nan=1e-300, posinf=1e300), 1e-300, 1e300)
        q = np.quantile(s, qs, axis=0)
        return RowScores(y, q, crps_samples(np.log(s), np.log(y)), crps_samples(s, y))
    assert mu_log is not None and sigma_log is not None
    mu = np.asarray(mu_log, float)
    sg = np.asarray(sigma_log, float)
    q = np.exp(mu[None, :] + sg[None, :] * norm.ppf(qs)[:, None])
    return RowScores(y, q, crps_gaussian(mu, sg, np.log(y)), crps_lognormal(mu, sg, y))


def aggregate(rows: RowScores, *, point: bool = False) -> Scores:
    """Pooled scores. ``point=True`` (a point-prediction baseline) leaves interval scores n/a."""
    n = int(rows.y.size)
    if n == 0:
        return Scores(0, None, None, None, None, None, None, None, None)
    med = rows.q[2]
    ape = np.abs(med - rows.y) / rows.y
    rho: Optional[float] = None
    if n >= 3 and np.ptp(rows.y) > 0 and np.ptp(med) > 0:
        rho = float(spearmanr(med, rows.y).statistic)
    cov50 = cov90 = width = None
    if not point:
        cov50 = float(np.mean((rows.y >= rows.q[1]) & (rows.y <= rows.q[3])))
        cov90 = float(np.mean((rows.y >= rows.q[0]) & (rows.y <= rows.q[4])))
        width = float(np.mean((rows.q[4] - rows.q[0]) / med))
    return Scores(n=n, median_ape=float(np.median(ape)), mape=float(np.mean(ape)), spearman=rho,
                  coverage_50=cov50, coverage_90=cov90, mean_rel_width_90=width,
                  crps_log=float(np.mean(rows.crps_log)), crps=float(np.mean(rows.crps)))
