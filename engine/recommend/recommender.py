"""Which hardware is best for a model? P(best) from JOINT posterior draws, not from point estimates.

For a workload (model, batch, sequence length, precision, mode) on each candidate device, the
fitted predictor draws S joint posterior samples of the chosen metric across all devices at once
(``predictor.sample``: correlated draws, so two devices whose predictions share the same
uncertain efficiency are compared fairly). In every draw one device wins among those whose memory
draw fits their capacity; P(best) is the share of draws it wins, so it is also the chance that the
workload fits there (a draw in which it fits nowhere has no winner, and the P(best)s sum to less
than 1). The same draws give the cost per million items (the catalog's hourly price / throughput)
and P(cheapest). P(fits) itself is ``predict``'s: the memory posterior's probability of staying
within the device's memory. With ``gpu_count > 1`` (training) each draw is multiplied by a draw of
the data-parallel scaling efficiency (:mod:`engine.recommend.scaling`, a prior).

The explanation is the roofline's: the workload's arithmetic intensity (FLOPs per byte moved,
from :mod:`engine.descriptors`) against the device's ridge point (the FLOP/s the pass runs at, as
the models price it, ÷ bandwidth) says whether the device would be compute- or memory-bound, and the
store says how many measurements of this model on that device the posterior rests on.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence, Union

import numpy as np

from engine.config import RUNTIMES, Config, as_count, count_arg, split_names
from engine.errors import InvalidValueError, NotAvailableError
from engine.optimize.result import ninety_only
from engine.recommend.scaling import ScalingPrior

if TYPE_CHECKING:
    import os

    from engine.store import Store

METRICS: dict[str, str] = {"throughput": "throughput", "latency": "latency_ms", "latency_ms": "latency_ms",
                           "latency_p90_ms": "latency_p90_ms", "p90": "latency_p90_ms", "memory": "memory_mib",
                           "memory_mib": "memory_mib", "cost": "cost_per_1m_usd", "cost_per_1m_usd": "cost_per_1m_usd"}
UNITS = {"throughput": "items/s", "latency_ms": "ms", "latency_p90_ms": "ms", "memory_mib": "MiB",
         "cost_per_1m_usd": "USD/1M items"}
MULTI_DEVICE_KINDS: tuple[str, ...] = ("cuda", "rocm")
#: The most joint posterior draws one recommendation takes: P(best) is then within ±0.0011 (one
#: standard error), far below the two decimals shown, and every device's draws are held at once
#: (about 100 bytes per draw and device: 0.6 GB for the 30 devices at this cap). --samples 1e8 took
#: 12 GB and 80 s for two devices, and all 30 would have been killed for memory.
MAX_SAMPLES = 200_000


@dataclass(frozen=True)
class Quantiles:
    median: float
    q05: float
    q95: float

    @classmethod
    def of(cls, draws: np.ndarray) -> "Quantiles":
        q05, med, q95 = np.quantile(draws, [0.05, 0.5, 0.95])
        return cls(float(med), float(q05), float(q95))

    def interval(self, level: float = 0.9) -> tuple[float, float]:
        """The 90% credible interval, called as on a prediction (``p.latency_ms.interval(0.9)``);
        only that level is kept."""
        return ninety_only(level, self.q05, self.q95)


@dataclass(frozen=True)
class HardwareOption:
    """One candidate device: its posterior for the metric and its chance of being the best."""

    hardware: str
    name: str
    kind: str
    config: Config
    prob_best: float
    metric: Quantiles  # of the chosen metric (scaled to gpu_count devices where that applies)
    throughput: Quantiles
    cost_per_1m_usd: Optional[Quantiles] = None
    prob_cheapest: Optional[float] = None
    price_per_hour_usd: Optional[float] = None
    bound: str = ""  # compute | memory (roofline)
    arithmetic_intensity: Optional[float] = None
    ridge_point: Optional[float] = None
    n_measurements: int = 0  # of this model on this device
    n_device_measurements: int = 0  # of any model on this device
    scaling_efficiency: Optional[Quantiles] = None
    requested: str = ""  # the name asked for (a platform such as `cuda`, or the id itself)
    prob_fits: Optional[float] = None  # P(memory <= the device's capacity); None when it lists none

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # recurses: the config becomes a plain mapping too


@dataclass
class HardwareRecommendation:
    """``recommended`` (the device with the highest P(best); None when the workload fits in memory
    on none of them, in no draw), ``prob_best`` per device, ``fallbacks`` (the others by P(best),
    then by median), a cost-aware ranking and a one-sentence explanation."""

    model: str
    metric: str
    mode: str
    gpu_count: int
    recommended: Optional[str]
    options: list[HardwareOption]
    explanation: str
    cost_ranking: list[HardwareOption] = field(default_factory=list)
    n_samples: int = 0
    predictor: str = ""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # predict's cautions for the options (see answer_cautions)

    @property
    def prob_best(self) -> dict[str, float]:
        return {o.hardware: o.prob_best for o in self.options}

    @property
    def fallbacks(self) -> list[HardwareOption]:
        return self.options[1:]

    @property
    def best(self) -> HardwareOption:
        return self.options[0]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "metric": self.metric, "mode": self.mode, "gpu_count": self.gpu_count,
                "recommended": self.recommended, "prob_best": self.prob_best, "explanation": self.explanation,
                "options": [o.to_dict() for o in self.options],
                "fallbacks": [o.hardware for o in self.fallbacks],
                "cost_ranking": [{"hardware": o.hardware, "prob_cheapest": o.prob_cheapest,
                                  "cost_per_1m_usd": asdict(o.cost_per_1m_usd) if o.cost_per_1m_usd else None,
                                  "price_per_hour_usd": o.price_per_hour_usd} for o in self.cost_ranking],
                "n_samples": self.n_samples, "predictor": self.predictor, "notes": self.notes,
                "warnings": self.warnings}


def default_hardware(store: Optional["Store"] = None, detect: bool = True) -> list[str]:
    """Every known device with the figures the roofline needs (peaks and bandwidth)."""
    from engine.catalog import all_hardware

    out = []
    for hid, e in all_hardware(store, detect=detect).items():
        if e.memory_bandwidth_gbs and any(v for v in e.peak_tflops.values()):
            out.append(hid)
    return out


def local_hardware() -> list[str]:
    """Ids of the devices detected on this machine (``--detect-hardware``)."""
    from hardware.detect import detect_local

    return [e.id for e in detect_local()]


class HardwareRecommender:
    """Rank hardware for a workload by posterior probability of being the best.

    >>> rec = HardwareRecommender(PerformancePredictor(), available_hardware=["cpu", "t4", "a100-80gb"])
    >>> r = rec.recommend_hardware(model_name="bert-base-uncased", batch_size=8, optimization_metric="throughput")
    >>> r.recommended, r.prob_best, r.explanation

    ``predictor``: a :class:`engine.predict.PerformancePredictor`, a fitted predictor with
    ``sample`` (``engine.models``), a predictor name (``gp``, ``hierarchical``, ``roofline``) or
    None (the store's GP). ``available_hardware``: ids or platform names (``cuda`` -> the device
    that answers for it); default: every known device. ``db``: the store, as the rest of the Python
    API takes it: a path, an :class:`engine.Store`, or None (a PerformancePredictor's own store, else
    ``PERFCAST_DB`` or the default one; with a fitted predictor and no ``db``, none). ``store=`` is
    its name before session 33, still accepted (not both at once).
    """

    def __init__(self, predictor: Any = None, available_hardware: Optional[Sequence[str]] = None,
                 db: Union[None, str, "os.PathLike[str]", "Store"] = None, scaling: Optional[ScalingPrior] = None,
                 *, store: Union[None, str, "os.PathLike[str]", "Store"] = None) -> None:
        if db is not None and store is not None:
            raise InvalidValueError("store", str(getattr(store, "path", store)), "nothing when db= is given (store= "
                                    "is db='s old name): pass the store once, as db=")
        arg, db = ("store", store) if db is None and store is not None else ("db", db)
        if db is not None:
            from engine.store import api_store

            # a path as well as a Store: store="lab.duckdb" was kept as the string and failed at the first
            # answer ('str' object has no attribute 'hardware_rows')
            db = api_store(db, arg)
        if predictor is None or isinstance(predictor, str):
            from engine.predict import PerformancePredictor

            # a name, as PerformancePredictor and optimize_deployment take it: predictor="gp" was kept
            # as the predictor itself and failed at the first answer ('str' object has no attribute 'sample')
            predictor = PerformancePredictor(db) if predictor is None else PerformancePredictor(db, predictor)
        elif not (hasattr(predictor, "fitted") or hasattr(predictor, "sample")):
            raise InvalidValueError("predictor", predictor, "a PerformancePredictor, a fitted predictor (engine.models), "
                                    "a predictor name (gp, hierarchical, roofline) or None")
        self._facade = predictor if hasattr(predictor, "fitted") else None
        self._predictor = None if self._facade is not None else predictor
        self.store = db if db is not None else (getattr(self._facade, "store", None) if self._facade else None)
        available_hardware = split_names(available_hardware)  # "cpu,t4", not the letters c, p, u, ...
        if available_hardware is not None and not isinstance(available_hardware, Iterable):
            # available_hardware=5 was a TypeError ('int' object is not iterable)
            raise InvalidValueError("available hardware", available_hardware, "hardware ids or platform names: "
                                    "a list or one comma-separated string")
        if available_hardware is not None and not list(available_hardware):
            raise InvalidValueError("available hardware", [], "at least one hardware id or platform name")
        self.available_hardware = list(available_hardware) if available_hardware is not None else None
        self.scaling = scaling or ScalingPrior()

    @property
    def predictor(self) -> Any:
        if self._predictor is None:
            self._predictor = self._facade.fitted()
        return self._predictor

    # -- building blocks ------------------------------------------------------------------------
    def _resolve(self, runtime: Optional[str] = None) -> tuple[list[Any], list[str]]:
        """The devices, once each, and a note for each pair of names that meant the same device
        with different runtimes (none when ``runtime`` fixes one for all)."""
        from engine.predict import resolve

        names = self.available_hardware if self.available_hardware is not None else default_hardware(self.store)
        seen: dict[str, Any] = {}
        merged: list[str] = []
        for n in names:
            hw = resolve(str(n), self.store)
            first = seen.setdefault(hw.id, hw)
            if first is not hw and runtime is None and (first.runtime or "torch") != (hw.runtime or "torch"):
                merged.append(f"{first.requested} and {hw.requested} are the same device ({hw.id}), ranked once "
                              f"with runtime {first.runtime or 'torch'}; to compare runtimes on it, "
                              "use compare-hardware or optimize with several runtimes")
        return list(seen.values()), merged

    def _counts(self, model: str) -> tuple[dict[str, int], dict[str, int]]:
        if self.store is None:
            return {}, {}
        try:
            from engine.models.targets import left_out_busy

            df = self.store.measurements()
            # the runs the fits use: busy runs are left out of them, so they vouch for nothing (audit:
            # 'runs 4' for a CPU whose 4 runs were all busy)
            used = df[~left_out_busy(df)] if len(df) else df
            rows = ([(m, hw, int(n)) for (m, hw), n in used.groupby(["model", "hardware"]).size().items()]
                    if len(used) else [])
        except Exception:  # noqa: BLE001 - counts are commentary, never a reason to fail
            return {}, {}
        per_model = {hw: int(n) for m, hw, n in rows if m == model}
        per_hw: dict[str, int] = {}
        for _, hw, n in rows:
            per_hw[hw] = per_hw.get(hw, 0) + int(n)
        return per_model, per_hw

    @staticmethod
    def _runnable(hws: list[Any], runtime: Optional[str], precision: str, mode: str, notes: list[str]) -> list[Any]:
        """The devices on which an adapter runs the workload. ``--runtime openvino`` once ranked an
        H100 first: a posterior for a configuration nobody can benchmark or deploy through perfcast.
        The dropped devices are named in ``notes``; none left is an error naming the workload."""
        from engine.optimize.spec import runtime_runs_on
        from hardware.registry import adapter_refuses, refusal_reason

        def runs(h: Any) -> bool:
            rt = runtime or h.runtime or "torch"
            return runtime_runs_on(h.kind, rt) and not adapter_refuses(h.kind, rt, precision, mode)

        def why(h: Any) -> str:
            rt = runtime or h.runtime or "torch"
            return refusal_reason(h.kind, rt, precision, mode) or f"{rt} does not run on {h.kind}"

        keep = [h for h in hws if runs(h)]
        dropped = [h.id for h in hws if not runs(h)]
        what = f"{runtime + ' ' if runtime else ''}{precision} {mode}"
        if not keep:
            # with the adapters' reasons: `--available openvino --mode training` implies the openvino
            # runtime, and the error named neither it nor why (openvino measures inference only)
            reasons = "; ".join(dict.fromkeys(why(h) for h in hws))
            raise NotAvailableError(f"{what} runs on none of {_some(dropped)} ({reasons}); choose another runtime, "
                                    "precision or mode, or other hardware")
        if dropped:
            notes.append(f"dropped ({what} does not run there): {_some(dropped)}")
        return keep

    # -- the answer -----------------------------------------------------------------------------
    def recommend_hardware(self, model_name: str, batch_size: int = 1, optimization_metric: str = "throughput",
                           precision: str = "fp32", seq_len: int = 128, mode: str = "inference",
                           runtime: Optional[str] = None, gpu_count: int = 1, n_samples: int = 2000,
                           seed: int = 0, prices: Optional[dict[str, float]] = None) -> HardwareRecommendation:
        """``prices``: hourly USD by hardware id or platform name, overriding the catalog's (the local
        CPU has none), for the cost ranking and the cost metric."""
        from engine.catalog import get_model, resolve_hardware
        from engine.workloads import effective_seq_len

        metric = METRICS.get(str(optimization_metric).strip().lower())
        if metric is None:
            raise InvalidValueError("optimization metric", optimization_metric, ", ".join(sorted(set(METRICS))))
        if runtime is not None and runtime not in RUNTIMES:
            raise InvalidValueError("runtime", runtime, ", ".join(RUNTIMES))
        self.scaling.doublings(gpu_count)  # validates
        samples_valid = f"an integer from 100 to {MAX_SAMPLES:,}"
        # n_samples="500" was a TypeError on '<=', seed=-1 NumPy's "expected non-negative integer"
        n_samples = count_arg("number of posterior samples", n_samples, 100, samples_valid)
        if n_samples > MAX_SAMPLES:
            raise InvalidValueError("number of posterior samples", n_samples, samples_valid)
        seed = count_arg("seed", seed, 0, "an integer >= 0")
        entry = get_model(model_name)
        hws, notes = self._resolve(runtime)
        if gpu_count > 1:
            if mode != "training":
                raise InvalidValueError("gpu count", gpu_count, "1 unless --mode training (data-parallel training)")
            multi = [h for h in hws if h.kind in MULTI_DEVICE_KINDS]
            dropped = [h.id for h in hws if h.kind not in MULTI_DEVICE_KINDS]
            if not multi:
                raise NotAvailableError(f"--gpu-count {gpu_count} needs GPUs (kinds {', '.join(MULTI_DEVICE_KINDS)}); "
                                        f"none among: {', '.join(h.id for h in hws)}")
            if dropped:
                notes.append(f"dropped for --gpu-count {gpu_count} (not multi-GPU devices): {', '.join(dropped)}")
            hws = multi
            notes.append("scaling efficiency: " + self.scaling.source)
        hws = self._runnable(hws, runtime, precision, mode, notes)
        # Config judges the batch size, as predict does: int() made 2.5 a 2 and "8" an 8 silently
        configs = [Config(entry.name, h.id, as_count(batch_size), effective_seq_len(entry, seq_len), precision, mode,
                          runtime or h.runtime or "torch", 0) for h in hws]
        from engine.optimize.spec import hourly_price, resolve_prices

        entries = [resolve_hardware(h.id, self.store) for h in hws]
        user = resolve_prices(prices, self.store)
        hourly = np.array([hourly_price(h.id, self.store, user) or np.nan for h in hws], dtype=float)
        rng = np.random.default_rng(seed)

        pred = self.predictor
        thr = np.asarray(pred.sample(configs, n_samples, metric="throughput", seed=seed), dtype=float)
        eff = np.ones_like(thr)
        if gpu_count > 1:
            eff = self.scaling.sample_efficiency(gpu_count, thr.shape, rng)
            thr = thr * gpu_count * eff
        if metric == "throughput":
            values = thr
        elif metric == "cost_per_1m_usd":
            if not np.any(np.isfinite(hourly)):
                raise InvalidValueError("metric", "cost", "a metric other than cost, or hourly prices: none of the "
                                        "devices has one in configs/hardware.yaml (--price-per-hour hw=USD)")
            values = None
        elif metric in ("latency_ms", "latency_p90_ms"):
            lat = 1000.0 * batch_size / (thr / (gpu_count * eff)) if metric == "latency_ms" else \
                np.asarray(pred.sample(configs, n_samples, metric=metric, seed=seed), dtype=float)
            values = lat / eff  # a data-parallel step takes longer by the lost efficiency
        else:
            values = np.asarray(pred.sample(configs, n_samples, metric=metric, seed=seed), dtype=float)

        # a device wins a draw only where the workload fits it (each GPU of a data-parallel run
        # holds the whole model): audit P, a 25 GiB fp32 llama-7b was recommended on a 24 GiB A10G
        cap = np.array([h.memory_capacity_mib or np.nan for h in hws], dtype=float)
        prob_fits = np.full(len(hws), np.nan)
        fits = np.ones_like(thr, dtype=bool)
        if np.isfinite(cap).any():
            mem = np.asarray(pred.sample(configs, n_samples, metric="memory_mib", seed=seed + 1), dtype=float)
            fits = ~(mem > cap[None, :])  # an unknown capacity never rules a draw out
            # predict's own figure where the predictor has the closed form, else the draws' share
            closed = (pred.predict(configs).cdf("memory_mib", np.nan_to_num(cap, nan=0.0)) if hasattr(pred, "predict")
                      else fits.mean(axis=0))
            prob_fits = np.where(np.isfinite(cap), closed, np.nan)
            unlikely = [h.id for h, pf in zip(hws, prob_fits) if np.isfinite(pf) and pf < 0.05]
            if unlikely:
                notes.append(f"unlikely to fit in memory (P(fits) < 0.05): {_some(unlikely)}")
        cost = hourly[None, :] * gpu_count * 1e6 / 3600.0 / thr  # nan where no price
        priced = np.isfinite(hourly)
        prob_cheapest = np.full(len(hws), np.nan)
        if priced.any():
            c = np.where(priced[None, :] & fits, cost, np.inf)
            prob_cheapest = _share_of_wins(c, larger_better=False)
            prob_cheapest[~priced] = np.nan
        if metric == "cost_per_1m_usd":
            if not priced.all():
                notes.append("no hourly price (left out of the cost ranking): "
                             + ", ".join(h.id for h, p in zip(hws, priced) if not p))
            keep = [i for i in range(len(hws)) if priced[i]]
            hws, configs, entries = [hws[i] for i in keep], [configs[i] for i in keep], [entries[i] for i in keep]
            thr, cost, hourly, eff = thr[:, keep], cost[:, keep], hourly[keep], eff[:, keep]
            prob_cheapest, priced = prob_cheapest[keep], priced[keep]
            prob_fits, fits = prob_fits[keep], fits[:, keep]
            values = cost
        larger_better = metric == "throughput"
        prob_best = _share_of_wins(np.where(fits, values, -np.inf if larger_better else np.inf), larger_better)

        per_model, per_hw = self._counts(entry.name)
        options = []
        for i, (h, cfg, e) in enumerate(zip(hws, configs, entries)):
            ai, ridge, bound = _roofline_bound(cfg, e)
            options.append(HardwareOption(
                hardware=h.id, name=h.name, kind=h.kind, config=cfg, prob_best=float(prob_best[i]),
                metric=Quantiles.of(values[:, i]), throughput=Quantiles.of(thr[:, i]),
                cost_per_1m_usd=Quantiles.of(cost[:, i]) if priced[i] else None,
                prob_cheapest=None if not np.isfinite(prob_cheapest[i]) else float(prob_cheapest[i]),
                price_per_hour_usd=float(hourly[i]) if priced[i] else None, bound=bound, arithmetic_intensity=ai,
                ridge_point=ridge, n_measurements=per_model.get(h.id, 0), n_device_measurements=per_hw.get(h.id, 0),
                scaling_efficiency=Quantiles.of(eff[:, i]) if gpu_count > 1 else None, requested=h.requested,
                prob_fits=float(prob_fits[i]) if np.isfinite(prob_fits[i]) else None))
        sign = -1.0 if larger_better else 1.0
        options.sort(key=lambda o: (-o.prob_best, sign * o.metric.median))
        cost_ranking = sorted([o for o in options if o.cost_per_1m_usd is not None],
                              key=lambda o: (-(o.prob_cheapest or 0.0), o.cost_per_1m_usd.median))
        # no winner where no draw had one (the workload fits nowhere): the first option was still
        # "recommended" (JSON and the CLI's line) while the explanation said it fits on none
        fits_nowhere = options[0].prob_best == 0.0 and any(o.prob_fits is not None for o in options)
        rec = HardwareRecommendation(entry.name, metric, mode, gpu_count,
                                     None if fits_nowhere else options[0].hardware, options, "",
                                     cost_ranking, n_samples, getattr(pred, "name", ""), notes)
        rec.explanation = explain(rec)
        rec.warnings = self._warnings(list(zip(configs, hws)))
        return rec

    def _warnings(self, pairs: list[tuple[Config, Any]]) -> list[str]:
        """``predict``'s cautions for the ranked options: kinds and devices without runs (when the
        recommender wraps a PerformancePredictor, which knows the store), a configuration no
        adapter measures, a precision the device lists no peak for (bf16 on a T4)."""
        from engine.predict import answer_cautions, config_cautions

        if self._facade is not None:
            return answer_cautions(self._facade, pairs, "options",
                                   ", and so can their P(best); one real run on each is the fix")
        return list(dict.fromkeys(w for cfg, hw in pairs for w in config_cautions(cfg, hw, self.store)))


def _share_of_wins(values: np.ndarray, larger_better: bool) -> np.ndarray:
    """Per column of (draws, devices) ``values``, the share of draws it wins; a draw in which every
    device is ruled out (-inf or inf: it fits nowhere) has no winner."""
    worst = -np.inf if larger_better else np.inf
    live = ~np.all(values == worst, axis=1)
    winners = (np.argmax if larger_better else np.argmin)(values[live], axis=1)
    return np.bincount(winners, minlength=values.shape[1]) / values.shape[0]


def _some(ids: Sequence[str], k: int = 6) -> str:
    """``a, b, c`` — or the first ``k`` and how many more, so a 29-device list stays one line."""
    ids = list(ids)
    return ", ".join(ids) if len(ids) <= k else f"{', '.join(ids[:k])} and {len(ids) - k} more"


def _roofline_bound(cfg: Config, entry: Any) -> tuple[Optional[float], Optional[float], str]:
    """(arithmetic intensity, ridge point, 'compute' | 'memory') of a workload on a device.

    The ridge point is the one the models use (:mod:`engine.models.features`): the peak that the
    pass's FLOPs really run at — an int8 pass's non-matmul FLOPs and OpenVINO's int8 matmuls at the
    fp32 peak, a CPU's peak scaled to the threads used — divided by the bandwidth of ``entry``, the
    device as the recommender resolved it. The nominal peak at the precision alone would call an
    int8 pass compute-bound against a ridge point it never reaches."""
    try:
        from engine.models.features import Featurizer

        phys = Featurizer(resolve_hardware=lambda _id: entry)([cfg]).phys
        flops, nbytes, t_compute_ms = (float(phys[k][0]) for k in ("flops", "bytes", "t_compute_ms"))
        ai = flops / nbytes
        ridge = flops / (t_compute_ms / 1e3) / float(phys["bandwidth"][0])
    except Exception:  # noqa: BLE001 - no descriptor or no spec figures: no roofline sentence
        return None, None, ""
    return ai, ridge, "compute" if ai >= ridge else "memory"


def _fmt(x: float) -> str:
    return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def explain(rec: HardwareRecommendation) -> str:
    """One sentence: who wins, how surely, why (roofline), and on what data."""
    b = rec.best
    unit = UNITS[rec.metric]
    sized = [o for o in rec.options if o.prob_fits is not None]
    if b.prob_best == 0.0 and sized:  # no draw had a winner: it fits nowhere
        top = max(sized, key=lambda o: o.prob_fits or 0.0)
        return (f"{rec.model} fits in memory on none of these devices in any posterior draw (the largest P(fits) "
                f"is {top.prob_fits:.2f}, on {top.hardware}); try a lower precision, a smaller batch or a device "
                "with more memory.")

    def tie(o: Any) -> bool:  # about as likely best, and medians within 5%: no real winner between them
        return (o.prob_best >= 0.8 * b.prob_best
                and abs(math.log(max(o.metric.median, 1e-300) / max(b.metric.median, 1e-300))) < 0.05)

    tied = [o for o in rec.options[1:] if tie(o)]
    if tied:  # audit O: four GPUs with one memory posterior, "won" by whichever came first in --available
        hw = [b.hardware, *(o.hardware for o in tied)]
        names = ", ".join(hw[:-1]) + f" and {hw[-1]}"
        ps = ", ".join(f"{o.prob_best:.2f}" for o in [b, *tied])
        head = (f"{names} are practically tied for {rec.metric} (P(best) {ps}; medians within 5% "
                f"of {_fmt(b.metric.median)} {unit}, 90% interval {_fmt(b.metric.q05)}–{_fmt(b.metric.q95)})")
    else:
        head = (f"{b.hardware} is the best choice for {rec.metric} with probability {b.prob_best:.2f} "
                f"({_fmt(b.metric.median)} {unit}, 90% interval {_fmt(b.metric.q05)}–{_fmt(b.metric.q95)})")
    why = ""
    if rec.metric == "cost_per_1m_usd" and b.price_per_hour_usd:
        if tied:  # each its own price (audit P: one price was given for three devices)
            head += " at " + ", ".join(f"${o.price_per_hour_usd:g}/h ({o.hardware})"
                                       for o in [b, *tied] if o.price_per_hour_usd)
        else:
            head += f" at ${b.price_per_hour_usd:g}/h per device"
    if b.prob_fits is not None and b.prob_fits < 0.95:
        head += f", if it fits in memory (P(fits) {b.prob_fits:.2f})"
    # the roofline's compute/memory-bound reason is about speed: memory use is not decided by it
    if rec.metric != "memory_mib" and b.bound and b.arithmetic_intensity is not None and b.ridge_point is not None:
        cmp = "above" if b.bound == "compute" else "below"
        what = "peak FLOP/s" if b.bound == "compute" else "memory bandwidth"
        ai, ridge = _fmt(b.arithmetic_intensity), _fmt(b.ridge_point)
        if ai == ridge:  # "58.3, below its ridge point of 58.3" (audit P): the digits that differ
            ai, ridge = f"{b.arithmetic_intensity:,.6g}", f"{b.ridge_point:,.6g}"
        why = (f" because {rec.model} does {ai} FLOP/byte, {cmp} its ridge point of "
               f"{ridge}, so it is {b.bound}-bound and {what} decides")
    if b.n_measurements:
        data = f", supported by {b.n_measurements} measurements of {rec.model} on it"
    elif b.n_device_measurements:
        data = (f"; no measurement of {rec.model} on it yet, so this rests on {b.n_device_measurements} "
                "measurements of other models there and the roofline")
    else:
        data = "; no measurement on this device yet, so this rests on its spec sheet (roofline) and other devices"
    if len(rec.options) > 1 and not tied:
        nxt = rec.options[1]
        data += f" (runner-up {nxt.hardware}, P={nxt.prob_best:.2f})"
    return head + why + data + "."
