"""Hierarchical Bayesian roofline (NumPyro, NUTS): efficiencies partially pooled across groups.

The likelihood *is* the roofline, with its unknowns given priors::

    log eff_c = μ_c + Σ_g e_g[level]  (g: kind, hardware within kind, family, model within family,
                precision, runtime, precision×runtime, hardware×precision) + β_w·(log FLOPs − m)
                − log(1 + b_half/batch)                       utilisation: small batches under-fill
    log b_half = μ_b + e_b[hardware]                           the machine (strongest on GPUs)
    log eff_m = μ_m + e_m[hardware] + e_m[runtime]
    log oh    = μ_o + e_o[runtime] + e_o[kind] + e_o[model] + β_o·(log params − m)
    log t     = log(oh + smoothmax(F/(eff_c·peak), B/(eff_m·bw)))
    log y     ~ StudentT(ν, log t, sqrt(σ² + s_i²))        s_i²: sampling variance of run i
    log(p90/median) ~ Normal(μ_r + e_r[runtime], τ)
    log mem   ~ StudentT(ν_m ≥ 3, log(c_0 + max(c_w·build, c_w·weights + c_a·activations)), σ_mem),
              log c_0 pooled over runtime, kind, device and model, log c_w over runtime, precision
              and precision×runtime; build: the weights held while the model is built (int8 is
              quantized from fp32)

Each group effect e_g has one value per observed level, e_g = Q_g·w_g with w_g ~ N(0, σ_g): the
columns of Q_g span the level vectors orthogonal to the constant and to the parent groups'
indicators (hardware within kind, model within family, an interaction orthogonal to its main
effects, the per-model overhead orthogonal to β_o's log params). No effect can then trade against an
intercept or a parent: those exact ridges in the posterior (a 0.999 correlation between the kind and
hardware effects, between β_o and the model overheads) were what kept NUTS from mixing.

Spreads σ_g. The groups the issue pools over — kind, hardware, family, model, precision, runtime —
learn σ_g, centred (w ~ N(0, σ)): with hundreds of runs per level the data pin each effect far more
tightly than σ does, and the non-centred form then turns every (σ, z) pair into a narrow banana.
Their prior is log-normal, median half the scale in :data:`EFFECTS`, log-sd 0.5 (95%: ×0.38-×2.7):
boundary-avoiding, because a σ heading to 0 for an effect the data do not show is a funnel (with
a half-normal prior, σ_model at 0.008 gave a bulk ESS of 85 in 1,000 draws; now ~150-1,000), and
physically a device, runtime or model family never differs by *exactly* nothing. The secondary
effects (interactions, utilisation, memory efficiency, overhead, p90 ratio, memory) have fixed
spreads: with 2-4 levels the data cannot estimate a σ anyway, and learned ones needed 127-step
trajectories and still diverged. Levels never measured — a device, a family, a model — draw their
effect from N(0, σ_g): wide, honest intervals that shrink once they are measured. A group whose
data hold a single level, or whose partition of the runs equals an earlier group's, gets no free
coordinates.

Each target's group effects enter as one matrix-vector product: the run × coordinate design
``D = onehot(level)·Q`` is built once per fit (:func:`_designs`); predictions use the per-level
values ``Q·w`` and draw unseen levels from the population.

Predictions are posterior predictive draws (``PredictionSet.samples``). Diagnostics (max r_hat,
min bulk ESS, divergences) are computed with ArviZ on an ``InferenceData`` of all draws (saved as
netcdf); when r_hat is just above the limit and nothing diverged, sampling continues from the
chains' last state (``max_extensions`` times, no new warm-up) before judging; a fit with r_hat > 1.01 or any divergence raises
:class:`engine.errors.DiagnosticsError` unless ``allow_bad_diagnostics=True``.

Speed: chains run in parallel on the host's cores (``numpyro.set_host_device_count`` runs at the
top of this module, before JAX initialises — keep this module lazily imported); a dense mass
matrix (the remaining correlations, e.g. μ_c with μ_b and β_w, are linear) brings a draw down to
~31 leapfrog steps, so trees are capped at depth 6 (63 steps), which halves the cost of the early
warm-up, before the mass matrix is learned, when trees would otherwise run to 127 steps; the
diagnostics report ``tree_steps_mean`` (leapfrog steps per draw), the fit's cost independent of
machine load. Data are padded to size buckets so that refits hit JAX's persistent compilation
cache under ``cache_dir()/jax`` instead of recompiling.
"""
from __future__ import annotations

import os

import numpyro

numpyro.set_host_device_count(max(2, min(4, os.cpu_count() or 2)))

import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Sequence  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro.distributions as dist  # noqa: E402

from engine.config import Config  # noqa: E402
from engine.errors import DiagnosticsError, InvalidValueError  # noqa: E402
from engine.models.assemble import draws_set, memory_floor_mib  # noqa: E402
from engine.models.base import PredictionSet  # noqa: E402
from engine.models.features import FeatureFrame, Featurizer, default_featurizer, uses_catalog, with_legacy_builds  # noqa: E402,E501
from engine.models.roofline import TRAINING_WEIGHT_FACTOR  # noqa: E402
from engine.models.targets import targets_from_measurements  # noqa: E402

#: Prior sd of log(activation factor): the descriptors' working set is the counted peak of live
#: tensors (engine.descriptors.counting), which a run's peak matches once its tensors are large
#: (an Intel Xeon, batch 16-128, 2026-12-07: 0.98-1.15x). Small-batch CPU runs grow faster than it
#: (glibc keeps freed blocks under its 32 MiB mmap threshold: resnet50 b1 -> b8 +146 MiB for 75
#: counted), and with the roofline's sd of 0.5 the factor took that, ~2x, and doubled every
#: large-batch answer (7 runs of batch 16-128 on the Xeon, fitted on the shipped runs alone:
#: predicted 1.3-2.1x their measured peak, 0 of 7 in the 90% interval; at 0.15 still 1.3-1.7x; at
#: 0.05 0.97-1.09x, 7 of 7). The small-batch excess goes to the overheads instead.
ACTIVATION_PRIOR_SD = 0.05

if TYPE_CHECKING:
    import pandas as pd

_CACHE_READY = False


def _enable_compilation_cache() -> None:
    """JAX's persistent compilation cache: most of a small fit is compilation."""
    global _CACHE_READY
    if _CACHE_READY:
        return
    from engine.store.paths import cache_dir

    path = cache_dir() / "jax"
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    _CACHE_READY = True


class EffectSpec(NamedTuple):
    """One group effect: whose levels, orthogonal to what, on which linear predictor, how spread."""

    group: str  #: the categorical column (or combination) whose levels it has
    parents: tuple[str, ...]  #: besides the constant: parent groups' indicators, or "lp" (log params)
    target: str  #: c: log eff_c, b: log b_half, m: log eff_m, o: log overhead, r: p90 ratio, m0/mw: memory
    scale: float  #: fixed σ, or the prior median × 2 of a learned σ
    param: str  #: "centred" (σ learned, w ~ N(0, σ); see the module docstring) or "fixed"


#: Efficiency groups (a parent before the groups nested in it).
EFF_GROUPS: tuple[str, ...] = ("kind", "hardware", "family", "model", "precision", "runtime",
                               "precision_runtime", "hardware_precision", "mode")
#: Learned spreads' log-normal priors (median scale/2, 95% ×0.38-×2.7) roughly match the medians and
#: upper tails of the half-normal priors they replaced, so a never-measured device or kind is as
#: uncertain as before; the fixed spreads are about half the old half-normal scales, except for the
#: overhead per kind, which keeps its old scale (1.0): it sets how uncertain a never-measured kind
#: of device is (a GPU predicted from CPU-only data: 90% interval ×22 wide, as before). Memory
#: efficiency per device stays at 0.15: at 0.3 its ridge with μ_m cost an extra 500 draws.
EFFECTS: dict[str, EffectSpec] = {
    "kind": EffectSpec("kind", (), "c", 1.2, "centred"),
    "hardware": EffectSpec("hardware", ("kind",), "c", 0.8, "centred"),
    "family": EffectSpec("family", (), "c", 0.6, "centred"),
    "model": EffectSpec("model", ("family",), "c", 0.4, "centred"),
    "precision": EffectSpec("precision", (), "c", 0.7, "centred"),
    "runtime": EffectSpec("runtime", (), "c", 0.6, "centred"),
    "precision_runtime": EffectSpec("precision_runtime", ("precision", "runtime"), "c", 0.15, "fixed"),
    "hardware_precision": EffectSpec("hardware_precision", ("hardware", "precision"), "c", 0.15, "fixed"),
    # training's efficiency is not inference's (backward kernels, the optimizer step): without this
    # the shipped training runs were under-predicted by 14% with 77% in-sample 90% coverage (90% with
    # it), and on splits 0-3 training's held-out coverage went 0.70/0.71/0.71/0.57 -> 0.60/0.86/0.86/1.00
    # (audit P; 7-10 training runs per split, so noisy), the fit's min ESS 300 -> 784
    "mode": EffectSpec("mode", (), "c", 0.5, "fixed"),
    "b_hardware": EffectSpec("hardware", (), "b", 0.35, "fixed"),
    "m_hardware": EffectSpec("hardware", (), "m", 0.15, "fixed"),
    "m_runtime": EffectSpec("runtime", (), "m", 0.1, "fixed"),
    "o_runtime": EffectSpec("runtime", (), "o", 0.5, "fixed"),
    "o_kind": EffectSpec("kind", (), "o", 1.0, "fixed"),
    "o_model": EffectSpec("model", ("lp",), "o", 0.25, "fixed"),
    "r_runtime": EffectSpec("runtime", (), "r", 0.05, "fixed"),
    "mem0_runtime": EffectSpec("runtime", (), "m0", 0.25, "fixed"),
    "mem0_kind": EffectSpec("kind", (), "m0", 0.35, "fixed"),
    # the weights' memory factor: per runtime (OpenVINO keeps f32 copies of an int8 graph's weights),
    # per precision, and their interaction. On the precision x runtime cell alone (spread 0.15, then
    # 0.4) a never-measured cell took the population factor, which the shipped CPU's OpenVINO and ONNX
    # Runtime levels set at 2.2x once the builds were priced: fp16 llama-7b on a 24 GiB A10G (12.6 GiB
    # of weights) read 37 GiB (0.15), 20.4 (0.4) and 28.2 GiB, P(fits) 0.36 (builds priced). With main
    # effects it takes torch's factor: 14.7 GiB (90%: 12.9-40.2), P(fits) 0.80; leaving each model
    # out, memory on the runs built as today 7.7% -> 7.5% median APE, 87% coverage either way (2026-12-07)
    "memw_runtime": EffectSpec("runtime", (), "mw", 0.5, "fixed"),
    "memw_precision": EffectSpec("precision", (), "mw", 0.5, "fixed"),
    "memw_precision_runtime": EffectSpec("precision_runtime", ("precision", "runtime"), "mw", 0.4, "fixed"),
    # a model's own memory overhead (its runtime's buffers, an exported graph's copies): without it a
    # fifth of the shipped runs (whisper-tiny on onnxruntime +0.4 in log, ...) were outliers of a
    # ν ≈ 1 noise; with it, memory's 90% coverage leaving each family out went 74% -> 86% (2026-12-07)
    "mem0_model": EffectSpec("model", (), "m0", 0.3, "fixed"),
    # a device's own memory overhead within its kind (its libraries, allocator, OS): learned where a
    # store holds several, and on a never-measured one the uncertainty it brings. Fitted on the shipped
    # EPYC alone and asked for 102 runs built today on a Xeon (2026-12-07), memory's median APE stayed
    # 3.7% and its 50/90% coverage went 49/76% -> 62/80% at 0.1 and 71/93% at 0.2
    "mem0_hardware": EffectSpec("hardware", ("kind",), "m0", 0.2, "fixed"),
}
TARGETS: tuple[str, ...] = ("c", "b", "m", "o", "r", "m0", "mw")
#: effective draws per chain below which the interval ends are noisy (Vehtari et al. 2021's guide)
ESS_PER_CHAIN = 100
#: fewer runs than this rarely identify the group effects (a 5-run store: R-hat 1.061, 16 divergences)
MIN_RUNS_FOR_NUTS = 20
SMOOTH_K = 4.0  # sharpness of the smooth max between compute and memory time
SIGMA_LOG_SD = 0.5  # log-normal spread of a learned σ_g (see module docstring)


def _bucket(n: int, minimum: int = 4) -> int:
    """Pad sizes to powers of two (>= minimum) so compiled kernels are reused across fits."""
    b = minimum
    while b < n:
        b *= 2
    return b


def _levels(ff: FeatureFrame, group: str) -> np.ndarray:
    c = ff.cats
    if group == "precision_runtime":
        return np.char.add(np.char.add(c["precision"].astype(str), "/"), c["runtime"].astype(str))
    if group == "hardware_precision":
        return np.char.add(np.char.add(c["hardware"].astype(str), "/"), c["precision"].astype(str))
    return c[group].astype(str)


def _null_basis(A: np.ndarray) -> np.ndarray:
    """Orthonormal basis (n × (n − rank A)) of the vectors orthogonal to A's columns."""
    u, sv, _ = np.linalg.svd(A, full_matrices=True)
    rank = int(np.sum(sv > 1e-9 * max(float(sv[0]), 1e-30))) if sv.size else 0
    return np.ascontiguousarray(u[:, rank:])


@dataclass
class Encoding:
    """Level vocabularies learned at fit; unseen levels map to -1 (drawn from the population).

    ``bases[name]`` (levels × free coordinates) maps an effect's coordinates to its per-level
    values (see the module docstring); an effect without free coordinates has a 0-column basis."""

    vocab: dict[str, list[str]] = field(default_factory=dict)
    centers: dict[str, float] = field(default_factory=dict)
    active: dict[str, bool] = field(default_factory=dict)
    bases: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_training(cls, ff: FeatureFrame) -> "Encoding":
        vocab = {g: sorted(set(_levels(ff, g).tolist())) for g in {s.group for s in EFFECTS.values()}}
        centers = {"log_flops": float(np.mean(np.log(ff.phys["flops"]))),
                   "log_params": float(np.mean(np.log(ff.phys["params"])))}
        # An efficiency group gets fitted effects only if the data tell its levels apart from
        # everything else: >= 2 levels, and its partition of the runs is not identical to that of a
        # group earlier in EFF_GROUPS (e.g. hardware×precision on a single device = precision).
        active: dict[str, bool] = {}
        partitions: list[tuple[int, ...]] = []
        for g in EFF_GROUPS:
            _, inv = np.unique(_levels(ff, g), return_inverse=True)
            canon = tuple(np.unique(inv, return_index=True)[1][inv].tolist())  # relabel by first occurrence
            active[g] = len(vocab[g]) >= 2 and canon not in partitions
            if active[g]:
                partitions.append(canon)
        enc = cls(vocab, centers, active)
        lp = np.log(ff.phys["params"]) - centers["log_params"]
        for name, spec in EFFECTS.items():
            levels = _levels(ff, spec.group)
            first = np.array([np.flatnonzero(levels == v)[0] for v in vocab[spec.group]])  # a run of each level
            cols = [np.ones(len(first))]
            for par in spec.parents:
                if par == "lp":
                    cols.append(lp[first])
                else:
                    pl = _levels(ff, par)[first]
                    cols += [(pl == v).astype(float) for v in np.unique(pl)]
            if name in active and not active[name]:
                enc.bases[name] = np.zeros((len(first), 0))
            else:
                enc.bases[name] = _null_basis(np.stack(cols, axis=1))
        return enc

    def codes(self, ff: FeatureFrame, group: str) -> np.ndarray:
        voc = {v: i for i, v in enumerate(self.vocab[group])}
        vals = _levels(ff, group)
        uniq, inv = np.unique(vals, return_inverse=True)
        table = np.array([voc.get(u, -1) for u in uniq], dtype=np.int32)
        return table[inv]

    def spec(self) -> tuple[tuple[str, str, int, str, float], ...]:
        """Static description of the effects for :func:`latency_model`: (name, target, k, param, scale)."""
        return tuple((name, s.target, int(self.bases[name].shape[1]), s.param, s.scale) for name, s in EFFECTS.items())


def _data_arrays(ff: FeatureFrame, enc: Encoding) -> dict[str, np.ndarray]:
    train = (ff.cats["mode"] == "training").astype(float)
    return {
        "log_tc": np.log(ff.phys["t_compute_ms"]), "log_tm": np.log(ff.phys["t_memory_ms"]),
        "lf": np.log(ff.phys["flops"]) - enc.centers["log_flops"],
        "lp": np.log(ff.phys["params"]) - enc.centers["log_params"],
        "lb": np.log(ff.phys["batch"]),
        "w_mib": ff.phys["weight_bytes"] * (1.0 + (TRAINING_WEIGHT_FACTOR - 1.0) * train) / 2**20,
        "a_mib": ff.phys["live_bytes"] / 2**20,  # live activations + KV cache (the roofline's memory term)
        "b_mib": ff.phys["build_bytes"] / 2**20,  # weights held while the model is built
        **{f"idx_{g}": enc.codes(ff, g) for g in enc.vocab},
    }


def _designs(arrays: dict[str, np.ndarray], enc: Encoding) -> dict[str, np.ndarray]:
    """Per target, the run × coordinate matrix ``[Q_g[level of run]]_g`` (training runs only)."""
    out: dict[str, list[np.ndarray]] = {t: [] for t in TARGETS}
    for name, spec in EFFECTS.items():
        basis = enc.bases[name]
        if basis.shape[1]:
            out[spec.target].append(basis[arrays[f"idx_{spec.group}"]])
    n = len(arrays["lf"])
    return {f"D_{t}": np.concatenate(v, axis=1) if v else np.zeros((n, 0)) for t, v in out.items()}


def latency_model(d: dict[str, Any], spec: tuple[tuple[str, str, int, str, float], ...], y: Any = None,
                  s2: Any = None, r90: Any = None, mask: Any = None, mem: Any = None, mem_mask: Any = None) -> None:
    """The hierarchical roofline (see module docstring); ``spec`` from :meth:`Encoding.spec`."""
    coefs: dict[str, list[Any]] = {t: [] for t in TARGETS}
    for name, target, k, param, scale in spec:
        if param == "fixed":
            sigma: Any = scale
        else:  # log-normal: keeps σ off 0, where a centred effect would be a funnel
            sigma = numpyro.sample(f"sigma_{name}", dist.LogNormal(math.log(0.5 * scale), SIGMA_LOG_SD))
        if k == 0:
            continue
        coefs[target].append(numpyro.sample(f"w_{name}", dist.Normal(0.0, sigma).expand([k])))

    def lin(t: str) -> Any:
        return d[f"D_{t}"] @ jnp.concatenate(coefs[t]) if coefs[t] else 0.0

    mu_c = numpyro.sample("mu_c", dist.Normal(math.log(0.3), 1.0))
    # memory-bandwidth efficiency is well known (streaming reaches 50-80% of the spec sheet); a
    # vague prior here lets chains trade eff_m against eff_c near the ridge point and split modes
    mu_m = numpyro.sample("mu_m", dist.Normal(math.log(0.6), 0.3))
    mu_o = numpyro.sample("mu_o", dist.Normal(math.log(0.1), 2.0))
    # utilisation: b items fill b/(b + b_half) of the machine; b_half of a few items is typical
    mu_b = numpyro.sample("mu_b", dist.Normal(0.0, 1.5))
    beta_w = numpyro.sample("beta_w", dist.Normal(0.0, 0.3))
    beta_o = numpyro.sample("beta_o", dist.Normal(0.0, 0.5))
    log_bh = mu_b + lin("b")
    log_eff_c = mu_c + beta_w * d["lf"] + lin("c") - jax.nn.softplus(log_bh - d["lb"])
    log_eff_m = mu_m + lin("m")
    log_oh = mu_o + beta_o * d["lp"] + lin("o")
    a = d["log_tc"] - log_eff_c
    b = d["log_tm"] - log_eff_m
    roof = jnp.logaddexp(SMOOTH_K * a, SMOOTH_K * b) / SMOOTH_K
    log_t = jnp.logaddexp(log_oh, roof)
    sigma_y = numpyro.sample("sigma", dist.HalfNormal(0.3))
    nu = numpyro.sample("nu", dist.Gamma(3.0, 0.2))
    mu_r = numpyro.sample("mu_r", dist.Normal(0.05, 0.2))
    tau_r = numpyro.sample("tau_r", dist.HalfNormal(0.1))
    r_loc = mu_r + lin("r")
    # memory: overhead + weights (+ optimizer state in training) + activations, pooled
    l0 = numpyro.sample("mem_l0", dist.Normal(math.log(300.0), 1.5))
    lw = numpyro.sample("mem_lw", dist.Normal(0.0, 0.5))
    la = numpyro.sample("mem_la", dist.Normal(0.0, ACTIVATION_PRIOR_SD))
    cw = jnp.exp(lw + lin("mw"))
    run = cw * d["w_mib"] + jnp.exp(la) * d["a_mib"]
    mem_loc = jnp.log(jnp.exp(l0 + lin("m0")) + jnp.maximum(cw * d["b_mib"], run))
    sigma_mem = numpyro.sample("sigma_mem", dist.HalfNormal(0.3))
    # ν_mem ≥ 3: free, it sat near 1 (a Cauchy around a 3% core: 20% of the shipped runs, whole
    # model × runtime paths the pooled terms missed, were treated as outliers), and a log-Cauchy's
    # draws put memory means at 10⁹ MiB; bounded, and with the per-model overhead (mem0_model) to
    # take most of that misfit (docs/evaluation.md, "Session 27: hierarchical memory")
    nu_mem = numpyro.deterministic("nu_mem", 3.0 + numpyro.sample("nu_mem_excess", dist.Gamma(2.0, 0.1)))
    if y is not None:
        with numpyro.handlers.mask(mask=mask):
            numpyro.sample("y", dist.StudentT(nu, log_t, jnp.sqrt(sigma_y**2 + s2)), obs=y)
            numpyro.sample("r90", dist.Normal(r_loc, tau_r), obs=r90)
        with numpyro.handlers.mask(mask=mem_mask):
            numpyro.sample("mem", dist.StudentT(nu_mem, mem_loc, sigma_mem), obs=mem)


class HierarchicalPredictor:
    """NUTS fit of :func:`latency_model`; predictions are posterior predictive draws."""

    name = "hierarchical"
    # 2: orthogonal-basis effects, utilisation term; 3: memory scales the live working set;
    # 4: ν_mem ≥ 3 and a per-model memory overhead; 5: the weights' factor per precision x runtime
    # spread 0.4 (was 0.15); 6: a compute-efficiency effect per mode (inference, training);
    # 7: memory's peak is the larger of the model's build (b_mib) and the run, a memory overhead per
    # device, the weights' memory factor per runtime and per precision
    CACHE_VERSION = 9  # 9: the activation factor's prior sd 0.05 (was the roofline's 0.5)

    def __init__(self, featurizer: Optional[Featurizer] = None, num_warmup: int = 800, num_samples: int = 500,
                 num_chains: int = 2, target_accept: float = 0.9, max_tree_depth: int = 6,
                 allow_bad_diagnostics: bool = False, rhat_max: float = 1.01, seed: int = 0,
                 max_draws_cells: int = 20_000_000, idata_path: Optional[str] = None, dense_mass: bool = True,
                 max_extensions: int = 3) -> None:
        from engine.config import count_arg

        # checked here, so that an experiment config's predictor.options fail in one line before any
        # benchmark (audit H: num_warmup "abc" was a numpyro traceback, num_chains 0 a JAX one, and
        # target_accept 1.5 ran a whole fit to report an R-hat of 7e15)
        num_warmup = count_arg("num_warmup", num_warmup, 1, "an integer >= 1")
        num_samples = count_arg("num_samples", num_samples, 1, "an integer >= 1")
        num_chains = count_arg("num_chains", num_chains, 1, "an integer >= 1 (2 or more for R-hat)")
        max_tree_depth = count_arg("max_tree_depth", max_tree_depth, 1, "an integer from 1 to 15")
        max_extensions = count_arg("max_extensions", max_extensions, 0, "an integer >= 0")
        max_draws_cells = count_arg("max_draws_cells", max_draws_cells, 1, "an integer >= 1")
        seed = count_arg("seed", seed, 0, "an integer >= 0")
        if max_tree_depth > 15:
            raise InvalidValueError("max_tree_depth", max_tree_depth, "an integer from 1 to 15")
        if not _real(target_accept) or not 0.0 < target_accept < 1.0:
            raise InvalidValueError("target_accept", target_accept, "a number between 0 and 1 (e.g. 0.9 or 0.95)")
        if not _real(rhat_max) or not rhat_max > 1.0:
            raise InvalidValueError("rhat_max", rhat_max, "a number above 1 (e.g. 1.01)")
        self.featurizer = featurizer
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.num_chains = num_chains
        self.target_accept = float(target_accept)
        self.max_tree_depth = max_tree_depth
        self.allow_bad_diagnostics = allow_bad_diagnostics
        self.rhat_max = float(rhat_max)
        self.seed = seed
        self.max_draws_cells = max_draws_cells
        self.idata_path = idata_path
        # dense mass: with the ridges removed, what correlation is left is linear (μ_c with μ_b and
        # β_w, overhead with its runtime effects); a diagonal one needed ~3× longer trajectories
        self.dense_mass = dense_mass
        self.max_extensions = max_extensions
        self.encoding: Optional[Encoding] = None
        self.posterior: dict[str, np.ndarray] = {}
        self.diagnostics: dict[str, Any] = {}
        self.median_s2 = 0.0
        self.n_train = 0
        self._idata: Any = None

    # -- persistence --------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["featurizer"] = None
        state["_idata"] = None
        return state

    def save(self, directory: Path) -> None:
        import pickle

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self._idata is not None:
            self._idata.to_netcdf(str(directory / "posterior.nc"))
        with open(directory / "predictor.pkl", "wb") as f:
            pickle.dump(self, f)
        (directory / "diagnostics.json").write_text(json.dumps(self.diagnostics, indent=2, default=float))

    @classmethod
    def load(cls, directory: Path) -> "HierarchicalPredictor":
        import pickle

        with open(Path(directory) / "predictor.pkl", "rb") as f:
            obj = pickle.load(f)
        nc = Path(directory) / "posterior.nc"
        obj.idata_path = str(nc) if nc.exists() else obj.idata_path
        return obj

    @property
    def idata(self) -> Any:
        """ArviZ InferenceData of the last fit (loaded lazily from netcdf after a cache hit)."""
        if self._idata is None and self.idata_path and Path(self.idata_path).exists():
            az = _arviz()
            self._idata = az.from_netcdf(self.idata_path)
        return self._idata

    def _ff(self, configs: Sequence[Config] | "pd.DataFrame") -> FeatureFrame:
        return (self.featurizer or default_featurizer())(configs)

    # -- fit ----------------------------------------------------------------------------------------
    def _init_strategy(self, frame: "pd.DataFrame") -> Any:
        """Start every chain at the calibrated roofline with all group effects at zero.

        Random initialisation puts some chains at absurd efficiencies where the smooth max is flat,
        and warm-up then spends most of its budget walking back; the roofline's global least-squares
        calibration is a cheap, data-driven starting point (the posterior is still explored by NUTS
        from there, with jitter from the step-size adaptation)."""
        from numpyro.infer import init_to_value

        from engine.models.roofline import RooflinePredictor

        assert self.encoding is not None
        rp = RooflinePredictor(featurizer=self.featurizer).fit(frame).params
        values: dict[str, Any] = {"mu_c": math.log(rp.eff_compute), "mu_m": math.log(rp.eff_memory),
                                  "mu_o": math.log(rp.overhead_ms), "mu_b": 0.0, "beta_w": 0.0, "beta_o": 0.0,
                                  "sigma": 0.1, "nu": 10.0, "mu_r": math.log(max(rp.p90_ratio, 1.0 + 1e-3)),
                                  "tau_r": 0.05, "mem_l0": math.log(rp.mem_overhead_mib),
                                  "mem_lw": math.log(rp.weight_factor), "mem_la": math.log(rp.activation_factor),
                                  "sigma_mem": 0.1, "nu_mem_excess": 7.0}
        for name, _, k, param, _ in self.encoding.spec():
            if param != "fixed":
                values[f"sigma_{name}"] = 0.1
            if k:
                values[f"w_{name}"] = jnp.zeros(k)
        return init_to_value(values=values)

    def fit(self, data: "pd.DataFrame") -> "HierarchicalPredictor":
        from numpyro.infer import MCMC, NUTS

        _enable_compilation_cache()
        tg = targets_from_measurements(data, catalog_models_only=uses_catalog(self.featurizer))
        ff = with_legacy_builds(self._ff(tg.frame), tg.legacy_build)
        self.encoding = Encoding.from_training(ff)
        arrays = _data_arrays(ff, self.encoding)
        arrays.update(_designs(arrays, self.encoding))
        spec = self.encoding.spec()
        n = len(tg)
        n_pad = _bucket(n, 64)

        def pad(x: np.ndarray, fill: float = 0.0) -> jnp.ndarray:
            x = np.asarray(x)
            out = np.full((n_pad,) + x.shape[1:], fill, dtype=x.dtype)
            out[:n] = x
            return jnp.asarray(out)

        d = {k: pad(v, 1.0 if k in ("w_mib", "a_mib", "b_mib") else 0) for k, v in arrays.items()}
        mask = pad(np.ones(n, bool), False)
        has_mem = tg.has_memory
        mem = pad(np.where(has_mem, tg.log_memory, 0.0))
        mem_mask = pad(has_mem, False)
        s2 = pad(np.maximum(tg.var_log_latency, 1e-8), 1e-4)
        self.median_s2 = float(np.median(tg.var_log_latency))
        t0 = time.perf_counter()
        obs = dict(y=pad(tg.log_latency), s2=s2, r90=pad(tg.log_p90 - tg.log_latency), mask=mask, mem=mem,
                   mem_mask=mem_mask)
        kernel = NUTS(latency_model, target_accept_prob=self.target_accept, max_tree_depth=self.max_tree_depth,
                      dense_mass=self.dense_mass, init_strategy=self._init_strategy(tg.frame))
        chain_method = "parallel" if jax.local_device_count() >= self.num_chains else "sequential"
        mcmc = MCMC(kernel, num_warmup=self.num_warmup, num_samples=self.num_samples, num_chains=self.num_chains,
                    chain_method=chain_method, progress_bar=False)
        kwargs = dict(obs, extra_fields=("diverging", "num_steps"))
        # one run, warm-up included: a separate mcmc.warmup() would trace the sampler twice (~2 s)
        mcmc.run(jax.random.PRNGKey(self.seed), d, spec, **kwargs)
        samples = jax.device_get(mcmc.get_samples(group_by_chain=True))  # waits for the async run
        extra = mcmc.get_extra_fields(group_by_chain=True)
        diverging, steps = np.asarray(extra["diverging"]), np.asarray(extra["num_steps"])
        idata, rhats, esss = _diagnose(samples, diverging)
        extensions = 0
        # A chain that mixes but is short shows r_hat a little above the limit: continue sampling
        # from where the chains stopped (no new warm-up) and judge all draws together, up to
        # ``max_extensions`` times. Divergences are never "fixed" this way.
        while (_worst(rhats) > self.rhat_max and extensions < self.max_extensions and not diverging.any()):
            mcmc.post_warmup_state = mcmc.last_state
            mcmc.run(mcmc.post_warmup_state.rng_key, d, spec, **kwargs)
            more = jax.device_get(mcmc.get_samples(group_by_chain=True))
            samples = {k: np.concatenate([np.asarray(samples[k]), np.asarray(more[k])], axis=1) for k in samples}
            extra = mcmc.get_extra_fields(group_by_chain=True)
            diverging = np.concatenate([diverging, np.asarray(extra["diverging"])], axis=1)
            steps = np.concatenate([steps, np.asarray(extra["num_steps"])], axis=1)
            idata, rhats, esss = _diagnose(samples, diverging)
            extensions += 1
        elapsed = time.perf_counter() - t0
        divergences = int(diverging.sum())
        # an r_hat that cannot be computed (NaN: too few draws) counts as a failure, not a pass
        self.diagnostics = {"rhat_max": _worst(rhats),
                            "ess_bulk_min": float(np.min(np.where(np.isfinite(esss), esss, 0.0))),
                            "divergences": divergences, "num_chains": self.num_chains,
                            "num_warmup": self.num_warmup, "num_samples": int(diverging.shape[1]),
                            "extensions": extensions, "seconds": elapsed, "n_train": n,
                            "tree_steps_mean": float(steps.mean())}
        self.posterior = {k: np.asarray(v).reshape((-1,) + tuple(np.asarray(v).shape[2:]))
                          for k, v in samples.items()}
        self._idata = idata
        if self.idata_path:
            idata.to_netcdf(self.idata_path)
        self.n_train = n
        if not self.allow_bad_diagnostics:
            self.check_diagnostics()
        return self

    @property
    def diagnostics_ok(self) -> bool:
        d = self.diagnostics
        return bool(d) and d["rhat_max"] <= self.rhat_max and d["divergences"] == 0

    @property
    def _thin(self) -> bool:
        """Fewer effective draws than :data:`ESS_PER_CHAIN` per chain (or none recorded)."""
        d = self.diagnostics
        return not d.get("ess_bulk_min", 0.0) >= ESS_PER_CHAIN * d.get("num_chains", 1)

    def _diagnostics_numbers(self) -> str:
        """R-hat to 4 decimals: 1.0048 printed as "1" told the user nothing."""
        d = self.diagnostics
        ess = d.get("ess_bulk_min", float("nan"))
        low = f" (below {ESS_PER_CHAIN} per chain: the interval ends are noisy)" if self._thin else ""
        return (f"max R-hat {d.get('rhat_max', float('nan')):.4f} (limit {self.rhat_max}), "
                f"{d.get('divergences', '?')} divergent transitions, min bulk ESS {ess:.0f}{low}; "
                f"{d.get('num_chains', '?')} chains, {d.get('n_train', '?')} runs")

    def diagnostics_text(self) -> str:
        """One line: the verdict and the numbers it rests on."""
        return f"NUTS diagnostics {'passed' if self.diagnostics_ok else 'FAILED'}: {self._diagnostics_numbers()}"

    def diagnostics_caution(self) -> Optional[str]:
        """The caution an answer from this fit carries: None for a fit that passed with enough
        effective draws. A fit kept with ``allow_bad_diagnostics`` answered with no word of it."""
        d = self.diagnostics
        if not d:
            return None
        if self.diagnostics_ok and not self._thin:
            return None
        if not self.diagnostics_ok:
            return f"the hierarchical fit failed its NUTS diagnostics ({self._diagnostics_numbers()}): its intervals " \
                   "are not to be trusted"
        return f"the hierarchical fit has few effective draws ({self._diagnostics_numbers()})"

    def check_diagnostics(self) -> None:
        """Raise DiagnosticsError when max r_hat > ``rhat_max`` or any transition diverged."""
        if not self.diagnostics_ok:
            d = self.diagnostics
            remedies = ["keep the fit anyway for every command (`perfcast train --predictor hierarchical "
                        "--allow-bad-diagnostics`; --allow-bad-diagnostics on predict and evaluate too; Python: "
                        "allow_bad_diagnostics=True); its answers then carry a caution",
                        "sample longer (predictor options num_warmup/num_samples in an experiment config)"]
            if d.get("divergences"):  # longer sampling does not remove divergences; a smaller step can
                # seed-dependent on hard data: an Intel-only store diverged at seed 0 (target_accept 0.9
                # and 0.95) and passed at seed 1 with 0.9 (2026-12-07)
                remedies.insert(1, "start the chains elsewhere or take smaller steps (predictor options seed, "
                                   "target_accept: 0.95; Python: HierarchicalPredictor(seed=1, target_accept=0.95))")
            if d.get("n_train", 10**9) < MIN_RUNS_FOR_NUTS:
                remedies.insert(0, f"measure more configurations ({d.get('n_train')} runs are too few to pin the "
                                   "model's group effects down)")
            raise DiagnosticsError(f"{self.diagnostics_text()}. To go on: {'; or '.join(remedies)}")

    # -- predict ------------------------------------------------------------------------------------
    def _check(self) -> None:
        if not self.posterior or self.encoding is None:
            raise InvalidValueError("predictor state", "unfitted hierarchical", "call fit(measurements) first")

    def _draw(self, ff: FeatureFrame, n_draws: int, seed: int, latent: bool = False) -> dict[str, np.ndarray]:
        """Posterior predictive draws (S, m) of log latency, log p90 and log memory.

        ``latent=True`` leaves out the observation noise: draws of E[log y | θ] (the configuration's
        true typical value), for information-based acquisition (BALD).

        A configuration's draws do not depend on what else is asked with it: the posterior draws
        are picked from ``seed`` alone, an unseen level's effect from its own stream (seed, effect,
        level) and each configuration's noise from its own (seed, configuration) (audit H: the same
        H100 cell read 38.1, 37.4 or 36.4 ms as the request around it changed). That holds while
        ``n_draws`` does: :meth:`predict` takes fewer draws for requests of more than
        ``max_draws_cells`` / posterior draws configurations (20,000 of 1,000 draws)."""
        assert self.encoding is not None
        rng = np.random.default_rng(seed)
        P = self.posterior
        S_all = P["mu_c"].shape[0]
        sel = rng.choice(S_all, size=n_draws, replace=n_draws > S_all)
        p = {k: v[sel] for k, v in P.items()}
        d = _data_arrays(ff, self.encoding)
        m = len(ff)
        # new levels must be distinct from each other but shared within a level: recode unseen
        # levels per group to unique negative codes via the level strings
        def idx(group: str) -> tuple[np.ndarray, np.ndarray]:
            codes = d[f"idx_{group}"].astype(np.int64)
            unseen = codes < 0
            names = np.array([], dtype=str)
            if unseen.any():
                names, inv = np.unique(_levels(ff, group)[unseen], return_inverse=True)
                codes = codes.copy()
                codes[unseen] = -1 - inv
            return codes, names

        def lin(target: str) -> np.ndarray:
            out = np.zeros((n_draws, m))
            for name, spec in EFFECTS.items():
                if spec.target == target:
                    out += self._effect_draws(name, *idx(spec.group), p, seed)
            return out

        log_bh = p["mu_b"][:, None] + lin("b")
        log_eff_c = (p["mu_c"][:, None] + p["beta_w"][:, None] * d["lf"][None, :] + lin("c")
                     - np.logaddexp(0.0, log_bh - d["lb"][None, :]))
        log_eff_m = p["mu_m"][:, None] + lin("m")
        log_oh = p["mu_o"][:, None] + p["beta_o"][:, None] * d["lp"][None, :] + lin("o")
        a = d["log_tc"][None, :] - log_eff_c
        b = d["log_tm"][None, :] - log_eff_m
        roof = np.logaddexp(SMOOTH_K * a, SMOOTH_K * b) / SMOOTH_K
        log_t = np.logaddexp(log_oh, roof)
        r_loc = p["mu_r"][:, None] + lin("r")
        c0 = np.exp(p["mem_l0"][:, None] + lin("m0"))
        cw = np.exp(p["mem_lw"][:, None] + lin("mw"))
        mem_loc = np.log(c0 + np.maximum(cw * d["b_mib"][None, :],
                                          cw * d["w_mib"][None, :] + np.exp(p["mem_la"])[:, None] * d["a_mib"][None, :]))
        if latent:
            return {"latency_ms": log_t, "latency_p90_ms": log_t + np.maximum(r_loc, 0.0), "memory_mib": mem_loc}
        t_lat, z_r, t_mem = _row_noise(ff, seed, p["nu"], p["nu_mem"])
        scale = np.sqrt(p["sigma"] ** 2 + self.median_s2)[:, None]
        y = log_t + scale * t_lat
        r = np.maximum(r_loc + p["tau_r"][:, None] * z_r, 0.0)
        mem = mem_loc + p["sigma_mem"][:, None] * t_mem
        return {"latency_ms": y, "latency_p90_ms": y + r, "memory_mib": mem}

    def _effect_draws(self, name: str, codes: np.ndarray, unseen: np.ndarray, p: dict[str, np.ndarray],
                      seed: int) -> np.ndarray:
        """(S, m) effect of ``name`` per draw; an unseen level (negative code -1-i, ``unseen[i]`` its
        name) draws N(0, σ) from its own stream, shared by every configuration of that level."""
        assert self.encoding is not None
        spec = EFFECTS[name]
        S = p["mu_c"].shape[0]
        sigma = np.full(S, spec.scale) if spec.param == "fixed" else p[f"sigma_{name}"]
        out = np.zeros((S, codes.shape[0]))
        seen = codes >= 0
        basis = self.encoding.bases[name]
        if basis.shape[1] and seen.any():
            per_level = p[f"w_{name}"] @ basis.T
            out[:, seen] = per_level[:, codes[seen]]
        new = ~seen
        if new.any():  # one (S, levels) block, then each row takes its level's column
            z = np.column_stack([_stream(seed, "effect", name, str(level)).standard_normal(S) for level in unseen])
            out[:, new] = sigma[:, None] * z[:, -1 - codes[new]]
        return out

    def n_draws_for(self, m: int) -> int:
        total = self.posterior["mu_c"].shape[0] if self.posterior else 1000
        return int(max(100, min(total, self.max_draws_cells // max(m, 1))))

    def predict(self, configs: Sequence[Config]) -> PredictionSet:
        """Posterior predictive draws; for very many configs the number of draws is capped so
        that draws × configs ≤ ``max_draws_cells`` (at least 100 draws), in float32."""
        self._check()
        configs = list(configs)
        ff = self._ff(configs)
        S = self.n_draws_for(len(configs))
        out: dict[str, list[np.ndarray]] = {"latency_ms": [], "latency_p90_ms": [], "memory_mib": []}
        chunk = max(1, 2_000_000 // S)
        for i in range(0, len(configs), chunk):
            sub = _slice_ff(ff, slice(i, i + chunk))
            dr = self._draw(sub, S, self.seed + 1)
            for k in out:
                out[k].append(_exp_bounded(dr[k]).astype(np.float32))
        cat = {k: np.concatenate(v, axis=1) if v else np.zeros((S, 0), np.float32) for k, v in out.items()}
        return draws_set(configs, self.name, ff.phys["batch"], cat["latency_ms"], p90=cat["latency_p90_ms"],
                         memory=cat["memory_mib"], memory_floor=memory_floor_mib(ff.phys).astype(np.float32))

    def sample_latent(self, configs: Sequence[Config], n: int, metric: str = "latency_ms", seed: int = 0) -> np.ndarray:
        """(n, len(configs)) JOINT draws of E[y | θ] (no observation noise), natural units."""
        self._check()
        configs = list(configs)
        ff = self._ff(configs)
        src = "latency_ms" if metric in ("throughput", "latency") else metric
        draws = _exp_bounded(self._draw(ff, n, seed, latent=True)[src])
        if metric == "throughput":
            return 1000.0 * ff.phys["batch"][None, :] / draws
        return draws

    def noise_var_log(self, metric: str = "latency_ms") -> float:
        """Variance of one run's log value around E[log y | θ] (posterior mean)."""
        self._check()
        p = self.posterior
        if metric in ("memory_mib", "memory"):
            return _noise_var(p["sigma_mem"] ** 2, p["nu_mem"])
        return _noise_var(p["sigma"] ** 2 + self.median_s2, p["nu"])

    def floor_sd(self, configs: Sequence[Config], metric: str = "latency_ms") -> np.ndarray:
        """The log-scale spread each configuration's prediction would keep with the parameters known
        exactly: one run's noise around E[log y | θ] (:meth:`noise_var_log`; this model has no
        per-configuration term, so its noise holds each configuration's own departure too). No
        benchmark narrows an interval below it; a loop's ``stop.max_reducible`` compares with it."""
        src = "memory_mib" if metric in ("memory_mib", "memory") else "latency_ms"
        return np.full(len(list(configs)), math.sqrt(self.noise_var_log(src)))

    def sample(self, configs: Sequence[Config], n: int, metric: str = "latency_ms", seed: int = 0) -> np.ndarray:
        """(n, len(configs)) JOINT posterior predictive draws (shared parameters per draw)."""
        self._check()
        configs = list(configs)
        ff = self._ff(configs)
        src = "latency_ms" if metric == "throughput" else metric
        if src not in ("latency_ms", "latency_p90_ms", "memory_mib"):
            raise InvalidValueError("metric", metric, "latency_ms, latency_p90_ms, throughput, memory_mib")
        draws = _exp_bounded(self._draw(ff, n, seed)[src])
        if metric == "throughput":
            return 1000.0 * ff.phys["batch"][None, :] / draws
        if src == "memory_mib":  # never below what must be resident, as predict() and the GP's sample() (audit H)
            return np.maximum(draws, memory_floor_mib(ff.phys)[None, :])
        return draws


#: Two-sided tail mass cut from the Student-t noise of a predictive draw (see :func:`_bounded_t`).
NOISE_TAIL = 1e-3


def _stream(seed: int, *parts: str) -> np.random.Generator:
    """A random stream of its own for ``parts`` (a configuration, an unseen level), under ``seed``."""
    import hashlib

    h = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return np.random.default_rng([int(seed), int.from_bytes(h, "little")])


def _bounded_t(g: np.random.Generator, nu: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """Student-t draws (one per ν), redrawn where beyond ``bound`` (its 1 − NOISE_TAIL/2 quantile).

    Why: a log-Student-t has no mean at all, so without a bound the mean a prediction reported was
    set by the largest of a few hundred draws: memory means of 10⁹ MiB beside medians of 858 (the
    memory noise's ν sat near 1; audit H). Cutting the 0.1% beyond the bounds moves no quantile
    a user sees by more than 0.001 of probability."""
    t = g.standard_t(nu)
    bad = np.abs(t) > bound
    while bad.any():
        t[bad] = g.standard_t(nu[bad])
        bad = np.abs(t) > bound
    return t


def _row_noise(ff: FeatureFrame, seed: int, nu: np.ndarray, nu_mem: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S, m) noise of log latency (bounded t), of the p90 ratio (normal) and of log memory (bounded
    t), each configuration's from its own stream, so that its draws do not depend on the request."""
    from scipy.stats import t as student_t

    S, m = len(nu), len(ff)
    both = np.concatenate([nu, nu_mem])  # one t call per configuration for both noises
    bound = student_t.ppf(1.0 - NOISE_TAIL / 2, both)
    c, ph = ff.cats, ff.phys
    out = np.empty((3, S, m))
    for j in range(m):
        key = "|".join([str(c["model"][j]), str(c["hardware"][j]), str(c["precision"][j]), str(c["runtime"][j]),
                        str(c["mode"][j]), f"{ph['batch'][j]:g}", f"{ph['seq_len'][j]:g}",
                        f"{ph['threads_used'][j]:g}"])
        g = _stream(seed, "noise", key)
        t = _bounded_t(g, both, bound)
        out[0, :, j], out[2, :, j] = t[:S], t[S:]
        out[1, :, j] = g.standard_normal(S)
    return out[0], out[1], out[2]


#: Bound of a predictive draw in log units (e^±27.6 = 10^±12 ms or MiB: far beyond anything physical).
LOG_DRAW_BOUND = 27.6


def _exp_bounded(log_draws: np.ndarray) -> np.ndarray:
    """exp of predictive log draws, clipped at ±:data:`LOG_DRAW_BOUND`.

    A Student-t noise draw with a small posterior ν can put a log latency at 10²; exp of that
    overflows float32 (e⁸⁸) and turns the predictive mean into inf. Clipping touches only draws
    beyond 10¹² ms (or MiB), so every quantile a user can ask for is unchanged."""
    return np.exp(np.clip(log_draws, -LOG_DRAW_BOUND, LOG_DRAW_BOUND))


def _real(x: Any) -> bool:
    import numbers

    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(float(x))


def _worst(rhats: np.ndarray) -> float:
    return float(np.max(np.where(np.isfinite(rhats), rhats, np.inf)))


def _arviz() -> Any:
    """ArviZ, imported without its once-a-day banner about its 1.x refactor (a multi-line
    FutureWarning in the middle of ``perfcast evaluate``'s output; perfcast pins ``arviz<1``)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing", category=FutureWarning)
        import arviz as az
    return az


def _diagnose(samples: dict[str, Any], diverging: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
    """ArviZ InferenceData (posterior + divergences) and every parameter's r_hat and bulk ESS."""
    import warnings

    az = _arviz()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_dict(posterior={k: np.asarray(v) for k, v in samples.items()},
                             sample_stats={"diverging": diverging})
        rhat = az.rhat(idata)
        ess = az.ess(idata)
    rhats = np.concatenate([np.atleast_1d(rhat[v].values).ravel() for v in rhat.data_vars])
    esss = np.concatenate([np.atleast_1d(ess[v].values).ravel() for v in ess.data_vars])
    return idata, rhats, esss


def _noise_var(scale2: np.ndarray, nu: np.ndarray) -> float:
    """Posterior mean of the variance of the normal whose 90% interval is the Student-t noise's
    (scale², ν): what the loop's floor width (Gaussian quantiles of ``floor_sd``) and BALD's
    ½·log(1 + Var/σ²) take it for. The t's own variance, scale²·ν/(ν − 2), is ×21 at ν = 2.1 and
    made the floor wider than the model's whole 90% intervals (audit H: 1.36 against 0.82-0.88),
    so the reducible share read 0 and the stop rule fired at once."""
    from scipy.stats import t as student_t

    z = student_t.ppf(0.95, np.asarray(nu, dtype=float)) / 1.6448536269514722
    return float(np.mean(np.asarray(scale2, dtype=float) * z**2))


def _slice_ff(ff: FeatureFrame, sl: slice) -> FeatureFrame:
    return FeatureFrame(X=ff.X[sl], names=ff.names, phys={k: v[sl] for k, v in ff.phys.items()},
                        cats={k: v[sl] for k, v in ff.cats.items()})
