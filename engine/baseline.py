"""Point-prediction baseline in the style of the old system: gradient boosting, no posterior.

It exists only to be beaten honestly in ``perfcast evaluate``: scikit-learn gradient boosting on
the same descriptor and hardware features the GP sees, fitted to log latency and log memory.
It has no notion of uncertainty, so its "intervals" are absent: the evaluation reports its
coverage and interval width as n/a and its CRPS as the absolute error (the CRPS of a point mass).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from engine.config import Config
from engine.models.base import PredictionSet

if TYPE_CHECKING:
    import pandas as pd

# predicted metric -> store column
TARGETS: dict[str, str] = {"latency_ms": "latency_median_ms", "memory_mib": "memory_peak_mib"}


def features(configs: "Sequence[Config] | pd.DataFrame") -> np.ndarray:
    """The GP's feature matrix (engine.models.features), so the comparison is like for like."""
    from engine.models.features import featurize

    return featurize(configs).X


class BaselinePredictor:
    """Gradient-boosted point predictions of log latency and log memory (the old system's way)."""

    name = "baseline"
    point_estimate = True  # no posterior: interval scores are not applicable

    def __init__(self, n_estimators: int = 300, max_depth: int = 3, learning_rate: float = 0.05,
                 seed: int = 0) -> None:
        self.params = dict(n_estimators=n_estimators, max_depth=max_depth, learning_rate=learning_rate,
                           subsample=0.8, random_state=seed)
        self._models: dict[str, object] = {}
        self._fill: Optional[np.ndarray] = None

    def _impute(self, X: np.ndarray) -> np.ndarray:
        assert self._fill is not None
        X = X.copy()
        bad = ~np.isfinite(X)
        X[bad] = np.take(self._fill, np.nonzero(bad)[1])
        return X

    def fit(self, data: "pd.DataFrame") -> "BaselinePredictor":
        from sklearn.ensemble import GradientBoostingRegressor

        if len(data) == 0:
            from engine.errors import InvalidValueError

            raise InvalidValueError("training data", "0 measurements", "at least 2 successful measurements")
        from engine.models.targets import superseded_busy_runs

        data = data[~superseded_busy_runs(data.reset_index(drop=True))].reset_index(drop=True)  # as the others
        X = features(data)
        self._fill = np.nan_to_num(np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0))
        X = self._impute(X)
        self._models = {}
        for metric, col in TARGETS.items():
            if col not in data:
                continue
            y = data[col].to_numpy(dtype=float)
            ok = np.isfinite(y) & (y > 0)
            if ok.sum() < 2:
                continue
            model = GradientBoostingRegressor(**self.params)
            model.fit(X[ok], np.log(y[ok]))
            self._models[metric] = model
        return self

    def predict(self, configs: Sequence[Config]) -> PredictionSet:
        configs = list(configs)
        if not self._models:
            raise ValueError("the baseline is not fitted; call fit(measurements) first")
        X = self._impute(features(configs))
        out = PredictionSet(configs=configs, predictor=self.name)
        for metric, model in self._models.items():
            mu = np.asarray(model.predict(X), dtype=float)  # type: ignore[attr-defined]
            out.mu_log[metric] = mu
            out.sigma_log[metric] = np.zeros_like(mu)
        if "latency_ms" in out.mu_log:  # throughput = batch / latency, same as the real predictors
            batch = np.array([c.batch_size for c in configs], dtype=float)
            out.mu_log["throughput"] = np.log(batch * 1000.0) - out.mu_log["latency_ms"]
            out.sigma_log["throughput"] = np.zeros(len(configs))
        return out

    def sample(self, configs: Sequence[Config], n: int, metric: str = "latency_ms", seed: int = 0) -> np.ndarray:
        """A point prediction's 'draws' are all the same value."""
        ps = self.predict(configs)
        return np.repeat(np.exp(ps.mu_log[metric])[None, :], n, axis=0)
