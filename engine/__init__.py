"""perfcast: probabilistic performance prediction for ML models on hardware.

The public names are exported lazily (PEP 562 ``__getattr__``): ``import engine`` must stay
instant because every CLI invocation and every adapter imports it, while the names below pull in
torch, DuckDB or JAX. Add a public name by adding one ``name -> "module:attr"`` entry to
``_EXPORTS``.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "PerformancePredictor": "engine.predict:PerformancePredictor",
    "Prediction": "engine.models.base:Prediction",
    "MetricPrediction": "engine.models.base:MetricPrediction",
    "PredictionSet": "engine.models.base:PredictionSet",
    "Config": "engine.config:Config",
    "Store": "engine.store:Store",
    "ActiveLearningSystem": "engine.active_learning:ActiveLearningSystem",
    "optimize_deployment": "engine.optimize.optimizer:optimize_deployment",
    "HardwareRecommender": "engine.recommend:HardwareRecommender",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
