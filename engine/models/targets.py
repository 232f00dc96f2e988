"""Training targets from ``Store.measurements()``: log latency, its sampling variance, p90, memory.

Every learned model works on the log scale (latency and memory are positive and multiplicative),
and every one needs to know how precisely each measurement pins its configuration down: a run
with 200 tight samples deserves more weight than one with 5 noisy ones. That variance is computed
here, once, from the raw samples when the frame carries them (``with_samples=True``), else from
the stored standard deviation and iteration count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.config import Config
from engine.errors import NoDataError, PerfcastError
from engine.models.features import configs_from_frame

if TYPE_CHECKING:
    import pandas as pd

#: How a store gets runs to fit on, for the error an empty one gives.
_HOW_TO_ADD = "perfcast benchmark ... --save, or perfcast db import FILE"
#: Sampling variance used for a run that carries neither samples nor a std (log scale).
DEFAULT_LOG_VAR = 0.02**2
#: Within-run spread (robust sd of log latency) assumed for a run timed fewer than three times,
#: whose own samples cannot say it: the 90th percentile over the shipped runs (median 0.033, all of
#: them timed 4+ times). A ``--max-time`` cap can stop a slow run after one sample; before, that
#: run fell to :data:`DEFAULT_LOG_VAR` and was trusted like a median of twenty.
FEW_SAMPLES_LOG_SD = 0.09


def log_median_variance(samples: Any, median_ms: float, std_ms: float, iterations: float) -> float:
    """Sampling variance of log(median latency) of one run.

    With raw samples: the asymptotic variance of a median, pi/2 * s^2 / n, with a robust scale
    s = 1.4826 * MAD of the log samples (a few preempted iterations on a busy machine must not
    inflate it). With one or two samples: :data:`FEW_SAMPLES_LOG_SD` in place of their spread.
    Without samples: the stored std relative to the median and the iteration count.
    """
    import pandas as pd

    # a run imported without raw samples carries None, NaN or pd.NA here
    has_samples = samples is not None and not (np.ndim(samples) == 0 and pd.isna(samples))
    if has_samples and len(samples) >= 3:
        x = np.log(np.asarray(samples, dtype=float))
        mad = 1.4826 * float(np.median(np.abs(x - np.median(x))))
        return math.pi / 2 * mad**2 / len(x)
    if has_samples and len(samples) >= 1:  # too few to measure their spread (FEW_SAMPLES_LOG_SD)
        return math.pi / 2 * FEW_SAMPLES_LOG_SD**2 / len(samples)
    if any(v is None or pd.isna(v) for v in (std_ms, iterations, median_ms)):
        return DEFAULT_LOG_VAR
    try:
        std, it, med = float(std_ms), float(iterations), float(median_ms)
    except (TypeError, ValueError):
        return DEFAULT_LOG_VAR
    if it > 1 and med > 0 and std == std and it == it:
        return math.pi / 2 * (std / med) ** 2 / it
    return DEFAULT_LOG_VAR


@dataclass
class Targets:
    """Log-scale targets aligned with ``configs`` (memory is nan where not measured)."""

    configs: list[Config]
    frame: "pd.DataFrame"
    log_latency: np.ndarray
    var_log_latency: np.ndarray
    log_p90: np.ndarray
    log_memory: np.ndarray
    #: rows whose model was built the old way (in fp32, then converted or copied and quantized):
    #: their peak memory holds that build (:func:`legacy_builds`)
    legacy_build: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def has_memory(self) -> np.ndarray:
        return np.isfinite(self.log_memory)


#: A run timed with this many more foreign CPU cores busy than its configuration's quietest run
#: is superseded by that run (see superseded_busy_runs).
BUSY_SUPERSEDE_CORES = 0.5


def superseded_busy_runs(df: "pd.DataFrame") -> np.ndarray:
    """Runs left out of fits because a quieter run of the same configuration exists.

    ``foreign_cpu_cores`` (hardware.protocol) is how many cores other processes kept busy while a
    run was timed. ``perfcast benchmark`` tells the user to rerun a run taken on a busy machine;
    averaging the slow run with its quiet rerun would keep half of the bias, so a run whose load
    exceeds its configuration's quietest recorded run by more than :data:`BUSY_SUPERSEDE_CORES`
    is dropped. A configuration measured only under load loses its runs too, through
    :func:`busy_runs`; runs without the figure (older stores, imports) are never dropped.
    """
    if "foreign_cpu_cores" not in df.columns or "config_key" not in df.columns or len(df) == 0:
        return np.zeros(len(df), dtype=bool)
    import pandas as pd

    load = pd.to_numeric(df["foreign_cpu_cores"], errors="coerce")
    quietest = load.groupby(df["config_key"]).transform("min")
    return (load > quietest + BUSY_SUPERSEDE_CORES).fillna(False).to_numpy(dtype=bool)


def busy_runs(df: "pd.DataFrame") -> np.ndarray:
    """Runs timed while other processes took cores the run needed (``hardware.protocol.busy_machine``,
    judged against the cores of the machine that recorded it), which the fits leave out.

    Such a timing is not noise around the truth but a bound above it, often far above: in session
    24's audit, runs under 1.3 foreign cores on a 2-core VM were 5-25x slower than quiet ones, and
    five of them kept in the fit moved every answer for that CPU 6x, with confident intervals. A
    configuration's quiet rerun supersedes its busy run (:func:`superseded_busy_runs`); a busy run
    without one is left out until it is rerun, and ``predict`` says so for its device. Runs without
    the figure (older stores, imports) are kept."""
    if "foreign_cpu_cores" not in df.columns or len(df) == 0:
        return np.zeros(len(df), dtype=bool)
    import pandas as pd

    from hardware.protocol import run_was_busy

    load = pd.to_numeric(df["foreign_cpu_cores"], errors="coerce").to_numpy(dtype=float)
    threads = (pd.to_numeric(df["threads"], errors="coerce").fillna(0).to_numpy(dtype=int)
               if "threads" in df.columns else np.zeros(len(df), dtype=int))
    hardware = df["hardware"].astype(str).to_numpy() if "hardware" in df.columns else np.full(len(df), "")
    return np.array([bool(np.isfinite(f)) and run_was_busy(float(f), int(t), str(h))
                     for f, t, h in zip(load, threads, hardware)], dtype=bool)


def left_out_busy(df: "pd.DataFrame") -> np.ndarray:
    """The runs of ``df`` (successful ones) that the fits leave out for their machine's load:
    superseded by a quieter run of their configuration, or busy without one (:func:`busy_runs`) —
    unless every run is busy, when nothing could be fitted without them."""
    superseded = superseded_busy_runs(df)
    busy = busy_runs(df) & ~superseded
    return superseded | busy if not (busy | superseded).all() else superseded


def _warn_busy_left_out(df: "pd.DataFrame", busy: np.ndarray) -> None:
    """Name the busy runs without a quiet rerun that the fit leaves out (:func:`left_out_busy`)."""
    import warnings

    n = int(busy.sum())
    keys = list(dict.fromkeys(df.loc[busy, "config_key"].astype(str))) if "config_key" in df.columns else []
    warnings.warn(f"left {n} run{'s' if n != 1 else ''} timed on a busy machine out of the fit "
                  f"({', '.join(keys[:2])}{', ...' if len(keys) > 2 else ''}): rerun on a quiet machine "
                  "(perfcast benchmark ... --save) to use them", RuntimeWarning, stacklevel=4)


def unknown_models(df: "pd.DataFrame") -> list[str]:
    """The models of ``df``'s runs that no catalog defines (sorted): the fits leave their runs out."""
    from engine.catalog import models

    return sorted({str(m) for m in df["model"]} - set(models()))


def unknown_hardware(df: "pd.DataFrame") -> list[str]:
    """The devices of ``df``'s runs that no catalog resolves (sorted): the fits leave their runs out."""
    from engine.catalog import resolve_hardware

    unknown = []
    for hw in sorted({str(h) for h in df["hardware"]}):
        try:
            resolve_hardware(hw)
        except PerfcastError:
            unknown.append(hw)
    return unknown


def _known_models_only(df: "pd.DataFrame") -> "pd.DataFrame":
    """Leave out, with a warning, runs of models the catalog no longer defines: a user model whose
    ``PERFCAST_MODELS`` file is not set in this shell has no descriptors, and one such run must not
    stop every fit on the store. The runs stay stored; setting the variable brings them back."""
    if "model" not in df.columns or not len(df):
        return df
    return _leave_out(df, "model", unknown_models(df), "their models are not in the catalog", "models",
                      "to the file that defines them")


def _known_hardware_only(df: "pd.DataFrame") -> "pd.DataFrame":
    """The same for devices: runs imported from a teammate's CPU, a device of a ``PERFCAST_HARDWARE``
    file not set in this shell, or a misspelt id have no specification, and one of them stopped every
    fit on the store with "unknown hardware" (session 21's audit). They stay stored."""
    if "hardware" not in df.columns or not len(df):
        return df
    return _leave_out(df, "hardware", unknown_hardware(df), "their hardware is not in the catalog", "hardware",
                      "to a file that describes it")


def _leave_out(df: "pd.DataFrame", column: str, unknown: list[str], why: str, catalog: str,
               what_file: str) -> "pd.DataFrame":
    """``df`` without the rows whose ``column`` is in ``unknown``, with one warning naming them and
    the catalog variable (``USER_CATALOG_ENV[catalog]``) that would bring them back."""
    if not unknown:
        return df
    import warnings

    from engine.catalog import USER_CATALOG_ENV

    keep = ~df[column].isin(unknown).to_numpy()
    n = int((~keep).sum())
    warnings.warn(f"left {n} stored run{'s' if n != 1 else ''} out of the fit: {why} "
                  f"({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''}); set "
                  f"{USER_CATALOG_ENV[catalog]} {what_file}", RuntimeWarning, stacklevel=4)  # the predictor's fit
    return df[keep].reset_index(drop=True)


def legacy_builds(df: "pd.DataFrame") -> np.ndarray:
    """Runs of torch at fp16, bf16 or int8 whose versions lack ``BUILD_PROTOCOL_KEY``: measured
    before 2026-12-07, when the torch adapters built every model in fp32 and then converted it or
    quantized a copy, so their peak memory holds that build (every shipped run is one). Their
    latency is the same; the memory models read their build as it was
    (:func:`engine.models.features.with_legacy_builds`)."""
    from hardware.torch_common import BUILD_PROTOCOL_KEY

    n = len(df)
    if not n or "runtime" not in df.columns or "precision" not in df.columns:
        return np.zeros(n, dtype=bool)
    versions = df["versions"] if "versions" in df.columns else [None] * n  # JSON text, a dict, or missing
    marked = np.array([isinstance(v, (str, dict)) and BUILD_PROTOCOL_KEY in v for v in versions], dtype=bool)
    converted = (df["runtime"].to_numpy(dtype=object) == "torch") & (df["precision"].to_numpy(dtype=object) != "fp32")
    return converted & ~marked


def targets_from_measurements(data: "pd.DataFrame", *, catalog_models_only: bool = False) -> Targets:
    """Validate and convert a measurements frame (status ok rows only are used).

    ``catalog_models_only``: leave out runs of models and devices the catalogs do not define (see
    :func:`_known_models_only`, :func:`_known_hardware_only`); predictors set it when their
    featuriser reads the catalog."""
    if data is None or len(data) == 0:
        raise NoDataError("training data", "0 measurements", f"at least 1 successful measurement ({_HOW_TO_ADD})")
    df = data
    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    df = df[df["latency_median_ms"].notna() & (df["latency_median_ms"] > 0)].reset_index(drop=True)
    left = left_out_busy(df)  # superseded runs, and busy ones without a quiet rerun
    busy = left & ~superseded_busy_runs(df)
    if busy.any():
        _warn_busy_left_out(df, busy)
    df = df[~left].reset_index(drop=True)
    if catalog_models_only:
        df = _known_hardware_only(_known_models_only(df))
    if len(df) == 0:
        raise NoDataError("training data", "0 successful measurements", f"at least 1 status-ok run ({_HOW_TO_ADD})")
    med = df["latency_median_ms"].to_numpy(dtype=float)
    p90 = df["latency_p90_ms"].to_numpy(dtype=float) if "latency_p90_ms" in df else np.full(len(df), np.nan)
    p90 = np.where(np.isfinite(p90) & (p90 > 0), np.maximum(p90, med), med)
    mem = df["memory_peak_mib"].to_numpy(dtype=float) if "memory_peak_mib" in df else np.full(len(df), np.nan)
    mem = np.where(np.isfinite(mem) & (mem > 0), mem, np.nan)
    samples = df["samples_ms"] if "samples_ms" in df.columns else [None] * len(df)
    std = df["latency_std_ms"] if "latency_std_ms" in df.columns else [np.nan] * len(df)
    its = df["iterations"] if "iterations" in df.columns else [np.nan] * len(df)
    var = np.array([log_median_variance(s, m, sd, it) for s, m, sd, it in zip(samples, med, std, its)])
    return Targets(configs=configs_from_frame(df), frame=df, log_latency=np.log(med), var_log_latency=var,
                   log_p90=np.log(p90), log_memory=np.log(mem), legacy_build=legacy_builds(df))
