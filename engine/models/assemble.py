"""Assemble a :class:`PredictionSet` from per-metric log-normal parameters or draws.

Throughput is always derived from latency (items/s = batch / latency), never modelled on its own,
so the two can never disagree: on the log scale log(thr) = log(1000 * batch) - log(latency_ms),
with the same spread (or, for draws, the same draws transformed).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from engine.config import Config
from engine.models.base import AT_LEAST, PredictionSet

Pair = tuple[np.ndarray, np.ndarray]


def memory_floor_mib(phys: dict[str, np.ndarray]) -> np.ndarray:
    """What peak memory cannot fall below (a feature frame's ``phys``): ``floor_bytes``, the bytes
    that must be resident at once (the weights at the run's precision; in training their gradients
    and AdamW's moments; in inference the largest activation, e.g. the logits, and a KV cache the
    runtime keeps), or the weights alone where a world gives no more. Every run of the shipped
    dataset and of both bench/data CPUs measured at least 1.19x it (process RSS on CPUs; CUDA's
    allocator counts all of it too). The weights held while the model is built count too
    (``build_bytes``: torch's int8 is quantized from the fp32 model). Unknown sizes give no floor (0)."""
    w = np.asarray(phys.get("floor_bytes", phys["weight_bytes"]), dtype=float) / 2**20
    if "build_bytes" in phys:
        w = np.maximum(w, np.asarray(phys["build_bytes"], dtype=float) / 2**20)
    return np.where(np.isfinite(w) & (w > 0), w, 0.0)


def lognormal_set(configs: Sequence[Config], predictor: str, batch: np.ndarray, latency: Pair,
                  p90: Optional[Pair] = None, memory: Optional[Pair] = None,
                  memory_floor: Optional[np.ndarray] = None) -> PredictionSet:
    """Log-normal posterior predictive per metric; ``*`` pairs are (mu_log, sigma_log) arrays.
    ``memory_floor`` (MiB, see :func:`memory_floor_mib`) truncates the memory posterior below."""
    ps = PredictionSet(configs=list(configs), predictor=predictor)
    mu, sd = latency
    ps.mu_log["latency_ms"], ps.sigma_log["latency_ms"] = mu, sd
    ps.mu_log["throughput"], ps.sigma_log["throughput"] = np.log(1000.0 * batch) - mu, sd.copy()
    if p90 is not None:
        ps.mu_log["latency_p90_ms"], ps.sigma_log["latency_p90_ms"] = p90
        ps.at_least["latency_p90_ms"] = AT_LEAST["latency_p90_ms"]  # a run's p90 is never below its median
    if memory is not None:
        ps.mu_log["memory_mib"], ps.sigma_log["memory_mib"] = memory
        if memory_floor is not None:
            ps.floor["memory_mib"] = np.asarray(memory_floor, dtype=float)
    return ps


def draws_set(configs: Sequence[Config], predictor: str, batch: np.ndarray, latency: np.ndarray,
              p90: Optional[np.ndarray] = None, memory: Optional[np.ndarray] = None,
              memory_floor: Optional[np.ndarray] = None) -> PredictionSet:
    """Posterior predictive draws per metric, each (S, n) on the natural scale. Memory draws
    below ``memory_floor`` are raised to it (draws cannot be truncated per configuration without
    losing the joint (S, n) shape; the floor then holds the mass the bound rules out)."""
    ps = PredictionSet(configs=list(configs), predictor=predictor)
    ps.samples["latency_ms"] = latency
    ps.samples["throughput"] = 1000.0 * batch[None, :] / latency
    if p90 is not None:  # a run's p90 is never below its median: draw by draw
        ps.samples["latency_p90_ms"] = np.maximum(p90, latency)
    if memory is not None:
        ps.samples["memory_mib"] = memory if memory_floor is None else np.maximum(memory, memory_floor[None, :])
    return ps
