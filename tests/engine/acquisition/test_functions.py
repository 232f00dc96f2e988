"""The closed-form acquisitions against BoTorch's own qNIPV and against the GP's posterior."""
from __future__ import annotations

import warnings

import pytest
import torch

from engine.acquisition.covariance import DrawsCovariance, GPCovariance
from engine.acquisition.functions import BatchBALD, IntegratedVarianceReduction


@pytest.fixture(scope="module")
def toy_gp():
    from botorch.models import SingleTaskGP

    torch.manual_seed(0)
    X = torch.rand(25, 3, dtype=torch.float64)
    Y = torch.sin(6 * X).sum(-1, keepdim=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = SingleTaskGP(X, Y, outcome_transform=None, input_transform=None)
    m.likelihood.noise = torch.tensor([0.05])
    m.eval()
    T = torch.rand(40, 3, dtype=torch.float64)
    return m, T


def test_integrated_variance_reduction_equals_botorch_qnipv(toy_gp) -> None:
    from botorch.acquisition.active_learning import qNegIntegratedPosteriorVariance

    m, T = toy_gp
    mc = torch.arange(0, 40, 3)
    cov = GPCovariance(m, T, mc, float(m.likelihood.noise.detach()))
    ivr = IntegratedVarianceReduction(cov)
    ipv0 = ivr.integrated_variance()
    qnipv = qNegIntegratedPosteriorVariance(m, mc_points=T[mc])
    for S in ([4], [4, 9], [1, 2, 30]):
        ours = float(ivr.joint_utility(torch.tensor([S])))
        with torch.no_grad():
            theirs = ipv0 + float(qnipv(T[S].unsqueeze(0)))
        assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-10)
    # with pending points: the marginal value = qNIPV(pending + x) - qNIPV(pending)
    ivr.set_X_pending(torch.tensor([[4.0], [9.0]]))
    q_p = qNegIntegratedPosteriorVariance(m, mc_points=T[mc], X_pending=T[[4, 9]])
    with torch.no_grad():
        expected = float(q_p(T[[7]].unsqueeze(0))) + ipv0 - float(ivr.joint_utility(torch.tensor([[4, 9]])))
    assert float(ivr(torch.tensor([[[7.0]]]))) == pytest.approx(expected, rel=1e-6)


def test_gp_covariance_blocks_match_the_posterior(fitted_gp) -> None:
    from engine.acquisition.gp_seam import gp_surface

    gp, pool = fitted_gp
    s = gp_surface(gp, pool[:30])
    cov = GPCovariance(s.model, s.X, torch.arange(0, 30, 5), s.noise_var)
    with torch.no_grad():
        C = s.model.posterior(s.X).distribution.covariance_matrix
    assert torch.allclose(cov.variance(), torch.diagonal(C), atol=1e-8)
    assert torch.allclose(cov.cross_mc(), C[:, ::5], atol=1e-8)
    assert torch.allclose(cov.columns(torch.tensor([3, 17])), C[:, [3, 17]], atol=1e-8)


def test_bald_marginal_is_the_joint_difference() -> None:
    g = torch.Generator().manual_seed(1)
    draws = torch.randn(500, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    cov = DrawsCovariance(draws.numpy(), torch.arange(6), noise_var=0.3)
    b = BatchBALD(cov, X_pending=torch.tensor([[0.0], [2.0]]))
    fast = float(b(torch.tensor([[[4.0]]])))
    joint = float(b.joint_utility(torch.tensor([[0, 2, 4]])) - b.joint_utility(torch.tensor([[0, 2]])))
    assert fast == pytest.approx(joint, rel=1e-8)
    # q = 1 without pending: 0.5 log(1 + Var/σ²)
    b0 = BatchBALD(cov)
    v = float(cov.variance()[3])
    assert float(b0(torch.tensor([[[3.0]]]))) == pytest.approx(0.5 * torch.log1p(torch.tensor(v / 0.3)).item())


def test_cost_divides_the_information() -> None:
    draws = torch.randn(400, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    cov = DrawsCovariance(draws.numpy(), torch.arange(4), noise_var=0.5)
    plain = BatchBALD(cov)
    costly = BatchBALD(cov, cost=torch.tensor([1.0, 2.0, 4.0, 8.0]))
    X = torch.arange(4, dtype=torch.float64).reshape(4, 1, 1)
    assert torch.allclose(costly(X), plain(X) / torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64))


def test_weighted_integration_equals_the_row_rescaled_gp() -> None:
    """mc_weights = s_m² is exactly the variance reduction of the GP rescaled row-wise by D = diag(s)
    (latent covariance D Σ D, noise D σ² D): a candidate's own scale cancels, only the integration
    points' weights change — the claim that lets eig reduce the calibrated (reported) variance."""
    g = torch.Generator().manual_seed(3)
    draws = torch.randn(400, 12, generator=g, dtype=torch.float64) @ torch.randn(12, 12, generator=g,
                                                                                    dtype=torch.float64)
    mc = torch.tensor([0, 2, 5, 7, 8, 11])
    noise = 0.3
    s = 0.5 + torch.rand(12, generator=g, dtype=torch.float64)
    cov = DrawsCovariance(draws, mc, noise)
    ivr = IntegratedVarianceReduction(cov, mc_weights=s[mc] ** 2)

    Sig = cov.columns(torch.arange(12))
    Sig_s = s[:, None] * Sig * s[None, :]

    def rescaled_utility(S: list[int]) -> float:
        A = Sig_s[S][:, S] + torch.diag(noise * s[S] ** 2)
        C = Sig_s[S][:, mc]  # s × M
        return float((C * torch.linalg.solve(A, C)).sum() / len(mc)) / float((s[mc] ** 2).mean())

    for S in ([3], [3, 9], [1, 4, 10]):
        assert float(ivr.joint_utility(torch.tensor([S]))) == pytest.approx(rescaled_utility(S), rel=1e-9)
    ivr.set_X_pending(torch.tensor([[3.0], [9.0]]))
    marginal = float(ivr(torch.tensor([[[6.0]]])))
    assert marginal == pytest.approx(rescaled_utility([3, 9, 6]) - rescaled_utility([3, 9]), rel=1e-9)
    # uniform weights are the unweighted acquisition; invalid weights are refused
    plain = IntegratedVarianceReduction(cov)
    same = IntegratedVarianceReduction(cov, mc_weights=torch.full((len(mc),), 2.5))
    assert float(plain.joint_utility(torch.tensor([[1, 4]]))) == pytest.approx(
        float(same.joint_utility(torch.tensor([[1, 4]]))))
    with pytest.raises(ValueError, match="mc_weights"):
        IntegratedVarianceReduction(cov, mc_weights=torch.ones(3))
