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

The space is discrete (batch sizes, precisions, runtimes, threads, hardware), so the candidates are
enumerated and scored exhaustively by ``optimize_acqf_discrete``: with at most a few thousand
rows this is exact and faster than relaxing to a continuous problem.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from engine.optimize.spec import Problem
from engine.optimize.surrogate import Surrogate


@dataclass(frozen=True)
class Choice:
    index: int  # row of the candidate table
    value: float  # acquisition value (log EI / log EHVI)
    method: str


def _constraint_callables(problem: Problem, outputs: Sequence[str]) -> list[Any]:
    cons = []
    for c in problem.constraints:
        j = outputs.index(c.metric)
        lb = math.log(c.bound)
        if c.upper:
            cons.append(lambda Z, j=j, lb=lb: Z[..., j] - lb)
        else:
            cons.append(lambda Z, j=j, lb=lb: lb - Z[..., j])
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
    from botorch.acquisition.multi_objective.objective import WeightedMCMultiOutputObjective
    from botorch.acquisition.objective import GenericMCObjective
    from botorch.optim import optimize_acqf_discrete
    from botorch.sampling import SobolQMCNormalSampler

    outputs = list(problem.metrics)
    model = surrogate.model_list(outputs)
    X = surrogate.table.X
    X_base = X[torch.as_tensor(sorted(set(baseline)))]
    choices = X[torch.as_tensor(list(available))]
    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=seed)
    constraints = _constraint_callables(problem, outputs) or None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if problem.multi:
            k = len(problem.objectives)
            weights = torch.as_tensor([problem.sign(m) for m in problem.objectives], dtype=torch.float64)
            acq = qLogNoisyExpectedHypervolumeImprovement(
                model=model, ref_point=_ref_point(problem, surrogate, baseline), X_baseline=X_base,
                sampler=sampler, objective=WeightedMCMultiOutputObjective(weights=weights, outcomes=list(range(k))),
                constraints=constraints, prune_baseline=True, cache_root=False)
            method = "qLogNEHVI"
        else:
            sign = problem.sign(problem.objectives[0])
            acq = qLogNoisyExpectedImprovement(
                model=model, X_baseline=X_base, sampler=sampler,
                objective=GenericMCObjective(lambda Z, X=None: sign * Z[..., 0]),
                constraints=constraints, prune_baseline=True, cache_root=False)
            method = "qLogNEI"
        cand, value = optimize_acqf_discrete(acq, q=1, choices=choices, max_batch_size=1024, unique=True)
    hit = torch.nonzero(torch.all(choices == cand[0], dim=-1)).reshape(-1)
    row = int(list(available)[int(hit[0])])
    return Choice(row, float(value.reshape(-1)[0]), method)
