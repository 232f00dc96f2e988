"""Held-out evaluation: accuracy is measured, not claimed.

Splits the store's successful measurements into train and test parts, fits every predictor on
the train part only, and scores its predictive distribution on the test part (see
:mod:`engine.scoring` for the scores and why CRPS is on the log scale).

Holdouts:
- ``random``: a random ``fraction`` of *configurations* (all repeated runs of a configuration
  fall on the same side, so a test point is never a re-run of a training point).
- ``hardware`` / ``model`` / ``family``: leave-one-group-out: each hardware / model / model
  family is held out in turn, the rest trains. With ``fraction`` only a random subset of the
  groups (that fraction, at least one) is held out, to bound the run time. Scores are pooled
  over the folds.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

from engine.config import SOFTWARE_PATH, Config, joined_labels
from engine.errors import InvalidValueError, NoDataError, PerfcastError
from engine.scoring import RowScores, Scores, aggregate, row_scores

if TYPE_CHECKING:
    import pandas as pd

    from engine.models.base import PredictionSet

HOLDOUTS: tuple[str, ...] = ("random", "hardware", "model", "family")
#: The share of configurations a random holdout tests on when no ``fraction`` is given.
RANDOM_FRACTION = 0.2
PREDICTORS: tuple[str, ...] = ("roofline", "baseline", "gp", "hierarchical")
# predicted metric -> observed store column
EVAL_METRICS: dict[str, str] = {"latency_ms": "latency_median_ms", "latency_p90_ms": "latency_p90_ms",
                                "memory_mib": "memory_peak_mib"}
#: quantile levels whose values stand in for draws in the CRPS of a posterior with a floor or an
#: envelope (no closed form): the CRPS is the pinball loss averaged over levels (256: within 2e-5 of the closed form on a log-normal)
CRPS_LEVELS: int = 256


@dataclass(frozen=True)
class Fold:
    name: str  # what was held out ("random 20%", a model name, ...)
    train: np.ndarray  # row positions
    test: np.ndarray


def _family_of(model: str) -> str:
    from engine.catalog import models

    entry = models().get(model)
    return entry.family if entry else "unknown"


def make_folds(df: "pd.DataFrame", holdout: str, fraction: Optional[float] = None, seed: int = 0) -> list[Fold]:
    """Train/test row positions for a holdout scheme (see the module docstring)."""
    if holdout not in HOLDOUTS:
        raise InvalidValueError("holdout", holdout, ", ".join(HOLDOUTS))
    if fraction is not None and not 0 < fraction < 1:
        raise InvalidValueError("fraction", fraction, "a number in (0, 1)")
    rng = np.random.default_rng(seed)
    n = len(df)
    if holdout == "random":
        frac = RANDOM_FRACTION if fraction is None else fraction
        keys = df["config_key"].to_numpy()
        uniq = np.unique(keys)
        n_test = max(1, int(round(frac * len(uniq))))
        if len(uniq) < 2:
            raise InvalidValueError("holdout", holdout, "a store with at least 2 distinct configurations")
        test_keys = set(rng.choice(uniq, size=min(n_test, len(uniq) - 1), replace=False))
        is_test = np.array([k in test_keys for k in keys])
        return [Fold(f"random {frac:.0%} of configurations", np.nonzero(~is_test)[0], np.nonzero(is_test)[0])]
    if holdout == "family":
        groups = np.array([_family_of(m) for m in df["model"]])
    else:
        groups = df[holdout].to_numpy().astype(str)
    uniq = sorted(set(groups))
    if len(uniq) < 2:
        raise InvalidValueError("holdout", holdout, f"a store with at least 2 distinct {holdout} values "
                                f"(this one has {len(uniq)})")
    if fraction is not None:
        k = max(1, int(round(fraction * len(uniq))))
        uniq = sorted(rng.choice(uniq, size=min(k, len(uniq)), replace=False).tolist())
    idx = np.arange(n)
    return [Fold(str(g), idx[groups != g], idx[groups == g]) for g in uniq]


def noise_floor(df: "pd.DataFrame") -> dict[str, Optional[float]]:
    """How well a perfect model could do: the spread between repeated runs of one configuration.

    ``between_runs_median_ape``: median |run - median of the other runs| / that median, over
    configurations measured at least twice. ``within_run_cv_median``: median of the per-run
    std/median of the timed iterations (a lower bound when no configuration was repeated).
    """
    out: dict[str, Optional[float]] = {"between_runs_median_ape": None, "n_repeated_configs": 0,
                                       "within_run_cv_median": None}
    apes: list[float] = []
    for _, g in df.groupby("config_key"):
        y = g["latency_median_ms"].to_numpy(dtype=float)
        if len(y) < 2:
            continue
        out["n_repeated_configs"] = int(out["n_repeated_configs"] or 0) + 1
        for i in range(len(y)):
            ref = float(np.median(np.delete(y, i)))
            apes.append(abs(y[i] - ref) / ref)
    if apes:
        out["between_runs_median_ape"] = float(np.median(apes))
    if "latency_std_ms" in df:
        cv = (df["latency_std_ms"] / df["latency_median_ms"]).to_numpy(dtype=float)
        cv = cv[np.isfinite(cv)]
        if cv.size:
            out["within_run_cv_median"] = float(np.median(cv))
    return out


def default_factory(name: str, allow_bad_diagnostics: bool = False) -> Any:
    """A fresh, unfitted predictor by name (the baseline lives here, the rest in the registry)."""
    if name == "baseline":
        from engine.baseline import BaselinePredictor

        return BaselinePredictor()
    if name not in PREDICTORS:
        raise InvalidValueError("predictor", name, ", ".join(PREDICTORS))
    from engine.predict import make_predictor

    return make_predictor(name, allow_bad_diagnostics=allow_bad_diagnostics)


def runs_the_fits_use(df: "pd.DataFrame", *, catalog: bool = True) -> "pd.DataFrame":
    """The successful runs every fit trains on (:func:`engine.models.targets.targets_from_measurements`),
    with one warning naming what is left out: runs timed on a busy machine (superseded, or without a
    quiet rerun) and, with ``catalog``, runs of models or devices the catalogs do not define.

    Held out, a run the fits distrust was scored anyway: a busy run 5-25x slow counted as the
    predictor's miss, and one imported run of a teammate's CPU (a device no catalog here
    describes) failed every predictor's prediction, so ``perfcast evaluate`` printed no score at
    all for a store whose fits work (audit 2026-12-08)."""
    import warnings

    from engine.models.targets import left_out_busy, unknown_hardware, unknown_models

    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    lat = df["latency_median_ms"].to_numpy(dtype=float)
    df = df[np.isfinite(lat) & (lat > 0)].reset_index(drop=True)
    drop = left_out_busy(df)
    reasons = [f"{int(drop.sum())} timed on a busy machine"] if drop.any() else []
    if catalog and len(df):
        for column, unknown, what in (("model", unknown_models(df), "of a model"),
                                      ("hardware", unknown_hardware(df), "on a device")):
            if unknown:
                hit = df[column].astype(str).isin(unknown).to_numpy()  # every run of those names
                drop |= hit
                reasons.append(f"{int(hit.sum())} {what} the catalogs do not define "
                               f"({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''})")
    if drop.any():
        n = int(drop.sum())
        warnings.warn(f"left {n} stored run{'s' if n != 1 else ''} out of the evaluation, as every fit leaves "
                      f"them out: {'; '.join(reasons)}", RuntimeWarning, stacklevel=3)
    return df[~drop]


def _warm_descriptors(df: "pd.DataFrame") -> None:
    """Featurise every row once up front (descriptors are cached per process), so the reported
    fit times are the predictors' own and not whichever predictor happened to run first."""
    try:
        from engine.models.features import featurize

        featurize(df)
    except Exception:  # noqa: BLE001 - a featurisation problem surfaces in the predictor that hits it
        pass


def _observed(test: "pd.DataFrame", column: str) -> np.ndarray:
    """The test rows that observed ``column`` (a positive, finite value): the rows that are scored.

    Memory is scored only where the run built its model as the adapters do today: a prediction is
    for today's build, and a legacy run's peak holds an fp32 build that no run makes any more
    (:func:`engine.models.targets.legacy_builds`; the fits still learn from those runs)."""
    y = test[column].to_numpy(dtype=float)
    ok = np.isfinite(y) & (y > 0)
    if column == EVAL_METRICS["memory_mib"]:
        from engine.models.targets import legacy_builds

        ok &= ~legacy_builds(test)
    return ok


def _software_paths(test: "pd.DataFrame", column: str) -> np.ndarray:
    """runtime/precision/mode of the test rows ``score_rows`` scores."""
    return joined_labels(test, SOFTWARE_PATH)[_observed(test, column)]


def distinct_configs(test: "pd.DataFrame") -> tuple[list[Config], np.ndarray]:
    """The distinct configurations of measurement rows (predicted once each, repeats share them)
    and each row's position among them."""
    configs = [Config.from_mapping(r) for r in test.to_dict("records")]
    uniq = sorted(set(configs), key=lambda c: c.key)
    where = {c: i for i, c in enumerate(uniq)}
    return uniq, np.array([where[c] for c in configs], dtype=int)


def score_rows(pset: "PredictionSet", test: "pd.DataFrame", positions: np.ndarray, metric: str,
               column: str) -> Optional[RowScores]:
    """Row scores for the test rows that observed ``column`` (None if the predictor lacks it)."""
    if metric not in pset.mu_log and metric not in pset.samples:
        return None
    y = test[column].to_numpy(dtype=float)
    ok = _observed(test, column)
    if not ok.any():
        return None
    cols = positions[ok]
    if metric in pset.samples:
        return row_scores(y[ok], samples=pset.samples[metric][:, cols])
    if metric in pset.floor or metric in pset.at_least:
        # the posterior every answer shows: memory never below its floor, p90 never below the median
        from engine.scoring import QUANTILES

        grid = pset.quantiles(metric, (np.arange(CRPS_LEVELS) + 0.5) / CRPS_LEVELS)[:, cols]
        return row_scores(y[ok], samples=grid, quantiles=pset.quantiles(metric, QUANTILES)[:, cols])
    return row_scores(y[ok], mu_log=pset.mu_log[metric][cols], sigma_log=pset.sigma_log[metric][cols])


@dataclass
class PredictorResult:
    name: str
    scores: dict[str, Scores] = field(default_factory=dict)
    fit_s: float = 0.0
    predict_s: float = 0.0
    error: Optional[str] = None
    exit_code: int = 0
    point_estimate: bool = False
    fold_median_ape: dict[str, float] = field(default_factory=dict)  # latency, per held-out group
    #: latency scores per software path (runtime/precision/mode): the pooled coverage can hide a
    #: path whose intervals are too narrow (int8 on the shipped data), so each is scored alone
    by_path: dict[str, Scores] = field(default_factory=dict)
    #: each fold's NUTS diagnostics (hierarchical only): what the scores rest on
    diagnostics: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {m: s.to_dict() for m, s in self.scores.items()}
        d["fit_s"] = round(self.fit_s, 3)
        d["predict_s"] = round(self.predict_s, 3)
        d["intervals"] = "n/a (point prediction)" if self.point_estimate else "predictive distribution"
        d["per_fold_latency_median_ape"] = self.fold_median_ape
        d["latency_by_software_path"] = {k: v.to_dict() for k, v in self.by_path.items()}
        if self.diagnostics:
            d["diagnostics"] = self.diagnostics
        if self.error:
            d["error"] = self.error
        return d


@dataclass
class EvaluationReport:
    holdout: str
    fraction: Optional[float]
    seed: int
    n_measurements: int
    folds: list[str]
    n_test: int
    results: dict[str, PredictorResult]
    noise: dict[str, Optional[float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            **{name: r.to_dict() for name, r in self.results.items()},
            "_meta": {"holdout": self.holdout, "fraction": self.fraction, "seed": self.seed,
                      "n_measurements": self.n_measurements, "n_test_rows": self.n_test,
                      "folds": self.folds, "noise_floor_latency": self.noise,
                      "crps_scale": "crps_log: natural-log units (log scale); crps: the metric's unit",
                      "interval_width": "mean over test rows of (q95 - q05) / median"},
        }


def _note_diagnostics(res: "PredictorResult", fold: Fold, model: Any) -> None:
    """The fold's MCMC diagnostics, for a predictor that has them (hierarchical), kept or failed."""
    d = getattr(model, "diagnostics", None)
    noted = bool(res.diagnostics) and res.diagnostics[-1]["fold"] == fold.name  # a failure after the fit
    if d and hasattr(model, "diagnostics_ok") and not noted:
        res.diagnostics.append({"fold": fold.name, "ok": bool(model.diagnostics_ok),
                                **{k: d.get(k) for k in ("rhat_max", "ess_bulk_min", "divergences", "num_chains",
                                                         "n_train")}})


def evaluate(df: "pd.DataFrame", holdout: str = "random", *, fraction: Optional[float] = None, seed: int = 0,
             predictors: Sequence[str] = PREDICTORS, allow_bad_diagnostics: bool = False,
             factory: Optional[Callable[[str], Any]] = None,
             progress: Optional[Callable[[str], None]] = None) -> EvaluationReport:
    """Fit each predictor on every fold's train part, score it on the test part, pool the folds.

    A predictor that fails (e.g. MCMC diagnostics fail and are not allowed) gets its error
    recorded; the others still run, so one run always prints the side-by-side table.
    """
    from engine.errors import InvalidValueError as _IVE

    for p in predictors:
        if p not in PREDICTORS:
            raise _IVE("predictor", p, ", ".join(PREDICTORS))
    # a name given twice is one row of the report: it was fitted and scored twice (minutes for
    # the hierarchical model) and the second score silently replaced the first
    predictors = list(dict.fromkeys(predictors))
    if len(df) == 0:  # a data problem, exit 3 as `train` on an empty store (it was 2, bad input)
        raise NoDataError("store", "empty", "a store with measurements (run `perfcast benchmark` or `perfcast db import`)")
    df = runs_the_fits_use(df, catalog=factory is None).reset_index(drop=True)
    if len(df) == 0:
        raise NoDataError("evaluation data", "no run the fits use", "successful runs of catalog models and "
                          "devices, timed on a quiet machine")
    folds = make_folds(df, holdout, fraction, seed)
    if factory is None:
        _warm_descriptors(df)
    make = factory or (lambda name: default_factory(name, allow_bad_diagnostics))
    results: dict[str, PredictorResult] = {}
    for name in predictors:
        res = PredictorResult(name)
        pooled: dict[str, list[RowScores]] = {m: [] for m in EVAL_METRICS}
        paths: list[np.ndarray] = []  # software path of each pooled latency row, fold by fold
        fold: Optional[Fold] = None
        model: Any = None
        try:
            for fold in folds:
                if progress:
                    progress(f"{name}: fold {fold.name} (train {len(fold.train)}, test {len(fold.test)})")
                train, test = df.iloc[fold.train], df.iloc[fold.test]
                model = make(name)
                res.point_estimate = bool(getattr(model, "point_estimate", False))
                t0 = time.perf_counter()
                model.fit(train)
                res.fit_s += time.perf_counter() - t0
                _note_diagnostics(res, fold, model)
                uniq, positions = distinct_configs(test)
                t0 = time.perf_counter()
                pset = model.predict(uniq)
                res.predict_s += time.perf_counter() - t0
                for metric, column in EVAL_METRICS.items():
                    rs = score_rows(pset, test, positions, metric, column) if column in test else None
                    if rs is not None:
                        pooled[metric].append(rs)
                        if metric == "latency_ms":
                            res.fold_median_ape[fold.name] = float(np.median(np.abs(rs.q[2] - rs.y) / rs.y))
                            paths.append(_software_paths(test, column))
        except PerfcastError as e:
            # which fold: a hardware holdout's one failing fit was named nowhere (audit H)
            where = f"fold {fold.name!r} (train {len(fold.train)}): " if fold is not None and len(folds) > 1 else ""
            res.error, res.exit_code = f"{where}{e}", e.exit_code
            if fold is not None:
                _note_diagnostics(res, fold, model)
        if res.error is None:  # partial folds would be a different (easier or harder) test
            res.scores = {m: aggregate(RowScores.concat(parts), point=res.point_estimate)
                          for m, parts in pooled.items() if parts}
            if pooled["latency_ms"]:
                rows, labels = RowScores.concat(pooled["latency_ms"]), np.concatenate(paths)
                res.by_path = {p: aggregate(rows.subset(labels == p), point=res.point_estimate)
                               for p in sorted(set(labels))}
        results[name] = res
    # the fraction the folds used: --json said null for the default random holdout, whose folds and
    # table say 20% (null stays for a group holdout, where it means every group)
    used = RANDOM_FRACTION if fraction is None and holdout == "random" else fraction
    return EvaluationReport(holdout=holdout, fraction=used, seed=seed, n_measurements=len(df),
                            folds=[f.name for f in folds], n_test=int(sum(len(f.test) for f in folds)),
                            results=results, noise=noise_floor(df))

