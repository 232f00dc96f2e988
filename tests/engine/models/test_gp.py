"""GP predictor: honest intervals for unseen devices, chunked prediction, joint draws."""
from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from engine.models.features import configs_from_frame
from engine.models.gp import GPPredictor

from conftest import NEW, SEEN


def _fit(featurizer, df, **kw):
    return GPPredictor(featurizer=featurizer, maxiter=40, **kw).fit(df)


@pytest.fixture(scope="module")
def gp(featurizer, train_df):
    return _fit(featurizer, train_df)


def _log_width(ps, metric="latency_ms"):
    q = ps.quantiles(metric, [0.05, 0.95])
    return np.log(q[1] / q[0])


def test_unseen_hardware_wide_then_shrinks_and_covers(featurizer, train_df, new_hw_df, gp):
    test = new_hw_df.iloc[40:]
    configs = configs_from_frame(test)
    seen_configs = configs_from_frame(train_df.iloc[:20])
    before = _log_width(gp.predict(configs))
    # an unmeasured device: far wider than a measured one (hardware prior sd 0.5 in log)
    assert np.median(before) > 2.0 * np.median(_log_width(gp.predict(seen_configs)))
    assert np.median(before) > 2 * 1.645 * 0.4
    after_gp = GPPredictor(featurizer=featurizer, maxiter=40).fit(pd.concat([train_df, new_hw_df.iloc[:40]]))
    ps = after_gp.predict(configs)
    after = _log_width(ps)
    assert np.median(after) < 0.5 * np.median(before)
    q = ps.quantiles("latency_ms", [0.05, 0.95])
    y = test["latency_median_ms"].to_numpy()
    assert np.mean((y >= q[0]) & (y <= q[1])) >= 0.75


def test_chunked_prediction_matches_exact_posterior(gp, featurizer, new_hw_df, train_df):
    """The fast cache agrees with GPyTorch's exact posterior (mean exactly, sd within a few %)."""
    import gpytorch

    # a device without training runs, and rows of the training devices: the overhead term's
    # cross-covariance is zero for the first and not for the second
    configs = configs_from_frame(new_hw_df) + configs_from_frame(train_df.iloc[::7])
    assert gp.outputs["latency_ms"].fast.oh_scale > 0
    out = gp.outputs["latency_ms"]
    X = gp.design.matrix(featurizer(configs))
    mu_fast, var_fast = out.latent(X, chunk=7)  # tiny chunks: many partial blocks
    with torch.no_grad(), gpytorch.settings.max_cholesky_size(10**5):
        post = out.model.posterior(torch.as_tensor(X))
    np.testing.assert_allclose(mu_fast, post.mean.reshape(-1).numpy(), atol=1e-3)
    ratio = np.sqrt((var_fast + out.new_noise_var()) / (post.variance.reshape(-1).numpy() + out.new_noise_var()))
    assert ratio.min() > 0.98 and ratio.max() < 1.1  # Nyström errs wide; float32 eigh adds ±1%


def test_large_matrix_in_chunks_is_memory_safe(gp):
    from bench.synthetic import random_configs

    configs = random_configs(20_000, SEEN + [NEW], seed=3)
    gp.chunk_size = 2048
    try:
        ps = gp.predict(configs)
    finally:
        gp.chunk_size = 8192
    assert len(ps) == 20_000
    assert all(np.isfinite(ps.sigma_log[m]).all() for m in ps.sigma_log)
    single = gp.predict(configs[-3:])
    np.testing.assert_allclose(single.mu_log["latency_ms"], ps.mu_log["latency_ms"][-3:], rtol=1e-5)


def test_joint_samples_shape_and_correlation(gp, featurizer):
    from engine.config import Config

    a = Config("syn-bert-m", NEW, 8, 128, "fp32", "inference", "torch", 0)
    configs = [a, a.with_(batch_size=16), a.with_(hardware=SEEN[1])]
    draws = gp.sample(configs, 4000, seed=1)
    assert draws.shape == (4000, 3)
    c = np.corrcoef(np.log(draws).T)
    # two batch sizes on the same unmeasured device share its (unknown) deviation
    assert c[0, 1] > 0.5
    assert c[0, 1] > c[0, 2] + 0.2
    # marginals agree with predict()
    ps = gp.predict(configs)
    np.testing.assert_allclose(np.log(draws).std(0), ps.sigma_log["latency_ms"], rtol=0.1)


def test_warm_refit_and_pickle_round_trip(gp, featurizer, train_df):
    blob = pickle.dumps(gp)
    back = pickle.loads(blob)
    back.featurizer = featurizer
    back.roofline.featurizer = featurizer
    configs = configs_from_frame(train_df.iloc[:10])
    np.testing.assert_allclose(back.predict(configs).mu_log["latency_ms"], gp.predict(configs).mu_log["latency_ms"],
                               rtol=1e-6)
    ls0 = gp.outputs["latency_ms"].model.covar_module.base.lengthscale.detach().clone()
    back.maxiter_warm = 0  # warm start without iterations: exactly the previous hyperparameters
    back.fit(train_df)
    assert torch.allclose(ls0, back.outputs["latency_ms"].model.covar_module.base.lengthscale.detach())
    back.maxiter_warm = 12  # a few iterations from there (the fixture's fit stopped at maxiter, so they move)
    back.fit(train_df)
    ls1 = back.outputs["latency_ms"].model.covar_module.base.lengthscale.detach()
    assert float((ls1.log() - ls0.log()).abs().max()) < math.log(3.0)


def test_runs_without_raw_samples_get_a_sampling_variance() -> None:
    """Runs imported from CSV carry pd.NA instead of a samples list; that must not break fitting."""
    import pandas as pd

    from engine.models.targets import DEFAULT_LOG_VAR, log_median_variance

    assert log_median_variance(pd.NA, 10.0, 1.0, 5) == pytest.approx(3.141592653589793 / 2 * 0.01 / 5)
    assert log_median_variance(None, 10.0, pd.NA, 5) == DEFAULT_LOG_VAR
    assert log_median_variance([1.0, 1.1, 0.9, 1.2], 1.0, 0.1, 4) > 0
    # one sample (a --max-time cap): no spread of its own, so the assumed one, not DEFAULT_LOG_VAR's 2%
    one = log_median_variance([250.0], 250.0, 0.0, 1)
    assert one == pytest.approx(3.141592653589793 / 2 * 0.09**2) and one > 20 * DEFAULT_LOG_VAR
    assert log_median_variance([250.0, 260.0], 255.0, 7.0, 2) == pytest.approx(one / 2)


def test_calibration_widens_the_stratum_the_gp_fits_worst(featurizer) -> None:
    """Runs of one precision carry extra, unmodelled scatter: that stratum's multiplier grows,
    the others stay near the global one, and predictions there are wider."""
    from bench.synthetic import random_configs, synthetic_measurements
    from engine.models.gp import GPPredictor

    df = synthetic_measurements(random_configs(240, SEEN, seed=5), seed=5)
    rng = np.random.default_rng(0)
    bad = (df["precision"] == "bf16").to_numpy()
    factor = np.exp(rng.normal(0.0, 0.35, len(df)) * bad)
    for col in ("latency_median_ms", "latency_p90_ms"):
        df[col] = df[col] * factor
    df["samples_ms"] = [list(np.asarray(s) * f) for s, f in zip(df["samples_ms"], factor)]
    gp = GPPredictor(featurizer=featurizer, maxiter=30).fit(df)
    scales = gp.outputs["latency_ms"].stratum_calibration
    bf16 = [v for k, v in scales.items() if k.endswith("/bf16")]
    fp32 = [v for k, v in scales.items() if k.endswith("/fp32")]
    assert bf16 and fp32 and max(bf16) > 1.15 * max(fp32)
    configs = configs_from_frame(df.iloc[:40])
    ps = gp.predict(configs)
    is_bf16 = np.array([c.precision == "bf16" for c in configs])
    sd = ps.sigma_log["latency_ms"]
    assert is_bf16.any() and (~is_bf16).any()
    assert np.median(sd[is_bf16]) > np.median(sd[~is_bf16])


def test_unmeasured_software_path_keeps_its_own_uncertainty(featurizer, train_df):
    """A runtime × precision combination never measured (its runtime and precision each were)
    gets a wider interval than the same configurations on a measured path: the software-path
    group term keeps its prior variance there."""
    path = (train_df["runtime"] == "onnxruntime") & (train_df["precision"] == "int8")
    assert path.sum() >= 5
    gp = _fit(featurizer, train_df[~path])
    unmeasured = configs_from_frame(train_df[path])
    measured = [c.with_(precision="fp32") for c in unmeasured]  # onnxruntime/fp32 is in the training data
    w_new, w_seen = _log_width(gp.predict(unmeasured)), _log_width(gp.predict(measured))
    # 2.25x with the term; 1.84x without it (the one-hot features alone make the path look known)
    assert np.median(w_new) > 2.0 * np.median(w_seen)


@pytest.mark.parametrize("fails", [1, 2])
def test_a_failed_hyperparameter_fit_does_not_kill_the_fit(featurizer, train_df, monkeypatch, fails: int) -> None:
    """BoTorch raises ModelFittingError when L-BFGS ends with a warning (abnormal line search):
    the GP then keeps the point the optimiser reached, or, when that fails too, its starting
    hyperparameters — never an exception that would kill a loop or an evaluation."""
    import botorch.fit
    from botorch.exceptions.errors import ModelFittingError

    real = botorch.fit.fit_gpytorch_mll
    calls = {"n": 0}

    def flaky(mll, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] <= fails:
            raise ModelFittingError("All attempts to fit the model have failed.")
        return real(mll, **kw)

    monkeypatch.setattr(botorch.fit, "fit_gpytorch_mll", flaky)
    with pytest.warns(RuntimeWarning, match="GP fit"):
        gp = _fit(featurizer, train_df.iloc[:60])
    note = gp.fit_notes["latency_ms"]
    assert ("kept the point it reached" in note) if fails == 1 else ("kept the starting" in note)
    ps = gp.predict(configs_from_frame(train_df.iloc[60:80]))
    assert np.all(np.isfinite(ps.mu_log["latency_ms"])) and np.all(ps.sigma_log["latency_ms"] > 0)


def test_a_path_unmeasured_on_one_device_stays_uncertain_there(featurizer, train_df):
    """A software path measured on one device but not on another: on the other it gets a wider
    interval than a path measured there (the device × software-path term keeps its prior variance;
    3.7x here, 1.8x without the term, when one device's offset and the path's shared offset made
    the pair look known), and a design fitted on a single device leaves the term out."""
    from engine.models.gp import Design

    path = train_df["runtime"] + "/" + train_df["precision"] + "/" + train_df["mode"]
    hole = (train_df["hardware"] == "gpu-syn-a") & (path == "onnxruntime/fp32/inference")
    assert hole.sum() >= 5 and ((path == "onnxruntime/fp32/inference") & ~hole).sum() >= 5  # measured elsewhere
    gp = _fit(featurizer, train_df[~hole])
    assert "hardware_software" in gp.design.groups
    unmeasured = configs_from_frame(train_df[hole])
    measured = [c.with_(runtime="torch") for c in unmeasured]  # torch/fp32 is measured on that device
    assert np.median(_log_width(gp.predict(unmeasured))) > 2.5 * np.median(_log_width(gp.predict(measured)))
    one = train_df[train_df["hardware"] == "gpu-syn-a"]
    single = Design.from_training(featurizer(configs_from_frame(one)))
    assert "hardware_software" not in single.groups and "software" in single.groups


def test_one_device_leaves_the_roofline_time_out(featurizer, train_df):
    """A design fitted on one device leaves the roofline time out of the smooth kernel (a faster
    device's shorter roofline times would land on the points of the old device's smaller
    workloads), while two devices keep it; the peak stays in either case."""
    from engine.models.gp import DEVICE_FEATURES, Design

    def kept(df):
        ff = featurizer(configs_from_frame(df))
        return {ff.names[j] for j in Design.from_training(ff).columns}

    two = kept(train_df)
    one = kept(train_df[train_df["hardware"] == "gpu-syn-a"])
    assert DEVICE_FEATURES <= two  # they vary across the two devices
    assert not (DEVICE_FEATURES & one) and {"log_flops", "log_batch", "log_peak"} <= one


def _exact_roofline(featurizer, df, overhead_ms, seed):
    """``df`` with latencies from the roofline with this per-pass overhead (5% noise)."""
    from engine.models.roofline import RooflineParams, RooflinePredictor

    p = RooflineParams(eff_compute=0.2, eff_memory=0.5, overhead_ms=overhead_ms)
    lat = RooflinePredictor(p, featurizer).latency_ms(featurizer(df))
    lat = lat * np.exp(np.random.default_rng(seed).normal(0.0, 0.05, len(df)))
    return df.assign(latency_median_ms=lat, latency_p90_ms=lat)


def test_short_passes_on_a_new_device_move_its_overhead_not_its_speed(featurizer):
    """A new device whose passes cost less fixed overhead (100 ms against 400): six of its
    shortest passes are measured. With the per-device overhead term (gp_kernel) they are read
    mostly as a smaller overhead, and its long, compute-bound passes stay near the roofline's
    prediction; without it (overhead_sd=0) the device's smooth offset takes the whole surprise
    and the long passes are predicted too fast (median |log error| 0.40 against 0.59 here)."""
    from bench.synthetic import random_configs, synthetic_measurements

    old = _exact_roofline(featurizer, synthetic_measurements(random_configs(120, ["cpu-syn-2c"], seed=0), seed=0),
                          400.0, 0)
    new = _exact_roofline(featurizer, synthetic_measurements(random_configs(120, ["cpu-syn-16c"], seed=1), seed=1),
                          100.0, 1)
    ff = featurizer(new)
    t = np.maximum(ff.phys["t_compute_ms"] / 0.2, ff.phys["t_memory_ms"] / 0.5)
    omega = 400.0 / (400.0 + t)  # the overhead's share under the old device's roofline
    short, long_ = new.iloc[np.argsort(-omega)[:6]], new[omega < 0.1]
    assert len(long_) >= 30

    def long_error(overhead_sd: float) -> float:
        gp = _fit(featurizer, pd.concat([old, short]), overhead_sd=overhead_sd)
        mu = gp.predict(configs_from_frame(long_)).mu_log["latency_ms"]
        return float(np.median(np.abs(np.log(long_["latency_median_ms"].to_numpy()) - mu)))

    assert long_error(0.5) < 0.8 * long_error(0.0)


def test_one_device_design_keeps_the_overhead_term_for_other_devices(featurizer, train_df):
    """Fitted on one device, the roofline's overhead IS that device's, so its rows get ω = 0 (the
    term cannot move single-device fits); any other device's rows keep their ω, and with two
    devices every row does."""
    from engine.models.gp import Design
    from engine.models.roofline import RooflineParams

    one = train_df[train_df["hardware"] == "gpu-syn-a"]
    other = train_df[train_df["hardware"] != "gpu-syn-a"]
    overhead = RooflineParams(overhead_ms=1.0, eff_compute=0.3, eff_memory=0.6)
    single = Design.from_training(featurizer(configs_from_frame(one)), overhead)
    assert single.overhead_fitted_on == "gpu-syn-a"
    assert np.all(single.matrix(featurizer(configs_from_frame(one)))[:, -1] == 0)
    omega_other = single.matrix(featurizer(configs_from_frame(other)))[:, -1]
    assert np.all((omega_other > 0) & (omega_other < 1))
    both = Design.from_training(featurizer(configs_from_frame(train_df)), overhead)
    assert both.overhead_fitted_on is None
    assert np.all(both.matrix(featurizer(configs_from_frame(one)))[:, -1] > 0)


def test_fit_roughness_recovers_a_floor_and_keeps_its_prior_without_evidence() -> None:
    """Residuals N(0, c²·sd² + τ²): with spreads from tiny to large the floor τ is identified; with
    every spread large (a spread-out active-learning design) the data cannot tell it from c, and
    the prior speaks."""
    from engine.models.gp import fit_roughness

    rng = np.random.default_rng(0)
    sd = np.exp(rng.uniform(np.log(0.01), np.log(0.5), 600))
    resid = rng.normal(0.0, np.sqrt((1.2 * sd) ** 2 + 0.1**2))
    assert 0.08 < fit_roughness(resid, sd, prior_median=0.3) < 0.125  # the data pull it from 0.3 to 0.1
    wide = np.full(30, 0.6)
    tau = fit_roughness(rng.normal(0.0, 0.6, 30), wide, prior_median=0.15)
    assert 0.15 / 1.5 < tau < 0.15 * 1.5


def test_roughness_keeps_spread_next_to_measured_runs(featurizer) -> None:
    """Each configuration carries its own departure (shared by its repeated runs) from the smooth
    surface: the GP estimates it, and an unmeasured configuration keeps at least that much spread,
    however close measured ones are; a measured configuration, whose runs pin its departure, does
    not get it."""
    from bench.synthetic import random_configs, synthetic_measurements

    df = synthetic_measurements(random_configs(240, SEEN, seed=7), seed=7)
    rng = np.random.default_rng(1)
    keys = pd.Series([c.key for c in configs_from_frame(df)])
    own = dict(zip(keys.unique(), np.exp(rng.normal(0.0, 0.15, keys.nunique()))))
    factor = keys.map(own).to_numpy()
    for col in ("latency_median_ms", "latency_p90_ms"):
        df[col] = df[col] * factor
    df["samples_ms"] = [list(np.asarray(s) * f) for s, f in zip(df["samples_ms"], factor)]
    on = GPPredictor(featurizer=featurizer, maxiter=30).fit(df)
    off = GPPredictor(featurizer=featurizer, maxiter=30, roughness_prior=0.0).fit(df)
    tau = on.outputs["latency_ms"].roughness
    assert 0.05 < tau < 0.3 and off.outputs["latency_ms"].roughness == 0.0
    assert on.calibration["latency_ms"]["roughness"] == pytest.approx(tau, abs=1e-4)
    out = on.outputs["latency_ms"]
    scale = min([*out.stratum_calibration.values(), out.calibration])  # the smallest multiplier any row gets
    fresh = [c for c in random_configs(80, SEEN, seed=8) if c.key not in set(keys)][:30]
    assert len(fresh) == 30
    sd_new = on.predict(fresh).sigma_log["latency_ms"]
    assert np.all(sd_new >= scale * tau * 0.999)
    measured = configs_from_frame(df.loc[~keys.duplicated().to_numpy()].iloc[:30])
    ff = on._ff(measured)
    assert out.measured(on.design.matrix(ff)).all() and not out.measured(on.design.matrix(on._ff(fresh))).any()
    sd_seen = on.predict(measured).sigma_log["latency_ms"]
    assert np.median(sd_seen) < scale * tau  # its own runs pin it: no floor
    draws = np.log(on.sample(measured[:5] + fresh[:5], 400, seed=0))
    spread = draws.std(0)
    assert spread[5:].min() > spread[:5].max()  # joint draws: the floor on the unmeasured ones only
    assert on.outputs["memory_mib"].roughness == 0.0  # memory is not rough: no floor there
    # the floor a loop's stop rule reads: what each interval keeps with the latent surface known exactly
    floor_new, floor_seen = on.floor_sd(fresh), on.floor_sd(measured)
    assert np.all(floor_new <= sd_new + 1e-12) and np.all(floor_seen <= sd_seen + 1e-12)
    assert np.all(floor_new >= scale * tau * 0.999)  # roughness where never measured...
    assert floor_seen.max() < floor_new.min()  # ...and not where its own runs pin it


def test_memory_never_falls_below_the_weights_bytes() -> None:
    """Audit: llama-2-13b bf16 on the 23.5 GiB shipped CPU had P(fits) 0.16 with its bf16 weights
    alone at 24.2 GiB; the memory posterior is now truncated at the weights' bytes."""
    from engine.models.base import lognormal_cdf, lognormal_mean, lognormal_quantile

    rng = np.random.default_rng(0)
    for mu, sd, floor in ((np.log(1000.0), 0.3, 900.0), (np.log(1000.0), 0.3, 1500.0), (np.log(10.0), 0.5, 1e4)):
        x = np.exp(rng.normal(mu, sd, 4_000_000))
        kept = x[x >= floor] if (x >= floor).sum() > 10_000 else None
        q = lognormal_quantile(mu, sd, np.array([0.05, 0.5, 0.95]), floor)
        assert np.all(q >= floor) and np.all(np.diff(q) > 0)
        if kept is not None:  # brute force agrees where it can see the tail
            assert np.allclose(q, np.quantile(kept, [0.05, 0.5, 0.95]), rtol=0.01)
            assert lognormal_mean(mu, sd, floor) == pytest.approx(kept.mean(), rel=0.01)
            assert lognormal_cdf(mu, sd, np.array(1.1 * floor), floor) == pytest.approx(np.mean(kept <= 1.1 * floor),
                                                                                          abs=0.005)
        else:  # far above the bulk: just above the floor, finite
            assert np.all(np.isfinite(q)) and q[-1] < 1.2 * floor
        assert lognormal_cdf(mu, sd, np.array(0.99 * floor), floor) == 0.0
    assert np.allclose(lognormal_quantile(1.0, 0.2, np.array([0.5]), 0.0), np.exp(1.0))  # no floor: plain


def test_a_model_whose_weights_exceed_the_device_cannot_fit(tmp_path) -> None:
    from engine.predict import PerformancePredictor

    for predictor in ("roofline", "gp"):
        pp = PerformancePredictor(tmp_path / "s.duckdb", predictor=predictor)
        p = pp.predict("llama-2-13b", "cpu-amd-epyc-2c", 1, precision="bf16")  # 24,826 MiB of bf16 weights
        assert p.prob_fits_memory() == 0.0 and p.memory_mib.interval(0.9)[0] > 24_826
        assert p.memory_mib.mean > p.memory_mib.interval(0.9)[0]
        small = pp.predict("bert-base-uncased", "cpu-amd-epyc-2c", 8)
        assert small.prob_fits_memory() > 0.99
        # audit: its fp32 logits (12.3 GiB) and KV cache (12 GiB) alone exceed a T4's 16 GB; it read P(fits) 0.20
        big = pp.predict("gpt2-medium", "t4", 64, seq_len=1024)
        assert big.prob_fits_memory() == 0.0 and big.memory_mib.interval(0.9)[0] > 24 * 1024
        # the counted working set, KV cache and weights (27 GiB): the GP's small-batch corrections
        # no longer scale it (it read 48,078 MiB, 1.7x, on 2026-12-07 before the base share)
        from engine.config import Config
        from engine.descriptors import describe

        d = describe(Config("gpt2-medium", "t4", 64, 1024))
        held = (d.weight_bytes + d.peak_activation_bytes + d.kv_cache_bytes) / 2**20
        assert 1.0 <= big.memory_mib.median / held <= 1.3, (big.memory_mib.median, held)


def test_p90_latency_is_never_below_the_median_latency() -> None:
    """A run's p90 is at least its median, so each quantile of p90's posterior is at least the
    median's: the comonotone maximum of the two log-normals (66 of 96 predictions of a grid put
    p90's 5% quantile up to 8% below the median's before). Quantiles, mean and cdf vs Monte Carlo."""
    from engine.models.base import MetricPrediction, lognormal_max_mean

    z = np.random.default_rng(0).standard_normal(2_000_000)
    for (mu, sd), (mu2, sd2) in (((2.0, 0.4), (1.95, 0.3)), ((2.0, 0.2), (1.9, 0.5)), ((1.0, 0.3), (1.0, 0.3))):
        x = np.maximum(np.exp(mu + sd * z), np.exp(mu2 + sd2 * z))
        p = MetricPrediction("latency_p90_ms", mu_log=mu, sigma_log=sd, at_least=(mu2, sd2))
        med = MetricPrediction("latency_ms", mu_log=mu2, sigma_log=sd2)
        assert np.allclose(p.quantile(np.array([0.05, 0.5, 0.95])), np.quantile(x, [0.05, 0.5, 0.95]), rtol=0.005)
        assert p.mean == pytest.approx(x.mean(), rel=0.005)
        assert lognormal_max_mean(mu, sd, mu2, sd2) == pytest.approx(x.mean(), rel=0.005)
        assert p.prob_below(8.0) == pytest.approx(np.mean(x <= 8.0), abs=0.002)
        assert p.interval(0.9)[0] >= med.interval(0.9)[0] and p.interval(0.5)[0] >= med.interval(0.5)[0]


def test_every_predictor_keeps_p90_at_or_above_the_median(tmp_path) -> None:
    from engine.config import Config
    from engine.predict import PerformancePredictor

    configs = [Config(m, h, b, 128, p) for m in ("gpt2", "resnet50") for h in ("cpu-amd-epyc-2c", "t4")
               for b in (1, 16) for p in ("fp32", "bf16")]
    for predictor in ("roofline", "gp"):
        ps = PerformancePredictor(tmp_path / "s.duckdb", predictor=predictor).predict_many(configs)
        for p in ps:
            for level in (0.5, 0.9):
                assert p.latency_p90_ms.interval(level)[0] >= p.latency_ms.interval(level)[0]
            assert p.latency_p90_ms.median >= p.latency_ms.median
            assert p.latency_p90_ms.prob_below(p.latency_ms.median) <= 0.5 + 1e-12


def test_hyperparameter_subset_is_stable_when_a_run_is_added(featurizer, train_df, new_hw_df) -> None:
    """Over ``max_fit_points`` runs the hyperparameters are fitted on a subset. A random draw of
    positions reshuffled it whenever one run was added (or the store listed its runs in another
    order), and every answer moved with the new hyperparameters (a new CPU's predictions by 8%
    median, docs/evaluation.md "Session 32"); a hash of each run's identity keeps all but a few."""
    from engine.models.gp import stable_subset

    ids = [f"run-{i}" for i in range(160)]
    a = stable_subset(ids, 100)
    b = stable_subset(ids + ["new-1", "new-2"], 100)
    assert len(a) == 100 and list(a) == sorted(set(a)) and list(stable_subset(ids, 100)) == list(a)
    assert len(set(a) & set(b)) >= 97
    assert len(set(stable_subset(ids, 100, seed=1)) & set(a)) < 90  # another seed, another subset

    # the same runs in another order: the same subset, so the same hyperparameters and answers
    configs = configs_from_frame(new_hw_df.iloc[:30])
    shuffled = train_df.sample(frac=1.0, random_state=1)
    before = _fit(featurizer, train_df, max_fit_points=100, whole_fit_points=100).predict(configs).mu_log["latency_ms"]
    after = _fit(featurizer, shuffled, max_fit_points=100, whole_fit_points=100).predict(configs).mu_log["latency_ms"]
    assert np.median(np.abs(after - before)) < 0.03  # a random draw of positions: 0.17


def test_run_identity_does_not_depend_on_numpy_scalar_repr() -> None:
    """The hashed identity of a run is the same for a NumPy scalar and a Python float: NumPy 2's
    repr (``np.float64(0.5)``) would otherwise draw another subset than NumPy 1.26's (``0.5``)."""
    from engine.models.gp import run_identity

    value = np.log(np.float64(12.34))
    assert run_identity("k", value) == run_identity("k", float(value)) == f"k|{float(value)!r}"
    assert "np." not in run_identity("k", np.float32(0.25))


def test_one_configuration_repeated_fits_and_predicts(featurizer, train_df) -> None:
    """A store holding one configuration (one benchmark saved, or its repeats) has no feature that
    varies; the design used to keep none, and BoTorch's Normalize raised "`indices` list is empty!"
    from train, predict and evaluate. The GP now fits it and answers with an interval around it."""
    one = train_df.iloc[[0, 0]].copy()
    one["latency_median_ms"] = one["latency_median_ms"].to_numpy() * np.array([1.0, 1.04])
    gp = _fit(featurizer, one)
    ps = gp.predict(configs_from_frame(one.iloc[:1]) + configs_from_frame(train_df.iloc[5:6]))
    med = np.exp(ps.mu_log["latency_ms"])
    lo, hi = ps.quantiles("latency_ms", [0.05, 0.95])
    assert abs(np.log(med[0] / one["latency_median_ms"].iloc[0])) < 0.1
    assert np.all(lo < med) and np.all(med < hi) and np.all(np.isfinite(hi))
