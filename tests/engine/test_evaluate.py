"""Scores and the evaluation runner on tiny examples whose answers are known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import Config
from engine.errors import InvalidValueError
from engine.evaluate import evaluate, make_folds, noise_floor
from engine.models.base import PredictionSet
from engine.scoring import aggregate, crps_gaussian, crps_lognormal, crps_samples, row_scores


def test_coverage_of_a_perfectly_known_distribution_is_nominal() -> None:
    rng = np.random.default_rng(1)
    n = 20000
    mu = rng.normal(1.0, 1.0, size=n)
    sigma = rng.uniform(0.05, 0.6, size=n)
    y = np.exp(mu + sigma * rng.standard_normal(n))
    s = aggregate(row_scores(y, mu_log=mu, sigma_log=sigma))
    assert s.coverage_50 == pytest.approx(0.5, abs=0.015)
    assert s.coverage_90 == pytest.approx(0.9, abs=0.01)
    # the same through posterior draws
    draws = np.exp(mu[None, :2000] + sigma[None, :2000] * rng.standard_normal((4000, 2000)))
    s2 = aggregate(row_scores(y[:2000], samples=draws))
    assert s2.coverage_90 == pytest.approx(0.9, abs=0.03)
    assert s2.coverage_50 == pytest.approx(0.5, abs=0.04)


def test_overconfident_intervals_undercover() -> None:
    rng = np.random.default_rng(2)
    y = np.exp(rng.normal(0, 0.5, size=5000))
    s = aggregate(row_scores(y, mu_log=np.zeros(5000), sigma_log=np.full(5000, 0.1)))
    assert s.coverage_90 < 0.3


def test_crps_of_a_point_mass_is_the_absolute_error() -> None:
    x = np.array([1.0, 5.0, 2.5])
    y = np.array([3.0, 4.0, 2.5])
    np.testing.assert_allclose(crps_samples(np.tile(x, (7, 1)), y), np.abs(x - y))
    np.testing.assert_allclose(crps_gaussian(x, np.zeros(3), y), np.abs(x - y))
    np.testing.assert_allclose(crps_lognormal(np.log(x), np.zeros(3), y), np.abs(x - y))


def test_closed_form_crps_matches_the_sample_estimator() -> None:
    rng = np.random.default_rng(3)
    mu, sigma, y = np.array([0.2, 2.0]), np.array([0.4, 0.1]), np.array([1.0, 9.0])
    draws = np.exp(mu + sigma * rng.standard_normal((200000, 2)))
    np.testing.assert_allclose(crps_lognormal(mu, sigma, y), crps_samples(draws, y), rtol=0.02)
    np.testing.assert_allclose(crps_gaussian(mu, sigma, np.log(y)), crps_samples(np.log(draws), np.log(y)), rtol=0.02)


def test_point_prediction_has_no_interval_scores() -> None:
    y = np.array([1.0, 2.0, 4.0, 8.0])
    pred = np.array([1.1, 1.8, 4.4, 8.0])
    s = aggregate(row_scores(y, mu_log=np.log(pred), sigma_log=np.zeros(4)), point=True)
    assert s.coverage_50 is None and s.coverage_90 is None and s.mean_rel_width_90 is None
    assert s.median_ape == pytest.approx(np.median(np.abs(pred - y) / y))
    assert s.mape == pytest.approx(np.mean(np.abs(pred - y) / y))
    assert s.spearman == pytest.approx(1.0)
    assert s.crps_log == pytest.approx(np.mean(np.abs(np.log(pred) - np.log(y))))


def _frame(n_models: int = 4, repeats: int = 2) -> pd.DataFrame:
    rows = []
    for i in range(n_models):
        for b in (1, 2, 4):
            c = Config(["gpt2", "bert-base-uncased", "resnet50", "t5-small"][i], "t4", b)
            for r in range(repeats):
                rows.append({**c.to_dict(), "config_key": c.key, "latency_median_ms": 10.0 * b * (1 + i) + r,
                             "memory_peak_mib": 100.0 + i, "latency_std_ms": 0.5})
    return pd.DataFrame(rows)


def test_random_folds_keep_repeats_of_a_configuration_together() -> None:
    df = _frame()
    (fold,) = make_folds(df, "random", 0.25, seed=0)
    train_keys = set(df["config_key"].iloc[fold.train])
    test_keys = set(df["config_key"].iloc[fold.test])
    assert not train_keys & test_keys
    assert len(test_keys) == 3  # 25% of 12 configurations


def test_group_folds_hold_each_group_out_in_turn() -> None:
    df = _frame()
    folds = make_folds(df, "model", seed=0)
    assert sorted(f.name for f in folds) == sorted(df["model"].unique())
    for f in folds:
        assert set(df["model"].iloc[f.test]) == {f.name}
        assert f.name not in set(df["model"].iloc[f.train])
    assert len(make_folds(df, "model", fraction=0.5, seed=1)) == 2
    fam = make_folds(df, "family", seed=0)
    assert {f.name for f in fam} == {"text_generation", "text_embedding", "vision"}
    with pytest.raises(InvalidValueError):
        make_folds(df, "hardware")  # only one hardware: nothing to hold out
    with pytest.raises(InvalidValueError):
        make_folds(df, "sideways")


def test_noise_floor_from_repeated_runs() -> None:
    nf = noise_floor(_frame())
    assert nf["n_repeated_configs"] == 12
    assert 0 < nf["between_runs_median_ape"] < 0.1  # runs differ by 1 ms on 10..120 ms


class _Oracle:
    """Knows the true log-normal; the runner must report nominal coverage for it."""

    name = "oracle"

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def fit(self, data: pd.DataFrame) -> "_Oracle":
        assert len(data) > 0
        return self

    def predict(self, configs: list[Config]) -> PredictionSet:
        ps = PredictionSet(configs=list(configs), predictor=self.name)
        mu = np.array([np.log(c.batch_size * 10.0) for c in configs])
        ps.mu_log["latency_ms"], ps.sigma_log["latency_ms"] = mu, np.full(len(configs), self.sigma)
        return ps


def test_runner_pools_folds_and_reports_each_predictor() -> None:
    rng = np.random.default_rng(5)
    rows = []
    for k in range(600):
        b = int(rng.choice([1, 2, 4, 8]))
        c = Config("gpt2", ["t4", "l4", "a10g"][k % 3], b, seq_len=k)  # distinct configs
        rows.append({**c.to_dict(), "config_key": c.key,
                     "latency_median_ms": float(np.exp(np.log(10.0 * b) + 0.3 * rng.standard_normal()))})
    df = pd.DataFrame(rows)
    rep = evaluate(df, "hardware", predictors=["roofline", "gp"],
                   factory=lambda name: _Oracle(0.3 if name == "gp" else 0.05))
    assert rep.n_test == 600 and len(rep.folds) == 3
    gp, roof = rep.results["gp"].scores["latency_ms"], rep.results["roofline"].scores["latency_ms"]
    assert gp.coverage_90 == pytest.approx(0.9, abs=0.04)
    assert roof.coverage_90 < 0.3  # overconfident
    assert gp.crps_log < roof.crps_log  # the calibrated one scores better
    assert "memory_mib" not in rep.results["gp"].scores  # no memory column, no memory scores
    d = rep.to_dict()
    assert set(d) == {"roofline", "gp", "_meta"}
    assert d["gp"]["latency_ms"]["coverage_90"] == gp.coverage_90


def test_a_predictor_named_twice_is_fitted_once() -> None:
    """``--predictors gp,gp`` fitted and scored gp twice (minutes for the hierarchical model), and
    the report kept only the second."""
    made: list[str] = []

    def factory(name: str) -> "_Oracle":
        made.append(name)
        return _Oracle(0.3)

    rng = np.random.default_rng(5)
    rows = []
    for k in range(60):
        c = Config("gpt2", ["t4", "l4", "a10g"][k % 3], 1, seq_len=k)
        rows.append({**c.to_dict(), "config_key": c.key, "latency_median_ms": float(10 * np.exp(rng.normal()))})
    rep = evaluate(pd.DataFrame(rows), "hardware", predictors=["gp", "roofline", "gp"], factory=factory)
    assert made == ["gp"] * 3 + ["roofline"] * 3  # one fit per fold, per predictor
    assert list(rep.results) == ["gp", "roofline"]


def test_runner_rejects_unknown_predictors() -> None:
    with pytest.raises(InvalidValueError):
        evaluate(_frame(), "random", predictors=["oracle"])


def test_an_overflowing_draw_keeps_the_log_crps_finite() -> None:
    rng = np.random.default_rng(6)
    draws = np.exp(rng.standard_normal((200, 3)))
    draws[0, 1] = np.inf  # a heavy-tailed posterior predictive can overflow
    s = aggregate(row_scores(np.array([1.0, 2.0, 3.0]), samples=draws))
    assert s.crps_log is not None and np.isfinite(s.crps_log)


def test_scores_per_software_path_expose_a_path_the_pooled_coverage_hides() -> None:
    """The truth is twice as noisy on int8 as the predictor believes: pooled 90% coverage still
    looks passable, the int8 path's own coverage does not."""
    rng = np.random.default_rng(7)
    rows = []
    for k in range(800):
        b, int8 = int(rng.choice([1, 2, 4, 8])), k % 4 == 0
        c = Config("gpt2", ["t4", "l4"][k % 2], b, seq_len=k, precision="int8" if int8 else "fp32")
        sd = 0.6 if int8 else 0.3
        rows.append({**c.to_dict(), "config_key": c.key,
                     "latency_median_ms": float(np.exp(np.log(10.0 * b) + sd * rng.standard_normal()))})
    rep = evaluate(pd.DataFrame(rows), "hardware", predictors=["gp"], factory=lambda name: _Oracle(0.3))
    r = rep.results["gp"]
    by = r.by_path
    assert set(by) == {"torch/fp32/inference", "torch/int8/inference"}
    assert sum(s.n for s in by.values()) == r.scores["latency_ms"].n == 800
    assert by["torch/fp32/inference"].coverage_90 == pytest.approx(0.9, abs=0.04)
    assert by["torch/int8/inference"].coverage_90 < 0.7
    pooled = sum(s.n * s.coverage_90 for s in by.values()) / 800
    assert r.scores["latency_ms"].coverage_90 == pytest.approx(pooled)
    assert rep.to_dict()["gp"]["latency_by_software_path"]["torch/int8/inference"]["n"] == 200


def test_scores_are_of_the_posterior_the_answers_show_floor_and_envelope_included():
    """evaluate scored memory on the plain log-normal though every answer truncates it at the
    floor, and did not score p90 at all; a floor deep in the bulk or a crossing p90 changed the
    quantiles users see but not the coverage evaluate reported."""
    import pandas as pd

    from engine.config import Config
    from engine.evaluate import score_rows
    from engine.models.base import PredictionSet
    from engine.scoring import crps_lognormal

    cfgs = [Config("gpt2", "cpu", b, 16) for b in (1, 2, 4)]
    mu = np.log([100.0, 200.0, 400.0])
    ps = PredictionSet(cfgs, "t", mu_log={"memory_mib": mu, "latency_ms": mu, "latency_p90_ms": mu - 0.2},
                       sigma_log={m: np.full(3, 0.3) for m in ("memory_mib", "latency_ms", "latency_p90_ms")},
                       floor={"memory_mib": np.array([120.0, 1.0, 1.0])}, at_least={"latency_p90_ms": "latency_ms"})
    test = pd.DataFrame({"memory_peak_mib": [130.0, 210.0, 380.0], "latency_p90_ms": [110.0, 190.0, 420.0]})
    pos = np.arange(3)
    mem = score_rows(ps, test, pos, "memory_mib", "memory_peak_mib")
    assert np.allclose(mem.q, ps.quantiles("memory_mib", [0.05, 0.25, 0.5, 0.75, 0.95]))
    assert mem.q[0, 0] >= 120.0  # the floor: no quantile below it
    # a floor far below the bulk: the CRPS is the plain log-normal's, within the level grid's error
    assert np.allclose(mem.crps[1:], crps_lognormal(mu[1:], np.full(2, 0.3), test["memory_peak_mib"][1:].to_numpy()),
                       rtol=1e-4)
    p90 = score_rows(ps, test, pos, "latency_p90_ms", "latency_p90_ms")
    assert np.allclose(p90.q[2], np.exp(mu))  # the envelope: p90's median is the median latency's


def test_a_fold_whose_fit_fails_is_named() -> None:
    """Audit H: "hierarchical failed: NUTS diagnostics FAILED ..." named no fold of a hardware holdout."""
    from engine.errors import DiagnosticsError

    rows = []
    for k in range(60):
        c = Config("gpt2", ["t4", "l4", "a10g"][k % 3], 1, seq_len=k)
        rows.append({**c.to_dict(), "config_key": c.key, "latency_median_ms": 10.0})
    df = pd.DataFrame(rows)

    class _FailsWithoutL4(_Oracle):
        def fit(self, data: pd.DataFrame) -> "_Oracle":
            if "l4" not in set(data["hardware"]):
                raise DiagnosticsError("NUTS diagnostics FAILED: max R-hat 1.05")
            return self

    rep = evaluate(df, "hardware", predictors=["gp"], factory=lambda name: _FailsWithoutL4(0.3))
    err = rep.results["gp"].error
    assert err.startswith("fold 'l4' (train 40): NUTS diagnostics FAILED") and rep.results["gp"].exit_code == 4


def test_memory_is_scored_only_where_the_run_built_its_model_as_today() -> None:
    """A prediction is for today's build; a legacy torch bf16/int8 run's peak holds an fp32 build
    (engine.models.targets.legacy_builds), so its memory is not scored, while its latency is."""
    import json

    import pandas as pd

    from engine.config import Config
    from engine.evaluate import score_rows
    from engine.models.base import PredictionSet
    from hardware.torch_common import build_versions

    cfgs = [Config("gpt2", "cpu", 1, 16, p, "inference", "torch") for p in ("fp32", "bf16", "bf16")]
    mu = np.log([100.0, 200.0, 400.0])
    ps = PredictionSet(cfgs, "t", mu_log={"memory_mib": mu, "latency_ms": mu},
                       sigma_log={m: np.full(3, 0.3) for m in ("memory_mib", "latency_ms")})
    test = pd.DataFrame({"runtime": ["torch"] * 3, "precision": ["fp32", "bf16", "bf16"],
                         "versions": [json.dumps({}), json.dumps({}), json.dumps(build_versions())],
                         "memory_peak_mib": [100.0, 900.0, 400.0], "latency_median_ms": [1.0, 2.0, 3.0]})
    pos = np.arange(3)
    assert np.allclose(score_rows(ps, test, pos, "memory_mib", "memory_peak_mib").y, [100.0, 400.0])
    assert len(score_rows(ps, test, pos, "latency_ms", "latency_median_ms").y) == 3


def test_runs_the_fits_leave_out_are_not_scored_either() -> None:
    """Audit 2026-12-08: a run timed on a busy machine (5-25x slow, left out of every fit) was
    still held out and scored as the predictor's miss, and counted in the noise floor."""
    rows = []
    for k in range(40):
        c = Config("gpt2", "cpu-amd-epyc-2c", [1, 2, 4, 8][k % 4], seq_len=k, threads=2)
        rows.append({**c.to_dict(), "config_key": c.key, "status": "ok", "foreign_cpu_cores": 0.0,
                     "latency_median_ms": 10.0 * c.batch_size})
    busy = dict(rows[0], latency_median_ms=rows[0]["latency_median_ms"] * 20, foreign_cpu_cores=1.9)
    df = pd.DataFrame(rows + [busy] + [dict(busy, config_key=f"{busy['config_key']}-{i}") for i in range(3)])
    with pytest.warns(RuntimeWarning, match="left 4 stored runs out of the evaluation.*4 timed on a busy machine"):
        rep = evaluate(df, "random", fraction=0.5, seed=0, predictors=["gp"], factory=lambda name: _Oracle(0.05))
    assert rep.n_measurements == 40
    assert rep.results["gp"].scores["latency_ms"].median_ape == pytest.approx(0.0, abs=1e-9)


def test_a_run_of_a_device_no_catalog_defines_does_not_fail_every_predictor(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Audit 2026-12-08: one imported run of a teammate's device ('t5', stored, left out of every
    fit with a warning) made `perfcast evaluate` print "roofline failed: ... unknown hardware 't5'"
    and no score at all; a model no catalog defines ('gpt3') became a fold of --holdout model."""
    from engine.store import Store

    df = Store(tmp_path / "s.duckdb").measurements(with_samples=True)
    df = df[df["model"].isin(["gpt2", "bert-base-uncased"])].reset_index(drop=True)
    extra = pd.concat([df.iloc[:1].assign(hardware="t5", run_id="x1", config_key="k1"),
                       df.iloc[:1].assign(model="gpt3", run_id="x2", config_key="k2")])
    with pytest.warns(RuntimeWarning, match=r"left 2 stored runs out of the evaluation.*\(gpt3\).*\(t5\)"):
        rep = evaluate(pd.concat([df, extra], ignore_index=True), "model", predictors=["roofline"])
    res = rep.results["roofline"]
    assert res.error is None and res.scores["latency_ms"].n == len(df)
    assert rep.folds == ["bert-base-uncased", "gpt2"]


def test_an_empty_store_is_a_data_problem_exit_3() -> None:
    """README: exit 3 for "a store with no runs to fit on", as `train` gives; evaluate gave 2."""
    from engine.errors import NoDataError

    with pytest.raises(NoDataError) as e:
        evaluate(pd.DataFrame(), "random", predictors=["gp"], factory=lambda name: _Oracle(0.1))
    assert e.value.exit_code == 3


def test_the_json_names_the_fraction_a_default_random_holdout_used() -> None:
    """Audit 2026-12-08: --json said "fraction": null while the folds and the table said 20%."""
    df = _frame()
    rep = evaluate(df, "random", seed=0, predictors=["gp"], factory=lambda name: _Oracle(0.1))
    assert rep.to_dict()["_meta"]["fraction"] == 0.2 and rep.folds == ["random 20% of configurations"]
    assert evaluate(df, "model", predictors=["gp"], factory=lambda name: _Oracle(0.1)).fraction is None
