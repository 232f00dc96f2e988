"""Posterior covariances of the latent surface over an indexed table of configurations.

Both information acquisitions reduce to Gaussian algebra on a few blocks of the posterior
covariance of the latent log-metric f over a table (candidates, then pending configurations):

* the diagonal ``v = Var[f(x)]`` for every row,
* the cross-covariance with the Monte-Carlo integration points ``Cov[f(x), f(m)]``,
* columns ``Cov[f(x), f(p)]`` for the configurations being conditioned on (pending ones, and the
  ones the greedy batch construction has already picked) — computed on demand and cached.

Never the full n×n matrix: a 10,000-candidate pool would need 800 MB for it.

Two sources: :class:`GPCovariance` (exact, from the BoTorch model's posterior, in chunks) and
:class:`DrawsCovariance` (empirical, from joint posterior draws of E[log y | θ], e.g. NUTS draws of
the hierarchical model).
"""
from __future__ import annotations

from typing import Any, Optional, Protocol, Sequence

import numpy as np
import torch


class CovarianceSource(Protocol):
    n: int  # rows in the table
    mc_index: torch.Tensor  # (M,) rows used as integration points
    noise_var: float  # variance of a new measurement around f (log units)

    def variance(self) -> torch.Tensor:
        """(n,) posterior variance of f per row."""

    def cross_mc(self) -> torch.Tensor:
        """(n, M) Cov[f(row), f(mc point)]."""

    def columns(self, index: torch.Tensor) -> torch.Tensor:
        """(n, len(index)) Cov[f(row), f(index[j])]."""


class _ColumnCache:
    def __init__(self) -> None:
        self._cols: dict[int, torch.Tensor] = {}

    def columns(self, index: torch.Tensor) -> torch.Tensor:
        idx = [int(i) for i in index.reshape(-1).tolist()]
        missing = sorted({i for i in idx if i not in self._cols})
        if missing:
            block = self._compute_columns(missing)
            for j, i in enumerate(missing):
                self._cols[i] = block[:, j]
        if not idx:
            return torch.zeros((self.n, 0), dtype=torch.float64)  # type: ignore[attr-defined]
        return torch.stack([self._cols[i] for i in idx], dim=1)

    def _compute_columns(self, index: list[int]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class GPCovariance(_ColumnCache):
    """Exact posterior covariances of a BoTorch GP's latent function (no observation noise).

    ``X`` holds the model inputs of the table's rows (before the model's input transform). With
    T the training inputs, K the kernel and N the training noise,

        Cov[f(a), f(b)] = s² · (K(a, b) − w_aᵀ w_b),   w = L⁻¹ K(T, ·),   L Lᵀ = K(T, T) + N

    where s is the outcome standardisation's scale. ``w`` is computed once for the whole table
    (n_train × n numbers), so a cross-covariance block costs one kernel evaluation of that block
    and a matrix product — not the (chunk + k)² joint posterior covariance. The tests check these
    blocks against ``model.posterior(...)``.
    """

    def __init__(self, model: Any, X: torch.Tensor, mc_index: torch.Tensor, noise_var: float,
                 chunk: int = 4096) -> None:
        super().__init__()
        self.model = model
        self.n = int(X.shape[0])
        self.mc_index = mc_index.to(torch.long)
        self.noise_var = float(noise_var)
        self.chunk = int(chunk)
        self._var: Optional[torch.Tensor] = None
        self._cross: Optional[torch.Tensor] = None
        model.eval()
        with torch.no_grad():
            self.Z = model.transform_inputs(X.to(torch.float64))  # kernel inputs of the table rows
            T = model.train_inputs[0]
            K = self._k(T, T)
            mvn = model.likelihood(model.forward(T), [T])  # adds the training noise to the prior
            noise = torch.diagonal(mvn.covariance_matrix - model.forward(T).covariance_matrix)
            L = torch.linalg.cholesky(K + torch.diag(noise) + 1e-10 * torch.eye(K.shape[0], dtype=K.dtype))
            self.W = torch.cat([torch.linalg.solve_triangular(L, self._k(T, self.Z[i:i + self.chunk]), upper=False)
                                for i in range(0, self.n, self.chunk)], dim=1)  # n_train × n
            ot = getattr(model, "outcome_transform", None)
            stdvs = getattr(ot, "stdvs", None)
            self.scale2 = float(stdvs.reshape(-1)[0] ** 2) if stdvs is not None else 1.0

    def _k(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return self.model.covar_module(A, B).to_dense()

    def _cross_with(self, index: torch.Tensor) -> torch.Tensor:
        Zb, Wb = self.Z[index], self.W[:, index]
        with torch.no_grad():
            out = [self._k(self.Z[i:i + self.chunk], Zb) - self.W[:, i:i + self.chunk].T @ Wb
                   for i in range(0, self.n, self.chunk)]
        return self.scale2 * torch.cat(out, dim=0)

    def variance(self) -> torch.Tensor:
        if self._var is None:
            with torch.no_grad():
                prior = torch.cat([self.model.covar_module(self.Z[i:i + self.chunk], self.Z[i:i + self.chunk],
                                                           diag=True) for i in range(0, self.n, self.chunk)])
            self._var = (self.scale2 * (prior - (self.W**2).sum(0))).clamp_min(0.0)
        return self._var

    def cross_mc(self) -> torch.Tensor:
        if self._cross is None:
            self._cross = self._cross_with(self.mc_index)
        return self._cross

    def _compute_columns(self, index: list[int]) -> torch.Tensor:
        return self._cross_with(torch.as_tensor(index, dtype=torch.long))


class DrawsCovariance(_ColumnCache):
    """Empirical covariances from joint posterior draws ``(S, n)`` of the latent log-metric."""

    def __init__(self, draws: np.ndarray | torch.Tensor, mc_index: torch.Tensor, noise_var: float) -> None:
        super().__init__()
        D = torch.as_tensor(np.asarray(draws), dtype=torch.float64)
        if D.dim() != 2 or D.shape[0] < 2:
            raise ValueError("draws must be (S >= 2, n)")
        self.S = int(D.shape[0])
        self.n = int(D.shape[1])
        self.D = D - D.mean(dim=0, keepdim=True)
        self.mc_index = mc_index.to(torch.long)
        self.noise_var = float(noise_var)
        self._var = (self.D**2).sum(0) / (self.S - 1)
        self._cross = self.D.T @ self.D[:, self.mc_index] / (self.S - 1)

    def variance(self) -> torch.Tensor:
        return self._var

    def cross_mc(self) -> torch.Tensor:
        return self._cross

    def _compute_columns(self, index: list[int]) -> torch.Tensor:
        return self.D.T @ self.D[:, torch.as_tensor(index, dtype=torch.long)] / (self.S - 1)


def submatrix(cov: CovarianceSource, index: Sequence[int]) -> np.ndarray:
    """The small dense Cov[f(index), f(index)] (for reporting: correlations within a batch)."""
    idx = torch.as_tensor(list(index), dtype=torch.long)
    if len(idx) == 0:
        return np.zeros((0, 0))
    cols = cov.columns(idx)
    return cols[idx].numpy()
