"""Hierarchical NUTS model: population draws for unseen devices, diagnostics gate, joint draws."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import Config
from engine.errors import DiagnosticsError
from engine.models.features import configs_from_frame

from conftest import SEEN


def _h(featurizer, **kw):
    from engine.models.hierarchical import HierarchicalPredictor

    kw.setdefault("num_warmup", 250)
    kw.setdefault("num_samples", 250)
    return HierarchicalPredictor(featurizer=featurizer, **kw)


def test_bad_diagnostics_raise_unless_allowed(featurizer, train_df):
    h = _h(featurizer, num_warmup=5, num_samples=10, allow_bad_diagnostics=True).fit(train_df.iloc[:60])
    assert {"rhat_max", "ess_bulk_min", "divergences"} <= set(h.diagnostics)
    assert h.diagnostics["rhat_max"] > 1.01 and not h.diagnostics_ok  # 10 draws cannot converge
    assert h.predict(configs_from_frame(train_df.iloc[:3])).samples["latency_ms"].shape[1] == 3
    with pytest.raises(DiagnosticsError, match="NUTS diagnostics FAILED: max R-hat .*--allow-bad-diagnostics"):
        h.check_diagnostics()  # what fit() does when bad diagnostics are not allowed
    # a fit kept anyway says so on every answer (it answered with no word of it)
    caution = h.diagnostics_caution()
    assert caution is not None and "failed its NUTS diagnostics" in caution and "not to be trusted" in caution
    good = dict(h.diagnostics, rhat_max=1.004, divergences=0, ess_bulk_min=1347.0, num_chains=2)
    h.diagnostics = good
    assert h.diagnostics_ok and h.diagnostics_caution() is None and "passed" in h.diagnostics_text()
    h.diagnostics = dict(good, ess_bulk_min=119.0)  # passed, but below 100 per chain
    assert "few effective draws" in h.diagnostics_caution() and "noisy" in h.diagnostics_text()
    h.allow_bad_diagnostics = False
    with pytest.raises(DiagnosticsError):
        h.fit(train_df.iloc[:60])


@pytest.mark.slow
def test_unseen_device_wide_then_shrinks_and_covers(featurizer, train_df, new_hw_df, tmp_path):
    test = new_hw_df.iloc[40:]
    configs = configs_from_frame(test)
    before = _h(featurizer, allow_bad_diagnostics=True, idata_path=str(tmp_path / "a.nc")).fit(train_df)
    assert (tmp_path / "a.nc").exists()  # ArviZ InferenceData saved
    w_before = np.log(np.divide(*before.predict(configs).quantiles("latency_ms", [0.95, 0.05])))
    w_seen = np.log(np.divide(*before.predict(configs_from_frame(train_df.iloc[:20])).quantiles("latency_ms", [0.95, 0.05])))
    assert np.median(w_before) > 1.5 * np.median(w_seen)
    after = _h(featurizer, allow_bad_diagnostics=True).fit(pd.concat([train_df, new_hw_df.iloc[:40]]))
    ps = after.predict(configs)
    q = ps.quantiles("latency_ms", [0.05, 0.95])
    assert np.median(np.log(q[1] / q[0])) < 0.7 * np.median(w_before)
    y = test["latency_median_ms"].to_numpy()
    # 20 held-out runs: 13-15 of them inside the 90% interval over seeds 0-1 and 250 or 500 draws
    # (2026-12-07; the 500-draw fits pass their diagnostics and cover 13 and 14), under nominal, and
    # the same before that day's memory changes, which share no parameter with latency
    assert np.mean((y >= q[0]) & (y <= q[1])) >= 0.6
    # the floor a loop's stop.max_reducible reads: run noise, which no benchmark narrows
    floor = after.floor_sd(configs)
    assert np.allclose(floor, floor[0]) and floor[0] ** 2 == pytest.approx(after.noise_var_log())
    assert 0.0 < 2 * 1.645 * floor[0] < np.median(np.log(q[1] / q[0]))
    # joint draws: two configs on the same unmeasured device share its population draw
    a = Config("syn-bert-m", "gpu-syn-new", 8, 128, "fp32", "inference", "torch", 0)
    draws = before.sample([a, a.with_(batch_size=16), a.with_(hardware=SEEN[0], threads=2)], 2000)
    assert draws.shape == (2000, 3)
    c = np.corrcoef(np.log(draws).T)
    assert c[0, 1] > 0.5 and c[0, 1] > c[0, 2]


@pytest.mark.slow
def test_utilisation_small_batches_are_slower_per_item(featurizer, train_df):
    """The synthetic world under-fills a GPU at small batches (eff ∝ b/(b + 2)); a compute-bound
    config's time per item at batch 1 is ~3× that at batch 64, where a plain roofline says 1×."""
    h = _h(featurizer, num_warmup=150, num_samples=150, allow_bad_diagnostics=True).fit(train_df)
    one = Config("syn-gpt-l", "gpu-syn-a", 1, 512, "fp16", "inference", "torch", 0)
    draws = h.sample_latent([one, one.with_(batch_size=64)], 400)
    ratio = np.median(draws[:, 0] / (draws[:, 1] / 64.0))
    assert 1.8 < ratio < 5.0, ratio


def test_a_configurations_draws_do_not_depend_on_the_request_and_stay_sane(featurizer, train_df):
    """Audit H: the same cell read 38.1, 37.4 or 36.4 ms as the request around it changed (one
    random stream for every configuration's noise and unseen levels); sample() let memory below
    the floor; a log-t noise with ν near 1 put memory means at 10⁹ MiB."""
    from engine.models.assemble import memory_floor_mib
    from engine.models.hierarchical import NOISE_TAIL, _bounded_t, _noise_var

    h = _h(featurizer, num_warmup=5, num_samples=20, allow_bad_diagnostics=True).fit(train_df.iloc[:60])
    a = Config("syn-bert-m", "gpu-syn-new", 8, 128, "fp32", "inference", "torch", 0)  # an unseen device
    b = configs_from_frame(train_df.iloc[:2])
    alone = h.predict([a]).samples
    among = h.predict([b[0], a, b[1], a.with_(batch_size=16)]).samples
    for m in ("latency_ms", "latency_p90_ms", "memory_mib"):
        assert np.array_equal(alone[m][:, 0], among[m][:, 1])
    # the unseen device's effect is shared by its configurations within a request, as before
    lat = np.log(h.sample_latent([a, a.with_(batch_size=16), b[0]], 200))
    assert np.corrcoef(lat.T)[0, 1] > 0.5
    floor = memory_floor_mib(h._ff([a]).phys)[0]
    assert floor > 0 and h.sample([a], 500, metric="memory_mib").min() >= floor
    # noise: bounded t draws, and a variance read as the normal with the t's 90% interval
    g = np.random.default_rng(0)
    nu = np.full(20_000, 1.0)
    from scipy.stats import t as student_t

    bound = student_t.ppf(1 - NOISE_TAIL / 2, nu)
    t = _bounded_t(g, nu, bound)
    assert np.abs(t).max() <= bound[0] and np.mean(np.abs(t) > student_t.ppf(0.95, 1.0)) == pytest.approx(0.1, abs=0.01)
    assert _noise_var(np.array([0.04]), np.array([1e6])) == pytest.approx(0.04, rel=1e-3)
    assert _noise_var(np.array([0.04]), np.array([2.1])) == pytest.approx(0.04 * (student_t.ppf(0.95, 2.1) / 1.6449) ** 2,
                                                                          rel=1e-3)
