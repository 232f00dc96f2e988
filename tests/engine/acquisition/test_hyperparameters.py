"""Hyperparameter uncertainty in the acquisition: the Laplace posterior and the averaged eig."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.acquisition.covariance import GPCovariance
from engine.acquisition.functions import HyperparameterAverage, IntegratedVarianceReduction
from engine.acquisition.select import select
from engine.models.gp_laplace import hyperparameter_draws, laplace_covariance


def _gp(syn, n: int):  # type: ignore[no-untyped-def]
    from engine.models.gp import GPPredictor

    fz, configs, measure = syn
    return GPPredictor(featurizer=fz, maxiter=30, calibrate=False).fit(measure(configs[:n], seed=1))


def test_laplace_is_centred_on_the_fit_and_narrows_with_data(syn) -> None:
    cap = math.sqrt(3.0)
    sds = {}
    for n in (12, 150):
        model = _gp(syn, n).outputs["latency_ms"].model
        centre, cov = laplace_covariance(model, max_log_sd=cap)
        d = model.covar_module.base.raw_lengthscale.numel()
        ls = model.covar_module.base.lengthscale.detach().reshape(-1)
        assert torch.allclose(centre[:d], ls.log(), atol=1e-12)
        evals = torch.linalg.eigvalsh(cov)
        assert float(evals.min()) > 0 and float(evals.max()) <= cap**2 * (1 + 1e-9)
        sds[n] = cov.diagonal().sqrt()[:d]
    # the likelihood really enters the Hessian: 150 runs pin the lengthscales down far more than 12
    assert float(sds[150].median()) < 0.7 * float(sds[12].median())
    assert float(sds[150].min()) < 0.5 * cap


def test_draws_are_copies_with_other_hyperparameters(syn) -> None:
    model = _gp(syn, 40).outputs["latency_ms"].model
    before = model.covar_module.base.lengthscale.detach().clone()
    draws = hyperparameter_draws(model, 4, seed=3)
    assert len(draws) == 4 and draws[0] is model
    assert torch.equal(model.covar_module.base.lengthscale.detach(), before)  # the fit is untouched
    for m in draws[1:]:
        ls = m.covar_module.base.lengthscale.detach()
        assert not torch.allclose(ls, before)
        assert bool((ls >= m.covar_module.base.raw_lengthscale_constraint.lower_bound).all())
        fixed = model.covar_module.fixed_mask
        assert torch.equal(m.covar_module.scales.detach()[fixed], model.covar_module.scales.detach()[fixed])
    again = hyperparameter_draws(model, 4, seed=3)
    assert torch.equal(again[2].covar_module.base.lengthscale, draws[2].covar_module.base.lengthscale)


def test_average_is_the_mean_of_its_members_and_passes_pending_on(fitted_gp) -> None:
    from engine.acquisition.gp_seam import gp_surface, hyperparameter_surfaces

    gp, pool = fitted_gp
    s = gp_surface(gp, pool[:60])
    mc = torch.arange(0, 60, 4)
    members = [IntegratedVarianceReduction(GPCovariance(x.model, x.X, mc, x.noise_var))
               for x in hyperparameter_surfaces(s, 3, seed=0)]
    avg = HyperparameterAverage(members)
    X = torch.arange(60, dtype=torch.float64).reshape(60, 1, 1)
    vals = torch.stack([m(X) for m in members])
    assert torch.allclose(avg(X), vals.mean(0))
    assert not torch.allclose(vals[0], vals[1])  # the draws really change the acquisition
    avg.set_X_pending(torch.tensor([[5.0]]))
    assert all(m.X_pending is not None and int(m.X_pending[0, 0]) == 5 for m in members)
    assert float(avg(torch.tensor([[[5.0]]]))) < float(vals.mean(0)[5])  # measuring 5 twice adds little


def test_select_with_hyper_draws(fitted_gp) -> None:
    gp, pool = fitted_gp
    one = select("eig", gp, pool, 3, mc_points=64, seed=2)
    same = select("eig", gp, pool, 3, mc_points=64, seed=2, hyper_draws=1)
    assert [c.key for c in one.configs] == [c.key for c in same.configs]
    avg = select("eig", gp, pool, 3, mc_points=64, seed=2, hyper_draws=6, cost=np.linspace(1, 5, len(pool)))
    assert len({c.key for c in avg.configs}) == 3
    assert all(it.acquisition_value > 0 for it in avg.items)
    with pytest.raises(Exception, match="hyper_draws"):
        select("eig", gp, pool, 1, hyper_draws=0)
