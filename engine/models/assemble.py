"""Assemble a :class:`PredictionSet` from per-metric log-normal parameters or draws.

Throughput is always derived from latency (items/s = batch / latency), never modelled on its own,
so the two can never disagree: on the log scale log(thr) = log(1000 * batch) - log(latency_ms),
with the same spread (or, for draws, the same draws transformed).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from engine.config import Config
from engine.models.base import PredictionSet

Pair = tuple[np.ndarray, np.ndarray]


def lognormal_set(configs: Sequence[Config], predictor: str, batch: np.ndarray, latency: Pair,
                  p90: Optional[Pair] = None, memory: Optional[Pair] = None) -> PredictionSet:
    """Log-normal posterior predictive per metric; ``*`` pairs are (mu_log, sigma_log) arrays."""
    ps = PredictionSet(configs=list(configs), predictor=predictor)
    mu, sd = latency
    ps.mu_log["latency_ms"], ps.sigma_log["latency_ms"] = mu, sd
    ps.mu_log["throughput"], ps.sigma_log["throughput"] = np.log(1000.0 * batch) - mu, sd.copy()
    if p90 is not None:
        ps.mu_log["latency_p90_ms"], ps.sigma_log["latency_p90_ms"] = p90
    if memory is not None:
        ps.mu_log["memory_mib"], ps.sigma_log["memory_mib"] = memory
    return ps


def draws_set(configs: Sequence[Config], predictor: str, batch: np.ndarray, latency: np.ndarray,
              p90: Optional[np.ndarray] = None, memory: Optional[np.ndarray] = None) -> PredictionSet:
    """Posterior predictive draws per metric, each (S, n) on the natural scale."""
    ps = PredictionSet(configs=list(configs), predictor=predictor)
    ps.samples["latency_ms"] = latency
    ps.samples["throughput"] = 1000.0 * batch[None, :] / latency
    if p90 is not None:
        ps.samples["latency_p90_ms"] = p90
    if memory is not None:
        ps.samples["memory_mib"] = memory
    return ps
