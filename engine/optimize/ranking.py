"""Ranking configurations by expected objective × probability of feasibility (log-normal posteriors).

Every posterior here is log-normal per metric (mu, sd of the log). Then, exactly:

* P(metric <= bound) = Φ((log bound − mu) / sd), and P(feasible) is the product over the
  constraints (metrics treated as independent, as the surrogate models them);
* E[metric] = exp(mu + sd²/2) for a metric to maximise, E[1/metric] = exp(−mu + sd²/2) for one to
  minimise (a rate: items per ms, per MiB, per dollar), and the score is E[utility] × P(feasible):
  the expected utility when an infeasible configuration is worth nothing.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import norm

from engine.config import Config
from engine.optimize.result import Assessment, MetricInterval
from engine.optimize.spec import UNITS, Problem

Z95 = 1.6448536269514722
LogNormal = tuple[np.ndarray, np.ndarray]


def prob_feasible(problem: Problem, post: dict[str, LogNormal]) -> np.ndarray:
    n = len(next(iter(post.values()))[0]) if post else 0
    p = np.ones(n)
    for c in problem.constraints:
        mu, sd = post[c.metric]
        z = (np.log(c.bound) - mu) / np.maximum(sd, 1e-9)
        p = p * (norm.cdf(z) if c.upper else norm.sf(z))
    return p


def expected_utility(problem: Problem, metric: str, post: dict[str, LogNormal]) -> np.ndarray:
    mu, sd = post[metric]
    return np.exp(problem.sign(metric) * mu + 0.5 * sd**2)


def scores(problem: Problem, post: dict[str, LogNormal]) -> tuple[np.ndarray, np.ndarray]:
    """(score, P(feasible)) for every configuration; the score uses the first objective."""
    pf = prob_feasible(problem, post)
    return expected_utility(problem, problem.objectives[0], post) * pf, pf


def intervals(post: dict[str, LogNormal], i: int) -> dict[str, MetricInterval]:
    out = {}
    for m, (mu, sd) in post.items():
        a, s = float(mu[i]), float(sd[i])
        out[m] = MetricInterval(m, median=float(np.exp(a)), q05=float(np.exp(a - Z95 * s)),
                                q95=float(np.exp(a + Z95 * s)), mean=float(np.exp(a + 0.5 * s * s)),
                                unit=UNITS.get(m, ""))
    return out


def assessment(configs: Sequence[Config], post: dict[str, LogNormal], score: np.ndarray, pf: np.ndarray, i: int,
               evaluated: bool = False, measured: dict | None = None) -> Assessment:
    return Assessment(configs[i], intervals(post, i), float(pf[i]), float(score[i]), evaluated, measured)


def pareto_indices(problem: Problem, post: dict[str, LogNormal], rows: Sequence[int]) -> list[int]:
    """Rows not dominated in the posterior medians of the objectives (signed so larger is better)."""
    rows = list(rows)
    if not rows:
        return []
    V = np.column_stack([problem.sign(m) * post[m][0][rows] for m in problem.objectives])
    keep = []
    for a in range(len(rows)):
        dominated = np.any(np.all(V >= V[a], axis=1) & np.any(V > V[a], axis=1))
        if not dominated:
            keep.append(rows[a])
    return keep
