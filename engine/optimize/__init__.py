"""Bayesian optimisation of deployment configurations: ``optimize_deployment``.

Modules, one job each: :mod:`~engine.optimize.spec` (validate objectives, constraints, space),
:mod:`~engine.optimize.surrogate` (three GPs, every metric derived from them, roofline prior mean),
:mod:`~engine.optimize.acquisition` (qLogNEI / qLogNEHVI over the discrete candidates),
:mod:`~engine.optimize.ranking` (E[utility × 1{feasible}], or E[utility] × P(feasible) offline), :mod:`~engine.optimize.executors`
(local adapters, replay oracle, Ray), :mod:`~engine.optimize.optimizer` (the loop).
"""
from __future__ import annotations

from typing import Any

__all__ = ["optimize_deployment", "OptimizationResult", "Assessment", "Evaluation", "LocalExecutor",
           "ReplayExecutor"]

_LAZY = {"optimize_deployment": "engine.optimize.optimizer", "OptimizationResult": "engine.optimize.result",
         "Assessment": "engine.optimize.result", "Evaluation": "engine.optimize.result",
         "LocalExecutor": "engine.optimize.executors", "ReplayExecutor": "engine.optimize.executors"}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'engine.optimize' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(mod), name)
