"""The one place that reaches into :class:`engine.models.gp.GPPredictor`.

The information-gain acquisition needs what the Predictor protocol deliberately hides: the fitted
BoTorch ``SingleTaskGP`` of a metric, the model-input matrix of the candidate configurations
(``design.matrix(featurizer(configs))`` — the same inputs the GP was trained on), and the noise
variance of a new run. Everything that depends on GPPredictor's attributes (``outputs``,
``design``, ``roofline``, ``featurizer``) lives here, so a change there breaks one small module.

It also offers :func:`condition_gp`: "add the new measurements but keep the hyperparameters" —
what an active-learning loop needs between two hyperparameter fits (a refit costs seconds to
tens of seconds on two cores; conditioning a fraction of that).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from engine.config import Config
from engine.errors import InvalidValueError

if TYPE_CHECKING:
    import pandas as pd
    import torch

#: acquisition metric names -> the GP output that models them (throughput = batch / latency)
GP_OUTPUT: dict[str, str] = {"latency": "latency_ms", "latency_ms": "latency_ms", "throughput": "latency_ms",
                             "latency_p90_ms": "latency_p90_ms", "memory": "memory_mib", "memory_mib": "memory_mib"}


def is_gp(predictor: Any) -> bool:
    """True for a fitted GPPredictor-like object (BoTorch models per output + a design)."""
    return bool(getattr(predictor, "outputs", None)) and getattr(predictor, "design", None) is not None


def output_name(metric: str) -> str:
    try:
        return GP_OUTPUT[metric]
    except KeyError:
        raise InvalidValueError("metric", metric, ", ".join(sorted(GP_OUTPUT))) from None


@dataclass
class GPSurface:
    """A fitted GP output and candidate inputs: what BoTorch acquisition functions consume."""

    model: Any  # botorch SingleTaskGP (eval mode), outputs in log units of the metric's correction
    X: "torch.Tensor"  # (n, d) model inputs of the configurations, in the given order
    noise_var: float  # variance (log units) of a new run's measurement around the latent value
    output: str


def features(predictor: Any, configs: Sequence[Config]) -> np.ndarray:
    """The GP's model inputs for ``configs`` (feature columns + group codes)."""
    from engine.models.features import default_featurizer

    ff = (predictor.featurizer or default_featurizer())(list(configs))
    return predictor.design.matrix(ff)


def gp_surface(predictor: Any, configs: Sequence[Config], metric: str = "latency_ms") -> GPSurface:
    """The BoTorch model of ``metric`` and the inputs of ``configs`` (see the module docstring)."""
    import torch

    if not is_gp(predictor):
        raise InvalidValueError("predictor for this acquisition", getattr(predictor, "name", type(predictor).__name__),
                                "a fitted gp")
    out = output_name(metric)
    if out not in predictor.outputs:
        raise InvalidValueError("metric", metric, ", ".join(predictor.outputs))
    gp = predictor.outputs[out]
    X = torch.as_tensor(features(predictor, configs), dtype=torch.float64)
    gp.model.eval()
    return GPSurface(model=gp.model, X=X, noise_var=float(gp.new_noise_var()), output=out)


def condition_gp(predictor: Any, data: "pd.DataFrame") -> bool:
    """Refit a fitted GP on ``data`` keeping its hyperparameters (no optimiser iterations).

    Uses GPPredictor's own warm start with ``maxiter_warm = 0`` — its "condition only" path — so
    the roofline prior, design, calibration and prediction caches are rebuilt exactly as a fit
    would. Returns False for a predictor that is not a fitted GP (the caller then fits it).
    """
    if not is_gp(predictor) or not hasattr(predictor, "maxiter_warm"):
        return False
    saved = (predictor.maxiter_warm, getattr(predictor, "warm_start", True))
    predictor.maxiter_warm, predictor.warm_start = 0, True
    try:
        predictor.fit(data)
    finally:
        predictor.maxiter_warm, predictor.warm_start = saved
    return True


def roughness_var(predictor: Any, metric: str = "latency_ms") -> float:
    """τ² of ``metric``'s GP output (log units): the part of a new run's variance that no benchmark
    of another configuration reduces (:meth:`engine.models.gp.OutputGP.calibrate`); 0 without one."""
    if not is_gp(predictor):
        return 0.0
    out = predictor.outputs.get(output_name(metric))
    return float(out.roughness) ** 2 if out is not None else 0.0
