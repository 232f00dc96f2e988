"""Choosing the next deployment configuration: constrained (log-)noisy EI or EHVI over a discrete table.

Single objective — ``qLogNoisyExpectedImprovement`` (Ament et al., 2023): the expected
improvement over the *noisy* incumbent, integrated over joint posterior samples of the observed
points and the candidate, computed in log space so that it stays informative when improvement is
rare. Several objectives — ``qLogNoisyExpectedHypervolumeImprovement``: the expected growth of
the hypervolume dominated by the Pareto front of the observed configurations.

Outcome constraints are modelled by their own posteriors: each constraint ``metric <= bound`` is
a callable on the posterior samples, ``Z_j − log(bound)`` (feasible when ≤ 0), which BoTorch
turns into a smooth feasibility weight (a sigmoid of the sample with temperature ``eta``), so a
candidate's improvement is counted only in the samples where it is feasible.

The samples follow the rules every answer's posterior follows (:mod:`engine.models.base`), which
the GPs themselves do not know (:func:`_sample_rules`):

* p90 latency is never below the median: a p90 sample is the larger of itself and the same draw's
  median (the median is sampled too, as an extra output, when the problem does not name it);
* memory never falls below what must be resident (the table's floor: weights, the largest
  activation, the KV cache): a memory sample is raised to its row's floor (:class:`RowFloor`).
  BoTorch hands the objective the rows ``X`` but a constraint only the samples, so a constraint
  sees memory unfloored; a row whose floor exceeds a memory cap is never offered
  (:func:`engine.optimize.optimizer._online` leaves it out), and for every other row
  ``max(Z, f) <= b`` iff ``Z <= b``, so the constraint is the same.

The space is discrete (batch sizes, precisions, runtimes, threads, hardware), so the candidates are
enumerated and scored exhaustively by ``optimize_acqf_discrete``: with at most a few thousand
rows this is exact and faster than relaxing to a continuous problem.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch

from engine.models.base import AT_LEAST
from engine.optimize.spec import Problem
from engine.optimize.surrogate import Surrogate


@dataclass(frozen=True)
class Choice:
    index: int  # row of the candidate table
    value: float  # acquisition value (log EI / log EHVI)
    method: str


class RowFloor:
    """The log floor of a GP input row, found from the row itself: BoTorch hands objectives the
    inputs ``X``, not row numbers. Rows are matched on a fixed random projection (exact for the
    table's own rows; a row not in the table gets no floor)."""

    def __init__(self, X: torch.Tensor, floor: np.ndarray) -> None:
        gen = torch.Generator().manual_seed(0)
        self.r = torch.randn(X.shape[-1], generator=gen, dtype=X.dtype)
        keys = X @ self.r
        self.order = torch.argsort(keys)
        self.keys = keys[self.order]
        log_floor = torch.as_tensor(np.log(np.maximum(np.asarray(floor, dtype=float), 1e-300)), dtype=X.dtype)
        self.log_floor = log_floor[self.order]
        self.tol = 1e-9 * (1.0 + float(self.keys.abs().max())) if len(keys) else 0.0

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """Log floor per row of ``X`` (shape ``X.shape[:-1]``); ``-inf`` for a row not in the table."""
        k = X @ self.r
        n = len(self.keys)
        hi = torch.searchsorted(self.keys, k).clamp(max=n - 1)
        lo = (hi - 1).clamp(min=0)
        pick = torch.where((self.keys[lo] - k).abs() < (self.keys[hi] - k).abs(), lo, hi)
        out = self.log_floor[pick]
        return torch.where((self.keys[pick] - k).abs() <= self.tol, out, torch.full_like(out, -math.inf))


def _sample_rules(floors: dict[int, RowFloor], at_least: dict[int, int]) -> Any:
    """``apply(Z, X=None)``: samples ``Z`` (..., n, outputs) with output ``j`` raised to output
    ``at_least[j]`` of the same draw, then each floored output raised to its row's floor (needs ``X``)."""
    def apply(Z: torch.Tensor, X: Optional[torch.Tensor] = None) -> torch.Tensor:
        if not at_least and (not floors or X is None):
            return Z
        Z = Z.clone()
        for j, k in at_least.items():
            Z[..., j] = torch.maximum(Z[..., j], Z[..., k])
        for j, floor in (floors.items() if X is not None else ()):
            Z[..., j] = torch.maximum(Z[..., j], floor(X).expand(Z.shape[:-1]))
        return Z

    return apply


def _constraint_callables(problem: Problem, outputs: Sequence[str], rules: Any) -> list[Any]:
    cons = []
    for c in problem.constraints:
        j = outputs.index(c.metric)
        lb = math.log(c.bound)
        if c.upper:
            cons.append(lambda Z, j=j, lb=lb: rules(Z)[..., j] - lb)
        else:
            cons.append(lambda Z, j=j, lb=lb: lb - rules(Z)[..., j])
    return cons


def _ref_point(problem: Problem, surrogate: Surrogate, baseline: Sequence[int]) -> torch.Tensor:
    """Slightly worse than the worst observed value of each (signed, log) objective."""
    ref = []
    for m in problem.objectives:
        mu, _ = surrogate.predictive(m, baseline, observation_noise=False)
        v = problem.sign(m) * mu
        span = float(np.ptp(v)) if len(v) > 1 else 0.0
        ref.append(float(v.min()) - max(0.1 * span, 0.05))
    return torch.as_tensor(ref, dtype=torch.float64)


def choose_next(problem: Problem, surrogate: Surrogate, baseline: Sequence[int], available: Sequence[int],
                mc_samples: int = 128, seed: int = 0) -> Choice:
    """The candidate (row index among ``available``) that maximises the acquisition."""
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement
    from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
    from botorch.acquisition.multi_objective.objective import GenericMCMultiOutputObjective
    from botorch.acquisition.objective import GenericMCObjective
    from botorch.optim import optimize_acqf_discrete
    from botorch.sampling import SobolQMCNormalSampler

    outputs = list(problem.metrics)  # objectives first
    outputs += [AT_LEAST[m] for m in outputs if m in AT_LEAST and AT_LEAST[m] not in outputs]
    model = surrogate.model_list(outputs)
    X = surrogate.table.X
    X_base = X[torch.as_tensor(sorted(set(baseline)))]
    choices = X[torch.as_tensor(list(available))]
    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=seed)
    rules = _sample_rules({outputs.index(m): RowFloor(X, f) for m, f in surrogate.table.floors.items()
                           if m in problem.objectives},  # a constraint needs none: see the module's docstring
                          {outputs.index(m): outputs.index(AT_LEAST[m]) for m in outputs if m in AT_LEAST})
    constraints = _constraint_callables(problem, outputs, rules) or None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if problem.multi:
            k = len(problem.objectives)
            weights = torch.as_tensor([problem.sign(m) for m in problem.objectives], dtype=torch.float64)
            objective = GenericMCMultiOutputObjective(lambda Z, X=None: rules(Z, X)[..., :k] * weights)
            acq = qLogNoisyExpectedHypervolumeImprovement(
                model=model, ref_point=_ref_point(problem, surrogate, baseline), X_baseline=X_base,
                sampler=sampler, objective=objective,
                constraints=constraints, prune_baseline=True, cache_root=False)
            method = "qLogNEHVI"
        else:
            sign = problem.sign(problem.objectives[0])
            acq = qLogNoisyExpectedImprovement(
                model=model, X_baseline=X_base, sampler=sampler,
                objective=GenericMCObjective(lambda Z, X=None: sign * rules(Z, X)[..., 0]),
                constraints=constraints, prune_baseline=True, cache_root=False)
            method = "qLogNEI"
        cand, value = optimize_acqf_discrete(acq, q=1, choices=choices, max_batch_size=1024, unique=True)
    hit = torch.nonzero(torch.all(choices == cand[0], dim=-1)).reshape(-1)
    row = int(list(available)[int(hit[0])])
    return Choice(row, float(value.reshape(-1)[0]), method)
