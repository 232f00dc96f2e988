"""The old system's active-learning API, on the Bayesian acquisition of :mod:`engine.acquisition`.

>>> als = ActiveLearningSystem()                       # default store, GP, cost-aware EIG
>>> als.recommend_configurations(budget=5)             # list of dicts, most informative first
>>> als.integrate_with_hardware_recommender(HardwareRecommender(), test_budget=10, optimize_for="throughput")

Every field of the old integrated-recommendation JSON is filled with a real quantity:

``expected_information_gain``
    nats: mutual information between the item's new measurement and the latent performance
    surface there, given the configurations already picked before it in the batch,
    ½·log(1 + Var[f | data, earlier picks] / σ²_noise).
``uncertainty``
    relative width of the 90% predictive interval of the optimisation metric, (q95 − q05)/median.
``diversity``
    1 − the largest |posterior correlation| between the item's latent value and any other item
    of the batch (1 = nothing else in the batch tells about it, 0 = a duplicate).
``recommended_hardware``, ``hardware_score``, ``hardware_match``, ``alternatives``
    from a hardware recommender's posterior (``engine.recommend.HardwareRecommender``): the device
    with the highest P(best) for the item's workload and metric, P(the item's own hardware is the
    best), whether the two agree, and the other devices with their P(best). Without a
    recommender the devices compared are the hardware of the search space.
``combined_score``
    information per benchmark-second: expected_information_gain / predicted_cost_s (nats/s), shown
    whatever the acquisition's cost exponent (by default 0: the picks weigh information alone,
    :data:`SUGGEST_COST_EXPONENT`).
``picked_by``
    ``eig`` (or the acquisition asked for), or ``new-device start (random)``: with eig, a device
    the store has fewer than 5 configurations of gets its first picks at random, as a loop's
    initial design does (``new_device_start``; see ``ActiveLearningSystem._new_device_start``).

Top level: ``total_candidates`` (search-space size), ``enhanced_candidates`` (the pool after the
exclusion rules, each candidate enhanced with its posterior, predicted cost and P(fits memory)),
``final_recommendations``, ``optimization_metric``, ``strategy``, ``timestamp``; also
``new_device_start`` (how many items are a new device's random start), ``notes`` and ``reruns``.
"""
from __future__ import annotations

import numbers
import shlex
import time
from datetime import datetime, timezone
from typing import Any, Optional, Sequence, Union

from engine.config import Config, count_arg
from engine.errors import InvalidValueError, NotAvailableError

DEFAULT_SPACE = "cpu-full"
METRICS = ("throughput", "latency", "memory")
MIN_RUNS = 3
#: below this many measured configurations a device is new to the store: the replay config's
#: initial design (5 configurations, 8 runs in batches of 4) is what made eig no worse than random there
NEW_DEVICE_CONFIGS = 5


def _per_cost(sel: Any) -> str:
    """How the strategy string names the cost: per benchmark-second (α = 1), per second**α, or not."""
    if not sel.cost_aware:
        return ""
    a = sel.cost_exponent
    if a == 0.0:
        return " per benchmark (cost^0: the cost shown, not weighed)"
    return " per benchmark-second" if a is None or a == 1.0 else f" per benchmark-second^{a:g}"


def _device_history(n: int, busy: int) -> str:
    """What the store holds of a device that gets a random start, in the strategy line's words:
    "new to the store" only when it holds nothing the fits could use nor any busy run (a device
    whose runs were all timed on a busy machine was called new to the store)."""
    if n == 0 and busy == 0:
        return "new to the store"
    if n == 0:
        return f"its {busy} run{'s' if busy != 1 else ''} all timed on a busy machine, none fitted on"
    more = f", {busy} busy run{'s' if busy != 1 else ''} left out" if busy else ""
    return f"only {n} configuration{'s' if n != 1 else ''} fitted on{more}"


def _device_has(hw: str, n: int, busy: int) -> str:
    """The start of a note on a device's random start: what of it the fits use, and the busy runs they leave out."""
    if n == 0 and busy:
        return (f"{hw} has {busy} run{'s' if busy != 1 else ''} in the store, all timed on a busy machine, so none "
                "is fitted on")
    more = f" ({busy} more run(s), timed on a busy machine, are left out of the fits)" if busy else ""
    return f"{hw} has {n} measured configuration(s){more}"


def _strategy(acquisition: str, sel: Any, start: Sequence[Any], predictor: Any,
              history: Optional[dict[str, str]] = None) -> str:
    """The payload's one-line strategy: the acquisition, its cost, and a new-device start if any
    (``history``: :func:`_device_history` of each device)."""
    parts = []
    if start:
        devices = list(dict.fromkeys(it.config.hardware for it in start))
        words = [(history or {}).get(hw, "new to the store") for hw in devices]
        picks = f"{len(start)} pick{'s' if len(start) != 1 else ''}"
        if len(set(words)) == 1:
            parts.append(f"random start on {', '.join(devices)}: {picks}, {words[0]}")
        else:
            each = "; ".join(f"{hw}: {w}" for hw, w in zip(devices, words))
            parts.append(f"random start on {', '.join(devices)}: {picks} ({each})")
    if sel is not None:
        parts.append(f"{'then ' if start else ''}{acquisition}{_per_cost(sel)}")
    parts.append(f"predictor {getattr(predictor, 'name', '?')}")
    if sel is not None and acquisition in ("eig", "bald"):  # the joint acquisitions; the baselines pick one by one
        parts.append("batch chosen jointly")
    return " · ".join(parts)


def _metric(name: str) -> str:
    m = str(name).strip().lower()
    aliases = {"latency_ms": "latency", "memory_mib": "memory"}
    m = aliases.get(m, m)
    if m not in METRICS:
        raise InvalidValueError("optimization metric", name, ", ".join(METRICS))
    return m


#: Information / cost**this in a suggestion, which has no budget to cool the exponent against (a loop
#: cools it from 0.25 to 0). Replayed with a fixed exponent over 100 benchmarks (36 seeds, session 21):
#: 1 (information per benchmark-second, the default before) never reached random's error at 60 runs,
#: +0.73 points above random over 20-60 (s.e. 0.28); 0.25: ratio 0.93, seconds_ratio 1.10, -0.39
#: (0.27); 0: 1.30 and 1.34, -0.94 (0.29), fewer benchmarks AND fewer benchmark-seconds than either.
SUGGEST_COST_EXPONENT = 0.0


class ActiveLearningSystem:
    """Choose the benchmarks that teach the model most, per benchmark or per benchmark-second**α
    (``cost_exponent``; see the module docstring).

    ``db``: a path or :class:`engine.store.Store` (default: the embedded store). ``predictor``:
    ``gp`` | ``hierarchical`` or a fitted predictor object. ``space``: an experiment config name or
    path (its search space is used), or a list of configurations; default ``cpu-full``.
    """

    def __init__(self, db: Any = None, predictor: Union[str, Any] = "gp", space: Union[None, str, Sequence[Config]] = None,
                 acquisition: str = "eig", cost_aware: bool = True, mc_points: int = 128, seed: int = 0,
                 memory_limit_mib: Optional[float] = None, cost_exponent: float = SUGGEST_COST_EXPONENT,
                 new_device_start: bool = True) -> None:
        from engine.acquisition.select import check_acquisition, check_cost_exponent
        from engine.errors import UnknownNameError
        from engine.models.registry import PREDICTORS

        self.acquisition = check_acquisition(acquisition)
        # information / cost**this: 1 is information per benchmark-second; a loop cools it as its
        # budget is spent, but a suggestion has no budget to cool (SUGGEST_COST_EXPONENT)
        self.cost_exponent = check_cost_exponent(cost_exponent)
        self._db = db
        self._store: Any = None
        if isinstance(predictor, str) and predictor not in PREDICTORS:  # was refused only at the first pick
            raise UnknownNameError("predictor", predictor, PREDICTORS.keys())
        self._predictor_spec = predictor
        self._predictor: Any = None if isinstance(predictor, str) else predictor
        self._space_spec = space
        if isinstance(space, str):  # a mistyped config name or a bad YAML, said here, not at the first pick
            from experiments.config import load_config

            load_config(space)
        self.cost_aware = cost_aware
        self.mc_points = count_arg("mc_points", mc_points, 1, "an integer >= 1 (64-256 is enough)")
        self.seed = count_arg("seed", seed, 0, "an integer >= 0")  # -1 was a NumPy ValueError at the first pick
        if memory_limit_mib is not None and not (isinstance(memory_limit_mib, numbers.Real)
                                                 and not isinstance(memory_limit_mib, bool) and memory_limit_mib > 0):
            raise InvalidValueError("memory_limit_mib", memory_limit_mib, "a positive number of MiB, or None for "
                                                                          "each device's own capacity")
        if space is not None and not isinstance(space, str):
            space = list(space)
            bad = next((c for c in space if not isinstance(c, Config)), None)
            if not space or bad is not None:  # ["gpt2"] was an AttributeError deep inside space()
                raise InvalidValueError("space", space if not space else bad, "a shipped config name, a YAML path, "
                                        "or a non-empty list of engine.config.Config objects")
            self._space_spec = space
        self.memory_limit_mib = memory_limit_mib
        # eig only: the first picks on a device new to the store are random (see ``_new_device_start``)
        self.new_device_start = bool(new_device_start)
        self.last_payload: Optional[dict[str, Any]] = None

    # -- plumbing --------------------------------------------------------------------------------
    @property
    def store(self) -> Any:
        if self._store is None:
            from engine.store import api_store

            self._store = api_store(self._db)
        return self._store

    def predictor(self) -> Any:
        if self._predictor is None:
            n_ok = len(self.store.configs_with_status(["ok"]))
            if n_ok < MIN_RUNS:
                raise NotAvailableError(f"suggestions need at least {MIN_RUNS} measured configurations in the store "
                                        f"({self.store.path} has {n_ok}); run `perfcast demo` or "
                                        "`perfcast benchmark ... --save` first")
            from engine.models.cache import load_or_fit

            self._predictor = load_or_fit(str(self._predictor_spec), self.store)
        return self._predictor

    def space(self) -> list[Config]:
        spec = self._space_spec if self._space_spec is not None else DEFAULT_SPACE
        if isinstance(spec, str):
            from experiments.config import load_config, resolve_config
            from experiments.space import expand_space

            return expand_space(load_config(spec).search_space, resolve_config(spec)[0])
        from engine.catalog import PLATFORMS, resolve_hardware

        # platform names become device ids, as in a config's search space ("cpu" was returned as is,
        # so recommendations named no device and missed the store's runs of it); ids stay as given
        ids = {h: resolve_hardware(h, self.store).id if h in PLATFORMS else h for h in {c.hardware for c in spec}}
        return list(dict.fromkeys(c if ids[c.hardware] == c.hardware else c.with_(hardware=ids[c.hardware])
                                  for c in spec))

    def protocol(self) -> dict[str, Any]:
        """How the suggested benchmarks are to be measured: the space config's ``benchmark:``
        section (cpu-quick's 5 iterations and 3 s cap), else the config defaults. The predicted
        cost assumes it and the emitted ``perfcast benchmark`` lines run it; before, the lines ran
        ``benchmark``'s own defaults (20 iterations, up to 60 s) and cost several times more than
        the "cost s" column said, in runs measured unlike the loop's."""
        from experiments.config import BenchmarkSettings, load_config

        spec = self._space_spec if self._space_spec is not None else DEFAULT_SPACE
        b = load_config(spec).benchmark if isinstance(spec, str) else BenchmarkSettings()
        return {"iterations": b.iterations, "warmup": max(1, b.warmup), "min_time_s": b.min_time_s,
                "max_time_s": b.max_time_s, "max_iterations": b.max_iterations, "decode_tokens": b.decode_tokens,
                "time_limit_s": b.time_limit_s, "memory_limit_mib": b.memory_limit_mib}

    # -- the old API ------------------------------------------------------------------------------
    def recommend_configurations(self, budget: int = 5, optimize_for: str = "throughput",
                                 pending: Sequence[Config] = ()) -> list[dict[str, Any]]:
        """The ``budget`` most informative configurations (dicts in the old system's item format)."""
        return self._payload(budget, optimize_for, None, pending)["final_recommendations"]

    def integrate_with_hardware_recommender(self, hardware_recommender: Any, test_budget: int = 10,
                                            optimize_for: str = "throughput",
                                            pending: Sequence[Config] = ()) -> dict[str, Any]:
        """The integrated-recommendation payload (see the module docstring). ``hardware_recommender``:
        an :class:`engine.recommend.HardwareRecommender` (or anything with its ``recommend_hardware``),
        or None to compare the search space's own devices."""
        if hardware_recommender is not None and not callable(getattr(hardware_recommender, "recommend_hardware", None)):
            # "x" was taken: every item's hardware fields came back empty, with one failure note each
            raise InvalidValueError("hardware recommender", hardware_recommender, "an engine.HardwareRecommender "
                                    "(an object with recommend_hardware), or None for the search space's devices")
        return self._payload(test_budget, optimize_for, hardware_recommender, pending)

    # -- the work ---------------------------------------------------------------------------------
    def _payload(self, budget: int, optimize_for: str, recommender: Any, pending: Sequence[Config]) -> dict[str, Any]:
        from engine.acquisition.cost import CostModel, MeasuringPlan
        from engine.acquisition.pool import pool_from_store
        from engine.acquisition.select import select, subset_predictions
        budget = count_arg("budget", budget, 1, "an integer >= 1")
        pending = list(pending)
        bad = next((c for c in pending if not isinstance(c, Config)), None)
        if bad is not None:  # ['gpt2'] was an AttributeError on .key
            raise InvalidValueError("pending", bad, "engine.config.Config objects (the configurations already running)")
        metric = _metric(optimize_for)
        predictor = self.predictor()
        space = self.space()
        preds = predictor.predict(space)
        protocol = self.protocol()
        pool = pool_from_store(space, self.store, predictor, memory_limit_mib=self.memory_limit_mib, predictions=preds,
                               run_limits=(protocol["time_limit_s"], protocol["memory_limit_mib"]))
        index = {c.key: i for i, c in enumerate(space)}
        sub = subset_predictions(preds, [index[c.key] for c in pool.configs])
        plan = MeasuringPlan(protocol["iterations"], protocol["warmup"], protocol["min_time_s"],
                             protocol["max_time_s"], protocol["max_iterations"])
        cost = CostModel.from_store(self.store, plan).predict(pool.configs, sub) if len(pool) else None
        runs = self.store.measurements()  # read once: the new-device start, its notes and the reruns all look
        t0 = time.perf_counter()
        start, start_notes, history = self._new_device_start(predictor, pool.configs, sub, cost, budget, metric,
                                                             pending, runs)
        start_s = time.perf_counter() - t0
        sel = None
        if budget > len(start):
            sel = select(self.acquisition, predictor, pool.configs, budget - len(start), metric=metric,
                         pending=[*pending, *(it.config for it in start)], cost=cost if self.cost_aware else None,
                         predictions=sub, mc_points=self.mc_points, seed=self.seed, cost_exponent=self.cost_exponent)
        chosen = [*start, *(sel.items if sel is not None else ())]
        # each part (a start per new device, then eig) saw only the items before it: diversity is the whole batch's
        if start and (sel is not None or len({it.config.hardware for it in start}) > 1):
            from dataclasses import replace

            from engine.acquisition.select import batch_diversity

            div = batch_diversity(predictor, [it.config for it in chosen], pending, metric, self.seed)
            if div is not None:
                chosen = [replace(it, diversity=d) for it, d in zip(chosen, div)]
        notes = [*start_notes, *(sel.notes if sel is not None else ())]
        if pool.retried:
            limits = f"{protocol['time_limit_s']:g} s" + (f", {protocol['memory_limit_mib']:g} MiB"
                                                           if protocol.get("memory_limit_mib") else ", no memory limit")
            notes.append(f"{pool.retried} configuration(s) that failed only under a lower time or memory limit than "
                         f"this protocol's ({limits}) are candidates again")
        if recommender is None:
            recommender = self._own_recommender(predictor, space)
        pos = {c.key: i for i, c in enumerate(pool.configs)}
        families = self._families(predictor, [it.config for it in chosen])
        items = []
        for j, (it, family) in enumerate(zip(chosen, families)):
            c = it.config
            hw = self._hardware_fields(recommender, c, metric, notes)
            cost_s = float(cost[pos[c.key]]) if cost is not None else None
            ig = it.information_gain
            items.append({
                "model_name": c.model, "model_type": family, **config_item(c), "config_key": c.key,
                "expected_information_gain": ig, "uncertainty": it.uncertainty, "diversity": it.diversity,
                **hw,
                "combined_score": (ig / cost_s) if ig is not None and cost_s else None,
                "predicted_cost_s": cost_s, "acquisition_value": it.acquisition_value,
                "predicted_median": it.predicted_median,
                "p_fits_memory": None if pool.p_fit is None else float(pool.p_fit[pos[c.key]]),
                "picked_by": "new-device start (random)" if j < len(start) else self.acquisition,
            })
        reruns = self.busy_reruns(space, runs, protocol)
        if reruns:
            notes.append(f"{len(reruns)} configuration(s) of this space were measured only while other processes "
                         "needed their cores; rerun them on a quiet machine (`reruns`; first in --emit-commands)")
        payload = {
            "total_candidates": pool.space_size, "enhanced_candidates": len(pool), "excluded": pool.excluded,
            "final_recommendations": items, "optimization_metric": metric,
            "strategy": _strategy(self.acquisition, sel, start, predictor, history),
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "acquisition": sel.acquisition if sel is not None else "random",
            "mc_points": sel.mc_points if sel is not None else 0,
            "selection_s": start_s + (sel.elapsed_s if sel is not None else 0.0),
            "cost_exponent": sel.cost_exponent if sel is not None else None,
            "new_device_start": len(start),
            "notes": notes, "reruns": reruns, "benchmark": protocol,
        }
        self.last_payload = payload
        return payload

    def new_devices(self, configs: Sequence[Config], runs: Any = None) -> dict[str, int]:
        """Devices of ``configs`` with fewer than :data:`NEW_DEVICE_CONFIGS` measured configurations
        the fits use (busy runs and runs of models the catalog lacks do not count) -> how many they
        have. ``runs``: the store's successful runs, when the caller has them already."""
        return {hw: n for hw, (n, _) in self._new_device_counts(configs, runs).items()}

    def _new_device_counts(self, configs: Sequence[Config], runs: Any = None) -> dict[str, tuple[int, int]]:
        """:meth:`new_devices` with, per device, how many of its successful runs the fits leave out
        for the machine's load: a device whose runs were all timed on a busy machine has none fitted
        on, but it is not new to the store, and the words about its random start say which."""
        devices = sorted({c.hardware for c in configs})
        if not devices:
            return {}
        df = self.store.measurements() if runs is None else runs
        busy: dict[str, int] = {}
        if len(df):
            # what the fit learns from: a run timed on a busy machine, or of a model this shell's
            # catalog lacks, is left out of it (audit: 5 busy configurations ended the random start)
            from engine.catalog import models
            from engine.models.features import uses_catalog
            import numpy as np

            from engine.models.targets import left_out_busy

            ok = df[df["status"] == "ok"] if "status" in df.columns else df
            if uses_catalog(getattr(self._predictor, "featurizer", None)):
                ok = ok[ok["model"].isin(list(models()))]
            ok = ok.reset_index(drop=True)
            out = left_out_busy(ok) if len(ok) else np.zeros(0, dtype=bool)
            busy = ok[out]["hardware"].value_counts().to_dict()
            df = ok[~out]
        measured = (df[df["hardware"].isin(devices)].groupby("hardware")["config_key"].nunique().to_dict()
                    if len(df) else {})
        counts = {hw: (int(measured.get(hw, 0)), int(busy.get(hw, 0))) for hw in devices}
        return {hw: nb for hw, nb in counts.items() if nb[0] < NEW_DEVICE_CONFIGS}

    def _new_device_start(self, predictor: Any, pool: Sequence[Config], predictions: Any, cost: Any, budget: int,
                          metric: str, pending: Sequence[Config],
                          runs: Any) -> tuple[list[Any], list[str], dict[str, str]]:
        """The random first picks on devices new to the store, a note per such device, and what the
        store holds of each (:func:`_device_history`, for the strategy line).

        Replayed on a device new to the store (the shipped runs known, another CPU's grid the
        oracle; docs/active-learning.md, sessions 18-19), eig's first picks did worse than random
        ones: its cheap, extreme picks teach the new device's shared offsets badly, and a loop
        (``perfcast run``) therefore starts a new device with random picks. A suggestion follows the
        same rule: each device of the pool with n < :data:`NEW_DEVICE_CONFIGS` measured
        configurations gets its first ``NEW_DEVICE_CONFIGS - n`` picks (as far as the budget goes)
        uniformly at random among its candidates; eig then fills the rest of the batch, conditioned
        on them as pending runs. eig only: bald and max-variance were not measured on a new device,
        and random needs no start. ``new_device_start=False`` keeps eig throughout, with a caution.
        """
        from engine.acquisition.select import select, subset_predictions

        if self.acquisition != "eig":
            return [], [], {}
        counts = self._new_device_counts(pool, runs)
        new = {hw: n for hw, (n, _) in counts.items()}
        history = {hw: _device_history(n, busy) for hw, (n, busy) in counts.items()}
        if not self.new_device_start:
            return [], [f"{_device_has(hw, *counts[hw])}: on a device new to the store, random first picks "
                        "taught the model more than eig's in replay; `perfcast run` starts a new device with random "
                        "picks, and suggest does unless --no-new-device-start" for hw in new], history
        start: list[Any] = []
        notes: list[str] = []
        # the budget goes round the new devices one pick at a time: taken in order, a small budget all
        # went to the first device (audit S: 4 picks, all a100-80gb, none t4)
        want = {hw: min(NEW_DEVICE_CONFIGS - n, sum(1 for c in pool if c.hardware == hw)) for hw, n in new.items()}
        quota = dict.fromkeys(want, 0)
        left = budget
        while left > 0 and any(quota[hw] < want[hw] for hw in want):
            for hw in want:
                if left > 0 and quota[hw] < want[hw]:
                    quota[hw] += 1
                    left -= 1
        for j, (hw, n) in enumerate(new.items()):
            k = quota[hw]
            idx = [i for i, c in enumerate(pool) if c.hardware == hw]
            if k <= 0 or not idx:
                continue
            sel = select("random", predictor, [pool[i] for i in idx], k, metric=metric,
                         pending=[*pending, *(it.config for it in start)],
                         cost=None if cost is None else cost[idx], predictions=subset_predictions(predictions, idx),
                         seed=self.seed + j)
            start.extend(sel.items)
            notes.append(f"{_device_has(hw, *counts[hw])}: its first {len(sel)} pick(s) are random, "
                         "as a loop's on a new device (random first picks taught the model more than eig's in replay; "
                         "--no-new-device-start picks by eig throughout)")
        return start, notes, history

    def busy_reruns(self, space: Sequence[Config], runs: Any = None,
                    protocol: Optional[dict[str, Any]] = None) -> list[dict[str, Any]]:
        """Configurations of ``space`` whose every stored run was timed on a busy machine
        (:func:`hardware.protocol.busy_only`): measured, so out of the candidate pool, but their
        timing is probably slow; what a loop reruns by itself, listed here for a person to rerun.
        ``runs``: the store's successful runs, when the caller has them already."""
        from engine.store.paths import db_argument
        from hardware.protocol import busy_only

        df = self.store.measurements() if runs is None else runs
        if not len(df) or "foreign_cpu_cores" not in df:
            return []
        flagged = busy_only(df["config_key"].tolist(), df["threads"].tolist(), df["foreign_cpu_cores"].tolist(),
                            df["hardware"].tolist())
        out = []
        for c in space:
            if c.key in flagged:
                least, n = flagged[c.key]
                item = config_item(c)  # the recommendation item shape, so commands_script reads it as one
                out.append({**item, "config_key": c.key, "foreign_cpu_cores": least, "runs": n,
                            "command": benchmark_command(item, db=db_argument(self.store.path),
                                                         protocol=protocol or self.protocol())})
        return out

    @staticmethod
    def _families(predictor: Any, configs: Sequence[Config]) -> list[str]:
        """Model family per config, as the predictor's featuriser sees it (catalog by default)."""
        if not configs:
            return []
        from engine.models.features import default_featurizer

        ff = (getattr(predictor, "featurizer", None) or default_featurizer())(list(configs))
        return [str(f) for f in ff.cats["family"]]

    def _own_recommender(self, predictor: Any, space: Sequence[Config]) -> Any:
        try:
            from engine.recommend import HardwareRecommender
        except ImportError:
            return None
        hws = sorted({c.hardware for c in space})
        return HardwareRecommender(predictor, available_hardware=hws, db=self.store)

    @staticmethod
    def _hardware_fields(recommender: Any, c: Config, metric: str, notes: list[str]) -> dict[str, Any]:
        empty = {"recommended_hardware": None, "hardware_match": None, "hardware_score": None, "alternatives": []}
        if recommender is None:
            return empty
        try:
            rec = recommender.recommend_hardware(model_name=c.model, batch_size=c.batch_size, optimization_metric=metric,
                                                 precision=c.precision, seq_len=c.seq_len, mode=c.mode,
                                                 runtime=c.runtime)
        except Exception as e:  # noqa: BLE001 - a recommender problem must not lose the suggestions
            notes.append(f"hardware recommender failed for {c.key}: {e}")
            return empty
        # the recommender's cautions (no cuda device measured, ...) travel with its picks, once each: an
        # audit's mi300x picks at P(best) 0.12-0.16 came with none
        for w in getattr(rec, "warnings", None) or []:
            line = f"hardware recommender: {w}"
            if line not in notes:
                notes.append(line)
        p = dict(rec.prob_best)
        compared = c.hardware in p  # a device the recommender did not compare has no P(best), not 0 (audit S)
        return {"recommended_hardware": rec.recommended,
                "hardware_match": (rec.recommended == c.hardware) if compared else None,
                "hardware_score": float(p[c.hardware]) if compared else None,
                "alternatives": [{"hardware": o.hardware, "prob_best": o.prob_best, "median": o.metric.median}
                                 for o in rec.options if o.hardware != c.hardware][:3]}


def perfcast_executable() -> str:
    """How a script should call perfcast: the absolute path of the entry point beside this Python,
    i.e. the perfcast that wrote the script. A bare ``perfcast`` failed where the ``.venv`` was not
    activated (the README's install) and, written from an activated one, failed or ran another
    perfcast from a shell with another PATH. Falls back to PATH, then to the bare name."""
    import shutil
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / "perfcast"
    if beside.is_file():
        return str(beside.absolute())
    found = shutil.which("perfcast")
    return str(Path(found).absolute()) if found else "perfcast"


def benchmark_command(item: dict[str, Any], iterations: int = 20, db: Optional[str] = None,
                      program: Optional[str] = None, protocol: Optional[dict[str, Any]] = None) -> str:
    """The ``perfcast benchmark`` line that measures one recommendation (every value shell-quoted);
    with ``db``, it saves into that store (``--db``) rather than the default one. ``program``: the
    command's first word as written, unquoted (a script passes ``"$PERFCAST"``); by default
    :func:`perfcast_executable`, quoted. ``protocol`` (:meth:`ActiveLearningSystem.protocol`):
    the measuring settings to pass, else only ``iterations``."""
    c = _item_config(item)
    target = _hardware_argument(c)
    args = ["benchmark", "--model", c.model, "--hardware", target, "--batch-sizes", str(c.batch_size),
            "--seq-lengths", str(c.seq_len), "--precision", c.precision, "--mode", c.mode, "--runtime", c.runtime,
            "--threads", str(c.threads)]
    if protocol:
        args += ["--iterations", str(protocol["iterations"]), "--warmup", str(protocol["warmup"]),
                 "--min-time", f"{protocol['min_time_s']:g}", "--max-time", f"{protocol['max_time_s']:g}",
                 "--decode-tokens", str(protocol["decode_tokens"]),
                 "--time-limit", f"{protocol.get('time_limit_s', 600.0):g}"]
        if protocol.get("memory_limit_mib"):
            args += ["--memory-limit-mib", f"{protocol['memory_limit_mib']:g}"]
    else:
        args += ["--iterations", str(iterations)]
    args += ["--save"] + (["--db", db] if db else [])
    first = program if program is not None else shlex.quote(perfcast_executable())
    return " ".join([first, *(shlex.quote(a) for a in args)])


def _hardware_argument(c: Config) -> str:
    """What ``--hardware`` must say to measure ``c``: the local adapter that measures it, else the
    device's own id. Not its platform: ``--hardware cpu`` on another machine measured that machine's
    CPU and stored it under that CPU's id, so the recommendation stayed unmeasured (audit S). On
    the device itself ``benchmark`` resolves the id to its adapter; elsewhere it refuses, naming it."""
    try:
        from experiments.space import adapter_for

        name, _ = adapter_for(c)
        if name:
            return name
    except Exception:  # noqa: BLE001
        pass
    return c.hardware


def elsewhere(items: Sequence[dict[str, Any]]) -> list[str]:
    """The devices among ``items`` that no adapter on this machine measures (their run.sh lines
    work only on those devices)."""
    out: list[str] = []
    for it in items:
        c = _item_config(it)
        if c.hardware not in out and _hardware_argument(c) == c.hardware:
            out.append(c.hardware)
    return out


def _item_config(item: dict[str, Any]) -> Config:
    """The configuration a recommendation item (or a rerun entry) names."""
    return Config(item["model_name"], item["hardware"], int(item["batch_size"]), int(item.get("seq_len", 128)),
                  item.get("precision", "fp32"), item.get("mode", "inference"), item.get("runtime", "torch"),
                  int(item.get("threads", 0)))


def _in_double_quotes(text: str) -> str:
    """``text`` escaped for a double-quoted shell word (a path with ``$`` or ``"`` in it)."""
    return "".join("\\" + ch if ch in '\\"$`' else ch for ch in text)


def commands_script(items: Sequence[dict[str, Any]], iterations: int = 20,
                    reruns: Sequence[dict[str, Any]] = (), db: Optional[str] = None,
                    protocol: Optional[dict[str, Any]] = None) -> str:
    """The shell script of ``perfcast suggest --emit-commands``: reruns of runs timed on a busy
    machine first (they repair data already paid for), then the recommendations in order.
    ``reruns``: entries of :meth:`ActiveLearningSystem.busy_reruns`, which carry the item fields;
    ``db``: the store every line saves into (see :func:`benchmark_command`)."""
    lines = ["#!/usr/bin/env bash",
             "# a benchmark that fails (out of memory, a crash, a timeout) is stored as a failed run and the",
             "# script goes on to the next; it exits 1 at the end if any line failed",
             "# the perfcast that wrote this script; set PERFCAST to use another",
             f"PERFCAST=\"${{PERFCAST:-{_in_double_quotes(perfcast_executable())}}}\"", "status=0"]
    prog = '"$PERFCAST"'
    if reruns:
        lines.append("# reruns: these configurations were timed only while other processes needed their cores")
        lines += [benchmark_command(r, iterations, db, program=prog, protocol=protocol) + " || status=1"
                  for r in reruns]
    start = sum(1 for it in items if str(it.get("picked_by", "")).startswith("new-device"))
    lines.append("# perfcast suggest: the recommended benchmarks, most informative first" if not start else
                 f"# perfcast suggest: the recommended benchmarks; the first {start} are a new device's random "
                 "start, then the most informative")
    away = elsewhere(items)
    if away:
        lines.append(f"# lines naming {', '.join(away)} run only on {'that device' if len(away) == 1 else 'those devices'}"
                     " (this machine has none; elsewhere they stop with a one-line error)")
    lines += [benchmark_command(it, iterations, db, program=prog, protocol=protocol) + " || status=1" for it in items]
    lines.append('exit "$status"')
    return "\n".join(lines) + "\n"


def config_item(c: Config) -> dict[str, Any]:
    """A configuration in the item shape :func:`benchmark_command` reads."""
    return {"model_name": c.model, "hardware": c.hardware, "batch_size": c.batch_size, "seq_len": c.seq_len,
            "precision": c.precision, "mode": c.mode, "runtime": c.runtime, "threads": c.threads}
