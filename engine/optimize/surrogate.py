"""The optimiser's surrogate: three GPs on a small config encoding, every metric derived from them.

Three BoTorch ``SingleTaskGP`` s model the log of a measured value b (median latency, memory) or
of a ratio (the tail, log p90/median)::

    log b(x) ~ GP( c_b + r_b(x),  s_b · Matern52_ARD(z(x), z(x')) ) + noise

* ``r_b(x)`` is the roofline prior of :mod:`engine.models.roofline` (calibrated on the store's
  measurements) for latency and memory, and nothing for the tail (its constant starts at the
  roofline's p90/median ratio). It is carried in extra input columns that the mean function
  reads and the kernel ignores — with log throughput = log(1000·batch) − log latency and the
  cost's log(price·1e6/3600) beside it — so the posterior *is* the metric's posterior and
  BoTorch's acquisition functions can put outcome constraints directly on its samples
  (``Z_j − log bound ≤ 0``).
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

Every reported metric is an affine function of three GPs' log values (:data:`DERIVED`): median
latency, the tail ratio log(p90 / median) and memory. Throughput is log(1000·batch) − log latency,
p90 latency is log latency + tail, cost is log(price·1e6/3600) − log(1000·batch) + log latency.
So the metrics agree on what is fast, p90 sits above the median by a tail fitted on ratios ≥ 1, and —
what matters for constrained BO — BoTorch samples them *jointly*: :func:`derived_model` maps each
joint sample of the three GPs to every metric, so a sample in which a configuration is fast has a
high throughput *and* a low p90 latency. With one GP per metric (a ``ModelListGP``, until session
24) throughput and p90 latency were sampled independently, and ``maximise throughput subject to
p90 ≤ bound`` — the CLI's default constraint — weighed the improvement of one sample by the
feasibility of an unrelated one. Memory stays independent of latency (its own GP).
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
    from engine.optimize.ranking import Joint

PRIOR_METRICS: tuple[str, ...] = ("throughput", "latency_ms", "latency_p90_ms", "memory_mib", "cost_per_1m_usd")
#: Prior spread (log sd) of the roofline before any evaluation (same as the standalone roofline).
PRIOR_SD: dict[str, float] = {"latency_ms": 0.5, "memory_mib": 0.35}


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


#: The GPs the surrogate fits (log median latency, log p90/median, log memory).
BASES: tuple[str, ...] = ("latency_ms", "tail", "memory_mib")
#: log metric = Σ coefficient · log base + Σ coefficient · prior column (:data:`PRIOR_METRICS`) —
#: the columns carry log(1000·batch) = prior throughput + prior latency and, for cost,
#: log(price·1e6/3600) − log(1000·batch) = prior cost − prior latency.
DERIVED: dict[str, tuple[dict[str, float], dict[str, float]]] = {
    "latency_ms": ({"latency_ms": 1.0}, {}),
    "throughput": ({"latency_ms": -1.0}, {"throughput": 1.0, "latency_ms": 1.0}),
    "latency_p90_ms": ({"latency_ms": 1.0, "tail": 1.0}, {}),
    "memory_mib": ({"memory_mib": 1.0}, {}),
    "cost_per_1m_usd": ({"latency_ms": 1.0}, {"cost_per_1m_usd": 1.0, "latency_ms": -1.0}),
}
#: Prior sd of the tail ratio's log before any run (p90 is typically 2–20% above the median).
TAIL_PRIOR_SD = 0.1


def bases_of(metrics: Sequence[str]) -> list[str]:
    """The GPs that ``metrics`` are derived from, in :data:`BASES` order."""
    need = {b for m in metrics for b in DERIVED[m][0]}
    return [b for b in BASES if b in need]


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
    #: metric -> per-row floor its posterior is truncated at (memory: the bytes that must be resident,
    #: :func:`engine.models.assemble.memory_floor_mib`); the GP itself does not know it
    floors: dict[str, np.ndarray] = field(default_factory=dict)

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
    from engine.models.assemble import memory_floor_mib
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
                          n_cand, {"memory_mib": memory_floor_mib(ff.phys)})


class RooflinePriorMean(Mean):
    """Mean function ``c + x[..., col]``: a learned constant plus the roofline prior column (or
    the constant alone, ``col=None``: the tail ratio has no roofline of its own)."""

    def __init__(self, col: Optional[int], constant: float = 0.0) -> None:
        super().__init__()
        self.col = col
        self.register_parameter("constant", torch.nn.Parameter(torch.full((1,), constant, dtype=torch.float64)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.col is None:
            return self.constant.expand(x.shape[:-1])
        return self.constant + x[..., self.col]


def derived_model(bases: Sequence[Any], A: torch.Tensor, B: torch.Tensor) -> Any:
    """A BoTorch model whose outputs are metrics of :data:`DERIVED`, computed from joint samples
    of the fitted base GPs: ``outputs = A · bases + B · x`` (``A``: metric × base coefficients,
    ``B``: metric × input-column coefficients, the prior columns that carry batch and price).

    Its posterior is BoTorch's ``TransformedPosterior`` of the base ``ModelListGP``'s posterior,
    so the samplers draw the bases' normals and every acquisition sees each metric as the same
    affine map of the same draw. The class is defined here so that BoTorch's ``Model`` is imported
    only when the optimiser runs."""
    from botorch.models import ModelListGP
    from botorch.models.model import Model
    from botorch.posteriors.transformed import TransformedPosterior

    class DerivedModel(Model):
        def __init__(self) -> None:
            super().__init__()
            self.base = ModelListGP(*bases)
            self.A, self.B = A, B

        @property
        def num_outputs(self) -> int:
            return int(self.A.shape[0])

        @property
        def batch_shape(self) -> torch.Size:
            return self.base.batch_shape

        def posterior(self, X: torch.Tensor, output_indices: Optional[list[int]] = None,
                      observation_noise: Any = False, posterior_transform: Any = None, **kwargs: Any) -> Any:
            if output_indices is not None:
                raise NotImplementedError("a derived model computes every output")
            post = self.base.posterior(X, observation_noise=observation_noise)
            offset = X @ self.B.T  # (..., n, outputs): broadcasts over the sample dimensions
            A, A2 = self.A, self.A**2

            out = TransformedPosterior(post, sample_transform=lambda z: z @ A.T + offset,
                                       mean_transform=lambda m, v: m @ A.T + offset,
                                       variance_transform=lambda m, v: v @ A2.T)  # the bases are independent
            return posterior_transform(out) if posterior_transform is not None else out

    return DerivedModel()


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
    """The base GPs over a :class:`CandidateTable` and the metrics derived from them
    (:data:`DERIVED`); ``fit`` warm-starts each GP from its last fit."""

    def __init__(self, table: CandidateTable, metrics: Sequence[str], maxiter: int = 40, maxiter_warm: int = 10) -> None:
        self.table = table
        self.metrics = list(metrics)
        self.maxiter = maxiter
        self.maxiter_warm = maxiter_warm
        self.models: dict[str, Any] = {}  # base name -> fitted SingleTaskGP
        self._state: dict[str, dict[str, torch.Tensor]] = {}
        self.fit_warnings: list[str] = []

    def _prior_mean(self, base: str) -> np.ndarray:
        """A base's log prior mean on every table row: the roofline column, or the roofline's
        p90/median ratio for the tail."""
        if base == "tail":
            return self.table.prior("latency_p90_ms") - self.table.prior("latency_ms")
        return self.table.prior(base)

    def _build(self, base: str, X: torch.Tensor, y: torch.Tensor) -> Any:
        from botorch.models import SingleTaskGP
        from gpytorch.constraints import GreaterThan
        from gpytorch.kernels import MaternKernel, ScaleKernel
        from gpytorch.likelihoods import GaussianLikelihood
        from gpytorch.priors import LogNormalPrior

        d = self.table.d
        ls_prior = LogNormalPrior(loc=math.sqrt(2) + 0.5 * math.log(d), scale=math.sqrt(3))
        base_k = MaternKernel(nu=2.5, ard_num_dims=d, active_dims=tuple(range(d)), lengthscale_prior=ls_prior,
                              lengthscale_constraint=GreaterThan(2.5e-2, transform=None, initial_value=ls_prior.mode))
        kernel = ScaleKernel(base_k, outputscale_prior=LogNormalPrior(math.log(0.1), 1.0),
                             outputscale_constraint=GreaterThan(1e-4, transform=None, initial_value=0.1))
        lik = GaussianLikelihood(noise_prior=LogNormalPrior(math.log(0.03**2), 1.0),
                                 noise_constraint=GreaterThan(1e-6, transform=None, initial_value=0.03**2))
        if base == "tail":
            mean = RooflinePriorMean(None, float(self._prior_mean("tail")[0]) if len(self.table) else 0.0)
        else:
            mean = RooflinePriorMean(self.table.prior_col(base))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # prior columns are deliberately not in the unit cube
            # no outcome transform: the mean function adds the roofline column in log units, and the
            # priors below are in log units. BoTorch's default (Standardize, since 0.12) rescaled y
            # but not that column, so the prior entered in the wrong units
            model = SingleTaskGP(X, y, likelihood=lik, covar_module=kernel, outcome_transform=None, mean_module=mean)
        return model.to(torch.float64)

    @staticmethod
    def _base_rows(observations: Sequence[Observation], base: str) -> list[tuple[int, float]]:
        """(table row, log value) of the runs that measured ``base``; the tail is log p90 − log
        median of the runs that measured both."""
        if base != "tail":
            return [(i, math.log(v)) for i, v in _observed(observations, base)]
        med = dict(_observed(observations, "latency_ms"))
        out = []
        for o in observations:
            p90, m = o.values.get("latency_p90_ms"), o.values.get("latency_ms")
            if p90 is not None and m is not None and np.isfinite(p90) and np.isfinite(m) and m > 0 and p90 > 0 \
                    and o.index in med:
                out.append((o.index, math.log(max(p90, m) / m)))
        return out

    def fit(self, observations: Sequence[Observation], metrics: Optional[Sequence[str]] = None,
            optimize: bool = True) -> "Surrogate":
        """(Re)fit the base GPs that ``metrics`` (default: all) derive from, each on the runs that
        measured it; a base without a run keeps its prior.

        ``optimize=False`` conditions on the data with the previous hyperparameters (no L-BFGS):
        one or two new points barely move them, and the loop re-optimises on a schedule.
        """
        from botorch.fit import fit_gpytorch_mll
        from botorch.optim.fit import fit_gpytorch_mll_scipy
        from gpytorch.mlls import ExactMarginalLogLikelihood

        self.models = {}
        for base in bases_of(list(metrics) if metrics is not None else self.metrics):
            rows = self._base_rows(observations, base)
            if not rows:
                continue
            idx = torch.as_tensor([i for i, _ in rows])
            y = torch.as_tensor([v for _, v in rows], dtype=torch.float64).unsqueeze(-1)
            model = self._build(base, self.table.X[idx], y)
            init = self._state.get(base)
            if init is not None:
                model.load_state_dict(init, strict=False)
                if not optimize:
                    model.eval()
                    self.models[base] = model
                    continue
            model.train()
            mll = ExactMarginalLogLikelihood(model.likelihood, model)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    fit_gpytorch_mll(mll, optimizer=fit_gpytorch_mll_scipy, max_attempts=1,
                                     optimizer_kwargs={"options": {"maxiter": self.maxiter_warm if init else self.maxiter}})
                except Exception as exc:  # noqa: BLE001 - keep the prior/previous hyperparameters
                    self.fit_warnings.append(f"{base}: hyperparameter fit failed ({exc}); kept previous values")
            model.eval()
            self._state[base] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.models[base] = model
        return self

    def ready(self, metrics: Sequence[str]) -> bool:
        return all(b in self.models for b in bases_of(metrics))

    def model_list(self, metrics: Sequence[str]) -> Any:
        """The BoTorch model of ``metrics`` (outputs in that order), sampled jointly
        (:func:`derived_model`)."""
        bases = bases_of(metrics)
        A = torch.zeros(len(metrics), len(bases), dtype=torch.float64)
        B = torch.zeros(len(metrics), self.table.X.shape[1], dtype=torch.float64)
        for k, m in enumerate(metrics):
            coef, cols = DERIVED[m]
            for b, c in coef.items():
                A[k, bases.index(b)] = c
            for col, c in cols.items():
                B[k, self.table.prior_col(col)] = c
        return derived_model([self.models[b] for b in bases], A, B)

    def _base_predictive(self, base: str, rows: np.ndarray, observation_noise: bool) -> tuple[np.ndarray, np.ndarray]:
        model = self.models.get(base)
        if model is None:
            sd = TAIL_PRIOR_SD if base == "tail" else PRIOR_SD[base]
            return self._prior_mean(base)[rows], np.full(len(rows), sd)
        X = self.table.X[torch.as_tensor(rows)]
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = model.posterior(X, observation_noise=observation_noise)
            mu = post.mean.reshape(-1).numpy()
            sd = post.variance.clamp_min(1e-12).sqrt().reshape(-1).numpy()
        return mu, sd

    def joint(self, metrics: Sequence[str], idx: Optional[Sequence[int]] = None,
              observation_noise: bool = True) -> "Joint":
        """The posterior of ``metrics`` on table rows (default: the candidates) as independent
        normal bases and affine maps of them (prior where a base has no run), for a ranking that
        counts the metrics' correlation (:func:`engine.optimize.ranking.joint_scores`)."""
        from engine.optimize.ranking import Joint

        rows = np.arange(self.table.n_candidates) if idx is None else np.asarray(idx, dtype=int)
        bases = bases_of(metrics)
        post = [self._base_predictive(b, rows, observation_noise) for b in bases]
        offset = {}
        for m in metrics:
            offset[m] = np.zeros(len(rows))
            for col, c in DERIVED[m][1].items():
                offset[m] = offset[m] + c * self.table.prior(col)[rows]
        return Joint(np.column_stack([mu for mu, _ in post]) if post else np.zeros((len(rows), 0)),
                     np.column_stack([sd for _, sd in post]) if post else np.zeros((len(rows), 0)),
                     {m: np.array([DERIVED[m][0].get(b, 0.0) for b in bases]) for m in metrics}, offset)

    def predictive(self, metric: str, idx: Optional[Sequence[int]] = None,
                   observation_noise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and sd of log(metric) for table rows (prior where its bases have no run):
        the affine map of the bases' (independent) posteriors."""
        return self.joint([metric], idx, observation_noise).marginal(metric)

    def hyperparameters(self) -> dict[str, dict[str, float]]:
        """Readable hyperparameters per base GP (for notes and debugging)."""
        out: dict[str, dict[str, float]] = {}
        for m, model in self.models.items():
            out[m] = {"constant": float(model.mean_module.constant.detach()[0]),
                      "outputscale": float(model.covar_module.outputscale.detach()),
                      "noise_sd": float(model.likelihood.noise.detach().sqrt().reshape(-1)[0])}
        return out
