"""select(): every acquisition returns q distinct configs; cost-awareness; pending configs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.acquisition.select import ACQUISITIONS, select


@pytest.mark.parametrize("name", list(ACQUISITIONS))
def test_each_acquisition_selects_q_distinct_configs(fitted_gp, name: str) -> None:
    gp, pool = fitted_gp
    sel = select(name, gp, pool, 4, cost=np.linspace(1, 20, len(pool)), mc_points=64, seed=3)
    keys = [c.key for c in sel.configs]
    assert len(keys) == 4 and len(set(keys)) == 4
    assert all(c in pool for c in sel.configs)
    for it in sel.items:
        assert it.information_gain is not None and it.information_gain > 0
        assert it.diversity is not None and 0.0 <= it.diversity <= 1.0
        assert it.uncertainty > 0
    if name in ("eig", "bald"):
        assert sel.cost_aware
        # greedy values are marginal gains given the earlier picks: they cannot increase
        # much (submodular up to the cost division), and they are positive
        assert all(it.acquisition_value > 0 for it in sel.items)


def test_pending_configs_are_not_picked_again_and_reduce_the_gain(fitted_gp) -> None:
    gp, pool = fitted_gp
    first = select("eig", gp, pool, 1, mc_points=64, seed=0)
    best = first.configs[0]
    again = select("eig", gp, pool, 1, pending=[best], mc_points=64, seed=0)
    assert again.configs[0] != best
    assert again.n_pending == 1
    assert again.items[0].acquisition_value <= first.items[0].acquisition_value + 1e-12


def test_cost_aware_prefers_the_cheap_config_when_information_is_equal(fitted_gp) -> None:
    """Two identical candidates (the same model inputs): only the predicted cost differs."""
    from botorch.optim import optimize_acqf_discrete

    from engine.acquisition.covariance import GPCovariance
    from engine.acquisition.functions import IntegratedVarianceReduction
    from engine.acquisition.gp_seam import gp_surface

    gp, pool = fitted_gp
    s = gp_surface(gp, pool[:20])
    X = torch.cat([s.X[:1], s.X[:1], s.X[1:]], dim=0)  # rows 0 and 1 are the same configuration
    cov = GPCovariance(s.model, X, torch.arange(X.shape[0]), s.noise_var)
    plain = IntegratedVarianceReduction(cov)
    v = plain(torch.tensor([[[0.0]], [[1.0]]]))
    assert float(v[0]) == pytest.approx(float(v[1]), rel=1e-9)
    for cheap in (0, 1):
        cost = torch.full((X.shape[0],), 1e6, dtype=torch.float64)  # everything else prohibitive
        cost[0], cost[1] = (1.0, 30.0) if cheap == 0 else (30.0, 1.0)
        acq = IntegratedVarianceReduction(cov, cost=cost)
        picked, _ = optimize_acqf_discrete(acq, q=1, choices=torch.arange(X.shape[0], dtype=torch.float64)[:, None])
        assert int(picked[0, 0]) == cheap


def test_diversity_is_read_off_the_posterior_correlations(fitted_gp) -> None:
    """Diversity = 1 - max |posterior correlation| with the rest of the batch: real numbers in [0, 1]."""
    gp, pool = fitted_gp
    sel = select("eig", gp, pool, 3, mc_points=64, seed=1)
    diffs = [it.diversity for it in sel.items]
    assert min(diffs) < 1.0  # correlations are real numbers from the posterior, not all zero
    assert len({c.key for c in sel.configs}) == 3


def test_unknown_acquisition_names_the_valid_ones(fitted_gp) -> None:
    from engine.errors import InvalidValueError

    gp, pool = fitted_gp
    with pytest.raises(InvalidValueError, match="eig, bald, max-variance, random"):
        select("eigg", gp, pool, 1)


def test_cost_exponent_zero_ignores_cost_and_cooling_schedule(fitted_gp) -> None:
    """information / cost**0 is information alone; the EI-cool schedule runs from 1 down to 0."""
    from engine.acquisition.select import cooled_cost_exponent
    from engine.errors import InvalidValueError

    gp, pool = fitted_gp
    rng = np.random.default_rng(0)
    cost = rng.uniform(1.0, 60.0, len(pool))
    plain = select("eig", gp, pool, 3, mc_points=64, seed=1)
    cooled = select("eig", gp, pool, 3, cost=cost, cost_exponent=0.0, mc_points=64, seed=1)
    full = select("eig", gp, pool, 3, cost=cost, cost_exponent=1.0, mc_points=64, seed=1)
    assert [c.key for c in cooled.configs] == [c.key for c in plain.configs]
    assert cooled.cost_exponent == 0.0 and full.cost_exponent == 1.0
    # dividing by the full cost buys cheaper runs than ignoring it
    assert sum(it.cost_s for it in full.items) <= sum(it.cost_s for it in cooled.items)
    assert cooled_cost_exponent(None) == 1.0
    assert cooled_cost_exponent(0.25) == pytest.approx(0.75)
    assert cooled_cost_exponent(1.7) == 0.0
    assert cooled_cost_exponent(0.25, start=0.5) == pytest.approx(0.375)  # the loops' default start
    assert cooled_cost_exponent(None, start=0.5) == 0.5
    with pytest.raises(InvalidValueError, match="cost_exponent"):
        select("eig", gp, pool, 1, cost=cost, cost_exponent=2.0, mc_points=64)


def test_eig_integrates_the_calibrated_variance(syn) -> None:  # type: ignore[no-untyped-def]
    """calibration_weights recovers each row's squared calibration multiplier (per stratum) from
    the reported sd and the covariance source: the weights eig integrates with."""
    import numpy as np

    from engine.acquisition.gp_seam import roughness_var
    from engine.acquisition.select import _source, calibration_weights
    from engine.models.gp import GPPredictor, calibration_strata

    fz, configs, measure = syn
    gp = GPPredictor(featurizer=fz, maxiter=15).fit(measure(configs[:40], seed=1))
    pool = configs[40:100]
    out = gp.outputs["latency_ms"]
    assert out.calibration is not None
    sd = gp.predict(pool).sigma_log["latency_ms"]
    src = _source("eig", gp, pool, np.arange(len(pool)), "latency_ms", 0, 64)
    # the roughness τ² is in the reported variance but no benchmark reduces it: select passes it
    # as the floor, and the weight is the multiplier alone
    assert out.roughness > 0
    w = calibration_weights(src, sd, np.arange(len(pool)), roughness_var(gp, "latency_ms"))
    expected = out.scale_for(calibration_strata(fz(pool)), len(pool)) ** 2
    assert np.allclose(w, expected, rtol=1e-3)


def test_eig_on_memory_integrates_only_what_the_gp_can_learn(syn) -> None:  # type: ignore[no-untyped-def]
    """The GP's memory correction scales the prior's base share s, and the activation factor's
    spread (1 - s) · MEMORY_ACTIVATION_SD sits beside it in every reported interval: the weights
    take that spread out (so the weight is s² times the calibration multiplier squared), and the
    stop rule's floor keeps it."""
    import numpy as np

    from engine.acquisition.select import _source, calibration_weights
    from engine.models.gp import MEMORY_ACTIVATION_SD, GPPredictor, calibration_strata
    from engine.models.roofline import memory_base_share

    fz, configs, measure = syn
    gp = GPPredictor(featurizer=fz, maxiter=15).fit(measure(configs[:40], seed=1))
    pool = configs[40:100]
    out = gp.outputs["memory_mib"]
    share = memory_base_share(fz(pool), gp.roofline.params)
    act = gp.irreducible_var(pool, "memory_mib")
    assert np.allclose(act, ((1 - share) * MEMORY_ACTIVATION_SD) ** 2) and np.all(gp.irreducible_var(pool) == 0)
    sd = gp.predict(pool).sigma_log["memory_mib"]
    src = _source("eig", gp, pool, np.arange(len(pool)), "memory_mib", 0, 64)
    w = calibration_weights(src, sd, np.arange(len(pool)), 0.0, act)
    expected = share**2 * out.scale_for(calibration_strata(fz(pool)), len(pool)) ** 2
    assert np.allclose(w, expected, rtol=1e-3, atol=1e-4)  # float32 in the fast posterior
    assert w.min() < 0.5 * w.max()  # the synthetic world has activation-heavy rows: the weights differ
    assert np.all(gp.floor_sd(pool, "memory_mib") >= np.sqrt(act) - 1e-12)
    assert np.all(gp.floor_sd(pool, "memory_mib") <= sd + 1e-12)
