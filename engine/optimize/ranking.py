"""Ranking configurations by expected objective × probability of feasibility (log-normal posteriors).

Every posterior here is log-normal per metric (mu, sd of the log). With marginals only (offline,
a predictor's per-metric posteriors), exactly:

* P(metric <= bound) = Φ((log bound − mu) / sd); bounds on the metrics one latency draw decides
  (latency, p90, throughput, cost) are one event, whose probability is the smallest of theirs
  (comonotone, :data:`COMONOTONE`), and memory's is multiplied in as independent;
* E[metric] = exp(mu + sd²/2) for a metric to maximise, E[1/metric] = exp(−mu + sd²/2) for one to
  minimise (a rate: items per ms, per MiB, per dollar), and the score is E[utility] × P(feasible):
  the expected utility when an infeasible configuration is worth nothing. Under the rules every
  interval follows (memory's floor, p90 never below the median) the expectations are those of
  that posterior (:func:`engine.models.base.posterior_mean` / ``posterior_inverse_mean``).

Online, the surrogate's metrics are affine maps of independent base GPs (:class:`Joint`, from
:data:`engine.optimize.surrogate.DERIVED`): throughput, p90 latency and cost all move with the
latency. Then the score is E[utility · 1{feasible}], not the product: by exponential tilting,
E[exp(c·z) 1{feasible}] = E[exp(c·z)] · P(feasible under z ~ N(μ + Σc, Σ)), so a configuration
whose fast draws are the feasible ones scores what those draws are worth. P(feasible) is exact
for one constraint (or constraints on independent bases) and a quasi-Monte Carlo estimate (4,096
scrambled Sobol points, fixed seed) for several constraints that share a base.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np
from scipy.stats import norm

from engine.config import Config
from engine.models.base import AT_LEAST
from engine.optimize.result import Assessment, MetricInterval
from engine.optimize.spec import UNITS, Problem

LogNormal = tuple[np.ndarray, np.ndarray]


#: Draws for P(feasible) when several constraints share a base GP (fixed seed: a ranking is repeatable).
MC_DRAWS = 4096


@dataclass(frozen=True)
class Joint:
    """The surrogate's posterior of n rows as independent normal bases and affine metrics:
    log metric m = ``coef[m]`` · z + ``offset[m]``, z ~ N(``mean``, diag(``sd``²)) per row."""

    mean: np.ndarray  # (n, bases)
    sd: np.ndarray  # (n, bases)
    coef: dict[str, np.ndarray]  # metric -> (bases,)
    offset: dict[str, np.ndarray]  # metric -> (n,)

    def marginal(self, metric: str) -> LogNormal:
        a = self.coef[metric]
        return self.mean @ a + self.offset[metric], np.sqrt((self.sd**2) @ (a**2))


def _normal_draws(dim: int) -> np.ndarray:
    """:data:`MC_DRAWS` scrambled-Sobol standard normal points (fixed seed): quasi-random points
    keep a P(feasible) of a few per mille within a fraction of itself, where as many
    pseudo-random draws were off by half."""
    from scipy.stats import qmc

    u = qmc.Sobol(d=dim, scramble=True, seed=0).random(MC_DRAWS)
    return norm.ppf(np.clip(u, 1e-12, 1 - 1e-12))


def _joint_feasible(problem: Problem, joint: Joint, shift: Optional[np.ndarray] = None) -> np.ndarray:
    """P(every constraint holds) per row under z ~ N(mean + shift, diag(sd²))."""
    mean = joint.mean if shift is None else joint.mean + shift
    n = mean.shape[0]
    if not problem.constraints:
        return np.ones(n)
    # each constraint as g = w · z + h <= 0
    W = np.stack([(1.0 if c.upper else -1.0) * joint.coef[c.metric] for c in problem.constraints])  # (K, bases)
    H = np.stack([(1.0 if c.upper else -1.0) * (joint.offset[c.metric] - np.log(c.bound))
                  for c in problem.constraints], axis=1)  # (n, K)
    shared = (np.abs(W) > 0).sum(0) > 1
    if len(problem.constraints) == 1 or not shared.any():  # independent constraints: the product is exact
        g_mu = mean @ W.T + H
        g_sd = np.sqrt((joint.sd**2) @ (W**2).T)
        return np.prod(norm.cdf(-g_mu / np.maximum(g_sd, 1e-12)), axis=1)
    eps = _normal_draws(mean.shape[1])
    out = np.empty(n)
    for i in range(n):
        z = mean[i] + joint.sd[i] * eps  # (draws, bases)
        out[i] = np.mean(np.all(z @ W.T + H[i] <= 0.0, axis=1))
    return out


def _floored_apart(problem: Problem, joint: Joint, floors: Optional[dict[str, np.ndarray]]
                   ) -> tuple[Problem, np.ndarray]:
    """(the problem without its floored constraints, P(those hold) per row). A constraint on a metric
    with a floor (memory) is set apart when its bases are shared with no other constraint and not
    with the first objective (memory is its own GP), so the product of the two parts is exact and
    its probability can use the truncated log-normal, which the joint's normal algebra cannot."""
    from engine.models.base import lognormal_cdf, lognormal_sf

    n = joint.mean.shape[0]
    p = np.ones(n)
    if not floors:
        return problem, p
    first = np.abs(joint.coef[problem.objectives[0]]) > 0
    kept = []
    for c in problem.constraints:
        used = np.abs(joint.coef[c.metric]) > 0
        others = [o for o in problem.constraints if o is not c]
        apart = (c.metric in floors and not (used & first).any()
                 and not any((used & (np.abs(joint.coef[o.metric]) > 0)).any() for o in others))
        if not apart:
            kept.append(c)
            continue
        mu, sd = joint.marginal(c.metric)
        prob = lognormal_cdf if c.upper else lognormal_sf
        p = p * prob(mu, np.maximum(sd, 1e-9), np.full(n, c.bound), floors[c.metric])
    return replace(problem, constraints=tuple(kept)), p


def joint_scores(problem: Problem, joint: Joint, floors: Optional[dict[str, np.ndarray]] = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(E[utility · 1{feasible}], P(feasible)) per row under the joint posterior (module docstring).
    ``floors`` (metric -> per-row floor) truncate a constraint's metric that is its own GP (memory
    never below the bytes that must be resident; :func:`_floored_apart`), and the first objective
    when no other remaining constraint shares its bases (a memory objective under a memory cap shares
    them: a floored objective under caps on itself is one truncated log-normal, in closed form).

    A p90 bound is not held to the median here (:data:`engine.models.base.AT_LEAST`; BoTorch's acquisition
    holds its samples to it): p90 = median × tail, and a bound on max(p90, median) differs from one
    on p90 only in draws where the tail is below 1 *and* the median lies within that tail's few per
    cent of the bound. On the four rows of
    ``tests/engine/optimize/test_ranking.py`` at bounds of 10, 30 and 100 ms that moved
    P(feasible) by at most 0.004 (4M draws): about the error of the Monte Carlo estimate that a
    second constraint on the median's base would turn the exact one-constraint answer into."""
    first = problem.objectives[0]
    rest, p_floored = _floored_apart(problem, joint, floors)
    floor = (floors or {}).get(first)
    rule = AT_LEAST.get(first) if AT_LEAST.get(first) in joint.coef else None
    # a floored metric minimised under caps on itself (memory under a memory cap) is one truncated
    # log-normal with them, so the caps are part of its closed form, not of the joint's normal algebra
    caps = ([k for k in rest.constraints if k.metric == first and k.upper]
            if floor is not None and not rule and problem.sign(first) < 0 else [])
    others = tuple(k for k in rest.constraints if k not in caps)
    used = np.abs(joint.coef[first]) > 0
    if (floor is not None or rule) and not any((used & (np.abs(joint.coef[k.metric]) > 0)).any() for k in others):
        # the objective under the rules the intervals follow (memory's floor, p90 never below the
        # median), as offline; exact here, since no other constraint shares its bases (audit D2:
        # online ranked a memory objective on the unfloored GP, offline on the floored one)
        from engine.models.base import lognormal_cdf, posterior_inverse_mean, posterior_mean

        mu, sd = joint.marginal(first)
        sd = np.maximum(sd, 1e-9)
        p_rest = _joint_feasible(replace(rest, constraints=others), joint) * p_floored
        if caps:  # E[1/X · 1{X <= cap}] and P(X <= cap) of X truncated at the floor
            from scipy.special import ndtr

            cap = min(k.bound for k in caps)
            za = (np.log(np.maximum(floor, 1e-300)) - mu) / sd
            zb = np.maximum((math.log(cap) - mu) / sd, za)
            rate = (np.exp(-mu + 0.5 * sd**2) * np.maximum(ndtr(zb + sd) - ndtr(za + sd), 0.0)
                    / np.maximum(ndtr(-za), 1e-300))
            p_cap = lognormal_cdf(mu, sd, np.full(len(mu), cap), floor)
            return rate * p_rest, p_cap * p_rest
        below = joint.marginal(rule) if rule else None
        rate = posterior_mean if problem.sign(first) > 0 else posterior_inverse_mean
        return rate(mu, sd, floor, below) * p_rest, p_rest
    c = problem.sign(first) * joint.coef[first]
    var = joint.sd**2
    log_eu = problem.sign(first) * joint.offset[first] + joint.mean @ c + 0.5 * var @ (c**2)
    return (np.exp(log_eu) * _joint_feasible(rest, joint, shift=var * c) * p_floored,
            _joint_feasible(rest, joint) * p_floored)


#: Metrics that move with one latency draw: throughput = 1000·batch / latency and cost = price /
#: throughput exactly, and p90 is never below the median (held to it comonotonically, as every
#: interval is). Bounds on them are one event on that draw, so P(all hold) is the smallest of their
#: probabilities, not the product (audit O: a redundant throughput floor beside the latency bound it
#: restates cut P(feasible) from 0.60 to 0.36 and turned the answer infeasible).
COMONOTONE: frozenset[str] = frozenset({"latency_ms", "latency_p90_ms", "throughput", "cost_per_1m_usd"})


def prob_feasible(problem: Problem, post: dict[str, LogNormal],
                  floors: Optional[dict[str, np.ndarray]] = None) -> np.ndarray:
    """P(every constraint holds) from per-metric posteriors: the bounds on :data:`COMONOTONE`
    metrics as one event (the smallest of their probabilities), memory independent of them;
    ``floors`` truncate a metric's log-normal below (memory: the bytes that must be resident,
    :func:`engine.models.base.lognormal_quantile`), and p90 is never below the median
    (:data:`engine.models.base.AT_LEAST`)."""
    from engine.models.base import posterior_cdf, posterior_sf

    n = len(next(iter(post.values()))[0]) if post else 0
    p = np.ones(n)
    same_draw = np.ones(n)
    for c in problem.constraints:
        mu, sd = post[c.metric]
        prob = posterior_cdf if c.upper else posterior_sf  # a tail, not 1 - cdf: see lognormal_sf
        holds = prob(mu, np.maximum(sd, 1e-9), np.full(n, c.bound), (floors or {}).get(c.metric),
                     _below(post, c.metric))
        if c.metric in COMONOTONE:
            same_draw = np.minimum(same_draw, holds)
        else:
            p = p * holds
    return p * same_draw


def _below(post: dict[str, LogNormal], metric: str, i: Optional[int] = None) -> Optional[LogNormal]:
    """The posterior ``metric`` can never fall below (p90: the median's, :data:`AT_LEAST`), or None;
    with ``i``, that row's."""
    other = AT_LEAST.get(metric)
    if other not in post:
        return None
    mu, sd = post[other]
    return (mu, np.maximum(sd, 1e-9)) if i is None else (float(mu[i]), float(sd[i]))


def expected_utility(problem: Problem, metric: str, post: dict[str, LogNormal],
                     floors: Optional[dict[str, np.ndarray]] = None) -> np.ndarray:
    """E[metric] for a metric to maximise, E[1/metric] for one to minimise, under the same
    posterior rules as the intervals (the floor, p90 never below the median)."""
    from engine.models.base import posterior_inverse_mean, posterior_mean

    mu, sd = post[metric]
    floor, below = (floors or {}).get(metric), _below(post, metric)
    if problem.sign(metric) > 0:
        return posterior_mean(mu, sd, floor, below)
    return posterior_inverse_mean(mu, sd, floor, below)


def scores(problem: Problem, post: dict[str, LogNormal], joint: Optional[Joint] = None,
           floors: Optional[dict[str, np.ndarray]] = None) -> tuple[np.ndarray, np.ndarray]:
    """(score, P(feasible)) for every configuration; the score uses the first objective. With the
    ``joint`` posterior the metrics' correlation counts (:func:`joint_scores`); else they are
    taken as independent."""
    if joint is not None:
        return joint_scores(problem, joint, floors)
    pf = prob_feasible(problem, post, floors)
    return expected_utility(problem, problem.objectives[0], post, floors) * pf, pf


def intervals(post: dict[str, LogNormal], i: int, floors: Optional[dict[str, np.ndarray]] = None
              ) -> dict[str, MetricInterval]:
    from engine.models.base import posterior_mean, posterior_quantile

    out = {}
    for m, (mu, sd) in post.items():
        a, s = float(mu[i]), float(sd[i])
        fl = (floors or {}).get(m)
        floor, below = None if fl is None else float(fl[i]), _below(post, m, i)
        q05, med, q95 = (float(v) for v in posterior_quantile(a, s, np.array([0.05, 0.5, 0.95]), floor, below))
        out[m] = MetricInterval(m, median=med, q05=q05, q95=q95, mean=float(posterior_mean(a, s, floor, below)),
                                unit=UNITS.get(m, ""))
    return out


def assessment(configs: Sequence[Config], post: dict[str, LogNormal], score: np.ndarray, pf: np.ndarray, i: int,
               evaluated: bool = False, measured: dict | None = None,
               floors: Optional[dict[str, np.ndarray]] = None) -> Assessment:
    return Assessment(configs[i], intervals(post, i, floors), float(pf[i]), float(score[i]), evaluated, measured)


def posterior_median(post: dict[str, LogNormal], metric: str,
                     floors: Optional[dict[str, np.ndarray]] = None) -> np.ndarray:
    """Every row's median of ``metric`` as the intervals show it (the floor, p90 never below the median)."""
    from engine.models.base import posterior_quantile

    mu, sd = post[metric]
    return posterior_quantile(mu, np.maximum(sd, 1e-9), np.array(0.5), (floors or {}).get(metric),
                              _below(post, metric))


def pareto_indices(problem: Problem, post: dict[str, LogNormal], rows: Sequence[int],
                   floors: Optional[dict[str, np.ndarray]] = None) -> list[int]:
    """Rows not dominated in the posterior medians of the objectives (signed so larger is better),
    the medians the intervals show (the floor, p90 never below the median)."""
    rows = list(rows)
    if not rows:
        return []
    V = np.column_stack([problem.sign(m) * np.log(posterior_median(post, m, floors)[rows])
                         for m in problem.objectives])
    keep = []
    for a in range(len(rows)):
        dominated = np.any(np.all(V >= V[a], axis=1) & np.any(V > V[a], axis=1))
        if not dominated:
            keep.append(rows[a])
    return keep
