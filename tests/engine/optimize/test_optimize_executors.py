"""Executors: the replay oracle returns recorded runs; the local executor refuses what it cannot run."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.config import Config
from engine.errors import NotAvailableError
from engine.optimize.executors import LocalExecutor, ReplayExecutor, make_executor
from engine.optimize.optimizer import optimize_deployment


def frame() -> pd.DataFrame:
    rows = []
    for b, med in ((1, 10.0), (1, 12.0), (4, 30.0)):
        c = Config("bert-base-uncased", "t4", b, 128, "fp32", "inference", "torch", 0)
        rows.append({**c.to_dict(), "status": "ok", "latency_median_ms": med, "latency_p90_ms": med * 1.1,
                     "memory_peak_mib": 600.0})
    return pd.DataFrame(rows)


def test_replay_returns_recorded_runs_with_their_noise():
    ex = ReplayExecutor(frame(), seed=1)
    c1 = Config("bert-base-uncased", "t4", 1, 128, "fp32", "inference", "torch", 0)
    seen = {ex.run(c1).latency.median_ms for _ in range(20)}
    assert seen == {10.0, 12.0}
    m = ex.run(c1.with_(batch_size=4))
    assert m.ok and m.throughput == pytest.approx(4 * 1000 / 30.0) and m.latency.p90_ms == pytest.approx(33.0)
    assert not ex.run(c1.with_(batch_size=2)).ok
    assert len(ex.check([c1, c1.with_(batch_size=2)])) == 1


def test_local_executor_refuses_hardware_it_cannot_measure_before_running():
    with pytest.raises(NotAvailableError, match="t4"):
        optimize_deployment("bert-base-uncased", space={"hardware": ["t4"], "batch_size": [1], "runtime": ["torch"],
                                                        "precision": ["fp32"]}, online=True, executor="local",
                            db=False)


def test_make_executor_accepts_objects_with_run():
    class Runner:
        def run(self, c):
            return None

    ex = make_executor(Runner())
    assert ex.check([1, 2]) == [1, 2]
    assert isinstance(make_executor("local", iterations=3), LocalExecutor)
