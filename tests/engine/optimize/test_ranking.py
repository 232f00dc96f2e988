"""The ranking under the surrogate's joint posterior: E[utility · 1{feasible}] and P(feasible)
counted with the metrics' correlation, checked against brute-force sampling."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.config import Config
from engine.optimize.ranking import Joint, joint_scores, prob_feasible, scores
from engine.optimize.spec import Constraint, Problem

# bases (log latency, log tail, log memory) of four rows; batch sizes 1, 4, 16, 64
BATCH = np.array([1.0, 4.0, 16.0, 64.0])
JOINT = Joint(mean=np.column_stack([np.log([3.0, 8.0, 25.0, 90.0]), np.log([1.05, 1.1, 1.08, 1.2]),
                                    np.log([400.0, 500.0, 700.0, 1500.0])]),
              sd=np.array([[0.2, 0.05, 0.1], [0.3, 0.08, 0.1], [0.25, 0.05, 0.1], [0.4, 0.1, 0.2]]),
              coef={"throughput": np.array([-1.0, 0.0, 0.0]), "latency_ms": np.array([1.0, 0.0, 0.0]),
                    "latency_p90_ms": np.array([1.0, 1.0, 0.0]), "memory_mib": np.array([0.0, 0.0, 1.0])},
              offset={"throughput": np.log(1000.0 * BATCH), "latency_ms": np.zeros(4),
                      "latency_p90_ms": np.zeros(4), "memory_mib": np.zeros(4)})
CANDS = tuple(Config("gpt2", "cpu", int(b), 16) for b in BATCH)


def _problem(*constraints: Constraint) -> Problem:
    return Problem("gpt2", ("throughput",), tuple(constraints), CANDS)


def _brute(problem: Problem, n: int = 400_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    score, pf = np.empty(4), np.empty(4)
    for i in range(4):
        z = JOINT.mean[i] + JOINT.sd[i] * rng.standard_normal((n, 3))
        vals = {m: np.exp(z @ a + JOINT.offset[m][i]) for m, a in JOINT.coef.items()}
        ok = np.all([vals[c.metric] <= c.bound if c.upper else vals[c.metric] >= c.bound
                     for c in problem.constraints], axis=0)
        score[i], pf[i] = np.mean(vals["throughput"] * ok), np.mean(ok)
    return score, pf


@pytest.mark.parametrize("constraints", [
    (Constraint("latency_p90_ms", 30.0),),  # one constraint: exact by tilting
    (Constraint("latency_p90_ms", 30.0), Constraint("memory_mib", 650.0)),  # independent bases: exact
    (Constraint("latency_p90_ms", 30.0), Constraint("throughput", 600.0)),  # sharing latency: Monte Carlo
])
def test_joint_scores_match_brute_force_sampling(constraints) -> None:
    problem = _problem(*constraints)
    score, pf = joint_scores(problem, JOINT)
    want_score, want_pf = _brute(problem)
    assert np.allclose(pf, want_pf, atol=0.015)
    assert np.allclose(score, want_score, rtol=0.03, atol=1.0)


def test_the_joint_score_counts_that_the_fast_draws_are_the_feasible_ones() -> None:
    """Throughput under a p90 bound: the independent product undervalues a configuration near the
    bound (its feasible draws are its fast ones); P(feasible) of one constraint is the same."""
    problem = _problem(Constraint("latency_p90_ms", 30.0))
    post = {m: JOINT.marginal(m) for m in JOINT.coef}
    s_ind, pf_ind = scores(problem, post)
    s_joint, pf_joint = scores(problem, post, JOINT)
    assert np.allclose(pf_joint, pf_ind) and np.allclose(pf_ind, prob_feasible(problem, post))
    near = 2  # 25 ms × 1.08 against a bound of 30 ms: P(feasible) ≈ 0.6
    assert 0.3 < pf_joint[near] < 0.8 and s_joint[near] > 1.05 * s_ind[near]
    # two constraints on one base: throughput >= 600 and p90 <= 30 ms hold together more often
    both = _problem(Constraint("latency_p90_ms", 30.0), Constraint("throughput", 600.0))
    _, pf_both = scores(both, post, JOINT)
    alone = [prob_feasible(_problem(c), post)[near] for c in both.constraints]
    assert pf_both[near] > alone[0] * alone[1] + 0.1  # more than as independent events
    # offline (marginals only) they are one latency draw: the smaller probability, which the joint
    # answer sits just under (the tail's own spread decorrelates them a little)
    assert prob_feasible(both, post)[near] == pytest.approx(min(alone))
    assert min(alone) - 0.05 < pf_both[near] <= min(alone) + 0.01
    assert math.isclose(float(scores(both, post, JOINT)[1][near]), float(pf_both[near]))  # fixed seed


def test_a_hopeless_lower_bound_still_ranks_by_how_close_each_row_comes() -> None:
    """Review: P(throughput >= bound) as 1 - cdf rounded to 0 below ~1e-16, so every row tied and the
    offline "closest to feasible" was the first row in input order."""
    post = {"throughput": (np.log([100.0, 300.0, 1000.0, 3000.0]), np.full(4, 0.3))}
    pf = prob_feasible(_problem(Constraint("throughput", 1e6)), post)
    assert np.all(pf > 0) and np.all(np.diff(pf) > 0)  # 1e-80 .. 1e-20, in order
    # with a floor far below (memory's weights), the answer is the plain log-normal's, bit for bit
    mem = {"memory_mib": (np.log([400.0, 500.0, 700.0, 1500.0]), np.full(4, 0.1))}
    prob = _problem(Constraint("memory_mib", 600.0))
    assert np.array_equal(prob_feasible(prob, mem), prob_feasible(prob, mem, {"memory_mib": np.full(4, 10.0)}))
    assert prob_feasible(prob, mem, {"memory_mib": np.full(4, 650.0)})[0] == 0.0  # the weights alone exceed it


def test_the_joint_ranking_truncates_memory_at_its_floor() -> None:
    """Online optimize ranked with the joint posterior, which ignored the memory floor: a row whose
    resident bytes alone exceed the cap kept P(feasible) near its plain log-normal's."""
    problem = _problem(Constraint("latency_p90_ms", 30.0), Constraint("memory_mib", 650.0))
    floors = {"memory_mib": np.array([10.0, 10.0, 660.0, 10.0])}
    score, pf = joint_scores(problem, JOINT)
    score_f, pf_f = joint_scores(problem, JOINT, floors)
    assert pf[2] > 0.05 and pf_f[2] == 0.0 and score_f[2] == 0.0  # the floor alone exceeds the cap
    keep = [0, 1, 3]  # floors far below the bulk: the same answer as before
    assert np.allclose(pf_f[keep], pf[keep], rtol=1e-9) and np.allclose(score_f[keep], score[keep], rtol=1e-9)
    # the marginal ranking (offline) and the joint one (online) agree on a floored memory constraint
    post = {m: JOINT.marginal(m) for m in JOINT.coef}
    assert np.allclose(scores(problem, post, floors=floors)[1], pf_f, atol=1e-12)


def test_offline_p90_answers_are_never_below_the_median() -> None:
    """The offline ranking reads p90 and the median as separate log-normals: its p90 interval and
    P(p90 <= bound) take the comonotone maximum (a run's p90 is at least its median)."""
    from engine.optimize.ranking import intervals

    post = {"latency_ms": (np.log([10.0, 10.0]), np.array([0.1, 0.1])),
            "latency_p90_ms": (np.log([10.5, 10.5]), np.array([0.4, 0.1]))}
    wide, narrow = intervals(post, 0), intervals(post, 1)
    med = math.exp(math.log(10.0) - 1.6448536269514722 * 0.1)
    assert wide["latency_p90_ms"].q05 == pytest.approx(med) and wide["latency_p90_ms"].median == pytest.approx(10.5)
    assert narrow["latency_p90_ms"].q05 > med
    pf = prob_feasible(_problem(Constraint("latency_p90_ms", 9.0)), post)
    plain = prob_feasible(_problem(Constraint("latency_p90_ms", 9.0)), {"latency_p90_ms": post["latency_p90_ms"]})
    assert pf[0] < plain[0] and pf[0] == pytest.approx(norm_cdf((math.log(9.0) - math.log(10.0)) / 0.1))
    assert pf[1] == pytest.approx(plain[1])  # the narrow p90 sits above the median everywhere


def norm_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_optimizer_answers_read_like_predictions() -> None:
    """Audit: print(r.best) in a notebook dumped every dataclass field of every MetricInterval."""
    from engine.optimize.result import Assessment, MetricInterval, OptimizationResult

    m = MetricInterval("latency_ms", median=67.7, q05=51.0, q95=89.9, mean=69.0, unit="ms")
    a = Assessment(CANDS[0], {"latency_ms": m}, prob_feasible=0.97, score=1.0)
    r = OptimizationResult("gpt2", ("throughput",), {"latency_p90_ms": 100.0}, False, a, n_candidates=4)
    assert repr(m) == "<latency_ms: median 67.7 ms, 90% interval 51–89.9 ms>"
    assert repr(a).startswith(f"Assessment({CANDS[0].key}, P(feasible) 0.97)") and "latency_ms: median" in repr(a)
    text = repr(r)
    assert "throughput subject to latency_p90_ms <= 100 ms" in text and "feasible=True" in text
    assert "MetricInterval(" not in text


@pytest.mark.parametrize("case", ["plain", "floor", "at_least"])
def test_the_expected_rate_of_a_metric_to_minimise_matches_sampling(case) -> None:
    """E[1/X] scores a metric to minimise; under the floor (memory) and p90's envelope it is the
    rate of the posterior the intervals show, not of the plain log-normal."""
    from engine.models.base import posterior_inverse_mean

    mu, sd = np.log(np.array([20.0, 50.0, 400.0])), np.array([0.3, 0.05, 0.5])
    z = np.random.default_rng(3).standard_normal((2_000_000, 1))
    x = np.exp(mu + sd * z)
    floor = at_least = None
    if case == "floor":
        floor = np.array([25.0, 10.0, 600.0])
        keep = x > floor  # truncated: conditioned on being above the floor
        want = np.array([np.mean(1.0 / x[keep[:, j], j]) for j in range(3)])
    elif case == "at_least":
        at_least = (np.log(np.array([22.0, 45.0, 300.0])), np.array([0.1, 0.2, 0.6]))
        y = np.exp(at_least[0] + at_least[1] * z)  # comonotone: one z
        want = np.mean(1.0 / np.maximum(x, y), axis=0)
    else:
        want = np.mean(1.0 / x, axis=0)
    got = posterior_inverse_mean(mu, sd, floor, at_least)
    assert np.allclose(got, want, rtol=2e-3)
    if case != "plain":
        assert not np.allclose(got, np.exp(-mu + sd**2 / 2), rtol=1e-2)  # the rule changed the answer


def test_a_p90_objective_ranks_and_fronts_on_the_p90_the_intervals_show() -> None:
    """Offline: row 1's own p90 log-normal sits below its median (a crossing the envelope removes),
    so its plain E[1/p90] outranked row 0, whose p90 really is lower."""
    from engine.optimize.ranking import pareto_indices, posterior_median

    post = {"latency_ms": (np.log([10.0, 12.0]), np.array([0.05, 0.05])),
            "latency_p90_ms": (np.log([11.0, 9.0]), np.array([0.05, 0.05])),
            "memory_mib": (np.log([500.0, 400.0]), np.array([0.05, 0.05]))}
    problem = Problem("gpt2", ("latency_p90_ms",), (), CANDS[:2])
    score, _ = scores(problem, post)
    assert score[0] > score[1]
    assert np.allclose(posterior_median(post, "latency_p90_ms"), [11.0, 12.0])
    multi = Problem("gpt2", ("latency_p90_ms", "memory_mib"), (), CANDS[:2])
    assert pareto_indices(multi, post, [0, 1]) == [0, 1]  # row 1: less memory, more p90; both on the front


def test_online_and_offline_rank_a_floored_objective_alike() -> None:
    """Review D2: online scored a memory objective on the unfloored GP (row 0 first: a 100 MiB
    median though 400 MiB must be resident), offline on the floored posterior (row 1 first)."""
    j = Joint(mean=np.log([[100.0], [300.0]]), sd=np.array([[0.2], [0.2]]), coef={"memory_mib": np.array([1.0])},
              offset={"memory_mib": np.zeros(2)})
    p = Problem("gpt2", ("memory_mib",), (), CANDS[:2])
    fl = {"memory_mib": np.array([400.0, 50.0])}
    online = joint_scores(p, j, fl)[0]
    offline = scores(p, {"memory_mib": j.marginal("memory_mib")}, floors=fl)[0]
    assert np.allclose(online, offline) and online[1] > online[0]
    # p90 as the objective: the median's posterior bounds it online as offline
    post = {m: JOINT.marginal(m) for m in JOINT.coef}
    q = Problem("gpt2", ("latency_p90_ms",), (), CANDS)
    assert np.allclose(joint_scores(q, JOINT)[0], scores(q, post)[0])


def test_a_zero_floor_is_no_floor_and_no_warning() -> None:
    import warnings

    from engine.models.base import posterior_inverse_mean

    mu, sd = np.log([100.0, 200.0]), np.full(2, 0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = posterior_inverse_mean(mu, sd, np.zeros(2))
    assert np.allclose(got, np.exp(-mu + sd**2 / 2))


def test_a_memory_objective_under_a_memory_cap_matches_sampling_the_truncated_posterior() -> None:
    """Memory minimised under a memory cap: one base, floored; E[1/X · 1{X <= cap}] and P(X <= cap)
    of the log-normal truncated at the floor, against brute force."""
    mu, sd = np.log([100.0, 300.0, 500.0]), np.array([0.3, 0.2, 0.5])
    j = Joint(mean=mu[:, None], sd=sd[:, None], coef={"memory_mib": np.array([1.0])},
              offset={"memory_mib": np.zeros(3)})
    fl = {"memory_mib": np.array([150.0, 50.0, 700.0])}
    p = Problem("gpt2", ("memory_mib",), (Constraint("memory_mib", 400.0),), CANDS[:3])
    score, pf = joint_scores(p, j, fl)
    rng = np.random.default_rng(2)
    for i in range(3):
        x = np.exp(mu[i] + sd[i] * rng.standard_normal(4_000_000))
        x = x[x > fl["memory_mib"][i]]  # truncated: conditioned on the floor
        ok = x <= 400.0
        assert pf[i] == pytest.approx(ok.mean(), abs=2e-3)
        assert score[i] == pytest.approx(np.mean(ok / x), rel=1e-2, abs=1e-6)
    assert pf[2] == 0.0 and score[2] == 0.0  # the floor alone is over the cap
