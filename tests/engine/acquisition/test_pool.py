"""Pool exclusion rules: measured, failed, predicted not to fit in memory with P > 0.9."""
from __future__ import annotations

import numpy as np

from engine.acquisition.pool import build_pool, pool_from_store, prob_fits
from engine.config import Config
from engine.models.base import PredictionSet
from engine.records import Measurement


def _space() -> list[Config]:
    return [Config("gpt2", "cpu-x", b, 64) for b in (1, 2, 4, 8, 16)]


def _memory_predictions(space: list[Config], median_mib: list[float], sd: float = 0.05) -> PredictionSet:
    ps = PredictionSet(configs=space, predictor="test")
    ps.mu_log["memory_mib"] = np.log(np.asarray(median_mib, dtype=float))
    ps.sigma_log["memory_mib"] = np.full(len(space), sd)
    return ps


def test_measured_failed_and_too_big_configs_leave_the_pool() -> None:
    space = _space()
    # b8 predicted at the capacity (P(no fit) = 0.5: stays), b16 far above it (P(no fit) ~ 1: dropped)
    ps = _memory_predictions(space, [100, 200, 400, 1000, 5000])
    pool = build_pool(space, measured={space[0].key}, failed={space[1].key}, predictions=ps,
                      capacity_mib=np.full(5, 1000.0))
    assert [c.batch_size for c in pool.configs] == [4, 8]
    assert pool.excluded == {"measured": 1, "failed": 1, "memory": 1}
    assert pool.space_size == 5
    assert pool.p_fit is not None and pool.p_fit[1] == np.float64(0.5)


def test_memory_rule_uses_the_probability_threshold() -> None:
    space = _space()[:2]
    cap = np.full(2, 1000.0)
    # P(no fit) = 0.85 and 0.95 with sd 0.5: the first stays, the second goes
    from scipy.stats import norm

    mu = [np.log(1000.0) + 0.5 * norm.ppf(0.85), np.log(1000.0) + 0.5 * norm.ppf(0.95)]
    ps = _memory_predictions(space, list(np.exp(mu)), sd=0.5)
    pool = build_pool(space, predictions=ps, capacity_mib=cap)
    assert [c.batch_size for c in pool.configs] == [1]
    # unknown capacity never excludes
    p = prob_fits(ps, np.array([np.nan, np.nan]))
    assert np.all(p == 1.0)


def test_pool_from_store_reads_ok_and_failed_runs(tmp_path) -> None:
    from engine.store import Store

    store = Store(tmp_path / "s.duckdb", seed=False)
    space = _space()
    store.save_measurement(Measurement.from_samples(space[0], [1.0, 1.1, 1.2]))
    store.save_measurement(Measurement.failed(space[2], "oom", "out of memory"))
    store.save_measurement(Measurement.failed(space[3], "timeout", "too slow"))
    pool = pool_from_store(space, store)
    assert [c.batch_size for c in pool.configs] == [2, 16]
    assert pool.excluded["measured"] == 1 and pool.excluded["failed"] == 2
