"""Hyperparameter uncertainty of a fitted GP output: a Laplace approximation in log space.

The GP's kernel hyperparameters (ARD lengthscales, the learned group scales, the extra noise)
are MAP point estimates. At 20–40 runs they are poorly determined, and an acquisition that
trusts one setting chases directions that setting happens to call important. The remedy of
Snoek et al. ("Practical Bayesian optimization", 2012) is to average the acquisition over the
hyperparameter posterior. A fully Bayesian GP (NUTS over hyperparameters) costs minutes here;
the Laplace approximation costs one Hessian:

    log θ ~ N(log θ̂, H⁻¹),   H = −∇² log p(θ | D) at θ̂, in φ = log θ

taken with autograd through the exact marginal likelihood plus the hyperparameter priors
(``torch.func.functional_call`` swaps the parameters, so the module and its priors are used as
they are). The constant mean is part of H and integrated out (the covariance block of the other
parameters is taken from H⁻¹). The fit may stop short of the mode (few optimiser iterations, or
hyperparameters kept while data were added), so H is made positive definite by clipping its
eigenvalues: no direction gets a larger log-sd than ``max_log_sd`` (the lengthscale prior's own
spread is √3). Draws respect the parameters' lower bounds. Fixed group scales stay fixed.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch

#: (parameter name, how its raw value maps to the positive value θ) for the learned covariance
#: hyperparameters of engine.models.gp.OutputGP's SingleTaskGP
_LS = "covar_module.base.raw_lengthscale"
_SCALES = "covar_module.raw_scales"
_NOISE = "likelihood.second_noise_covar.raw_noise"
_MEAN = "mean_module.raw_constant"


def _pieces(model: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log lengthscales, log learned scales, index of the learned scales)."""
    kern = model.covar_module
    learned = torch.nonzero(~kern.fixed_mask).reshape(-1)
    ls = kern.base.lengthscale.detach().reshape(-1)
    sc = kern.scales.detach()[learned]
    return ls.log(), sc.log(), learned


def _noise_value(model: Any) -> torch.Tensor:
    return model.likelihood.second_noise_covar.noise.detach().reshape(-1)


def laplace_covariance(model: Any, max_log_sd: float = math.sqrt(3.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """(φ̂, Σ): the centre and covariance of the Gaussian over the log hyperparameters
    [log lengthscales…, log learned scales…, log extra noise] (module docstring)."""
    from gpytorch.mlls import ExactMarginalLogLikelihood
    from torch.func import functional_call

    model = copy.deepcopy(model)
    model.train()
    kern = model.covar_module
    ls0, sc0, learned = _pieces(model)
    nz0 = _noise_value(model).log()
    c0 = model.mean_module.constant.detach().reshape(())
    d_ls, d_sc = len(ls0), len(sc0)
    phi0 = torch.cat([ls0, sc0, nz0, c0.reshape(1)]).to(torch.float64)
    raw_scales0 = kern.raw_scales.detach().clone()
    ls_shape = kern.base.raw_lengthscale.shape
    X = model.train_inputs[0]
    Y = model.train_targets
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    # raw <- value maps (the constraints are GreaterThan with no transform for the lengthscales
    # and the extra noise, softplus for the scales)
    sc_constraint = kern.raw_scales_constraint

    def neg_log_post(phi: torch.Tensor) -> torch.Tensor:
        ls = phi[:d_ls].exp().reshape(ls_shape)
        raw_sc = raw_scales0.clone().to(phi).index_put((learned,), sc_constraint.inverse_transform(phi[d_ls:d_ls + d_sc].exp()))
        noise = phi[d_ls + d_sc:d_ls + d_sc + 1].exp()
        params = {_LS: ls, _SCALES: raw_sc, _NOISE: noise, _MEAN: phi[-1]}
        out = functional_call(model, params, (X,))
        return -functional_call(mll, {f"model.{k}": v for k, v in params.items()}, (out, Y)) * len(Y)

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        H = torch.autograd.functional.hessian(neg_log_post, phi0, vectorize=True)
    H = 0.5 * (H + H.T)
    evals, evecs = torch.linalg.eigh(H)
    evals = evals.clamp_min(1.0 / max_log_sd**2)
    cov = (evecs / evals) @ evecs.T
    k = d_ls + d_sc + 1  # drop the mean: marginal block of the covariance parameters
    return phi0[:k], cov[:k, :k]


def hyperparameter_draws(model: Any, n: int, seed: int = 0, max_log_sd: float = math.sqrt(3.0)) -> list[Any]:
    """``n`` copies of a fitted SingleTaskGP (eval mode) with hyperparameters drawn from the
    Laplace approximation; the first is the fitted model itself (the plug-in estimate)."""
    if n <= 1:
        return [model]
    centre, cov = laplace_covariance(model, max_log_sd)
    L = torch.linalg.cholesky(cov + 1e-12 * torch.eye(len(centre), dtype=cov.dtype))
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn((n - 1, len(centre)), generator=gen, dtype=cov.dtype)
    phis = centre + z @ L.T
    kern = model.covar_module
    d_ls = int(kern.base.raw_lengthscale.numel())
    learned = torch.nonzero(~kern.fixed_mask).reshape(-1)
    d_sc = len(learned)
    ls_low = float(kern.base.raw_lengthscale_constraint.lower_bound)
    noise_low = float(model.likelihood.second_noise_covar.raw_noise_constraint.lower_bound)
    out = [model]
    with torch.no_grad():
        for phi in phis:
            m = copy.deepcopy(model)
            k = m.covar_module
            k.base.raw_lengthscale.copy_(phi[:d_ls].exp().clamp_min(ls_low * 1.0001).reshape(k.base.raw_lengthscale.shape))
            scales = k.scales.detach().clone()
            scales[learned] = phi[d_ls:d_ls + d_sc].exp().clamp_min(1e-5)
            k.scales = scales
            m.likelihood.second_noise_covar.raw_noise.copy_(
                phi[d_ls + d_sc:].exp().clamp_min(noise_low * 1.0001).reshape(m.likelihood.second_noise_covar.raw_noise.shape))
            m.eval()
            out.append(m)
    return out


def log_sd_summary(model: Any) -> dict[str, np.ndarray]:
    """Posterior log-sd of each hyperparameter group (diagnostics, tests)."""
    centre, cov = laplace_covariance(model)
    sd = cov.diagonal().sqrt().numpy()
    d_ls = int(model.covar_module.base.raw_lengthscale.numel())
    d_sc = int((~model.covar_module.fixed_mask).sum())
    return {"lengthscale": sd[:d_ls], "scales": sd[d_ls:d_ls + d_sc], "noise": sd[d_ls + d_sc:]}


__all__ = ["laplace_covariance", "hyperparameter_draws", "log_sd_summary"]
