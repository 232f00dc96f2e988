"""Learning-curve arithmetic: benchmarks-to-target ratios and their seed-bootstrap interval."""
from __future__ import annotations

import pytest

from experiments.loop import LoopResult, StepRecord
from experiments.report import ratio_with_interval


def _replay(ape_at: dict[int, float], seconds_per_run: float) -> LoopResult:
    """A replay whose held-out error is ``ape_at[n]`` after n benchmarks (steps every 10)."""
    steps = [StepRecord(step=i, n_benchmarks=n, benchmark_seconds=n * seconds_per_run, n_train=n, pool_size=100,
                        heldout_median_ape=a) for i, (n, a) in enumerate(sorted(ape_at.items()))]
    return LoopResult("x", "x", "replay", "s", steps, max(ape_at), 0, max(ape_at) * seconds_per_run, "budget", 0)


def _linear(slope: float, per_run_s: float) -> LoopResult:
    return _replay({n: 1.0 - slope * n for n in range(0, 101, 10)}, per_run_s)


def test_a_strategy_twice_as_fast_everywhere_has_ratio_two_without_spread() -> None:
    base = [_linear(0.005, 2.0) for _ in range(6)]  # reaches 0.7 at 60
    fast = [_linear(0.010, 1.0) for _ in range(6)]  # reaches 0.7 at 30, at half the cost per run
    est = ratio_with_interval(base, fast, target_n=60, n_max=100, n_boot=200)
    assert est.ratio == pytest.approx(2.0)
    assert est.seconds_ratio == pytest.approx(4.0)
    assert est.ratio_ci90 == pytest.approx((2.0, 2.0))
    assert est.p_ratio_ge_2 == pytest.approx(1.0)


def test_seed_luck_widens_the_interval() -> None:
    base = [_linear(0.005, 1.0) for _ in range(8)]
    # half the seeds are as fast as twice random, half no better than random
    mixed = [_linear(0.010 if i % 2 else 0.005, 1.0) for i in range(8)]
    est = ratio_with_interval(base, mixed, target_n=60, n_max=100, n_boot=400, seed=1)
    lo, hi = est.ratio_ci90
    assert est.ratio == pytest.approx(1.5) and lo <= est.ratio <= hi
    assert hi - lo > 0.2
    assert est.p_ratio_ge_2 < 0.1  # 2 needs (nearly) every resampled seed to be a fast one
    with pytest.raises(ValueError, match="paired"):
        ratio_with_interval(base, mixed[:3], target_n=60, n_max=100)


def test_savings_vs_random_for_each_strategy_with_an_interval() -> None:
    from experiments.report import savings_vs_random

    results = {"random": [_linear(0.005, 2.0) for _ in range(4)], "eig": [_linear(0.010, 1.0) for _ in range(4)],
               "max-variance": [_linear(0.005, 2.0) for _ in range(4)]}
    out = savings_vs_random(results, n_boot=50)
    assert set(out) == {"eig", "max-variance"}
    assert out["eig"]["target_n"] == 60 and out["eig"]["target_ape"] == pytest.approx(0.7)
    assert out["eig"]["ratio"] == pytest.approx(2.0) and out["eig"]["ratio_ci90"] == pytest.approx([2.0, 2.0])
    assert out["max-variance"]["ratio"] == pytest.approx(1.0)
    # eig's error is 0.005·n lower, n read off steps every 10 benchmarks, averaged over n = 20..60
    stepped = [10 * (n // 10) for n in range(20, 61)]
    assert out["eig"]["gap_range"] == [20, 60]
    assert out["eig"]["mean_gap"] == pytest.approx(-0.005 * sum(stepped) / len(stepped))
    assert out["eig"]["share_better"] == 1.0 and out["max-variance"]["mean_gap"] == pytest.approx(0.0)
    one_seed = savings_vs_random({k: v[:1] for k, v in results.items()})
    assert "ratio_ci90" not in one_seed["eig"] and one_seed["eig"]["seeds"] == 1
    assert savings_vs_random({"eig": results["eig"]}) == {}


def test_a_strategy_that_never_reaches_the_target_saves_nothing_and_one_seed_is_not_resampled() -> None:
    from experiments.report import ratios_to_reach

    base = [_linear(0.005, 1.0)]
    slow = [_linear(0.001, 1.0)]  # 0.9 after 100 benchmarks: never reaches base's 0.7
    assert ratios_to_reach(base, slow, target_n=60, n_max=100) == (0.0, 0.0)
    est = ratio_with_interval(base, [_linear(0.010, 1.0)], target_n=60, n_max=100, n_boot=0)
    assert est.ratio == pytest.approx(2.0) and est.n_boot == 0
    assert all(v != v for v in est.ratio_ci90)  # no interval from a point estimate


def test_paired_gap_reads_every_seed_and_knows_luck_from_a_gain() -> None:
    from experiments.report import paired_gap

    base = [_linear(0.005, 1.0) for _ in range(6)]
    better = [_replay({n: 1.0 - 0.005 * n - 0.02 for n in range(0, 101, 10)}, 1.0) for _ in range(6)]
    gap = paired_gap(base, better, lo=20, hi=60)
    assert gap.mean_gap == pytest.approx(-0.02) and gap.se == pytest.approx(0.0, abs=1e-12)
    assert gap.share_better == 1.0 and gap.seeds == 6
    # half the seeds gain 2 points, half lose 2: no gain, and a standard error that says so
    mixed = [_replay({n: 1.0 - 0.005 * n + (0.02 if i % 2 else -0.02) for n in range(0, 101, 10)}, 1.0)
             for i in range(6)]
    gap = paired_gap(base, mixed)
    assert gap.mean_gap == pytest.approx(0.0, abs=1e-12) and gap.se > 0.005 and gap.share_better == 0.5
    with pytest.raises(ValueError, match="paired"):
        paired_gap(base, mixed[:3])
    with pytest.raises(ValueError, match="invalid benchmark range 60..20"):
        paired_gap(base, mixed, lo=60, hi=20)


def test_held_out_coverage_counts_truths_inside_each_interval() -> None:
    import numpy as np

    from experiments.loop import SCORE_QUANTILES, _coverage

    assert SCORE_QUANTILES == (0.05, 0.25, 0.5, 0.75, 0.95)
    # three configurations with intervals [lo90, lo50, median, hi50, hi90] in columns
    q = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0], [4.0, 4.0, 4.0], [5.0, 5.0, 5.0]])
    c50, c90 = _coverage(q, [3.0, 4.5, 6.0])  # inside both, inside the 90% only, outside both
    assert c50 == pytest.approx(1 / 3) and c90 == pytest.approx(2 / 3)
    assert _coverage(q, [None, None, None]) == (None, None)  # nothing known: nothing claimed
    c50, c90 = _coverage(q, [None, 3.0, float("nan")])  # unknown truths are left out, not counted as misses
    assert (c50, c90) == (1.0, 1.0)


def test_curves_average_held_out_coverage_and_the_report_shows_it() -> None:
    from experiments.report import curve_of, report_rows

    def with_cover(c90: float) -> LoopResult:
        r = _linear(0.005, 1.0)
        for s in r.steps:
            s.heldout_cover50, s.heldout_cover90 = c90 / 2, c90
        return r

    c = curve_of("eig", [with_cover(0.8), with_cover(0.9)], n_max=100)
    assert c.cover90_by_n[50] == pytest.approx(0.85) and c.cover50_by_n[50] == pytest.approx(0.425)
    assert c.to_dict()["heldout_cover90"][50] == pytest.approx(0.85)
    row = report_rows([c], [50, 100])[0]
    assert row["heldout_cover90"] == pytest.approx(0.85)
    plain = report_rows([curve_of("random", [_linear(0.005, 1.0)], n_max=100)], [50])[0]
    assert plain["heldout_cover90"] is None  # no coverage recorded: none reported


def test_no_saving_is_read_when_random_reaches_its_target_within_the_shared_start() -> None:
    from experiments.loop import LoopResult, StepRecord
    from experiments.report import savings_vs_random

    def replay(apes: dict[int, float]) -> LoopResult:
        steps = [StepRecord(step=i, n_benchmarks=n, benchmark_seconds=float(n), n_train=n, pool_size=40,
                            heldout_median_ape=a) for i, (n, a) in enumerate(sorted(apes.items()))]
        return LoopResult("x", "x", "replay", "s", steps, 7, 0, 7.0, "budget", 0)

    # 3 shared random runs; random is already at its 4-benchmark error after them
    rnd = [replay({3: 0.10, 4: 0.12, 5: 0.11, 6: 0.10, 7: 0.09})]
    mv = [replay({3: 0.10, 4: 0.15, 5: 0.14, 6: 0.12, 7: 0.11})]
    row = savings_vs_random({"random": rnd, "max-variance": mv}, start_n=3)["max-variance"]
    assert row["ratio"] is None and "within the 3 random runs" in row["note"]
    # read without the shared start, the same curves gave "as many benchmarks": a tie at n = 3, inside the start
    assert savings_vs_random({"random": rnd, "max-variance": mv})["max-variance"]["ratio"] == pytest.approx(1.0)
