"""GP predictor: log metric = log roofline + a BoTorch/GPyTorch GP correction over the features.

Per metric (median latency, p90 latency, peak memory) one ``SingleTaskGP`` on

    y = log(measured) − log(roofline(config))

so the roofline is the prior mean (with a learned constant offset) and the GP learns where and by
how much the hardware/runtime deviate from it. The kernel (:mod:`engine.models.gp_kernel`) adds
device-, family-, model- and software-path-specific terms (software path = runtime × precision ×
mode) and, with two or more devices in the data, a device × software-path term, so never-measured
devices, models, runtime/precision combinations, or paths never run on this device get wide
intervals. A per-device overhead term (linear in the overhead's share of the roofline time) lets a
device's short passes teach its per-pass overhead rather than its speed; on a one-device fit the
roofline's overhead is that device's, so the term only speaks for other devices.

Noise is heteroskedastic: each run's ``train_Yvar`` is the sampling variance of its log median
from the raw samples (:func:`engine.models.targets.log_median_variance`); on top of it a learned
homoskedastic term (``FixedNoiseGaussianLikelihood(learn_additional_noise=True)``) with a floor
of ``noise_floor_sd`` absorbs run-to-run drift, which the samples of a single run cannot see but
repeats of a configuration show. Inputs go through BoTorch's ``Normalize`` (fixed bounds from the
training data, at least one log unit wide) and outputs through ``Standardize``.

Calibration: after fitting, leave-one-out predictive residuals on the *training* data (closed
form for a GP, ``r_i = [K⁻¹y]_i / [K⁻¹]_ii``) give z-scores; the predictive spread is multiplied
by ``c = q90(|z|) / 1.645`` (clipped to [0.8, 3]) so that the 90% intervals cover 90% of left-out
training runs, and per stratum (mode/precision) by that stratum's own multiplier shrunk towards
``c`` (the misfit is larger in training mode and int8 than in fp32 inference). It is
cross-validation on the training data only, recorded in ``calibration``.

Speed (2 cores, see ``bench/fit_predict.py``): hyperparameters are fitted by L-BFGS with at most
``maxiter`` iterations on every run up to ``whole_fit_points`` (500) and on a hashed subset of
``max_fit_points`` (400) of a larger store (:func:`stable_subset`; the Cholesky cost is cubic), then
the model conditions on all runs with them. The 491 shipped runs are fitted whole: which 400 of
them fitted the hyperparameters had moved a new CPU's answers by about 2 points of median error,
and the GP's memory on a new CPU's large batches by up to 8 (docs/evaluation.md, "Session 32").
A 500-run subset of a 1,000-run store would cost a third more time (6 s against 4.5, past
``bench/fit_predict.py``'s 5 s goal), hence two numbers; a store that grows past 500 runs sees its
hyperparameters move once. Fits run single-threaded: at
this size threading overhead outweighs the gain. A refit starts from the previous hyperparameters
with ``maxiter_warm`` iterations. The p90 output shares the median's kernel hyperparameters (no
second optimisation). Prediction goes in chunks of
``chunk_size`` with diagonal variances only, through :mod:`engine.models.gp_fast` (a LOVE-style
low-rank cache; GPyTorch's generic ``posterior(X).variance`` path was ~10× slower here): a
100k-configuration matrix never builds a 100k×100k covariance. ``sample`` draws jointly (exact
full covariance from ``model.posterior``) for small sets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Sequence

import numpy as np
import torch

from engine.config import SOFTWARE_PATH, Config, joined_labels
from engine.errors import InvalidValueError
from engine.models.assemble import lognormal_set, memory_floor_mib
from engine.models.base import PredictionSet
from engine.models.features import FeatureFrame, Featurizer, default_featurizer, uses_catalog, with_legacy_builds
from engine.models.gp_fast import FastPosterior, joint_marginals
from engine.models.roofline import RooflineParams, RooflinePredictor, memory_base_share, roofline_latency_ms
from engine.models.targets import targets_from_measurements

# gpytorch rounds per-run sampling variances below 1e-6 up to 1e-6 and warns each time; tiny
# variances are expected here (hundreds of iterations of a fast config) and the learned drift
# term dominates them anyway, so the warning is noise in every CLI command's output.
import warnings as _warnings

_warnings.filterwarnings("ignore", message="Very small noise values detected")

if TYPE_CHECKING:
    import pandas as pd

GROUPS: tuple[str, ...] = ("hardware", "family", "model", "software", "hardware_software")
#: Terms a design leaves out when its training data hold a single device: there
#: ``hardware_software`` equals ``software`` row for row, a second copy of one variance component
#: (measured in session 14: 90% coverage of the ten random splits 87.9% -> 86.9% with it).
MULTI_DEVICE_GROUPS: frozenset[str] = frozenset({"hardware_software"})
#: Group terms whose kernel scale stays at its prior value (few groups: MAP would collapse them).
FIXED_GROUPS: frozenset[str] = frozenset({"hardware", "family", "hardware_software"})
#: Features the GP's smooth kernel sees (family and model identity enter through the group terms;
#: the separate compute/memory roofline times are linear in the columns below and are left out).
GP_FEATURES: tuple[str, ...] = ("log_flops", "log_bytes", "log_params", "log_batch", "log_seq1", "log_threads",
                                "log_peak", "log_bw", "log_t_roof", "log_intensity")
GP_ONE_HOT: tuple[str, ...] = ("precision", "mode", "runtime", "kind")
#: Features a design fitted on ONE device leaves out of the smooth kernel. The roofline time is
#: the device's spec applied to the workload: on one device the kernel learns corrections as a
#: function of it (overheads dominate short passes, and so on), and a faster device's shorter
#: roofline times put its configurations at the points of the old device's smaller workloads.
#: With two or more devices it carries what differs between them and stays. Measured in session
#: 14 (docs/evaluation.md): fitted on the EPYC, the GP's median APE on the Xeon 23.0% -> 18.5%
#: (the other way 23.0% -> 23.3%, on the public GPU training table 48.6% -> 47.9%), and on one
#: device the ten random splits improved too (9.80% -> 9.70% median APE, 90% coverage 87.9% ->
#: 88.0%, CRPS 0.0962 -> 0.0946). Leaving the peak out as well (it varies with precision and
#: threads on one device) helped the transfer more (21.5% to the EPYC, 41.5% to the GPUs) but cost
#: the splits' calibration (90% coverage 87.1%, 4 of 10 splits below 85%); it stays.
DEVICE_FEATURES: frozenset[str] = frozenset({"log_t_roof"})
#: Prior log-scale spreads of the group terms per metric (see GPPredictor). Memory's runtime and
#: precision (the software path) move it far more than the device does: the roofline's one weight
#: factor leaves OpenVINO's int8 -0.8 and torch's fp32 +0.17 in log on the shipped CPU. With the
#: software term at 0.1 and the device's at 0.3, the one device's term took that misfit, and a
#: never-measured CPU lost it: fitted on the shipped EPYC, 102 runs built today on a Xeon read 26%
#: median APE (2026-12-07). At 0.5 and 0.15: 9.9-10.0% (50/90% coverage 62-67/98%); the ten random splits
#: are unchanged (1.12 -> 1.15% APE, 90% coverage 89.7 -> 90.3%) and leaving each model out is a
#: little worse (6.2 -> 6.8%, 90% coverage 82 -> 77%). A model's own memory (its runtime buffers:
#: whisper-tiny on ONNX Runtime +0.4 in log) needs a spread of 0.3, as the hierarchical model's
#: per-model overhead has, not 0.1: leaving each model out, 6.8 -> 6.4% and 90% coverage 77 -> 89%;
#: the random splits 1.10% and 90.4%; the never-measured CPU 11.0% (58/98%). At 0.2: 6.5% and 84%.
#: (Chosen before the roofline scaled its memory per runtime, :data:`roofline.RUNTIME_PRIOR_SD`.)
MEMORY_PRIOR_SD: dict[str, float] = {"hardware": 0.15, "family": 0.2, "model": 0.3, "software": 0.5,
                                     "hardware_software": 0.1}
#: The memory output's correction applies to the prior's overhead and weights, not to the live
#: activations: memory = base · exp(f) + activations, linearised as log(memory / prior) ≈ s · f with
#: s the base's share (:func:`roofline.memory_base_share`); the GP is fitted on the residual / s
#: (noise / s²) and predicts s · f, plus (1 − s) times this log-scale spread of the activation
#: factor (the counted working set against measured peaks of batch 16-128 runs on a Xeon: 0.94-1.15x).
#: Fitted on the process-and-weights peaks of batch <= 16 runs, a model's correction (resnet50
#: +0.15 in log) otherwise scaled its activations at batch 128 too: 7 runs of batch 16-128 read
#: 1.1-1.6x their peak (docs/evaluation.md, "Session 30").
MEMORY_ACTIVATION_SD = 0.15
#: Runs with a peak memory the GP needs before it models memory at all (GPPredictor.memory_caution).
MIN_MEMORY_RUNS = 3
Z90 = 1.6448536269514722
#: Prior median (log units) of a configuration's roughness: its own departure from the smooth
#: surface, shared by its repeated runs and by no other configuration (see OutputGP.calibrate).
#: Chosen from replays on random designs, whose close pairs of configurations show it (maximum
#: likelihood 0.16-0.27 on five of six seeds at 60 runs, median 0.22; docs/active-learning.md
#: "Session 17"). 0.15 was measured too: eig's held-out 90% coverage at 60-100 runs 85-86%, 87-90% with 0.2.
ROUGHNESS_PRIOR = 0.2
#: Prior spread of log(roughness) around it.
ROUGHNESS_PRIOR_SD = 0.5
#: Shrinkage of a stratum's calibration towards the global one (in runs; see OutputGP.calibrate).
STRATUM_PSEUDO_COUNT = 40
#: Asymptotic Var(p90) / Var(median) of a normal sample: (0.09/φ(1.2816)²) / (π/2).
P90_VAR_RATIO = 1.86


def stable_subset(row_ids: Sequence[str], size: int, seed: int = 0) -> np.ndarray:
    """Indices of ``size`` runs chosen by a hash of each run's identity: the subset the
    hyperparameters are fitted on when there are more runs than ``max_fit_points``.

    A random draw of the same size reshuffled the whole subset whenever one run was added, and
    the hyperparameters moved with it: fitted on the 491 shipped runs, the zero-shot median APE on
    a never-measured Xeon ranged 15.1-20.7% over six random 400-run subsets (docs/evaluation.md,
    "Session 32"), so one unrelated run could move every answer on a new device. With a hash,
    adding k runs changes about k · size / n runs of the subset."""
    import hashlib

    salt = int(seed).to_bytes(8, "little", signed=True)
    keys = np.array([int.from_bytes(hashlib.blake2b(str(r).encode(), digest_size=8, salt=salt).digest(), "little")
                     for r in row_ids], dtype=np.uint64)
    return np.sort(np.argsort(keys, kind="stable")[:size])


def run_identity(config_key: str, log_latency: float) -> str:
    """The identity :func:`stable_subset` hashes: the configuration and its measured value.

    The value goes through Python's ``float`` repr (the shortest round-trip digits): the repr of a
    NumPy scalar is ``np.float64(...)`` from NumPy 2 on and bare digits before it, so hashing it
    would draw another subset, and fit other hyperparameters, under NumPy 1.26, which setup.cfg
    admits."""
    return f"{config_key}|{float(log_latency)!r}"


def group_labels(ff: FeatureFrame, group: str) -> np.ndarray:
    """Each row's label in one of the kernel's :data:`GROUPS`.

    ``software`` is the software path of a run — runtime × precision × mode (e.g.
    ``onnxruntime/int8/inference``). Runs on one path share kernels, quantisation and graph
    optimisations, so they share a deviation from the roofline that the smooth kernel over one-hot
    columns treats as nearly nothing at the small data sizes where it matters (its lengthscales sit
    near their long prior values). As a group term it gets its own variance component: the
    posterior knows that an unmeasured path is uncertain, and the information acquisition spreads
    early benchmarks over paths (measured in ``bench/active_learning.py``: eig's held-out error at
    30-60 benchmarks fell by about one point on 12 replay seeds; random sampling's barely moved).
    """
    if group == "software":
        return joined_labels(ff.cats, SOFTWARE_PATH)
    if group == "hardware_software":
        return joined_labels(ff.cats, ("hardware", *SOFTWARE_PATH))
    return ff.cats[group]


def overhead_share(ff: FeatureFrame, p: RooflineParams) -> np.ndarray:
    """ω = o / (o + t): the share of each row's roofline time that is the fixed per-pass overhead
    (the input of the kernel's per-device overhead term, :mod:`engine.models.gp_kernel`)."""
    return p.overhead_ms / roofline_latency_ms(ff, p)


def calibration_strata(ff: FeatureFrame) -> np.ndarray:
    """The stratum of each row for the calibration (mode/precision: where the misfit differs)."""
    return joined_labels(ff.cats, ("mode", "precision"))


def fit_roughness(resid: np.ndarray, sd: np.ndarray, prior_median: float,
                  prior_sd: float = ROUGHNESS_PRIOR_SD) -> float:
    """MAP roughness τ from leave-one-out residuals ``resid`` with model spreads ``sd`` (log units).

    The residuals are read as N(0, c²·sd² + τ²): c rescales what the GP knows it does not know,
    τ adds what it cannot know (a configuration's own departure from the smooth surface). Both
    are fitted by maximising that likelihood with a log-normal prior (median ``prior_median``,
    log-sd ``prior_sd``) on τ and none on c; c is discarded (the quantile calibration that
    follows sets the multipliers, with τ in the spread).
    """
    from scipy.optimize import minimize

    e2 = np.asarray(resid, float) ** 2
    v = np.asarray(sd, float) ** 2
    if not len(e2):
        return float(prior_median)
    loc = math.log(prior_median)

    def neg_log_post(p: np.ndarray) -> float:
        tot = np.exp(2 * p[0]) * v + np.exp(2 * p[1])
        return float(0.5 * np.sum(np.log(tot) + e2 / tot) + 0.5 * ((p[1] - loc) / prior_sd) ** 2)

    best = minimize(neg_log_post, np.array([0.0, loc]), method="Nelder-Mead",
                    options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 400})
    return float(np.exp(best.x[1]))


class StrataCodes(NamedTuple):
    """Distinct stratum labels and each row's index into them (``np.unique`` once per predict,
    not once per output: on 100k rows the string sort is the costly part)."""

    labels: np.ndarray
    inverse: np.ndarray


def factorise(strata: np.ndarray) -> StrataCodes:
    labels, inv = np.unique(np.asarray(strata).astype(str), return_inverse=True)  # few distinct
    return StrataCodes(labels, inv.reshape(-1))


@dataclass
class Design:
    """How a FeatureFrame becomes GP inputs: chosen columns, their bounds, group vocabularies."""

    columns: list[int]
    bounds: np.ndarray  # (2, len(columns))
    vocab: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the fitted roofline's parameters when the kernel has the per-device overhead term: its input
    #: ω, the overhead's share of the roofline time, is the matrix's last column
    overhead: Optional[RooflineParams] = None
    #: the single device a one-device fit saw: its rows get ω = 0 (the roofline's overhead was
    #: fitted on it alone, so its deviation from that overhead is zero by construction)
    overhead_fitted_on: Optional[str] = None

    @classmethod
    def from_training(cls, ff: FeatureFrame, overhead: Optional[RooflineParams] = None) -> "Design":
        X = ff.X
        one_device = len(set(ff.cats["hardware"])) < 2
        keep = [j for j, name in enumerate(ff.names) if name in GP_FEATURES or name.split("=")[0] in GP_ONE_HOT]
        varying = [j for j in keep if np.ptp(X[:, j]) > 0]  # constant in the data: nothing to learn
        # ... unless nothing varies (one configuration, measured once or repeated): then the smooth
        # kernel keeps every feature, its lengthscales at their prior, rather than none, which
        # BoTorch's Normalize refuses ("`indices` list is empty!", a traceback from train,
        # predict and evaluate on a store with one benchmark; audit 2026-12-08)
        keep = varying or keep
        if one_device:
            keep = [j for j in keep if ff.names[j] not in DEVICE_FEATURES]
        lo, hi = X[:, keep].min(0), X[:, keep].max(0)
        width = np.maximum(hi - lo, 1.0)  # at least one log unit: no blow-up on near-constant columns
        mid = (lo + hi) / 2
        bounds = np.stack([mid - width / 2, mid + width / 2])
        vocab = {g: {v: i for i, v in enumerate(sorted(set(group_labels(ff, g))))} for g in GROUPS
                 if not (one_device and g in MULTI_DEVICE_GROUPS)}
        fitted_on = str(ff.cats["hardware"][0]) if one_device and overhead is not None and len(ff) else None
        return cls(keep, bounds, vocab, overhead, fitted_on)

    @property
    def groups(self) -> tuple[str, ...]:
        """The kernel's group terms, in the order of :meth:`matrix`'s code columns."""
        return tuple(self.vocab)

    def matrix(self, ff: FeatureFrame) -> np.ndarray:
        """Feature columns + one integer code column per group (unseen values get fresh codes), then
        ω when the design has the overhead term."""
        codes = []
        for g in self.groups:
            voc = self.vocab[g]
            arr = group_labels(ff, g)
            uniq, inv = np.unique(arr.astype(str), return_inverse=True)
            extra = iter(range(len(voc), len(voc) + len(uniq)))
            table = np.array([voc[u] if u in voc else next(extra) for u in uniq], dtype=float)
            codes.append(table[inv])
        extra = []
        if self.overhead is not None:
            omega = overhead_share(ff, self.overhead)
            if self.overhead_fitted_on is not None:
                omega = np.where(np.asarray(ff.cats["hardware"]).astype(str) == self.overhead_fitted_on, 0.0, omega)
            extra.append(omega)
        return np.column_stack([ff.X[:, self.columns], *codes, *extra])

    def seen(self, ff: FeatureFrame, group: str) -> np.ndarray:
        voc = self.vocab[group]
        return np.array([v in voc for v in group_labels(ff, group)])


class OutputGP:
    """One metric's GP: a SingleTaskGP with the group kernel, fixed+learned noise, transforms."""

    def __init__(self, X: np.ndarray, y: np.ndarray, yvar: np.ndarray, design: Design, prior_sd_log: dict[str, float],
                 noise_floor_sd: float, drift_sd_prior: float) -> None:
        self.X = torch.as_tensor(X, dtype=torch.float64)
        self.y = torch.as_tensor(y, dtype=torch.float64).unsqueeze(-1)
        self.yvar = torch.as_tensor(yvar, dtype=torch.float64).unsqueeze(-1)
        self.n_feat = len(design.columns)
        self.groups = design.groups
        self.has_overhead = design.overhead is not None
        self.bounds = torch.as_tensor(design.bounds, dtype=torch.float64)
        self.prior_sd_log = dict(prior_sd_log)
        self.noise_floor_sd = noise_floor_sd
        self.drift_sd_prior = drift_sd_prior
        self.y_std = float(self.y.std()) if len(self.y) > 1 else 1.0
        self.y_std = self.y_std if self.y_std > 1e-3 else 1.0
        self.calibration = 1.0
        self.loo_coverage90: Optional[float] = None
        # roughness τ (log units): each configuration's own departure from the smooth surface, which
        # no other configuration's runs inform (see calibrate); None = no such term (memory)
        self.roughness_prior: Optional[float] = None
        self.roughness = 0.0
        # per-stratum spread multipliers (see calibrate); a stratum never seen uses `calibration`
        self.strata: Optional[np.ndarray] = None
        # each run's identity (configuration key and measured value): fixes which runs fit the
        # hyperparameters when there are more than max_fit_points (stable_subset); None = a random draw
        self.row_ids: Optional[np.ndarray] = None
        self.stratum_calibration: dict[str, float] = {}
        # name of an output with the same kernel whose latent variance (in standardised units)
        # this one borrows at prediction time: p90 borrows the median's (same inputs, same kernel;
        # its noisier targets would widen the latent variance by a few percent, which the LOO
        # calibration below absorbs)
        self.variance_from: Optional[str] = None
        self.fit_note: Optional[str] = None  # set when the hyperparameter fit needed its fallback
        self.model = self._build(self.X, self.y, self.yvar)

    # -- construction ---------------------------------------------------------------------------
    def _build(self, X: torch.Tensor, y: torch.Tensor, yvar: torch.Tensor) -> Any:
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.input import Normalize
        from botorch.models.transforms.outcome import Standardize
        from gpytorch.constraints import GreaterThan
        from gpytorch.likelihoods import FixedNoiseGaussianLikelihood
        from gpytorch.priors import LogNormalPrior

        from engine.models.gp_kernel import GroupScaleKernel

        d = self.n_feat
        s2 = self.y_std**2
        sds = self.prior_sd_log
        # prior medians of the kernel scales, in the standardised outcome's units
        groups = self.groups
        prior_scales = [max(1.0 - sum(sds[g] ** 2 for g in groups) / s2, 0.25)] + [sds[g] ** 2 / s2 for g in groups]
        # (the overhead term, below, leaves the shared scale's prior as it is: its variance ω²·s_oh
        # is small except on short passes)
        # hardware, family and device × path scales are fixed at their prior (few groups: MAP would collapse them)
        oh_sd = sds.get("overhead", 0.0) if self.has_overhead and "hardware" in groups else 0.0
        oh_dims = (d + len(groups), d + groups.index("hardware")) if oh_sd > 0 else None
        kernel = GroupScaleKernel(list(range(d)), list(range(d, d + len(groups))), prior_scales,
                                  fixed=[False] + [g in FIXED_GROUPS for g in groups],
                                  overhead_dims=oh_dims, overhead_scale=oh_sd**2 / s2)
        model = SingleTaskGP(X, y, train_Yvar=yvar, covar_module=kernel,
                             input_transform=Normalize(d=X.shape[-1], indices=list(range(d)), bounds=self.bounds),
                             outcome_transform=Standardize(m=1))
        floor = self.noise_floor_sd**2 / s2
        drift = max(self.drift_sd_prior**2 / s2, floor * 1.01)
        lik = FixedNoiseGaussianLikelihood(noise=model.likelihood.noise_covar.noise.detach().clone(),
                                           learn_additional_noise=True,
                                           noise_prior=LogNormalPrior(math.log(drift), 1.0),
                                           noise_constraint=GreaterThan(floor, transform=None, initial_value=drift))
        model.likelihood = lik.to(X)
        return model

    def _hyper_state(self, model: Any) -> dict[str, torch.Tensor]:
        skip = ("noise_covar.noise", "outcome_transform", "input_transform", "fixed_", "_dims")
        return {k: v.detach().clone() for k, v in model.state_dict().items() if not any(t in k for t in skip)}

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, max_points: int, maxiter: int, init: Optional[dict[str, torch.Tensor]], seed: int = 0) -> None:
        import gpytorch
        from botorch.fit import fit_gpytorch_mll
        from botorch.optim.fit import fit_gpytorch_mll_scipy
        from gpytorch.mlls import ExactMarginalLogLikelihood

        n = self.X.shape[0]
        if n > max_points:
            idx = torch.as_tensor(stable_subset(self.row_ids, max_points, seed) if self.row_ids is not None
                                  else np.random.default_rng(seed).choice(n, max_points, replace=False))
            sub = self._build(self.X[idx], self.y[idx], self.yvar[idx])
        else:
            sub = self.model
        if init:
            sub.load_state_dict(init, strict=False)
        if maxiter <= 0:  # hyperparameters given (shared with another output): condition only
            self.model.load_state_dict(init or {}, strict=False)
            self.model.eval()
            self.fast = FastPosterior(self.model, self.X, seed=seed, mean_only=self.variance_from is not None)
            return
        sub.train()
        mll = ExactMarginalLogLikelihood(sub.likelihood, sub)
        import warnings

        from botorch.exceptions.errors import ModelFittingError

        kwargs = dict(optimizer=fit_gpytorch_mll_scipy, optimizer_kwargs={"options": {"maxiter": maxiter}},
                      max_attempts=1)
        with warnings.catch_warnings(), gpytorch.settings.max_cholesky_size(10**5):
            warnings.simplefilter("ignore")
            try:
                fit_gpytorch_mll(mll, **kwargs)
            except ModelFittingError:
                # BoTorch rolls back an attempt that ended with an optimiser warning (typically
                # L-BFGS's "abnormal termination in line search" close to a minimum). Take the
                # point the optimiser reached instead; if even that fails (a non-PSD matrix on
                # the way), keep the starting hyperparameters — a valid if untuned posterior —
                # rather than let one fit kill a loop or an evaluation.
                try:
                    fit_gpytorch_mll(mll, warning_handler=lambda w: True, **kwargs)
                    self.fit_note = "optimiser stopped early (line search); kept the point it reached"
                except ModelFittingError:
                    self.fit_note = "hyperparameter fit failed; kept the starting hyperparameters"
        if self.fit_note:
            warnings.warn(f"GP fit: {self.fit_note}", RuntimeWarning, stacklevel=2)
        if sub is not self.model:
            self.model.load_state_dict(self._hyper_state(sub), strict=False)
        self.model.eval()
        self.fast = FastPosterior(self.model, self.X, seed=seed)

    def hyperparameters(self, include_fixed: bool = False) -> dict[str, torch.Tensor]:
        """Learned hyperparameters (warm starts); ``include_fixed`` adds the fixed kernel scales
        too, for an output that shares this kernel exactly."""
        state = self._hyper_state(self.model)
        if include_fixed:
            state["covar_module.fixed_values"] = self.model.covar_module.fixed_values.detach().clone()
            state["covar_module.fixed_overhead_scale"] = self.model.covar_module.fixed_overhead_scale.detach().clone()
        return state

    # -- prediction ------------------------------------------------------------------------------
    def new_noise_var(self) -> float:
        """Variance (log units) of a new run's median around the configuration's true value."""
        extra = float(self.model.likelihood.second_noise_covar.noise.detach().reshape(-1)[0]) * self.y_std**2
        return float(self.yvar.median()) + extra

    def unexplained_var(self, measured: Optional[np.ndarray] = None) -> "float | np.ndarray":
        """Variance (log units) a new run has beyond the latent surface: run-to-run noise, plus the
        configuration's roughness τ² where it was never measured (``measured``: a mask per row,
        :meth:`measured`; None = all unmeasured). A measured configuration's own runs pin its
        departure, which the posterior there already holds."""
        if measured is None or not self.roughness:
            return self.new_noise_var() + self.roughness**2
        return self.new_noise_var() + self.roughness**2 * (~np.asarray(measured, bool))

    def measured(self, X: np.ndarray) -> np.ndarray:
        """Which rows of the model-input matrix ``X`` are configurations this output was trained on
        (the same design row; all-False without a roughness term, where it would not matter)."""
        X = np.asarray(X, dtype=np.float64)
        if not self.roughness or not len(X):
            return np.zeros(len(X), dtype=bool)
        T = self.X.detach().cpu().numpy().astype(np.float64)

        def rows(M: np.ndarray) -> np.ndarray:  # each row as one opaque value: a vectorised membership test
            return np.ascontiguousarray(M).view(np.dtype((np.void, M.dtype.itemsize * M.shape[1]))).ravel()

        return np.isin(rows(X), rows(T))

    def latent(self, X: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent correction, chunked, diagonal only."""
        return self.fast(torch.as_tensor(X, dtype=torch.float64), chunk)

    def predictive(self, X: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and calibrated sd of a new measurement's log-scale correction."""
        return self.from_latent(*self.latent(X, chunk), measured=self.measured(X))

    def scale_for(self, strata: "Optional[np.ndarray | StrataCodes]", n: int) -> np.ndarray:
        """The calibrated spread multiplier of each row (its stratum's, else the global one).
        ``strata``: labels per row, or their :func:`factorise` codes (computed once, shared by the outputs)."""
        if strata is None or not self.stratum_calibration:
            return np.full(n, self.calibration)
        codes = strata if isinstance(strata, StrataCodes) else factorise(strata)
        per_label = np.array([self.stratum_calibration.get(str(v), self.calibration) for v in codes.labels],
                             dtype=float)
        return per_label[codes.inverse]

    def from_latent(self, mu: np.ndarray, var: np.ndarray, strata: "Optional[np.ndarray | StrataCodes]" = None,
                    measured: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        return mu, self.scale_for(strata, len(mu)) * np.sqrt(var + self.unexplained_var(measured))

    def joint_draws(self, X: np.ndarray, n: int, seed: int, strata: Optional[np.ndarray] = None) -> np.ndarray:
        """(n, m) joint draws of a new measurement's correction (full covariance, small m)."""
        Xt = torch.as_tensor(X, dtype=torch.float64)
        gen = torch.Generator().manual_seed(seed)
        import gpytorch

        with torch.no_grad(), gpytorch.settings.max_cholesky_size(10**5):
            post = self.model.posterior(Xt)
            mean = post.mean.reshape(-1)
            cov = post.distribution.covariance_matrix
            if cov.dim() > 2:
                cov = cov.reshape(cov.shape[-2:])
            eye = torch.eye(cov.shape[-1], dtype=cov.dtype)
            L = torch.linalg.cholesky(cov + 1e-9 * eye)
            z = torch.randn((n, cov.shape[-1]), generator=gen, dtype=cov.dtype)
            extra = torch.as_tensor(np.broadcast_to(self.unexplained_var(self.measured(X)), (cov.shape[-1],)).copy(),
                                    dtype=cov.dtype)
            eps = torch.randn((n, cov.shape[-1]), generator=gen, dtype=cov.dtype) * torch.sqrt(extra)
            scale = torch.as_tensor(self.scale_for(strata, cov.shape[-1]), dtype=cov.dtype)
            draws = mean + scale * (z @ L.T + eps)
        return draws.numpy()

    # -- calibration -----------------------------------------------------------------------------
    def loo_residuals(self) -> tuple[np.ndarray, np.ndarray]:
        """Leave-one-configuration-out residuals of the training runs and the predictive sd (latent +
        run noise, no roughness) a new run of that configuration would get, both in log units.

        Repeated runs of one configuration share a feature row. Leaving out one run while its
        twin stays in training would grade the GP on an almost-seen point and make the calibrated
        intervals too narrow for new configurations, so all runs of a configuration leave together:
        for the group I, mean = r_I - (K⁻¹_II)⁻¹ α_I and covariance = (K⁻¹_II)⁻¹.
        """
        m = self.model
        m.eval()
        with torch.no_grad():
            Xt = m.input_transform(self.X)
            K = m.covar_module(Xt, Xt).to_dense()
            noise = m.likelihood.noise_covar.noise.reshape(-1) + m.likelihood.second_noise_covar.noise.reshape(-1)
            Kt = K + torch.diag(noise)
            ys, _ = m.outcome_transform(self.y)
            r = ys.reshape(-1) - m.mean_module.constant.reshape(-1)
            L = torch.linalg.cholesky(Kt)
            Kinv = torch.cholesky_inverse(L)
            alpha = Kinv @ r
            new_noise = self.new_noise_var() / self.y_std**2  # standardised units, like K
            _, group = np.unique(self.X.detach().cpu().numpy(), axis=0, return_inverse=True)
            res = torch.empty_like(alpha)
            sd = torch.empty_like(alpha)
            for g in np.unique(group):
                idx = torch.as_tensor(np.flatnonzero(group == g))
                cov = torch.linalg.inv(Kinv[idx][:, idx])
                resid = cov @ alpha[idx]
                # graded with the spread a NEW run gets at prediction time (latent + typical run
                # noise), not with this run's own noise: the calibration then applies to exactly
                # the predictive distribution that is reported
                latent = (torch.diagonal(cov) - noise[idx]).clamp_min(0.0)
                res[idx] = resid
                sd[idx] = torch.sqrt(latent + new_noise)
        return res.numpy() * self.y_std, sd.numpy() * self.y_std

    def calibrate(self) -> None:
        """Global LOO spread multiplier, then one per stratum shrunk towards it.

        The GP's misfit is not uniform: on the shipped data, held-out runs in training mode or
        int8 fell outside their 90% interval two to three times as often as fp32 inference, while a
        single global multiplier made the average right. Each stratum (``strata``: mode/precision
        of the run) therefore gets its own multiplier from its own LOO z-scores — a Mondrian split
        of the calibration set — shrunk towards the global one with a pseudo-count of
        :data:`STRATUM_PSEUDO_COUNT` runs, so a stratum with a handful of runs mostly keeps the
        global value.

        Before the multipliers, a latency output estimates its roughness τ (:func:`fit_roughness`):
        the part of a configuration's value that no other configuration tells, so that a
        prediction next to measured runs keeps at least τ of spread. A multiplier alone cannot
        stand in for it. Under active learning the runs are spread apart on purpose, so every
        leave-one-out prediction is far from the other runs, wide, and covered; the configurations
        left between them get small posterior variances and, with the multiplier fitted on the
        far ones, intervals that covered 77% of them (eig replays at 60 runs, six seeds; 90% after
        random designs). The leave-one-out residuals of a spread-out design say little about τ,
        so its prior (:data:`ROUGHNESS_PRIOR`) speaks there; a random design's close pairs pin it.
        """
        if self.X.shape[0] < 10:
            return
        resid, sd = self.loo_residuals()  # once: the roughness and the multipliers both read them
        if self.roughness_prior:
            self.roughness = fit_roughness(resid, sd, self.roughness_prior)
        # z-scores against the spread a new run would get: latent + run noise + roughness
        z = np.abs(resid / np.sqrt(sd**2 + self.roughness**2))
        self.calibration = float(np.clip(np.quantile(z, 0.9) / Z90, 0.8, 3.0))
        self.stratum_calibration = {}
        codes = None
        if self.strata is not None and len(self.strata) == len(z):
            codes = factorise(self.strata)  # the same labels scale_for uses, computed once
            for j, label in enumerate(codes.labels):
                zs = z[codes.inverse == j]
                if len(zs) < 5:
                    continue
                own = float(np.clip(np.quantile(zs, 0.9) / Z90, 0.8, 3.0))
                w = len(zs) / (len(zs) + STRATUM_PSEUDO_COUNT)
                self.stratum_calibration[str(label)] = w * own + (1 - w) * self.calibration
        scale = self.scale_for(codes, len(z))
        self.loo_coverage90 = float(np.mean(z <= Z90 * scale))

    # -- pickling: keep the recipe (data + hyperparameters), rebuild the model on load ------------
    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("model", "fast")}
        state["hyper"] = self.hyperparameters(include_fixed=True)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        hyper = state.pop("hyper")
        self.__dict__.update(state)
        self.model = self._build(self.X, self.y, self.yvar)
        self.model.load_state_dict(hyper, strict=False)
        self.model.eval()
        self.fast = FastPosterior(self.model, self.X, seed=0, mean_only=self.variance_from is not None)


class GPPredictor:
    """Roofline prior mean + GP correction per metric. See the module docstring for the choices.

    Prior spreads (log scale) of the group terms: ``hardware_sd`` — how far a device's behaviour
    may depart from what its spec sheet and the other devices suggest; ``family_sd`` and
    ``model_sd`` likewise for model families and individual models; ``software_sd`` for software
    paths (runtime × precision × mode, see :func:`group_labels`); ``hardware_software_sd`` for
    one path's departure on one device (fixed at its prior; active with two or more devices);
    ``overhead_sd`` for a device's per-pass overhead around the roofline's (log scale, fixed;
    0 turns the term off). 0.5 was chosen over 1.0 in session 15 (docs/evaluation.md): with 1.0
    the public GPU table's 90% intervals were 1.9× as wide as without the term (0.5: 1.2×; CRPS
    0.242 and 0.199 against 0.187) and eig's first picks on a new CPU chased overheads (held-out
    error 15.6% after 2 benchmarks against 7.0%). ``hardware_software_sd`` 0.3 was chosen on
    bench/cross_cpu.py (two CPUs, k runs of one added to the other's, 5 draws): 0.5 covered a
    little more on the Intel Xeon (88.7/88.0% against 87.0/87.0% at k = 16/32) and over-covered
    more on the EPYC (96.7/95.6% against 95.3/94.6%), at about the same error.
    ``roughness_prior``: prior median of a latency output's roughness τ (log units; 0 turns the
    term off, see :meth:`OutputGP.calibrate` and :data:`ROUGHNESS_PRIOR`). ``whole_fit_points`` and
    ``max_fit_points``: how many runs fit the hyperparameters (module docstring).
    """

    name = "gp"
    CACHE_VERSION = 16  # 2: per-stratum calibration; 3: software-path group term; 4: device × software path;
    # 5, 6: no roofline-time feature on one device; 7: per-device overhead term; 8: the design keeps the
    # roofline's parameters, not a tuple of three of them; 9: the latency outputs' roughness term;
    # 10: memory's software-path, device and model spreads 0.5, 0.15 and 0.3 (were 0.1, 0.3 and 0.1)
    # 11: memory's prior mean (the roofline) scales its weight factor and overhead per runtime
    # 12: memory's correction applies to the prior's base share (MEMORY_ACTIVATION_SD)
    # 13: the hyperparameters' subset of a store over max_fit_points is chosen by hash (stable_subset)
    # 14: max_fit_points 500 (was 400): the shipped store's hyperparameters are fitted on every run
    # 15: max_fit_points 400 again, every run up to whole_fit_points (500)
    # 16: stable_subset hashes run_identity (a float's repr, not a NumPy scalar's)

    def __init__(self, featurizer: Optional[Featurizer] = None, max_fit_points: int = 400, maxiter: int = 50,
                 maxiter_warm: int = 12, chunk_size: int = 8192, hardware_sd: float = 0.5, family_sd: float = 0.35,
                 model_sd: float = 0.25, software_sd: float = 0.3, hardware_software_sd: float = 0.3,
                 overhead_sd: float = 0.5, noise_floor_sd: float = 0.01,
                 drift_sd_prior: float = 0.04, roughness_prior: float = ROUGHNESS_PRIOR,
                 calibrate: bool = True, warm_start: bool = True, seed: int = 0,
                 whole_fit_points: int = 500) -> None:
        self.featurizer = featurizer
        self.max_fit_points = max_fit_points
        self.whole_fit_points = whole_fit_points
        self.maxiter = maxiter
        self.maxiter_warm = maxiter_warm
        self.chunk_size = chunk_size
        self.prior_sd_log = {"hardware": hardware_sd, "family": family_sd, "model": model_sd,
                             "software": software_sd, "hardware_software": hardware_software_sd,
                             "overhead": overhead_sd}
        self.noise_floor_sd = noise_floor_sd
        self.drift_sd_prior = drift_sd_prior
        self.roughness_prior = roughness_prior
        self.do_calibrate = calibrate
        self.warm_start = warm_start
        self.seed = seed
        self.roofline: Optional[RooflinePredictor] = None
        self.design: Optional[Design] = None
        self.outputs: dict[str, OutputGP] = {}
        self.n_train = 0

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["featurizer"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.roofline is not None:
            self.roofline.featurizer = self.featurizer

    def _ff(self, configs: Sequence[Config] | "pd.DataFrame") -> FeatureFrame:
        return (self.featurizer or default_featurizer())(configs)

    # -- fit ----------------------------------------------------------------------------------------
    def fit(self, data: "pd.DataFrame") -> "GPPredictor":
        """Fit (or warm-refit) every output. Runs single-threaded: the matrices are ≤ a few
        thousand wide, and on a 2-core machine shared with benchmarks, multi-threaded LAPACK calls
        (eigh, Cholesky) were measured 5-10× slower than one thread when the other core was busy."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._fit(data)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, data: "pd.DataFrame") -> "GPPredictor":
        tg = targets_from_measurements(data, catalog_models_only=uses_catalog(self.featurizer))
        previous = {k: o.hyperparameters() for k, o in self.outputs.items()} if self.warm_start else {}
        self.roofline = RooflinePredictor(featurizer=self.featurizer).fit(tg.frame)
        ff = with_legacy_builds(self._ff(tg.frame), tg.legacy_build)  # memory's prior mean, as each run was built
        self.design = Design.from_training(ff, self.roofline.params
                                           if self.prior_sd_log.get("overhead", 0.0) > 0 else None)
        X = self.design.matrix(ff)
        strata = calibration_strata(ff)
        row_ids = np.array([run_identity(c.key, v) for c, v in zip(tg.configs, tg.log_latency)], dtype=object)
        log_roof = np.log(self.roofline.latency_ms(ff))
        log_roof_mem = np.log(self.roofline.memory_mib(ff))
        share = memory_base_share(ff, self.roofline.params)
        var = np.maximum(tg.var_log_latency, 1e-8)
        specs: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = [
            ("latency_ms", np.ones(len(tg), bool), tg.log_latency - log_roof, var),
            ("latency_p90_ms", np.ones(len(tg), bool), tg.log_p90 - log_roof, P90_VAR_RATIO * var),
        ]
        has_mem = tg.has_memory
        if has_mem.sum() >= MIN_MEMORY_RUNS:
            specs.append(("memory_mib", has_mem, (tg.log_memory - log_roof_mem) / share, 0.005**2 / share**2))
        self.outputs = {}
        for metric, mask, y, yv in specs:
            sds = MEMORY_PRIOR_SD if metric == "memory_mib" else self.prior_sd_log
            out = OutputGP(X[mask], y[mask], yv[mask], self.design, sds, self.noise_floor_sd, self.drift_sd_prior)
            out.strata = strata[mask]
            out.row_ids = row_ids[mask]
            if metric != "memory_mib":
                out.roughness_prior = self.roughness_prior
            init = previous.get(metric)
            if metric == "latency_p90_ms" and "latency_ms" in self.outputs:
                # p90 is the median's surface times a tail factor: share the kernel hyperparameters
                # (and, at prediction, the kernel evaluation and latent variance); only the data differ
                init, iters = self.outputs["latency_ms"].hyperparameters(include_fixed=True), 0
                out.variance_from = "latency_ms"
            else:
                # memory is a smooth, nearly noise-free surface: half the iterations suffice
                cold = self.maxiter // 2 if metric == "memory_mib" else self.maxiter
                iters = self.maxiter_warm if init is not None else cold
            if init is not None and not _compatible(init, out.model):
                init, iters = None, self.maxiter
            n_out = int(mask.sum())  # every run up to whole_fit_points, else a hashed subset (module docstring)
            out.fit(n_out if n_out <= self.whole_fit_points else self.max_fit_points, iters, init, seed=self.seed)
            if self.do_calibrate:
                out.calibrate()
            self.outputs[metric] = out
        self.n_train = len(tg)
        return self

    @property
    def fit_notes(self) -> dict[str, str]:
        """Outputs whose hyperparameter fit needed the fallback (see OutputGP.fit), and why."""
        return {k: o.fit_note for k, o in self.outputs.items() if getattr(o, "fit_note", None)}

    def calibration_caution(self) -> Optional[str]:
        """One line when the latency intervals could not be calibrated: fewer than 10 runs leave
        nothing to cross-validate, so they are the raw posterior's (an audit saw 97-99% held-out
        coverage of the 90% interval at 6 runs, 84-94% at 17). Said on every answer."""
        out = self.outputs.get("latency_ms")
        if out is None or out.loo_coverage90 is not None or self.n_train >= 10:  # calibrate=False: not asked for
            return None
        return (f"the GP was fitted on {self.n_train} runs, too few (under 10) to calibrate its intervals by "
                "cross-validation: they are the uncalibrated posterior's")

    def memory_caution(self) -> Optional[str]:
        """One line when the GP has no memory output (fewer than MIN_MEMORY_RUNS runs with a peak
        memory, e.g. an imported latency-only CSV): predict's table then had no memory row and
        its JSON no memory_mib or P(fits), with nothing to say why. Said on every answer."""
        if "latency_ms" not in self.outputs or "memory_mib" in self.outputs:
            return None
        return (f"memory is not predicted: the GP models it from at least {MIN_MEMORY_RUNS} runs that record a peak "
                f"memory, and its {self.n_train} runs hold fewer (--predictor roofline answers it from the descriptors)")

    @property
    def calibration(self) -> dict[str, dict[str, Optional[float]]]:
        """Per metric: the LOO-CV spread multiplier and the LOO 90% coverage after it."""
        return {k: {"scale": o.calibration, "loo_coverage90": o.loo_coverage90, "roughness": round(o.roughness, 4),
                    "scale_by_stratum": {st: round(v, 4) for st, v in o.stratum_calibration.items()}}
                for k, o in self.outputs.items()}

    # -- predict ------------------------------------------------------------------------------------
    def _check(self) -> None:
        if not self.outputs or self.design is None or self.roofline is None:
            raise InvalidValueError("predictor state", "unfitted gp", "call fit(measurements) first")

    def _rows(self, configs: list[Config]) -> tuple[FeatureFrame, np.ndarray, StrataCodes, np.ndarray]:
        """What :meth:`predict` and :meth:`floor_sd` both need per configuration: features, the
        model-input rows, calibration strata, and which rows were measured (once: the latency
        outputs, median and p90, share every training row; memory, trained on a subset, has no
        roughness floor to leave out)."""
        self._check()
        ff = self._ff(configs)
        assert self.design is not None
        X = self.design.matrix(ff)
        return ff, X, factorise(calibration_strata(ff)), self.outputs["latency_ms"].measured(X)

    def predict(self, configs: Sequence[Config]) -> PredictionSet:
        configs = list(configs)
        ff, X, strata, seen = self._rows(configs)
        assert self.roofline is not None
        log_roof = np.log(self.roofline.latency_ms(ff))
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        shared: dict[tuple, list[str]] = {}
        for metric, gp in self.outputs.items():
            shared.setdefault(gp.fast.signature(), []).append(metric)
        Xt = torch.as_tensor(X, dtype=torch.float64)
        for metrics in shared.values():
            marg = dict(zip(metrics, joint_marginals([self.outputs[m].fast for m in metrics], Xt, self.chunk_size)))
            for metric in metrics:
                mu_lat, var_lat = marg[metric]
                src = self.outputs[metric].variance_from
                if src is not None:
                    if src not in marg:  # would be a bug: the kernels were meant to be identical
                        raise RuntimeError(f"{metric} shares {src}'s kernel but their caches differ")
                    var_lat = marg[src][1] * (self.outputs[metric].y_std / self.outputs[src].y_std) ** 2
                mu, sd = self.outputs[metric].from_latent(mu_lat, var_lat, strata, seen)
                if metric == "memory_mib":
                    share, act_sd = self._memory_share(ff)
                    out[metric] = (np.log(self.roofline.memory_mib(ff)) + share * mu, np.hypot(share * sd, act_sd))
                else:
                    out[metric] = (log_roof + mu, sd)
        if "latency_p90_ms" in out:
            # p90 >= median by definition. The two outputs share a kernel but condition on their own
            # runs, so far from any run the p90 mean can fall a few percent below the median's (8 of
            # 180 cells of a predict matrix in session 24's audit, e.g. 10,616 against 10,982 ms):
            # there the tail factor is taken as 1, not below
            mu_p90, sd_p90 = out["latency_p90_ms"]
            out["latency_p90_ms"] = (np.maximum(mu_p90, out["latency_ms"][0]), sd_p90)
        return lognormal_set(configs, self.name, ff.phys["batch"], latency=out["latency_ms"],
                             p90=out.get("latency_p90_ms"), memory=out.get("memory_mib"),
                             memory_floor=memory_floor_mib(ff.phys))

    def _memory_share(self, ff: FeatureFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the share s of memory's prior that the GP's correction scales, and the
        activation factor's log-scale spread on the rest, (1 − s) · MEMORY_ACTIVATION_SD."""
        assert self.roofline is not None
        share = memory_base_share(ff, self.roofline.params)
        return share, (1.0 - share) * MEMORY_ACTIVATION_SD

    def irreducible_var(self, configs: Sequence[Config], metric: str = "latency_ms") -> np.ndarray:
        """Per configuration, the part of ``metric``'s reported log-variance outside the GP's latent
        model: memory's activation-factor spread (squared), 0 for the latency outputs. It is in every
        reported interval and no benchmark narrows it, so information acquisition leaves it out of
        the variance it integrates (:func:`engine.acquisition.select.calibration_weights`)."""
        configs = list(configs)
        if metric != "memory_mib" or "memory_mib" not in self.outputs:
            return np.zeros(len(configs))
        self._check()
        return self._memory_share(self._ff(configs))[1] ** 2

    def floor_sd(self, configs: Sequence[Config], metric: str = "latency_ms") -> np.ndarray:
        """The log-scale spread each configuration's prediction of ``metric`` would keep with the
        latent surface known exactly: calibrated run noise, plus its own roughness where it was never
        measured (as :meth:`predict` composes them; memory: that on its base share, plus the
        activation factor's spread). No benchmark of *another* configuration narrows
        an interval below it, which is what a loop's stop rule has to know (``stop.max_reducible``,
        and the note that a ``stop.max_rel_width90`` below it cannot be met)."""
        configs = list(configs)
        ff, _, strata, seen = self._rows(configs)
        zero = np.zeros(len(configs))
        floor = self.outputs[metric].from_latent(zero, zero, strata, seen)[1]
        if metric == "memory_mib":  # as predict composes it: the run noise on the base, the activation spread
            share, act_sd = self._memory_share(ff)
            return np.hypot(share * floor, act_sd)
        return floor

    def sample(self, configs: Sequence[Config], n: int, metric: str = "latency_ms", seed: int = 0) -> np.ndarray:
        """(n, len(configs)) JOINT draws of a new measurement of ``metric`` (full covariance)."""
        self._check()
        configs = list(configs)
        if len(configs) > 5000:
            raise InvalidValueError("number of configurations for joint sampling", len(configs),
                                    "at most 5000 (use predict() for marginal intervals of larger sets)")
        src = "latency_ms" if metric == "throughput" else metric
        if src not in self.outputs:
            raise InvalidValueError("metric", metric, ", ".join(["throughput", *self.outputs]))
        ff = self._ff(configs)
        assert self.design is not None and self.roofline is not None
        base = np.log(self.roofline.memory_mib(ff)) if src == "memory_mib" else np.log(self.roofline.latency_ms(ff))
        corr = self.outputs[src].joint_draws(self.design.matrix(ff), n, seed, calibration_strata(ff))
        if src == "memory_mib":  # the correction on the base, the activation factor's spread (one per draw) on the rest
            share, act_sd = self._memory_share(ff)
            z = np.random.default_rng(seed + 1).standard_normal((n, 1))
            corr = share[None, :] * corr + act_sd[None, :] * z
        draws = np.exp(base[None, :] + corr)
        if metric == "throughput":
            return 1000.0 * ff.phys["batch"][None, :] / draws
        if metric == "memory_mib":  # never below what must be resident (as predict's truncation)
            return np.maximum(draws, memory_floor_mib(ff.phys)[None, :])
        if metric == "latency_p90_ms" and "latency_ms" in self.outputs:
            # never below the same configuration's median: drawn with the median's GP at the same seed,
            # whose draws share the kernel (a joint draw of both would need one covariance for two GPs)
            med = np.exp(np.log(self.roofline.latency_ms(ff))[None, :] + self.outputs["latency_ms"].joint_draws(
                self.design.matrix(ff), n, seed, calibration_strata(ff)))
            return np.maximum(draws, med)
        return draws


def _compatible(state: dict[str, torch.Tensor], model: Any) -> bool:
    own = model.state_dict()
    return all(k in own and own[k].shape == v.shape for k, v in state.items())
