"""Hierarchical Bayesian roofline (NumPyro, NUTS): efficiencies partially pooled across groups.

The likelihood *is* the roofline, with its unknowns given priors::

    log eff_c = μ_c + Σ_g σ_g·z_g[level]  (g: hardware, kind, family, precision, runtime, model,
                                            precision×runtime, hardware×precision) + β_w·(log FLOPs − m)
    log eff_m = μ_m + σ_m,hw·z[hw] + σ_m,rt·z[rt]
    log oh    = μ_o + σ_o,rt·z[rt] + σ_o,kind·z[kind] + β_o·(log params − m)
    log t     = log(oh + smoothmax(F/(eff_c·peak), B/(eff_m·bw)))
    log y     ~ StudentT(ν, log t, sqrt(σ² + s_i²))        s_i²: sampling variance of run i
    log(p90/median) ~ Normal(μ_r + σ_r·z[rt], τ)
    log mem   ~ StudentT(ν_m, log(c_0 + c_w·weights + c_a·activations), σ_mem), c_0 pooled over
              runtime and kind, c_w pooled over precision×runtime

Group effects are non-centred (z ~ N(0, 1), scaled by σ_g): with few levels per group the centred
form gives NUTS a funnel. Each group's effects are taken relative to the average of its observed
levels (σ_g·(z − z̄)), so the intercepts are pinned by the data rather than traded against every
group's mean — that confounding was what kept r_hat above 1.01. A group whose data hold a single level gets no z for it (its effect is
not identifiable from μ and is absorbed there), but its σ_g stays in the model with its prior, so a
*new* level — a device or family never measured — draws its effect from the population,
z ~ N(0, 1)·σ_g: wide, honest intervals that shrink once it is measured.

Predictions are posterior predictive draws (``PredictionSet.samples``). Diagnostics (max r_hat,
min bulk ESS, divergences) are computed with ArviZ on an ``InferenceData`` of all draws (saved as
netcdf); when r_hat is just above the limit and nothing diverged, sampling continues from the
chains' last state (``max_extensions`` times, no new warm-up) before judging; a fit with r_hat > 1.01 or any divergence raises
:class:`engine.errors.DiagnosticsError` unless ``allow_bad_diagnostics=True``.

Speed: chains run in parallel on the host's cores (``numpyro.set_host_device_count`` runs at the
top of this module, before JAX initialises — keep this module lazily imported); data and level
counts are padded to size buckets so that refits hit JAX's persistent compilation cache under
``cache_dir()/jax`` instead of recompiling.
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
from typing import TYPE_CHECKING, Any, Optional, Sequence  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro.distributions as dist  # noqa: E402

from engine.config import Config  # noqa: E402
from engine.errors import DiagnosticsError, InvalidValueError  # noqa: E402
from engine.models.assemble import draws_set  # noqa: E402
from engine.models.base import PredictionSet  # noqa: E402
from engine.models.features import FeatureFrame, Featurizer, default_featurizer  # noqa: E402
from engine.models.roofline import TRAINING_WEIGHT_FACTOR  # noqa: E402
from engine.models.targets import targets_from_measurements  # noqa: E402

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


#: Efficiency groups: name -> how a level is formed from the categorical columns.
EFF_GROUPS: tuple[str, ...] = ("hardware", "kind", "family", "precision", "runtime", "model",
                               "precision_runtime", "hardware_precision")
#: Prior scale (half-normal) of each group's spread on log efficiency.
EFF_PRIOR: dict[str, float] = {"hardware": 0.5, "kind": 0.7, "family": 0.4, "precision": 0.5, "runtime": 0.4,
                               "model": 0.3, "precision_runtime": 0.3, "hardware_precision": 0.3}
SMOOTH_K = 4.0  # sharpness of the smooth max between compute and memory time


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


@dataclass
class Encoding:
    """Level vocabularies learned at fit; unseen levels map to -1 (drawn from the population)."""

    vocab: dict[str, list[str]] = field(default_factory=dict)
    centers: dict[str, float] = field(default_factory=dict)

    active: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def from_training(cls, ff: FeatureFrame) -> "Encoding":
        groups = set(EFF_GROUPS) | {"runtime", "kind", "hardware"}
        vocab = {g: sorted(set(_levels(ff, g).tolist())) for g in groups}
        centers = {"log_flops": float(np.mean(np.log(ff.phys["flops"]))),
                   "log_params": float(np.mean(np.log(ff.phys["params"])))}
        # A group gets fitted effects only if the data tell its levels apart from everything
        # else: >= 2 levels, and its partition of the runs is not identical to that of a group
        # earlier in EFF_GROUPS (e.g. hardware×precision on a single device = precision).
        active: dict[str, bool] = {}
        partitions: list[tuple[int, ...]] = []
        for g in ("hardware", "kind", "family", "precision", "runtime", "model", "precision_runtime",
                  "hardware_precision"):
            _, inv = np.unique(_levels(ff, g), return_inverse=True)
            canon = tuple(np.unique(inv, return_index=True)[1][inv].tolist())  # relabel by first occurrence
            active[g] = len(vocab[g]) >= 2 and canon not in partitions
            if active[g]:
                partitions.append(canon)
        return cls(vocab, centers, active)

    def codes(self, ff: FeatureFrame, group: str) -> np.ndarray:
        voc = {v: i for i, v in enumerate(self.vocab[group])}
        vals = _levels(ff, group)
        uniq, inv = np.unique(vals, return_inverse=True)
        table = np.array([voc.get(u, -1) for u in uniq], dtype=np.int32)
        return table[inv]

    def n_levels(self, group: str, efficiency: bool = True) -> int:
        """Observed levels; for an efficiency group that is inactive (see above), 0."""
        if efficiency and group in self.active and not self.active[group]:
            return 0
        return len(self.vocab[group])


def _data_arrays(ff: FeatureFrame, enc: Encoding) -> dict[str, np.ndarray]:
    train = (ff.cats["mode"] == "training").astype(float)
    return {
        "log_tc": np.log(ff.phys["t_compute_ms"]), "log_tm": np.log(ff.phys["t_memory_ms"]),
        "lf": np.log(ff.phys["flops"]) - enc.centers["log_flops"],
        "lp": np.log(ff.phys["params"]) - enc.centers["log_params"],
        "w_mib": ff.phys["weight_bytes"] * (1.0 + (TRAINING_WEIGHT_FACTOR - 1.0) * train) / 2**20,
        "a_mib": ff.phys["activation_bytes"] / 2**20,
        **{f"idx_{g}": enc.codes(ff, g) for g in set(EFF_GROUPS) | {"runtime", "kind", "hardware"}},
    }


def _effect(name: str, sigma: Any, n_levels: int, n_pad: int, idx: Any) -> Any:
    """Non-centred group effect σ·z[idx]; a group with < 2 observed levels contributes 0."""
    if n_levels < 2:
        return 0.0
    z = numpyro.sample(f"z_{name}", dist.Normal(0.0, 1.0).expand([n_pad]))
    # effects relative to the observed levels' average: the intercept (μ) is then identified by
    # the data instead of trading off against every group's mean, which is what slowed mixing
    zc = z - jnp.mean(z[:n_levels])
    return sigma * zc[jnp.clip(idx, 0, n_pad - 1)]


def latency_model(d: dict[str, Any], nl: dict[str, int], npad: dict[str, int], y: Any = None, s2: Any = None,
                  r90: Any = None, mask: Any = None, mem: Any = None, mem_mask: Any = None) -> None:
    """The hierarchical roofline (see module docstring); ``nl`` observed level counts per group."""
    mu_c = numpyro.sample("mu_c", dist.Normal(math.log(0.3), 1.0))
    # memory-bandwidth efficiency is well known (streaming reaches 50-80% of the spec sheet); a
    # vague prior here lets chains trade eff_m against eff_c near the ridge point and split modes
    mu_m = numpyro.sample("mu_m", dist.Normal(math.log(0.6), 0.3))
    mu_o = numpyro.sample("mu_o", dist.Normal(math.log(0.1), 2.0))
    beta_w = numpyro.sample("beta_w", dist.Normal(0.0, 0.3))
    beta_o = numpyro.sample("beta_o", dist.Normal(0.0, 0.5))
    log_eff_c = mu_c + beta_w * d["lf"]
    for g in EFF_GROUPS:
        sg = numpyro.sample(f"sigma_{g}", dist.HalfNormal(EFF_PRIOR[g]))
        log_eff_c = log_eff_c + _effect(g, sg, nl[g], npad[g], d[f"idx_{g}"])
    s_mhw = numpyro.sample("sigma_m_hardware", dist.HalfNormal(0.3))
    s_mrt = numpyro.sample("sigma_m_runtime", dist.HalfNormal(0.2))
    log_eff_m = (mu_m + _effect("m_hardware", s_mhw, nl["raw_hardware"], npad["hardware"], d["idx_hardware"])
                 + _effect("m_runtime", s_mrt, nl["raw_runtime"], npad["runtime"], d["idx_runtime"]))
    s_ort = numpyro.sample("sigma_o_runtime", dist.HalfNormal(1.0))
    s_okind = numpyro.sample("sigma_o_kind", dist.HalfNormal(1.0))
    log_oh = (mu_o + beta_o * d["lp"] + _effect("o_runtime", s_ort, nl["raw_runtime"], npad["runtime"], d["idx_runtime"])
              + _effect("o_kind", s_okind, nl["raw_kind"], npad["kind"], d["idx_kind"]))
    a = d["log_tc"] - log_eff_c
    b = d["log_tm"] - log_eff_m
    roof = jnp.logaddexp(SMOOTH_K * a, SMOOTH_K * b) / SMOOTH_K
    log_t = jnp.logaddexp(log_oh, roof)
    sigma = numpyro.sample("sigma", dist.HalfNormal(0.3))
    nu = numpyro.sample("nu", dist.Gamma(2.0, 0.1))
    mu_r = numpyro.sample("mu_r", dist.Normal(0.05, 0.2))
    s_r = numpyro.sample("sigma_r_runtime", dist.HalfNormal(0.1))
    tau_r = numpyro.sample("tau_r", dist.HalfNormal(0.1))
    r_loc = mu_r + _effect("r_runtime", s_r, nl["raw_runtime"], npad["runtime"], d["idx_runtime"])
    # memory: overhead + weights (+ optimizer state in training) + activations, pooled
    l0 = numpyro.sample("mem_l0", dist.Normal(math.log(300.0), 1.5))
    lw = numpyro.sample("mem_lw", dist.Normal(0.0, 0.5))
    la = numpyro.sample("mem_la", dist.Normal(0.0, 1.0))
    s0rt = numpyro.sample("sigma_mem0_runtime", dist.HalfNormal(0.5))
    s0k = numpyro.sample("sigma_mem0_kind", dist.HalfNormal(0.7))
    swpr = numpyro.sample("sigma_memw_precision_runtime", dist.HalfNormal(0.3))
    c0 = jnp.exp(l0 + _effect("mem0_runtime", s0rt, nl["raw_runtime"], npad["runtime"], d["idx_runtime"])
                 + _effect("mem0_kind", s0k, nl["raw_kind"], npad["kind"], d["idx_kind"]))
    # (one precision×runtime effect: a runtime main effect on top would be confounded with it)
    cw = jnp.exp(lw + _effect("memw_precision_runtime", swpr, nl["raw_precision_runtime"], npad["precision_runtime"],
                              d["idx_precision_runtime"]))
    mem_loc = jnp.log(c0 + cw * d["w_mib"] + jnp.exp(la) * d["a_mib"])
    sigma_mem = numpyro.sample("sigma_mem", dist.HalfNormal(0.3))
    nu_mem = numpyro.sample("nu_mem", dist.Gamma(2.0, 0.1))
    if y is not None:
        with numpyro.handlers.mask(mask=mask):
            numpyro.sample("y", dist.StudentT(nu, log_t, jnp.sqrt(sigma**2 + s2)), obs=y)
            numpyro.sample("r90", dist.Normal(r_loc, tau_r), obs=r90)
        with numpyro.handlers.mask(mask=mem_mask):
            numpyro.sample("mem", dist.StudentT(nu_mem, mem_loc, sigma_mem), obs=mem)


class HierarchicalPredictor:
    """NUTS fit of :func:`latency_model`; predictions are posterior predictive draws."""

    name = "hierarchical"
    CACHE_VERSION = 1

    def __init__(self, featurizer: Optional[Featurizer] = None, num_warmup: int = 800, num_samples: int = 500,
                 num_chains: int = 2, target_accept: float = 0.9, max_tree_depth: int = 7,
                 allow_bad_diagnostics: bool = False, rhat_max: float = 1.01, seed: int = 0,
                 max_draws_cells: int = 20_000_000, idata_path: Optional[str] = None, dense_mass: bool = False,
                 max_extensions: int = 2) -> None:
        self.featurizer = featurizer
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.num_chains = num_chains
        self.target_accept = target_accept
        self.max_tree_depth = max_tree_depth
        self.allow_bad_diagnostics = allow_bad_diagnostics
        self.rhat_max = rhat_max
        self.seed = seed
        self.max_draws_cells = max_draws_cells
        self.idata_path = idata_path
        # diagonal mass by default: a dense one (tried) diverged more often on the shipped data
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
            import arviz as az

            self._idata = az.from_netcdf(self.idata_path)
        return self._idata

    def _ff(self, configs: Sequence[Config] | "pd.DataFrame") -> FeatureFrame:
        return (self.featurizer or default_featurizer())(configs)

    # -- fit ----------------------------------------------------------------------------------------
    def _shapes(self) -> tuple[dict[str, int], dict[str, int]]:
        assert self.encoding is not None
        nl = {g: self.encoding.n_levels(g) for g in self.encoding.vocab}
        nl.update({f"raw_{g}": self.encoding.n_levels(g, efficiency=False) for g in self.encoding.vocab})
        npad = {g: _bucket(len(self.encoding.vocab[g])) for g in self.encoding.vocab}
        return nl, npad

    def _init_strategy(self, frame: "pd.DataFrame", nl: dict[str, int], npad: dict[str, int]) -> Any:
        """Start every chain at the calibrated roofline with all group effects at zero.

        Random initialisation puts some chains at absurd efficiencies where the smooth max is flat,
        and warm-up then spends most of its budget walking back; the roofline's global least-squares
        calibration is a cheap, data-driven starting point (the posterior is still explored by NUTS
        from there, with jitter from the step-size adaptation)."""
        from numpyro.infer import init_to_value

        from engine.models.roofline import RooflinePredictor

        rp = RooflinePredictor(featurizer=self.featurizer).fit(frame).params
        values: dict[str, Any] = {"mu_c": math.log(rp.eff_compute), "mu_m": math.log(rp.eff_memory),
                                  "mu_o": math.log(rp.overhead_ms), "beta_w": 0.0, "beta_o": 0.0,
                                  "sigma": 0.1, "nu": 10.0, "mu_r": math.log(max(rp.p90_ratio, 1.0 + 1e-3)),
                                  "tau_r": 0.05, "mem_l0": math.log(rp.mem_overhead_mib),
                                  "mem_lw": math.log(rp.weight_factor), "mem_la": math.log(rp.activation_factor),
                                  "sigma_mem": 0.1, "nu_mem": 10.0}
        for site in ("sigma_m_hardware", "sigma_m_runtime", "sigma_o_runtime", "sigma_o_kind", "sigma_r_runtime",
                     "sigma_mem0_runtime", "sigma_mem0_kind", "sigma_memw_precision_runtime",
                     *(f"sigma_{g}" for g in EFF_GROUPS)):
            values[site] = 0.1
        zeros = {**{g: g for g in EFF_GROUPS}, "m_hardware": "hardware", "m_runtime": "runtime",
                 "o_runtime": "runtime", "o_kind": "kind", "r_runtime": "runtime", "mem0_runtime": "runtime",
                 "mem0_kind": "kind", "memw_precision_runtime": "precision_runtime"}
        for name, group in zeros.items():
            values[f"z_{name}"] = jnp.zeros(npad[group])
        return init_to_value(values=values)

    def fit(self, data: "pd.DataFrame") -> "HierarchicalPredictor":
        from numpyro.infer import MCMC, NUTS

        _enable_compilation_cache()
        tg = targets_from_measurements(data)
        ff = self._ff(tg.frame)
        self.encoding = Encoding.from_training(ff)
        nl, npad = self._shapes()
        arrays = _data_arrays(ff, self.encoding)
        n = len(tg)
        n_pad = _bucket(n, 64)

        def pad(x: np.ndarray, fill: float = 0.0) -> jnp.ndarray:
            out = np.full(n_pad, fill, dtype=np.asarray(x).dtype)
            out[:n] = x
            return jnp.asarray(out)

        d = {k: pad(v, 1.0 if k in ("w_mib", "a_mib") else 0) for k, v in arrays.items()}
        mask = pad(np.ones(n, bool), False)
        has_mem = tg.has_memory
        mem = pad(np.where(has_mem, tg.log_memory, 0.0))
        mem_mask = pad(has_mem, False)
        s2 = pad(np.maximum(tg.var_log_latency, 1e-8), 1e-4)
        self.median_s2 = float(np.median(tg.var_log_latency))
        kernel = NUTS(latency_model, target_accept_prob=self.target_accept, max_tree_depth=self.max_tree_depth,
                      dense_mass=self.dense_mass,
                      init_strategy=self._init_strategy(tg.frame, nl, npad))
        chain_method = "parallel" if jax.local_device_count() >= self.num_chains else "sequential"
        mcmc = MCMC(kernel, num_warmup=self.num_warmup, num_samples=self.num_samples, num_chains=self.num_chains,
                    chain_method=chain_method, progress_bar=False)
        t0 = time.perf_counter()
        kwargs = dict(y=pad(tg.log_latency), s2=s2, r90=pad(tg.log_p90 - tg.log_latency), mask=mask, mem=mem,
                      mem_mask=mem_mask, extra_fields=("diverging",))
        mcmc.run(jax.random.PRNGKey(self.seed), d, nl, npad, **kwargs)
        samples = jax.device_get(mcmc.get_samples(group_by_chain=True))  # waits for the async run
        diverging = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"])
        idata, rhats, esss = _diagnose(samples, diverging)
        extensions = 0
        # A chain that mixes but is short shows r_hat a little above the limit: continue sampling
        # from where the chains stopped (no new warm-up) and judge all draws together, up to
        # ``max_extensions`` times. Divergences are never "fixed" this way.
        while (_worst(rhats) > self.rhat_max and extensions < self.max_extensions and not diverging.any()):
            mcmc.post_warmup_state = mcmc.last_state
            mcmc.run(mcmc.post_warmup_state.rng_key, d, nl, npad, **kwargs)
            more = jax.device_get(mcmc.get_samples(group_by_chain=True))
            samples = {k: np.concatenate([np.asarray(samples[k]), np.asarray(more[k])], axis=1) for k in samples}
            diverging = np.concatenate(
                [diverging, np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"])], axis=1)
            idata, rhats, esss = _diagnose(samples, diverging)
            extensions += 1
        elapsed = time.perf_counter() - t0
        divergences = int(diverging.sum())
        # an r_hat that cannot be computed (NaN: too few draws) counts as a failure, not a pass
        self.diagnostics = {"rhat_max": _worst(rhats),
                            "ess_bulk_min": float(np.min(np.where(np.isfinite(esss), esss, 0.0))),
                            "divergences": divergences, "num_chains": self.num_chains,
                            "num_warmup": self.num_warmup, "num_samples": int(diverging.shape[1]),
                            "extensions": extensions, "seconds": elapsed, "n_train": n}
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

    def check_diagnostics(self) -> None:
        """Raise DiagnosticsError when max r_hat > ``rhat_max`` or any transition diverged."""
        if not self.diagnostics_ok:
            d = self.diagnostics
            raise DiagnosticsError(
                f"NUTS diagnostics failed: max r_hat {d.get('rhat_max', float('nan')):.3f} (limit {self.rhat_max}), "
                f"{d.get('divergences', '?')} divergent transitions; run longer (num_warmup/num_samples) or "
                "allow bad diagnostics (allow_bad_diagnostics=True) to use the fit anyway")

    # -- predict ------------------------------------------------------------------------------------
    def _check(self) -> None:
        if not self.posterior or self.encoding is None:
            raise InvalidValueError("predictor state", "unfitted hierarchical", "call fit(measurements) first")

    def _draw(self, ff: FeatureFrame, n_draws: int, seed: int, latent: bool = False) -> dict[str, np.ndarray]:
        """Posterior predictive draws (S, m) of log latency, log p90 and log memory.

        ``latent=True`` leaves out the observation noise: draws of E[log y | θ] (the configuration's
        true typical value), for information-based acquisition (BALD)."""
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
        def idx(group: str) -> np.ndarray:
            codes = d[f"idx_{group}"].astype(np.int64)
            unseen = codes < 0
            if unseen.any():
                _, inv = np.unique(_levels(ff, group)[unseen], return_inverse=True)
                codes = codes.copy()
                codes[unseen] = -1 - inv
            return codes

        log_eff_c = p["mu_c"][:, None] + p["beta_w"][:, None] * d["lf"][None, :]
        for g in EFF_GROUPS:
            log_eff_c = log_eff_c + self._effect_draws(g, g, idx(g), p[f"sigma_{g}"], p, rng)
        log_eff_m = (p["mu_m"][:, None]
                     + self._effect_draws("m_hardware", "hardware", idx("hardware"), p["sigma_m_hardware"], p, rng)
                     + self._effect_draws("m_runtime", "runtime", idx("runtime"), p["sigma_m_runtime"], p, rng))
        log_oh = (p["mu_o"][:, None] + p["beta_o"][:, None] * d["lp"][None, :]
                  + self._effect_draws("o_runtime", "runtime", idx("runtime"), p["sigma_o_runtime"], p, rng)
                  + self._effect_draws("o_kind", "kind", idx("kind"), p["sigma_o_kind"], p, rng))
        a = d["log_tc"][None, :] - log_eff_c
        b = d["log_tm"][None, :] - log_eff_m
        roof = np.logaddexp(SMOOTH_K * a, SMOOTH_K * b) / SMOOTH_K
        log_t = np.logaddexp(log_oh, roof)
        S = log_t.shape[0]
        scale = np.sqrt(p["sigma"] ** 2 + self.median_s2)[:, None]
        y = log_t if latent else log_t + scale * rng.standard_t(p["nu"][:, None], size=(S, m))
        r_loc = p["mu_r"][:, None] + self._effect_draws("r_runtime", "runtime", idx("runtime"),
                                                         p["sigma_r_runtime"], p, rng)
        r = np.maximum(r_loc + (0.0 if latent else p["tau_r"][:, None] * rng.standard_normal((S, m))), 0.0)
        c0 = np.exp(p["mem_l0"][:, None]
                    + self._effect_draws("mem0_runtime", "runtime", idx("runtime"), p["sigma_mem0_runtime"], p, rng)
                    + self._effect_draws("mem0_kind", "kind", idx("kind"), p["sigma_mem0_kind"], p, rng))
        cw = np.exp(p["mem_lw"][:, None]
                    + self._effect_draws("memw_precision_runtime", "precision_runtime", idx("precision_runtime"),
                                         p["sigma_memw_precision_runtime"], p, rng))
        mem_loc = np.log(c0 + cw * d["w_mib"][None, :] + np.exp(p["mem_la"])[:, None] * d["a_mib"][None, :])
        mem = mem_loc if latent else mem_loc + p["sigma_mem"][:, None] * rng.standard_t(p["nu_mem"][:, None], size=(S, m))
        return {"latency_ms": y, "latency_p90_ms": y + r, "memory_mib": mem}

    def _effect_draws(self, name: str, group: str, codes: np.ndarray, sigma: np.ndarray, p: dict[str, np.ndarray],
                       rng: np.random.Generator) -> np.ndarray:
        """σ·z[level] per draw; unseen levels (negative codes) draw z from N(0, 1), one per level."""
        assert self.encoding is not None
        S = sigma.shape[0]
        out = np.zeros((S, codes.shape[0]))
        seen = codes >= 0
        nl = self.encoding.n_levels(group, efficiency=(name == group))
        key = f"z_{name}"
        zbar = p[key][:, :nl].mean(axis=1, keepdims=True) if (nl >= 2 and key in p) else np.zeros((S, 1))
        if nl >= 2 and key in p and seen.any():
            out[:, seen] = sigma[:, None] * (p[key][:, codes[seen]] - zbar)
        new = ~seen
        if new.any():
            levels, inv = np.unique(codes[new], return_inverse=True)
            zn = rng.standard_normal((S, len(levels)))
            out[:, new] = sigma[:, None] * (zn[:, inv] - zbar)
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
                out[k].append(np.exp(dr[k]).astype(np.float32))
        cat = {k: np.concatenate(v, axis=1) if v else np.zeros((S, 0), np.float32) for k, v in out.items()}
        return draws_set(configs, self.name, ff.phys["batch"], cat["latency_ms"], p90=cat["latency_p90_ms"],
                         memory=cat["memory_mib"])

    def sample_latent(self, configs: Sequence[Config], n: int, metric: str = "latency_ms", seed: int = 0) -> np.ndarray:
        """(n, len(configs)) JOINT draws of E[y | θ] (no observation noise), natural units."""
        self._check()
        configs = list(configs)
        ff = self._ff(configs)
        src = "latency_ms" if metric in ("throughput", "latency") else metric
        draws = np.exp(self._draw(ff, n, seed, latent=True)[src])
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

    def sample(self, configs: Sequence[Config], n: int, metric: str = "latency_ms", seed: int = 0) -> np.ndarray:
        """(n, len(configs)) JOINT posterior predictive draws (shared parameters per draw)."""
        self._check()
        configs = list(configs)
        ff = self._ff(configs)
        src = "latency_ms" if metric == "throughput" else metric
        if src not in ("latency_ms", "latency_p90_ms", "memory_mib"):
            raise InvalidValueError("metric", metric, "latency_ms, latency_p90_ms, throughput, memory_mib")
        draws = np.exp(self._draw(ff, n, seed)[src])
        if metric == "throughput":
            return 1000.0 * ff.phys["batch"][None, :] / draws
        return draws


def _worst(rhats: np.ndarray) -> float:
    return float(np.max(np.where(np.isfinite(rhats), rhats, np.inf)))


def _diagnose(samples: dict[str, Any], diverging: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
    """ArviZ InferenceData (posterior + divergences) and every parameter's r_hat and bulk ESS."""
    import warnings

    import arviz as az

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
    """Posterior-mean variance of a Student-t noise term (scale², ν; ν ≤ 2.1 capped)."""
    nu = np.maximum(nu, 2.1)
    return float(np.mean(scale2 * nu / (nu - 2.0)))


def _slice_ff(ff: FeatureFrame, sl: slice) -> FeatureFrame:
    return FeatureFrame(X=ff.X[sl], names=ff.names, phys={k: v[sl] for k, v in ff.phys.items()},
                        cats={k: v[sl] for k, v in ff.cats.items()})
