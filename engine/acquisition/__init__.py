"""Which benchmark to run next: candidate pool, benchmark cost, information acquisitions, batches.

* :mod:`engine.acquisition.pool` — search space minus measured, failed and surely-too-big configs;
* :mod:`engine.acquisition.cost` — predicted seconds a benchmark costs (information per second);
* :mod:`engine.acquisition.functions` — ``eig`` (integrated variance reduction = BoTorch qNIPV in
  closed form) and ``bald`` as BoTorch acquisition functions over an indexed discrete pool;
* :mod:`engine.acquisition.select` — ``select(name, predictor, candidates, q, ...)``: q configs
  jointly via BoTorch's ``optimize_acqf_discrete``, with pending configurations, and the
  baselines ``max-variance`` and ``random``.

Heavy imports (torch, BoTorch) happen inside the submodules, not here.
"""
from __future__ import annotations

from engine.acquisition.cost import CostModel, MeasuringPlan, SetupModel
from engine.acquisition.pool import CandidatePool, build_pool, pool_from_store
from engine.acquisition.select import ACQUISITIONS, Selection, SelectedItem, check_acquisition, select

__all__ = ["ACQUISITIONS", "CandidatePool", "CostModel", "MeasuringPlan", "Selection", "SelectedItem", "SetupModel",
           "build_pool", "check_acquisition", "pool_from_store", "select"]
