"""Predictor names -> classes, imported lazily (the GP pulls in torch, the hierarchical model jax).

``get_predictor("gp", featurizer=...)`` returns an unfitted predictor; names are the ones the CLI
and evaluation print: ``roofline``, ``gp``, ``hierarchical``.
"""
from __future__ import annotations

import importlib
from typing import Any

from engine.errors import UnknownNameError
from engine.models.base import Predictor

PREDICTORS: dict[str, str] = {
    "roofline": "engine.models.roofline:RooflinePredictor",
    "gp": "engine.models.gp:GPPredictor",
    "hierarchical": "engine.models.hierarchical:HierarchicalPredictor",
}


def predictor_class(name: str) -> type:
    target = PREDICTORS.get(name)
    if target is None:
        raise UnknownNameError("predictor", name, PREDICTORS.keys())
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def get_predictor(name: str, **kw: Any) -> Predictor:
    """An unfitted predictor by name; keyword arguments go to its constructor."""
    return predictor_class(name)(**kw)
