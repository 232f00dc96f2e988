"""Executors: the asynchronous protocol, failures as results, replay answers with recorded costs."""
from __future__ import annotations

import time

import pytest

from _oracle_data import oracle_frame
from engine.config import Config
from engine.records import Measurement
from experiments.executors import Executor, LocalExecutor, OracleExecutor


def _spec(c: Config):
    from hardware.base import BenchmarkSpec

    return BenchmarkSpec(c, iterations=2, warmup=0)


def test_local_executor_protocol_with_a_stand_in_runner(monkeypatch) -> None:
    def runner(adapter: str, spec):
        if spec.config.batch_size == 2:
            raise RuntimeError("adapter exploded")
        time.sleep(0.05 * spec.config.batch_size)
        return Measurement.from_samples(spec.config, [1.0, 1.2], wall_time_s=0.1)

    ex = LocalExecutor(workers=2, runner=runner)
    monkeypatch.setattr(ex, "_adapter", lambda c: ("torch-cpu", ""))
    assert isinstance(ex, Executor)
    a, b, c = (Config("gpt2", "cpu-x", bs) for bs in (4, 2, 1))
    assert ex.free() == 2
    ex.submit(_spec(a))
    ex.submit(_spec(b))
    assert ex.free() == 0 and {x.key for x in ex.pending()} == {a.key, b.key}
    got = []
    while ex.pending():
        r = ex.wait(timeout=10)
        got.append(r)
    ms = {r.config.key: r.measurement for r in got}
    assert ms[a.key].ok
    assert ms[b.key].status == "failed" and "adapter exploded" in ms[b.key].error  # a result, not a crash
    assert ex.wait(timeout=0.01) is None
    ex.submit(_spec(c))
    assert ex.wait(timeout=10).measurement.ok
    ex.close()


def test_local_executor_check_reports_why_a_config_cannot_run() -> None:
    ex = LocalExecutor()
    ok = ex.check([Config("gpt2", "gpu-nowhere-9000", 1)])
    assert ok == [] and "gpu-nowhere-9000" in next(iter(ex.skipped.values()))
    ex.close()


def test_oracle_returns_recorded_values_failures_and_costs(syn) -> None:
    _, configs, _ = syn
    df = oracle_frame(configs[:5])
    df.loc[1, "status"] = "oom"
    df.loc[1, "error"] = "out of memory (recorded)"
    ex = OracleExecutor(df, workers=2)
    assert ex.check(configs[:6]) == configs[:5] and configs[5].key in ex.skipped
    ex.submit(_spec(configs[0]))
    ex.submit(_spec(configs[1]))
    r0, r1 = ex.wait(), ex.wait()
    by = {r.config.key: r.measurement for r in (r0, r1)}
    m0 = by[configs[0].key]
    assert m0.ok and m0.latency.median_ms == pytest.approx(df.loc[0, "latency_median_ms"])
    assert m0.wall_time_s == pytest.approx(df.loc[0, "wall_time_s"]) and len(m0.samples_ms) == 20
    assert by[configs[1].key].status == "oom"
    truth = ex.truth(configs[:3])
    assert truth[1] is None and truth[0] == pytest.approx(df.loc[0, "latency_median_ms"])
