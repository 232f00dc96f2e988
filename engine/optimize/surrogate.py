"""The optimiser's surrogate: one GP per metric on a small config encoding, roofline prior mean.

For each metric m the optimiser needs (objectives and constrained metrics) a BoTorch
``SingleTaskGP`` models the log of the measured value::

    log m(x) ~ GP( c_m + r_m(x),  s_m · Matern52_ARD(z(x), z(x')) ) + noise

* ``r_m(x)`` is the roofline prior of :mod:`engine.models.roofline` (calibrated on the store's
  measurements): log latency, log p90 = log latency + log p90/median ratio, log throughput =
  log(1000·batch) − log latency, log memory, log cost = log(price·1e6/3600) − log throughput.
  It is carried in extra input columns that the mean function reads and the kernel ignores, so
  the model's posterior *is* the metric's posterior and BoTorch's acquisition functions can put
  outcome constraints directly on its samples (``Z_j − log bound ≤ 0``).
* ``z(x)`` is a deliberately small encoding of what the optimiser varies — log batch, log
  sequence length, log threads, one-hot precision, runtime, mode and hardware — scaled to
  [0, 1] over the candidate table. Few dimensions = fast, well-determined fits from the handful
  of evaluations an optimisation run has.
* Priors (log units): amplitude s ~ LogNormal(log 0.1, 1) (a roofline is typically off by
  ×/÷ 1.4, sometimes ×/÷ 3), noise ~ LogNormal(log 0.03², 1) (run-to-run drift of a few percent),
  BoTorch's dimension-scaled LogNormal on the lengthscales.

Why not the predictors' own :class:`engine.models.gp.GPPredictor`: it models the *residual*
from the roofline, so its outputs carry a configuration-dependent offset that BoTorch's outcome
constraints (callables on samples, without X) cannot see, and it conditions on the whole store
(seconds per refit). The pieces that matter are reused — the featuriser, the calibrated roofline
— and each refit starts from the previous hyperparameters (a few L-BFGS steps).

Throughput's GP is the exact mirror of latency's, and p90 latency's shares latency's
hyperparameters (:data:`MIRRORED`, :data:`TIED`), so the three agree on what is fast and on how
sure they are. Otherwise metrics are modelled independently (a ``ModelListGP``), the usual
choice for constrained BO: BoTorch samples them independently, which is exact for one
constraint and ignores the correlation between, say, memory and p90 latency of one configuration.
"""
from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

import numpy as np
import torch
from gpytorch.means import Mean

from engine.config import Config

if TYPE_CHECKING:
    import pandas as pd

    from engine.models.features import Featurizer

PRIOR_METRICS: tuple[str, ...] = ("throughput", "latency_ms", "latency_p90_ms", "memory_mib", "cost_per_1m_usd")
#: Prior spread (log sd) of the roofline before any evaluation (same as the standalone roofline).
PRIOR_SD: dict[str, float] = {"throughput": 0.5, "latency_ms": 0.5, "latency_p90_ms": 0.5, "memory_mib": 0.35,
                              "cost_per_1m_usd": 0.5}


@contextmanager
def single_thread() -> Iterator[None]:
    """Run tiny-matrix GP work on one intra-op thread (restored afterwards).

    The surrogate's matrices are a few dozen rows: threads buy nothing and, on a busy machine,
    contention makes each marginal-likelihood step ~10x slower. Benchmarks are unaffected: they
    run in child processes with their own thread settings.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: A metric never fitted before starts from the hyperparameters of a related one (same lengthscales).
WARM_FROM: dict[str, tuple[str, ...]] = {
    "latency_ms": ("latency_p90_ms", "throughput"), "throughput": ("latency_ms", "latency_p90_ms"),
    "latency_p90_ms": ("latency_ms", "throughput"), "cost_per_1m_usd": ("throughput", "latency_ms")}


#: Metrics whose GP is a transform of another's (see :meth:`Surrogate._mirror`).
MIRRORED: dict[str, str] = {"throughput": "latency_ms"}
#: Metrics whose GP shares another's hyperparameters but conditions on its own runs (see
#: :meth:`Surrogate._tie`).
TIED: dict[str, str] = {"latency_p90_ms": "latency_ms"}
#: The GP each derived metric needs fitted first.
SOURCES: dict[str, str] = {**MIRRORED, **TIED}


@dataclass
class CandidateTable:
    """Rows as GP inputs: ``X`` = [encoding (d) | one prior column per metric (5)].

    The first ``n_candidates`` rows are the optimisation's candidates; rows after them are
    *context*: configurations of other models (same family) measured on the same hardware, which the GP learns
    from (runtime, precision, batch and thread effects transfer between similar models) but which
    are never proposed or reported.
    """

    configs: list[Config]
    X: torch.Tensor  # (n, d + len(PRIOR_METRICS)), float64
    d: int
    feature_names: list[str]
    index: dict[str, int] = field(default_factory=dict)
    n_candidates: int = 0

    def prior(self, metric: str) -> np.ndarray:
        return self.X[:, self.d + PRIOR_METRICS.index(metric)].numpy()

    def prior_col(self, metric: str) -> int:
        return self.d + PRIOR_METRICS.index(metric)

    def __len__(self) -> int:
        return len(self.configs)


def calibrated_roofline(prior_data: Optional["pd.DataFrame"], featurizer: Optional["Featurizer"] = None) -> Any:
    """The roofline with its global efficiencies fitted on ``prior_data`` (defaults when too few)."""
    from engine.models.roofline import RooflinePredictor

    roof = RooflinePredictor(featurizer=featurizer)
    if prior_data is not None and len(prior_data) >= 5:
        try:
            roof.fit(prior_data)
        except Exception:  # noqa: BLE001 - an unfittable store leaves the documented defaults
            pass
    return roof


def build_table(configs: Sequence[Config], roofline: Any, prices: dict[str, Optional[float]],
                featurizer: Optional["Featurizer"] = None, context: Sequence[Config] = ()) -> CandidateTable:
    """Encode candidates (then context rows) and their roofline priors (one vectorised featurisation)."""
    from engine.models.features import default_featurizer

    n_cand = len(configs)
    keys = {c.key for c in configs}
    extra = list({c.key: c for c in context if c.key not in keys}.values())
    configs = list(configs) + extra
    ff = (featurizer or default_featurizer())(configs)
    batch = ff.phys["batch"]
    # log FLOPs per item and log parameters tell models apart (only vary when context rows exist)
    cols: list[np.ndarray] = [np.log(batch), np.log1p(ff.phys["seq_len"]), np.log(ff.phys["threads_used"]),
                              np.log(ff.phys["flops"] / batch), np.log(ff.phys["params"])]
    names = ["log_batch", "log_seq", "log_threads", "log_flops_per_item", "log_params"]
    for cat in ("precision", "runtime", "mode", "hardware"):
        arr = np.array([getattr(c, cat) for c in configs], dtype=object)
        for v in sorted(set(arr.tolist())):
            cols.append((arr == v).astype(float))
            names.append(f"{cat}={v}")
    Z = np.column_stack(cols)
    keep = [j for j in range(Z.shape[1]) if np.ptp(Z[:, j]) > 0]
    if not keep:  # a single candidate: one constant column keeps shapes valid
        keep = [0]
    Z = Z[:, keep]
    lo, hi = Z.min(0), Z.max(0)
    Z = (Z - lo) / np.where(hi > lo, hi - lo, 1.0)
    log_lat = np.log(roofline.latency_ms(ff))
    p90_ratio = float(getattr(roofline.params, "p90_ratio", 1.08))
    log_thr = np.log(1000.0 * batch) - log_lat
    price = np.array([prices.get(c.hardware) or np.nan for c in configs], dtype=float)
    priors = np.column_stack([log_thr, log_lat, log_lat + math.log(max(p90_ratio, 1.0)),
                              np.log(roofline.memory_mib(ff)), np.log(price * 1e6 / 3600.0) - log_thr])
    priors[~np.isfinite(priors)] = 0.0  # no hourly price: the cost column is never modelled (checked upstream)
    X = torch.as_tensor(np.column_stack([Z, priors]), dtype=torch.float64)
    return CandidateTable(configs, X, Z.shape[1], [names[j] for j in keep], {c.key: i for i, c in enumerate(configs)},
                          n_cand)


class RooflinePriorMean(Mean):
    """Mean function ``c + x[..., col]``: a learned constant plus the roofline prior column."""

    def __init__(self, col: int) -> None:
        super().__init__()
        self.col = col
        self.register_parameter("constant", torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.constant + x[..., self.col]


@dataclass
class Observation:
    """One successful run's metrics (natural units); None where not measured."""

    index: int
    values: dict[str, Optional[float]]


def _observed(observations: Sequence[Observation], metric: str) -> list[tuple[int, float]]:
    """(table row, value) of the runs that measured ``metric`` (positive and finite: it is logged)."""
    rows = [(o.index, o.values.get(metric)) for o in observations]
    return [(i, v) for i, v in rows if v is not None and np.isfinite(v) and v > 0]


class Surrogate:
    """One GP per metric over a :class:`CandidateTable`; ``fit`` warm-starts from the last fit."""

    def __init__(self, table: CandidateTable, metrics: Sequence[str], maxiter: int = 40, maxiter_warm: int = 10) -> None:
        self.table = table
        self.metrics = list(metrics)
        self.maxiter = maxiter
        self.maxiter_warm = maxiter_warm
        self.models: dict[str, Any] = {}
        self._state: dict[str, dict[str, torch.Tensor]] = {}
        self.fit_warnings: list[str] = []

    def _build(self, metric: str, X: torch.Tensor, y: torch.Tensor) -> Any:
        from botorch.models import SingleTaskGP
        from gpytorch.constraints import GreaterThan
        from gpytorch.kernels import MaternKernel, ScaleKernel
        from gpytorch.likelihoods import GaussianLikelihood
        from gpytorch.priors import LogNormalPrior

        d = self.table.d
        ls_prior = LogNormalPrior(loc=math.sqrt(2) + 0.5 * math.log(d), scale=math.sqrt(3))
        base = MaternKernel(nu=2.5, ard_num_dims=d, active_dims=tuple(range(d)), lengthscale_prior=ls_prior,
                            lengthscale_constraint=GreaterThan(2.5e-2, transform=None, initial_value=ls_prior.mode))
        kernel = ScaleKernel(base, outputscale_prior=LogNormalPrior(math.log(0.1), 1.0),
                             outputscale_constraint=GreaterThan(1e-4, transform=None, initial_value=0.1))
        lik = GaussianLikelihood(noise_prior=LogNormalPrior(math.log(0.03**2), 1.0),
                                 noise_constraint=GreaterThan(1e-6, transform=None, initial_value=0.03**2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # prior columns are deliberately not in the unit cube
            # no outcome transform: the mean function adds the roofline column in log units, and the
            # priors below are in log units. BoTorch's default (Standardize, since 0.12) rescaled y
            # but not that column, so the prior entered in the wrong units
            model = SingleTaskGP(X, y, likelihood=lik, covar_module=kernel, outcome_transform=None,
                                 mean_module=RooflinePriorMean(self.table.prior_col(metric)))
        return model.to(torch.float64)

    def fit(self, observations: Sequence[Observation], metrics: Optional[Sequence[str]] = None,
            optimize: bool = True) -> "Surrogate":
        """(Re)fit ``metrics`` (default: all) that have at least one observation; others keep the prior.

        ``optimize=False`` conditions on the data with the previous hyperparameters (no L-BFGS):
        one or two new points barely move them, and the loop re-optimises on a schedule.
        """
        from botorch.fit import fit_gpytorch_mll
        from botorch.optim.fit import fit_gpytorch_mll_scipy
        from gpytorch.mlls import ExactMarginalLogLikelihood

        todo = list(metrics) if metrics is not None else self.metrics
        # a mirrored or tied metric is derived from its source's GP: fit the sources first
        todo = list(dict.fromkeys([*(SOURCES[m] for m in todo if m in SOURCES), *todo]))
        self.models = {}
        for metric in todo:
            if metric in MIRRORED and MIRRORED[metric] in self.models:
                self.models[metric] = self._mirror(metric, observations)
                continue
            rows = _observed(observations, metric)
            if not rows:
                continue
            if metric in TIED and TIED[metric] in self.models:
                self.models[metric] = self._tie(metric, rows)
                continue
            idx = torch.as_tensor([i for i, _ in rows])
            X = self.table.X[idx]
            y = torch.log(torch.as_tensor([v for _, v in rows], dtype=torch.float64)).unsqueeze(-1)
            model = self._build(metric, X, y)
            init = self._state.get(metric)
            if init is None:
                init = next((self._state[m] for m in WARM_FROM.get(metric, ()) if m in self._state), None)
            if init is not None:
                model.load_state_dict(init, strict=False)
            if init is not None and not optimize and metric in self._state:
                model.eval()
                self.models[metric] = model
                continue
            model.train()
            mll = ExactMarginalLogLikelihood(model.likelihood, model)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    fit_gpytorch_mll(mll, optimizer=fit_gpytorch_mll_scipy, max_attempts=1,
                                     optimizer_kwargs={"options": {"maxiter": self.maxiter_warm if init else self.maxiter}})
                except Exception as exc:  # noqa: BLE001 - keep the prior/previous hyperparameters
                    self.fit_warnings.append(f"{metric}: hyperparameter fit failed ({exc}); kept previous values")
            model.eval()
            self._state[metric] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.models[metric] = model
        return self

    def _mirror(self, metric: str, observations: Sequence[Observation]) -> Any:
        """``metric``'s GP as the exact mirror of its source's: log throughput = log(1000·batch) −
        log latency holds for every run and for the prior columns, so with the source's kernel and
        noise and the negated constant the two posteriors agree to rounding. Fitted separately they
        did not (a b1 latency of 47–1,651 ms beside 2.1–4.2 items/s)."""
        src = MIRRORED[metric]
        rows = _observed(observations, src)
        idx = torch.as_tensor([i for i, _ in rows])
        X = self.table.X[idx]
        batch_log = torch.as_tensor(self.table.prior(metric)[idx.numpy()] + self.table.prior(src)[idx.numpy()])
        y = (batch_log - torch.log(torch.as_tensor([v for _, v in rows], dtype=torch.float64))).unsqueeze(-1)
        model = self._build(metric, X, y)
        state = self._hyperparameters_of(src)
        state["mean_module.constant"] = -state["mean_module.constant"]
        model.load_state_dict(state, strict=False)
        model.eval()
        return model

    def _hyperparameters_of(self, src: str) -> dict[str, torch.Tensor]:
        """A copy of ``src``'s fitted GP state without its training data (for a derived metric's GP)."""
        return {k: v.detach().clone() for k, v in self.models[src].state_dict().items()
                if not k.startswith(("train_", "prediction_strategy"))}

    def _tie(self, metric: str, rows: Sequence[tuple[int, float]]) -> Any:
        """``metric``'s GP with its source's kernel, noise and constant, conditioned on its own runs
        (``rows``: :func:`_observed`).

        p90 latency is median latency times a tail ratio near 1, and its prior column is the
        latency prior times the roofline's ratio. With the same hyperparameters both GPs revert to
        their priors alike away from the runs and carry the same posterior sd everywhere, so
        p90 − median is the ratio interpolated from the runs (≥ 0 wherever the runs say so).
        Fitted on its own, the p90 GP chose other lengthscales and amplitude, and far from any
        run its median could fall below the latency's, with a differently wide interval."""
        idx = torch.as_tensor([i for i, _ in rows])
        y = torch.log(torch.as_tensor([v for _, v in rows], dtype=torch.float64)).unsqueeze(-1)
        model = self._build(metric, self.table.X[idx], y)
        model.load_state_dict(self._hyperparameters_of(TIED[metric]), strict=False)
        model.eval()
        return model

    def ready(self, metrics: Sequence[str]) -> bool:
        return all(m in self.models for m in metrics)

    def model_list(self, metrics: Sequence[str]) -> Any:
        from botorch.models import ModelListGP

        return ModelListGP(*[self.models[m] for m in metrics])

    def predictive(self, metric: str, idx: Optional[Sequence[int]] = None,
                   observation_noise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and sd of log(metric) for table rows (prior when never observed)."""
        rows = np.arange(self.table.n_candidates) if idx is None else np.asarray(idx, dtype=int)
        model = self.models.get(metric)
        if model is None:
            return self.table.prior(metric)[rows], np.full(len(rows), PRIOR_SD[metric])
        X = self.table.X[torch.as_tensor(rows)]
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = model.posterior(X, observation_noise=observation_noise)
            mu = post.mean.reshape(-1).numpy()
            sd = post.variance.clamp_min(1e-12).sqrt().reshape(-1).numpy()
        return mu, sd

    def hyperparameters(self) -> dict[str, dict[str, float]]:
        """Readable hyperparameters per metric (for notes and debugging)."""
        out: dict[str, dict[str, float]] = {}
        for m, model in self.models.items():
            out[m] = {"constant": float(model.mean_module.constant.detach()[0]),
                      "outputscale": float(model.covar_module.outputscale.detach()),
                      "noise_sd": float(model.likelihood.noise.detach().sqrt().reshape(-1)[0])}
        return out
