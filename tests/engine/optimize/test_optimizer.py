"""The optimiser's loop and ranking, with a fake executor / predictor (mocks only in tests)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.config import Config
from engine.models.base import PredictionSet
from engine.optimize.optimizer import optimize_deployment
from engine.records import Measurement

SPACE = {"hardware": ["t4", "a100-80gb"], "batch_size": [1, 2, 4, 8, 16, 32, 64], "precision": ["fp32", "fp16"],
         "threads": [0], "runtime": ["torch"], "seq_len": [128]}


def true_latency_ms(c: Config) -> float:
    """A surface the roofline does not know exactly: fp16 helps a lot on the A100, little on the T4."""
    speed = {"t4": 1.0, "a100-80gb": 3.0}[c.hardware] * ({"fp32": 1.0, "fp16": 2.5 if c.hardware != "t4" else 1.2}[c.precision])
    size = {"bert-base-uncased": 1.0, "distilbert-base-uncased": 0.6}[c.model]  # ~ parameters
    return 1.5 + 4.0 * size * c.batch_size ** 0.85 / speed


class FakeExecutor:
    """Deterministic surface plus a little noise; one configuration always fails (out of memory)."""

    def __init__(self, oom: Config | None = None) -> None:
        self.rng = np.random.default_rng(0)
        self.calls: list[Config] = []
        self.oom = oom

    def run(self, c: Config) -> Measurement:
        self.calls.append(c)
        if self.oom is not None and c.key == self.oom.key:
            return Measurement.failed(c, "oom", "CUDA out of memory")
        ms = true_latency_ms(c) * math.exp(self.rng.normal(0, 0.02))
        return Measurement.from_samples(c, list(ms * np.exp(self.rng.normal(0, 0.02, 10))),
                                        memory_peak_mib=500.0 + 10 * c.batch_size)


def true_best(bound: float, exclude: str = "") -> tuple[str, float]:
    best = None
    for hw in SPACE["hardware"]:
        for b in SPACE["batch_size"]:
            for p in SPACE["precision"]:
                c = Config("bert-base-uncased", hw, b, 128, p, "inference", "torch", 0)
                lat = true_latency_ms(c)
                if lat * 1.1 <= bound and c.key != exclude:
                    thr = b * 1000 / lat
                    if best is None or thr > best[1]:
                        best = (c.key, thr)
    assert best is not None
    return best


def test_online_loop_improves_on_the_first_pick_and_records_failures(featurizer):
    bound = 30.0
    oom = Config("bert-base-uncased", "a100-80gb", 64, 128, "fp16", "inference", "torch", 0)
    ex = FakeExecutor(oom=oom)
    r = optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": bound}, SPACE, budget=10,
                            online=True, executor=ex, db=False, featurizer=featurizer, seed=0)
    assert len(r.history) == 10 and len(ex.calls) == 10
    assert len({c.key for c in ex.calls}) == 10  # never the same configuration twice
    assert r.history[0].chosen_by == "prior" and {e.chosen_by for e in r.history[1:]} == {"qLogNEI"}
    ok = [e for e in r.history if e.status == "ok"]
    first_feasible = next(e.objective for e in ok if e.feasible)
    best_found = max(e.objective for e in ok if e.feasible)
    assert best_found > first_feasible
    _, best_thr = true_best(bound, exclude=oom.key)
    assert best_found >= 0.9 * best_thr
    # the recommended configuration is evaluated, carries intervals of every metric and P(feasible)
    assert r.best is not None and r.best.evaluated and r.best.prob_feasible >= 0.5
    for m in ("throughput", "latency_ms", "latency_p90_ms", "memory_mib"):
        mi = r.best.metrics[m]
        assert mi.q05 < mi.median < mi.q95
    assert r.best.metrics["latency_p90_ms"].median < bound * 1.2
    failed = [e for e in r.history if e.status != "ok"]
    for e in failed:
        assert not e.feasible and e.objective is None
    # throughput's posterior is latency's, transformed: every reported interval agrees to rounding
    for a in [r.best, *r.alternatives]:
        b, thr, lat = a.config.batch_size, a.metrics["throughput"], a.metrics["latency_ms"]
        for q_thr, q_lat in ((thr.median, lat.median), (thr.q05, lat.q95), (thr.q95, lat.q05)):
            assert q_thr == pytest.approx(1000.0 * b / q_lat, rel=1e-3)
    # p90 is latency times a tail ratio with its own GP: its median (here ~3% above the median
    # latency in every run) is not below the latency's, and its interval is latency's widened by
    # the tail's uncertainty, evaluated or not
    for a in [r.best, *r.alternatives]:
        p90, lat = a.metrics["latency_p90_ms"], a.metrics["latency_ms"]
        assert p90.median >= lat.median * 0.995
        assert math.log(lat.q95 / lat.q05) <= math.log(p90.q95 / p90.q05) < 1.5 * math.log(lat.q95 / lat.q05)


def test_failed_run_is_recorded_and_infeasible(featurizer):
    class AlwaysOOMOnBig(FakeExecutor):
        def run(self, c):
            if c.batch_size >= 16:
                return Measurement.failed(c, "oom", "out of memory")
            return super().run(c)

    ex = AlwaysOOMOnBig()
    r = optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 1000.0}, SPACE, budget=6,
                            online=True, executor=ex, db=False, featurizer=featurizer)
    statuses = [e.status for e in r.history]
    assert "oom" in statuses  # the roofline prior first proposes a big batch; it fails and is recorded
    assert all(not e.feasible for e in r.history if e.status == "oom")
    assert r.best is not None and r.best.config.batch_size < 16


def test_online_stores_every_evaluation(tmp_path, featurizer):
    from engine.store import Store

    store = Store(tmp_path / "opt.duckdb", seed=False)
    r = optimize_deployment("bert-base-uncased", "latency", None, {**SPACE, "batch_size": [1, 2]}, budget=3,
                            online=True, executor=FakeExecutor(), db=store, featurizer=featurizer)
    assert store.count("benchmark_runs") == 3
    assert len(store.measurements()) == 3
    exp = store.get_experiment(r.experiment_id)
    assert exp["status"] == "done" and len(exp["state"]["history"]) == 3
    # a second run reuses the stored measurements as observations and measures only new configurations
    ex = FakeExecutor()
    r2 = optimize_deployment("bert-base-uncased", "latency", None, {**SPACE, "batch_size": [1, 2]}, budget=2,
                             online=True, executor=ex, db=store, featurizer=featurizer)
    done = {e.config.key for e in r.history}
    assert not done & {c.key for c in ex.calls}
    assert any("already in the store" in n for n in r2.notes)


def test_multi_objective_gives_a_pareto_set(featurizer):
    r = optimize_deployment("bert-base-uncased", ["throughput", "latency_p90_ms"], None, SPACE, budget=7,
                            online=True, executor=FakeExecutor(), db=False, featurizer=featurizer)
    assert {e.chosen_by for e in r.history[1:]} == {"qLogNEHVI"}
    assert len(r.pareto) >= 2
    thr = [a.metrics["throughput"].median for a in r.pareto]
    lat = [a.metrics["latency_p90_ms"].median for a in r.pareto]
    order = np.argsort(thr)
    assert np.all(np.diff(np.asarray(lat)[order]) > 0)  # more throughput costs latency on the front


class FakePredictor:
    """Log-normal posteriors chosen so that the fastest configuration is probably infeasible."""

    name = "fake"

    def predict(self, configs):
        n = len(configs)
        lat = np.array([10.0 * c.batch_size ** 0.7 for c in configs])
        ps = PredictionSet(configs=list(configs), predictor="fake")
        batch = np.array([c.batch_size for c in configs], float)
        ps.mu_log["latency_ms"] = np.log(lat)
        ps.sigma_log["latency_ms"] = np.full(n, 0.2)
        ps.mu_log["latency_p90_ms"] = np.log(lat * 1.1)
        ps.sigma_log["latency_p90_ms"] = np.full(n, 0.2)
        ps.mu_log["throughput"] = np.log(1000 * batch / lat)
        ps.sigma_log["throughput"] = np.full(n, 0.2)
        return ps


def test_offline_ranking_respects_prob_feasible():
    space = {"hardware": ["t4"], "batch_size": [1, 2, 4, 8, 16, 32], "precision": ["fp32"], "threads": [0],
             "runtime": ["torch"]}
    r = optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 40.0}, space, online=False,
                            predictor=FakePredictor(), db=False)
    assert r.history == [] and not r.online
    # throughput grows with the batch, but p90 = 11 * b^0.7 ms crosses 40 ms at b ~ 6.3
    assert r.best.config.batch_size == 4
    assert r.best.prob_feasible > 0.9
    big = [a for a in r.alternatives if a.config.batch_size >= 16]
    assert all(a.prob_feasible < 0.05 for a in big)
    ranked = [r.best, *r.alternatives]
    assert all(ranked[i].score >= ranked[i + 1].score for i in range(len(ranked) - 1))
    assert all(math.isclose(a.score, a.metrics["throughput"].mean * a.prob_feasible, rel_tol=1e-6) for a in ranked)


def test_offline_without_constraints_picks_the_largest_expected_throughput():
    space = {"hardware": ["t4"], "batch_size": [1, 8, 32], "precision": ["fp32"], "threads": [0], "runtime": ["torch"]}
    r = optimize_deployment("bert-base-uncased", "throughput", None, space, predictor=FakePredictor(), db=False)
    assert r.best.config.batch_size == 32 and r.best.prob_feasible == pytest.approx(1.0)


def test_transfer_from_other_models_informs_the_first_pick(featurizer):
    """Measurements of a similar model on the same hardware are context rows of the GP: the first pick
    is made under that posterior (not the bare roofline), and only the target's configurations are proposed."""
    import pandas as pd

    ex = FakeExecutor()
    rows = []
    for hw in SPACE["hardware"]:
        for b in SPACE["batch_size"]:
            for p in SPACE["precision"]:
                m = ex.run(Config("distilbert-base-uncased", hw, b, 128, p, "inference", "torch", 0))
                rows.append({**m.config.to_dict(), "status": "ok", "latency_median_ms": m.latency.median_ms,
                             "latency_p90_ms": m.latency.p90_ms, "memory_peak_mib": m.memory_peak_mib})
    prior = pd.DataFrame(rows)
    target = FakeExecutor()
    r = optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 30.0}, SPACE, budget=3, online=True,
                            executor=target, db=False, featurizer=featurizer, prior_data=prior)
    assert all(c.model == "bert-base-uncased" for c in target.calls)
    assert any("transfer" in n for n in r.notes)
    _, best_thr = true_best(30.0)
    assert r.history[0].feasible and r.history[0].objective >= 0.6 * best_thr
    assert all(a.config.model == "bert-base-uncased" for a in [r.best, *r.alternatives])


def test_three_objectives_with_a_user_price(featurizer):
    """Throughput vs p90 latency vs cost per 1M items, with an hourly price given for the T4."""
    space = {**SPACE, "batch_size": [1, 4, 16, 64]}
    r = optimize_deployment("bert-base-uncased", ["throughput", "latency_p90_ms", "cost"], None, space, budget=5,
                            online=True, executor=FakeExecutor(), db=False, featurizer=featurizer,
                            prices={"t4": 0.35})
    assert r.objectives == ("throughput", "latency_p90_ms", "cost_per_1m_usd") and r.pareto
    for a in r.pareto:
        mi = a.metrics["cost_per_1m_usd"]
        assert mi.q05 < mi.median < mi.q95
        if a.measured:
            price = 0.35 if a.config.hardware == "t4" else 1.79
            assert a.measured["cost_per_1m_usd"] == pytest.approx(price * 1e6 / 3600 / a.measured["throughput"])


def test_a_stop_request_ends_the_loop_with_a_ranking_and_an_interrupted_experiment(featurizer, tmp_path):
    """The CLI's first Ctrl-C sets ``should_stop``: what was measured is ranked and stored, the
    experiment reads ``interrupted``; a crash in the executor also leaves it ``interrupted``."""
    from engine.store import Store

    store = Store(tmp_path / "o.duckdb", seed=False)
    ex = FakeExecutor()
    r = optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 30.0}, SPACE, budget=10,
                            online=True, executor=ex, db=store, featurizer=featurizer,
                            should_stop=lambda: len(ex.calls) >= 3)
    assert r.interrupted and len(r.history) == 3 and len(ex.calls) == 3
    assert r.best is not None and r.best.evaluated and any("interrupted after 3 evaluations of 10" in n for n in r.notes)
    assert r.to_dict()["interrupted"] is True
    assert store.get_experiment(r.experiment_id)["status"] == "interrupted"
    assert len(store.measurements(status=None)) == 3

    # the same command resumes: the same experiment, only the rest of the budget is spent
    ex2 = FakeExecutor()
    done = optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 30.0}, SPACE, budget=5,
                               online=True, executor=ex2, db=store, featurizer=featurizer)
    assert done.experiment_id == r.experiment_id and len(ex2.calls) == 2 and not done.interrupted
    # the history is the experiment's: the earlier session's evaluations first, then this one's
    assert [e.step for e in done.history] == [1, 2, 3, 4, 5] and any("resumed" in n for n in done.notes)
    assert [e.config for e in done.history[:3]] == ex.calls and [e.config for e in done.history[3:]] == ex2.calls
    assert {c.key for c in ex2.calls}.isdisjoint({c.key for c in ex.calls})  # nothing measured twice
    assert store.get_experiment(done.experiment_id)["status"] == "done"
    assert len(store.get_experiment(done.experiment_id)["state"]["history"]) == 5
    assert len(store.measurements(status=None)) == 5
    # finished: the next run of the same problem starts a new optimisation
    again = optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 30.0}, SPACE, budget=1,
                                online=True, executor=FakeExecutor(), db=store, featurizer=featurizer)
    assert again.experiment_id != r.experiment_id and len(again.history) == 1

    class Crashes(FakeExecutor):
        def run(self, c):
            if len(self.calls) == 2:
                raise RuntimeError("executor died")
            return super().run(c)

    with pytest.raises(RuntimeError, match="executor died"):
        optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 30.0}, SPACE, budget=5,
                            online=True, executor=Crashes(), db=store, featurizer=featurizer)
    with store.connect() as con:
        statuses = [s for (s,) in con.execute("SELECT status FROM experiments").fetchall()]
    assert "running" not in statuses and statuses.count("interrupted") == 1


def test_a_second_ctrl_c_during_the_final_fit_leaves_the_experiment_interrupted(featurizer, tmp_path, monkeypatch):
    """Audit: after the first Ctrl-C the loop stops and the final fit runs (seconds of GP fitting);
    a second Ctrl-C there left the row "running", which `perfcast experiments` lists as killed.
    It reads ``interrupted`` with its history, as a loop's does, and the same command resumes;
    the CLI's "Aborted." says so."""
    import engine.optimize.optimizer as optimizer
    from engine.cli.main import _resume_hint
    from engine.store import Store

    store = Store(tmp_path / "o.duckdb", seed=False)
    ex = FakeExecutor()
    real_final = optimizer._final

    def final_interrupted(*args, **kwargs):  # the second Ctrl-C lands in the final fit
        raise KeyboardInterrupt

    monkeypatch.setattr(optimizer, "_final", final_interrupted)
    with pytest.raises(KeyboardInterrupt):
        optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 30.0}, SPACE, budget=5,
                            online=True, executor=ex, db=store, featurizer=featurizer,
                            should_stop=lambda: len(ex.calls) >= 2)
    (exp,) = store.experiments()
    assert exp["status"] == "interrupted" and len(exp["state"]["history"]) == 2
    assert len(store.measurements(status=None)) == 2
    monkeypatch.setattr(optimizer, "_final", real_final)
    again = optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 30.0}, SPACE, budget=3,
                                online=True, executor=FakeExecutor(), db=store, featurizer=featurizer)
    assert again.experiment_id == exp["experiment_id"] and len(again.history) == 3
    assert "run the same command again to resume" in _resume_hint(["optimize", "--model", "gpt2", "--online"])
    assert _resume_hint(["optimize", "--model", "gpt2"]) == ""  # offline: nothing is benchmarked


def test_a_stop_request_during_a_fit_starts_no_further_benchmark(featurizer):
    """Ctrl-C lands while the GP is fitted or the acquisition runs: the benchmark it chose is not run."""
    ex = FakeExecutor()
    reads = []

    def should_stop() -> bool:  # read at each step's top and again before its benchmark
        reads.append(len(ex.calls))
        return len(reads) >= 6  # step 3's second read: after its fit and acquisition

    r = optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 30.0}, SPACE, budget=10,
                            online=True, executor=ex, db=False, featurizer=featurizer, should_stop=should_stop)
    assert r.interrupted and len(ex.calls) == 2 and reads == [0, 0, 1, 1, 2, 2]
    assert any("interrupted after 2 evaluations of 10" in n for n in r.notes)


def test_the_acquisition_samples_throughput_p90_and_cost_jointly_from_one_latency_draw(featurizer):
    """Every metric is an affine map of the base GPs (surrogate.DERIVED): in each posterior sample a
    fast configuration has a high throughput, a low p90 latency and a low cost together. The
    model's marginals are the surrogate's ``predictive`` (what the ranking reports)."""
    import torch
    from botorch.sampling import SobolQMCNormalSampler

    from engine.optimize.optimizer import measured_values
    from engine.optimize.spec import enumerate_space, normalise_space
    from engine.optimize.surrogate import Observation, Surrogate, build_table, calibrated_roofline

    configs = enumerate_space("bert-base-uncased", normalise_space(SPACE), SPACE["hardware"])
    prices = {"t4": 0.53, "a100-80gb": 1.79}
    table = build_table(configs, calibrated_roofline(None, featurizer), prices, featurizer)
    ex = FakeExecutor()
    obs = []
    for j in range(0, len(configs), 5):
        obs.append(Observation(j, measured_values(ex.run(configs[j]), prices[configs[j].hardware])))
    metrics = ["throughput", "latency_p90_ms", "cost_per_1m_usd", "latency_ms", "memory_mib"]
    sur = Surrogate(table, metrics).fit(obs)
    assert sur.ready(metrics) and set(sur.models) == {"latency_ms", "tail", "memory_mib"}
    model = sur.model_list(metrics)
    rows = [1, 2, 3]  # unmeasured
    X = table.X[torch.as_tensor(rows)]
    with torch.no_grad():
        post = model.posterior(X)
        z = SobolQMCNormalSampler(torch.Size([512]), seed=0)(post)  # (512, 3, 5)
    thr, p90, cost, lat, mem = (z[..., k] for k in range(5))
    for k in range(len(rows)):
        def corr(a, b):
            return float(np.corrcoef(a[:, k].numpy(), b[:, k].numpy())[0, 1])

        assert corr(thr, lat) < -0.999 and corr(cost, lat) > 0.999  # exact transforms of one draw
        assert corr(thr, p90) < -0.8  # p90 = latency × a tail ratio with its own, smaller uncertainty
        assert abs(corr(mem, lat)) < 0.2  # memory has its own GP
    b = torch.as_tensor([configs[i].batch_size for i in rows], dtype=torch.float64)
    assert torch.allclose(thr, torch.log(1000.0 * b) - lat, atol=1e-9)
    for k, m in enumerate(metrics):
        mu, sd = sur.predictive(m, rows, observation_noise=False)
        assert np.allclose(post.mean[..., k].numpy(), mu, atol=1e-9)
        assert np.allclose(post.variance[..., k].sqrt().numpy(), sd, rtol=1e-6)


def test_the_history_is_stored_after_every_evaluation_for_a_resume_after_a_kill(featurizer, tmp_path):
    """A kill -9 writes nothing at the end: the experiment's state must already hold every
    evaluation (audit: a resume after a kill lost the first session's history)."""
    import os

    from engine.store import Store

    store = Store(tmp_path / "o.duckdb", seed=False)
    seen = []

    def cb(step, total, cfg, ev):
        if ev is not None:
            exp = store.experiments()[0]
            seen.append((exp["status"], len(exp["state"]["history"]), exp["state"]["owner"]["pid"]))

    optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 30.0}, SPACE, budget=3, online=True,
                        executor=FakeExecutor(), db=store, featurizer=featurizer, callback=cb)
    assert seen == [("running", k, os.getpid()) for k in (1, 2, 3)]


def test_a_stored_run_of_a_model_this_shell_does_not_define_is_no_context(featurizer):
    """Audit: after the README's own-model steps, online optimize in a shell without PERFCAST_MODELS
    stopped with "unknown model 'my-bert-6l'" (the context filter asked the catalog for its family)."""
    import pandas as pd

    ex = FakeExecutor()
    rows = []
    for model in ("distilbert-base-uncased", "my-bert-6l"):
        m = ex.run(Config("distilbert-base-uncased", SPACE["hardware"][0], 1, 128, "fp32", "inference", "torch", 0))
        rows.append({**m.config.to_dict(), "model": model, "status": "ok", "latency_median_ms": m.latency.median_ms,
                     "latency_p90_ms": m.latency.p90_ms, "memory_peak_mib": m.memory_peak_mib})
    r = optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 30.0}, SPACE, budget=2, online=True,
                            executor=FakeExecutor(), db=False, featurizer=featurizer, prior_data=pd.DataFrame(rows))
    assert r.best is not None and len(r.history) == 2


def test_row_floor_finds_each_rows_floor_from_the_row_itself():
    import torch

    from engine.optimize.acquisition import RowFloor, _sample_rules

    gen = torch.Generator().manual_seed(1)
    X = torch.rand(50, 6, generator=gen, dtype=torch.float64)
    floor = np.linspace(10.0, 500.0, 50)
    rf = RowFloor(X, floor)
    idx = torch.tensor([[3, 49, 0], [7, 7, 20]])
    got = rf(X[idx])  # (batch, q) as BoTorch hands them
    assert torch.allclose(got, torch.log(torch.as_tensor(floor))[idx])
    assert torch.isinf(rf(X[:1] + 0.5)).all()  # not a row of the table: no floor
    Z = torch.full((4, 2, 3, 2), math.log(5.0), dtype=torch.float64)  # samples far below every floor
    out = _sample_rules({1: rf}, {})(Z, X[idx])
    assert torch.allclose(out[..., 1], torch.log(torch.as_tensor(floor))[idx].expand(4, 2, 3))
    assert torch.equal(out[..., 0], Z[..., 0])  # only the floored output moves
    assert torch.equal(_sample_rules({1: rf}, {})(Z), Z)  # a constraint gets no X: no floor


def test_p90_samples_are_never_below_the_same_draws_median():
    """BoTorch's acquisition sampled p90 as median × tail, whose draws cross below the median where
    the tail's posterior reaches under 1; every answer's posterior holds p90 to the median."""
    import torch

    from engine.optimize.acquisition import _sample_rules

    Z = torch.tensor([[[2.0, 2.5, 0.0], [3.0, 2.9, 1.0]]], dtype=torch.float64)  # outputs: p90, latency, memory
    out = _sample_rules({}, {0: 1})(Z)
    assert out[..., 0].tolist() == [[2.5, 3.0]] and torch.equal(out[..., 1:], Z[..., 1:])


def _floored_featurizer():
    from engine.models.features import Featurizer
    from tests.engine.optimize.conftest import fake_describe_many, fake_hardware

    def with_floor(configs):
        d = fake_describe_many(configs)
        d["floor_bytes"] = d["weight_bytes"] + d["activation_bytes"]
        return d

    return Featurizer(describe_many=with_floor, resolve_hardware=fake_hardware)


def test_a_configuration_whose_resident_bytes_exceed_the_memory_cap_is_never_run():
    ex = FakeExecutor()
    space = {**SPACE, "hardware": ["a100-80gb"]}
    r = optimize_deployment("bert-base-uncased", "throughput", {"memory_mib": 700.0}, space, budget=6,
                            online=True, executor=ex, db=False, featurizer=_floored_featurizer(), seed=0)
    # floor = weights + one activation (420 + 18 MiB per item in fp32, 210 + 9 in fp16): over 700 MiB
    # are fp32 from batch 16 and fp16 at batch 64; the prior alone would pick the largest batch
    over = {(16, "fp32"), (32, "fp32"), (64, "fp32"), (64, "fp16")}
    assert not {(c.batch_size, c.precision) for c in ex.calls} & over
    assert any("4 configurations not run" in n and "700 MiB cap" in n for n in r.notes)


@pytest.mark.parametrize("objective", ["memory", ["throughput", "memory"], "latency_p90"])
def test_memory_and_p90_objectives_are_acquired_under_the_posterior_rules(objective):
    ex = FakeExecutor()
    r = optimize_deployment("bert-base-uncased", objective, None, {**SPACE, "hardware": ["t4"]}, budget=4,
                            online=True, executor=ex, db=False, featurizer=_floored_featurizer(), seed=0)
    assert len(ex.calls) == 4 and any(e.chosen_by.startswith("qLogNE") for e in r.history)


def test_a_space_wholly_over_the_memory_cap_says_so():
    ex = FakeExecutor()
    r = optimize_deployment("bert-base-uncased", "throughput", {"memory_mib": 215.0}, {**SPACE, "hardware": ["a100-80gb"]},
                            budget=3, online=True, executor=ex, db=False, featurizer=_floored_featurizer(), seed=0)
    assert not ex.calls
    assert any("must hold more than the 215 MiB cap" in n for n in r.notes)
    assert not any("has been measured" in n for n in r.notes)


def _batch_one_floored_featurizer():
    """Batch 1 must hold 1 TiB (a made-up floor far above any GP prediction); others none above theirs."""
    from engine.models.features import Featurizer
    from tests.engine.optimize.conftest import fake_describe_many, fake_hardware

    def with_floor(configs):
        d = fake_describe_many(configs)
        d["floor_bytes"] = [2.0**40 if c.batch_size == 1 else w for c, w in zip(configs, d["weight_bytes"])]
        return d

    return Featurizer(describe_many=with_floor, resolve_hardware=fake_hardware)


@pytest.mark.parametrize("rules", [True, False])
def test_a_memory_objective_never_acquires_a_row_whose_floor_is_far_above_the_gp(rules, monkeypatch):
    """Minimising memory: the GP predicts batch 1 smallest (the executor's 500 + 10·b MiB), but
    batch 1 must hold 1 TiB; under the floor the acquisition leaves it alone, without it batch 1
    is the obvious pick (the control case, rules=False, shows the test can fail)."""
    import engine.optimize.acquisition as acq

    if not rules:
        monkeypatch.setattr(acq, "_sample_rules", lambda floors, at_least: (lambda Z, X=None: Z))
    ex = FakeExecutor()
    space = {**SPACE, "hardware": ["a100-80gb"], "precision": ["fp32"]}
    r = optimize_deployment("bert-base-uncased", "memory", None, space, budget=5, online=True, executor=ex,
                            db=False, featurizer=_batch_one_floored_featurizer(), seed=0)
    acquired = [e.config.batch_size for e in r.history if e.chosen_by.startswith("qLogNE")]
    assert acquired
    assert (1 not in acquired) == rules


class _TwoRowPredictor:
    """Batch 2: ten times the throughput, p90 just over the bound (P ~ 0.42); batch 1: surely feasible."""

    name = "two-rows"

    def predict(self, configs):
        ps = PredictionSet(configs=list(configs), predictor=self.name)
        b2 = np.array([c.batch_size == 2 for c in configs])
        lat = np.where(b2, 45.0, 9.0)
        ps.mu_log["latency_ms"], ps.sigma_log["latency_ms"] = np.log(lat), np.full(len(configs), 0.2)
        ps.mu_log["latency_p90_ms"] = np.log(np.where(b2, 50.0, 10.0))
        ps.sigma_log["latency_p90_ms"] = np.full(len(configs), 0.2)
        ps.mu_log["throughput"] = np.log(np.where(b2, 1000.0, 100.0))
        ps.sigma_log["throughput"] = np.full(len(configs), 0.2)
        return ps


def test_offline_answers_the_best_feasible_configuration_not_the_top_score():
    """Audit O: the top score (E[utility] x P) sat at P 0.47 while 16 rows were above 0.5, and the
    answer read "nothing is likely feasible"."""
    space = {"hardware": ["t4"], "batch_size": [1, 2], "precision": ["fp32"], "threads": [0], "runtime": ["torch"]}
    r = optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 48.0}, space, online=False,
                            predictor=_TwoRowPredictor(), db=False)
    top = r.alternatives[0]
    assert top.config.batch_size == 2 and top.score > r.best.score and top.prob_feasible < 0.5
    assert r.best.config.batch_size == 1 and r.best.prob_feasible > 0.99 and r.feasible
    assert not any("no configuration is feasible" in n for n in r.notes)


def test_a_throughput_floor_that_restates_a_latency_bound_changes_nothing():
    """Audit O: throughput >= 14 at batch 1 is latency <= 71.4 ms; as independent events the pair read
    P 0.36 where each alone read 0.60, and the answer turned infeasible."""
    from engine.optimize.ranking import prob_feasible
    from engine.optimize.spec import Constraint, Problem

    ps = FakePredictor().predict([Config("bert-base-uncased", "t4", 1)])
    post = {m: (ps.mu_log[m], ps.sigma_log[m]) for m in ps.mu_log}
    cands = (Config("bert-base-uncased", "t4", 1),)
    lat = prob_feasible(Problem("m", ("latency_ms",), (Constraint("latency_ms", 10.0),), cands), post)
    both = prob_feasible(Problem("m", ("latency_ms",), (Constraint("latency_ms", 10.0),
                                                        Constraint("throughput", 100.0)), cands), post)
    assert 0.4 < lat[0] < 0.6 and both[0] == pytest.approx(lat[0])


def _sigint_during(store, status: str, times: int = 1):  # type: ignore[no-untyped-def]
    """``store.upsert_experiment`` that gets ``times`` real SIGINTs (a Ctrl-C) as it writes ``status``."""
    import signal

    real = store.upsert_experiment
    sent: list[str] = []

    def upsert(experiment_id, name, config, st, state=None):  # type: ignore[no-untyped-def]
        if st == status and not sent:
            sent.append(st)
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)  # to this (the main) thread, as the write starts
        return real(experiment_id, name, config, st, state)

    store.upsert_experiment = upsert
    return sent


def test_a_third_ctrl_c_while_the_interrupted_record_is_written_waits_for_it(featurizer, tmp_path, monkeypatch):
    """Session 33: a second Ctrl-C in the final fit marks the experiment interrupted; a third while
    that row was written rolled it back (a KeyboardInterrupt inside the write), and the experiment
    stayed "running", listed as killed. The Ctrl-C now waits for the write, which lands."""
    import signal

    import engine.optimize.optimizer as optimizer
    from engine.store import Store

    store = Store(tmp_path / "o.duckdb", seed=False)
    ex = FakeExecutor()

    def final_interrupted(*args, **kwargs):  # the second Ctrl-C lands in the final fit
        raise KeyboardInterrupt

    monkeypatch.setattr(optimizer, "_final", final_interrupted)
    sent = _sigint_during(store, "interrupted")
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 30.0}, SPACE, budget=5,
                            online=True, executor=ex, db=store, featurizer=featurizer,
                            should_stop=lambda: len(ex.calls) >= 2)
    assert sent and signal.getsignal(signal.SIGINT) is before  # the handler is put back
    (exp,) = store.experiments()
    assert exp["status"] == "interrupted" and len(exp["state"]["history"]) == 2


def test_a_ctrl_c_during_the_last_write_stops_the_call_after_it(featurizer, tmp_path):
    """Session 33: the row's last write ("done") rolled back by a Ctrl-C left it "running"; the
    Ctrl-C now waits for it and then stops the call as usual."""
    from engine.store import Store

    store = Store(tmp_path / "o.duckdb", seed=False)
    sent = _sigint_during(store, "done")
    with pytest.raises(KeyboardInterrupt):
        optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 30.0}, SPACE, budget=2,
                            online=True, executor=FakeExecutor(), db=store, featurizer=featurizer)
    (exp,) = store.experiments()
    assert sent and exp["status"] == "done" and len(exp["state"]["history"]) == 2


def test_a_fourth_ctrl_c_during_the_interrupted_write_still_stops_at_once(featurizer, tmp_path, monkeypatch):
    """The held Ctrl-C must not make a write that waits (another process's lock, waited out under
    Store.patience) unstoppable: a second one during the write is delivered at once."""
    import engine.optimize.optimizer as optimizer
    from engine.store import Store

    store = Store(tmp_path / "o.duckdb", seed=False)
    ex = FakeExecutor()
    monkeypatch.setattr(optimizer, "_final", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    sent = _sigint_during(store, "interrupted", times=2)
    with pytest.raises(KeyboardInterrupt):
        optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 30.0}, SPACE, budget=5,
                            online=True, executor=ex, db=store, featurizer=featurizer,
                            should_stop=lambda: len(ex.calls) >= 2)
    (exp,) = store.experiments()
    assert sent and exp["status"] == "running"  # stopped before the write: listed as killed, and resumable
