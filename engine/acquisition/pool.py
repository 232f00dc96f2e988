"""The candidate pool: which configurations are still worth benchmarking.

A benchmark is only worth running if it can tell us something new. So the pool is the search
space minus

* configurations that already have a successful measurement (``measured``),
* configurations that already failed (status ``failed``/``oom``/``timeout``: running them again
  would most likely fail again and burn the budget; the failure itself is the measurement),
* configurations that the posterior says will NOT fit in memory with probability > 0.9
  (``P(memory > capacity) > max_p_no_fit``), where capacity is the device's memory and, if the
  experiment sets one, the benchmark's memory limit — whichever is smaller.

The reasons are counted so the loop and ``perfcast suggest`` can say why the pool shrank.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence

import numpy as np

from engine.config import Config

if TYPE_CHECKING:
    from engine.models.base import PredictionSet

FAILED_STATUSES: tuple[str, ...] = ("failed", "oom", "timeout")
MAX_P_NO_FIT = 0.9


@dataclass
class CandidatePool:
    """Configurations that may still be benchmarked, with why the others were dropped."""

    configs: list[Config]
    space_size: int
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> count
    p_fit: Optional[np.ndarray] = None  # P(fits in memory) per candidate (None: no memory model)
    #: configurations of the space back in the pool: every failure of theirs hit a lower limit (:func:`retryable`)
    retried: int = 0

    def __len__(self) -> int:
        return len(self.configs)

    def keys(self) -> list[str]:
        return [c.key for c in self.configs]


def prob_fits(predictions: "PredictionSet", capacity_mib: np.ndarray) -> Optional[np.ndarray]:
    """P(peak memory <= capacity) per configuration from the memory posterior (None without one).

    Capacity NaN (unknown device memory) means "fits" (probability 1): we cannot rule it out.
    """
    cap = np.asarray(capacity_mib, dtype=float)
    if "memory_mib" not in predictions.samples and "memory_mib" not in predictions.mu_log:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        p = predictions.cdf("memory_mib", np.where(np.isfinite(cap), cap, 1.0))  # the weights' floor included
    return np.where(np.isfinite(cap), p, 1.0)


def build_pool(space: Sequence[Config], *, measured: Iterable[str] = (), failed: Iterable[str] = (),
               predictions: Optional["PredictionSet"] = None, capacity_mib: Optional[np.ndarray] = None,
               max_p_no_fit: float = MAX_P_NO_FIT) -> CandidatePool:
    """Apply the exclusion rules (see the module docstring) to ``space``, keeping its order.

    ``predictions`` and ``capacity_mib`` must be aligned with ``space`` (or both None, which
    skips the memory rule).
    """
    space = list(dict.fromkeys(space))  # de-duplicate, keep order
    measured_s, failed_s = set(measured), set(failed)
    excluded = {"measured": 0, "failed": 0, "memory": 0}
    p_fit_all = None
    if predictions is not None and capacity_mib is not None:
        if len(predictions) != len(space):
            raise ValueError("predictions must be aligned with the de-duplicated search space")
        p_fit_all = prob_fits(predictions, capacity_mib)
    keep: list[int] = []
    for i, c in enumerate(space):
        k = c.key
        if k in measured_s:
            excluded["measured"] += 1
        elif k in failed_s:
            excluded["failed"] += 1
        elif p_fit_all is not None and (1.0 - p_fit_all[i]) > max_p_no_fit:
            excluded["memory"] += 1
        else:
            keep.append(i)
    return CandidatePool(configs=[space[i] for i in keep], space_size=len(space), excluded=excluded,
                         p_fit=None if p_fit_all is None else p_fit_all[keep])


_TIME_LIMIT = re.compile(r"time limit exceeded: ([0-9.eE+-]+) s")
_MEMORY_LIMIT = re.compile(r"memory limit exceeded: .*> limit ([0-9.eE+-]+) MiB")


def retryable(status: str, error: str, time_limit_s: Optional[float] = None,
              memory_limit_mib: Optional[float] = None) -> bool:
    """Whether a failed run says nothing about a benchmark under these limits: it hit a time or
    memory limit (:mod:`hardware.isolation` writes the limit into the error) lower than the one
    given. Audit: a configuration that timed out under a 2 s limit was left out of every later
    loop in the store, a loop with 90 s included, and "the pool is empty" said nothing of why."""
    if status == "timeout" and time_limit_s is not None:
        m = _TIME_LIMIT.search(error or "")
        return m is not None and float(m.group(1)) < time_limit_s
    if status == "oom":
        m = _MEMORY_LIMIT.search(error or "")
        return m is not None and (memory_limit_mib is None or float(m.group(1)) < memory_limit_mib)
    return False


def blocking_failures(failures: dict[str, list[tuple[str, str]]], time_limit_s: Optional[float] = None,
                      memory_limit_mib: Optional[float] = None) -> tuple[set[str], set[str]]:
    """(keys whose failures exclude them, keys whose every failure was under a lower limit) from
    :meth:`engine.store.Store.failures`: one failure under these limits (or with no limit in it)
    excludes a configuration; failures only under lower limits let it be tried again."""
    blocked, retry = set(), set()
    for key, runs in failures.items():
        if all(retryable(st, err, time_limit_s, memory_limit_mib) for st, err in runs):
            retry.add(key)
        else:
            blocked.add(key)
    return blocked, retry


def empty_pool_reason(pool: CandidatePool) -> str:
    """"the pool is empty" with why: how many of the space's configurations each rule took out."""
    ex = pool.excluded
    parts = [f"{ex.get('measured', 0)} already measured", f"{ex.get('failed', 0)} failed"]
    if ex.get("memory"):
        parts.append(f"{ex['memory']} predicted not to fit in memory")
    why = f"the pool is empty: of the {pool.space_size} configurations, {', '.join(parts)}"
    if ex.get("measured") or ex.get("failed"):
        why += (" (runs anywhere in the store count, whichever experiment or import made them; "
                "`perfcast db delete --experiment ID` removes an experiment's runs)")
    return why


def capacity_for(configs: Sequence[Config], featurizer: Any = None,
                 memory_limit_mib: Optional[float] = None) -> np.ndarray:
    """Memory a benchmark may use, per configuration: device memory, capped by the benchmark limit."""
    from engine.models.features import default_featurizer

    ff = (featurizer or default_featurizer())(list(configs))
    cap = np.asarray(ff.phys["memory_capacity_mib"], dtype=float).copy()
    if memory_limit_mib is not None:
        cap = np.where(np.isfinite(cap), np.minimum(cap, memory_limit_mib), memory_limit_mib)
    return cap


def pool_from_store(space: Sequence[Config], store: Any, predictor: Any = None, *,
                    memory_limit_mib: Optional[float] = None, max_p_no_fit: float = MAX_P_NO_FIT,
                    predictions: Optional["PredictionSet"] = None,
                    run_limits: Optional[tuple[Optional[float], Optional[float]]] = None) -> CandidatePool:
    """The pool for ``space`` given what ``store`` holds and what ``predictor`` believes.

    ``predictions`` (aligned with the de-duplicated ``space``) saves a second predict call when the
    caller already has them. ``run_limits`` (time limit s, memory limit MiB) of the benchmarks to be
    run: a configuration that failed only under lower limits is a candidate again
    (:func:`blocking_failures`, the loop's rule; audit: ``suggest`` dropped it for good).
    """
    space = list(dict.fromkeys(space))
    measured = store.configs_with_status(["ok"])
    retried = 0
    if run_limits is None:
        failed = store.configs_with_status(list(FAILED_STATUSES))
    else:
        failed, retry = blocking_failures(store.failures(list(FAILED_STATUSES)), *run_limits)
        retried = len(retry & {c.key for c in space} - measured)
    cap = None
    if predictor is not None:
        if predictions is None:
            predictions = predictor.predict(space) if space else None
        if predictions is not None:
            cap = capacity_for(space, getattr(predictor, "featurizer", None), memory_limit_mib)
    pool = build_pool(space, measured=measured, failed=failed, predictions=predictions, capacity_mib=cap,
                      max_p_no_fit=max_p_no_fit)
    pool.retried = retried
    return pool
