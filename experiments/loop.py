"""The active-learning loop: fit → acquire → benchmark → store → refit, resumable.

One :class:`ExperimentLoop` drives one experiment against one store and one executor:

1. **fit** the predictor on every successful measurement in the store (a full hyperparameter fit
   every ``predictor.refit_every`` acquisitions, otherwise the GP is only conditioned on the new
   data with its current hyperparameters — milliseconds instead of seconds);
2. **pool** = search space − measured − failed − surely out of memory − running (pending);
3. **acquire** as many configurations as the executor has free workers (at least ``q``),
   jointly, treating the running ones as pending;
4. **benchmark** through the executor; each result is **committed to the store the moment it
   lands** (with the experiment id), so a ``kill -9`` loses at most the runs in flight;
5. repeat until the budget (runs and/or benchmark-seconds) is spent, the stop rule holds
   (largest relative 90% interval over the pool below a target) or the pool is empty.

Resuming is reading the store: the experiment's id is derived from its config, its committed
runs count against the budget, the step records kept in the ``experiments`` row continue, and a
configuration measured before the kill is no longer in the pool. A failed benchmark is a stored
run (status failed/oom/timeout) and leaves the pool like a successful one.

Each acquisition step is recorded (:class:`StepRecord`): what was chosen and why, the pool's
posterior width, and — where the truth is known (replay: the oracle's recorded value of every
configuration not yet acquired) — the held-out median absolute percentage error. Every landed
result is also scored against the prediction made before it ran (prequential error), which is the
held-out error a real run can report without an oracle.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

from engine.config import Config
from engine.errors import NotAvailableError

if TYPE_CHECKING:
    from engine.models.base import PredictionSet
    from experiments.config import ExperimentConfig

#: metric -> (PredictionSet metric for widths/errors, store column of the truth)
TRUTH_COLUMN: dict[str, tuple[str, str]] = {"latency": ("latency_ms", "latency_median_ms"),
                                            "throughput": ("latency_ms", "latency_median_ms"),
                                            "memory": ("memory_mib", "memory_peak_mib")}


@dataclass
class StepRecord:
    """One acquisition (or the final evaluation, ``chosen == []``) and the state it saw."""

    step: int
    n_benchmarks: int  # this experiment's committed runs (ok + failed) when the step started
    benchmark_seconds: float  # their summed wall time
    n_train: int
    pool_size: int
    chosen: list[dict[str, Any]] = field(default_factory=list)
    acquisition: str = ""
    max_rel_width90: Optional[float] = None
    mean_rel_width90: Optional[float] = None
    # the largest share of a pool configuration's 90% width that benchmarks of other configurations
    # could still remove (1 - width at the predictor's floor / width now; predictors with floor_sd), and the pool's
    # widest interval at that floor, below which stop.max_rel_width90 cannot be met
    max_reducible90: Optional[float] = None
    # the same share's 90th percentile over the pool, to tell one poorly covered corner holding the
    # maximum up from a pool-wide share: in replays it stayed near the maximum (docs/active-learning.md,
    # "Session 23")
    q90_reducible90: Optional[float] = None
    max_floor_width90: Optional[float] = None
    heldout_median_ape: Optional[float] = None
    heldout_n: int = 0
    # empirical coverage of the posterior's central 50% / 90% intervals on the held-out pool: under
    # active learning the runs are chosen, not drawn, so the leave-one-out calibration of the
    # training runs need not carry over to what was left out (this is where that shows)
    heldout_cover50: Optional[float] = None
    heldout_cover90: Optional[float] = None
    fit_s: float = 0.0
    acquire_s: float = 0.0
    cost_exponent: Optional[float] = None  # information / cost**this (cost-aware acquisitions)
    fitted: str = ""  # "fit", "condition", "cached", "initial design"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoopResult:
    experiment_id: str
    name: str
    mode: str
    acquisition: str
    steps: list[StepRecord]
    n_benchmarks: int
    n_failed: int
    benchmark_seconds: float
    stopped_because: str
    resumed_runs: int
    prequential: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    n_reruns: int = 0  # runs spent again on configurations whose timing other processes disturbed
    #: configurations whose every run of this experiment was timed on a busy machine (not rerun:
    #: the budget ran out or the machine stayed busy); the fits leave such runs out
    busy_only: list[str] = field(default_factory=list)

    def curve(self) -> dict[str, list[Optional[float]]]:
        return {"n_benchmarks": [s.n_benchmarks for s in self.steps],
                "benchmark_seconds": [s.benchmark_seconds for s in self.steps],
                "heldout_median_ape": [s.heldout_median_ape for s in self.steps],
                "heldout_cover50": [s.heldout_cover50 for s in self.steps],
                "heldout_cover90": [s.heldout_cover90 for s in self.steps],
                "mean_rel_width90": [s.mean_rel_width90 for s in self.steps],
                "max_rel_width90": [s.max_rel_width90 for s in self.steps],
                "max_reducible90": [s.max_reducible90 for s in self.steps]}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["steps"] = [s.to_dict() for s in self.steps]
        d["curve"] = self.curve()
        return d


def training_data(store: Any) -> Any:
    """The store's successful runs with raw samples; runs without samples carry None, not pd.NA.

    (Imported runs may have no raw samples; the model code expects a list or None there.)
    """
    df = store.measurements(with_samples=True)
    if "samples_ms" in df and len(df):
        df["samples_ms"] = [s if isinstance(s, (list, tuple, np.ndarray)) else None for s in df["samples_ms"]]
    return df


def _distinct_configs(data: Any, among: Optional[set[str]] = None) -> int:
    """Configurations with a successful run (of those keyed in ``among``, when given): what the
    initial design counts. Runs would overcount a configuration measured twice (a busy-machine
    rerun), and a GP fitted on one configuration's runs has no input that varies."""
    if "config_key" in data and len(data):
        keys = data["config_key"]
        if among is not None:
            keys = keys[keys.isin(among)]
        return int(keys.nunique())
    return len(data) if among is None else 0


def _known(truth: Sequence[Optional[float]]) -> tuple[np.ndarray, np.ndarray]:
    """The truths as floats and the mask of those known (finite, positive)."""
    t = np.array([np.nan if v is None else v for v in truth], dtype=float)
    return t, np.isfinite(t) & (t > 0)


def _median_ape(pred: np.ndarray, truth: Sequence[Optional[float]]) -> tuple[Optional[float], int]:
    t, ok = _known(truth)
    if not ok.any():
        return None, 0
    return float(np.median(np.abs(pred[ok] - t[ok]) / t[ok])), int(ok.sum())


#: quantiles the held-out scoring reads: the 90% interval, the 50% interval, the median
SCORE_QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)


def _coverage(q: np.ndarray, truth: Sequence[Optional[float]]) -> tuple[Optional[float], Optional[float]]:
    """Share of the known truths inside the 50% and the 90% interval (``q``: rows of
    :data:`SCORE_QUANTILES`, one column per configuration)."""
    t, ok = _known(truth)
    if not ok.any():
        return None, None
    t, q = t[ok], q[:, ok]
    return float(np.mean((t >= q[1]) & (t <= q[3]))), float(np.mean((t >= q[0]) & (t <= q[4])))


class ExperimentLoop:
    """See the module docstring. ``on_event(kind, payload)`` receives ``step``/``result``/``info``."""

    def __init__(self, cfg: "ExperimentConfig", store: Any, executor: Any, space: Sequence[Config], *,
                 mode: str = "run", truth: Optional[Callable[[Sequence[Config], str], list[Optional[float]]]] = None,
                 predictor_factory: Optional[Callable[[], Any]] = None, seed: Optional[int] = None,
                 on_event: Optional[Callable[[str, Any], None]] = None, experiment_id: Optional[str] = None,
                 initial_design: Optional[int] = None, score_factory: Optional[Callable[[], Any]] = None) -> None:
        self.cfg = cfg
        self.store = store
        self.executor = executor
        self.mode = mode
        self.truth = truth
        self.seed = cfg.seed if seed is None else int(seed)
        self.on_event = on_event or (lambda kind, payload: None)
        self.experiment_id = experiment_id or self._stored_id(cfg, store, mode)
        self.initial_design = cfg.initial_design if initial_design is None else int(initial_design)
        if predictor_factory is None:
            from experiments.config import check_predictor_options

            check_predictor_options(cfg)  # before any benchmark, not at the first fit
        self._factory = predictor_factory or self._default_factory
        # held-out error from a predictor fitted afresh on the data at every step (replay only):
        # separates how good the measured set is from how stale the loop's hyperparameters are
        self._score_factory = score_factory
        self.predictor: Any = None
        self._fits = 0
        self.space = list(dict.fromkeys(space))
        self._space_keys = {c.key for c in self.space}
        self._retry_noted = False
        self.metric = cfg.acquisition.metric
        self.pmetric, self.truth_col = TRUTH_COLUMN[self.metric]
        self.steps: list[StepRecord] = []
        self.prequential: list[dict[str, Any]] = []
        self._predicted: dict[str, float] = {}  # config key -> predicted value when picked
        self._reruns: set[str] = set()  # config keys submitted again because their run was disturbed
        self._postponed: set[str] = set()  # reruns already announced as waiting for a quiet machine
        self._said_unreachable = False  # the note that stop.max_rel_width90 is below the floor, once
        self._said_no_floor = False  # the note that stop.max_reducible cannot be read, once
        self._stop_request: Optional[str] = None  # set by request_stop (the CLI's first Ctrl-C)
        self._owner: Optional[dict[str, Any]] = None  # this process, while it runs the experiment
        self._prepared: Optional[int] = None  # runs already committed when prepare() read the store

    def request_stop(self, reason: str) -> None:
        """Submit nothing more; the benchmarks in flight finish and are stored, then the loop ends
        with ``reason`` and status ``interrupted`` (the same command resumes it). Safe to call from
        a signal handler: it only sets a field the loop reads between events."""
        self._stop_request = reason

    # -- plumbing ---------------------------------------------------------------------------------
    def _default_factory(self) -> Any:
        from engine.models.registry import get_predictor

        return get_predictor(self.cfg.predictor.kind, **self.cfg.predictor.options)

    def _emit(self, kind: str, payload: Any) -> None:
        try:
            self.on_event(kind, payload)
        except Exception:  # noqa: BLE001 - a display problem must never stop the loop
            pass

    def spec_for(self, config: Config) -> Any:
        return self.cfg.benchmark.spec(config)

    def committed(self) -> tuple[int, int, float, set[str]]:
        """(runs, failed runs, benchmark-seconds, config keys) this experiment has in the store."""
        with self.store.connect() as con:
            rows = con.execute("SELECT config_key, status, coalesce(wall_time_s, 0) FROM benchmark_runs "
                               "WHERE experiment_id = ?", [self.experiment_id]).fetchall()
        n_failed = sum(1 for _, s, _ in rows if s != "ok")
        return len(rows), n_failed, float(sum(w for _, _, w in rows)), {k for k, _, _ in rows}

    def busy_reruns(self, exclude: set[str]) -> list[tuple[Config, float]]:
        """Configurations to benchmark again because other processes disturbed their timing.

        A run whose timed iterations shared its cores with other processes
        (:func:`hardware.protocol.busy_machine`) is slow for reasons that are not the
        configuration's; the fits already prefer a quieter run of the same configuration
        (:func:`engine.models.targets.superseded_busy_runs`), so the loop's repair is to take one.
        A configuration qualifies while every successful run it has in this experiment was busy
        and it has had at most ``benchmark.rerun_busy`` reruns (failed ones included). Read from the store, so a resumed
        loop still reruns what a killed one had flagged. Real runs only: a replay looks values up.
        Returns (configuration, foreign CPU cores of its quietest run), oldest first.
        """
        limit = self.cfg.benchmark.rerun_busy
        if self.mode != "run" or limit <= 0:
            return []
        flagged, tries = self._busy_only()
        by_key = {c.key: c for c in self.space}
        return [(by_key[k], least) for k, (least, _) in flagged.items()
                if k in by_key and k not in exclude and tries[k] <= limit]

    def _busy_only(self) -> tuple[dict[str, tuple[float, int]], dict[str, int]]:
        """(:func:`hardware.protocol.busy_only` of this experiment's successful runs, the number of
        runs of each configuration, failed ones included)."""
        from hardware.protocol import busy_only

        with self.store.connect() as con:
            rows = con.execute("SELECT config_key, threads, foreign_cpu_cores, status, hardware FROM benchmark_runs "
                               "WHERE experiment_id = ? ORDER BY started_at", [self.experiment_id]).fetchall()
        ok = [(r[0], r[1], r[2], r[4]) for r in rows if r[3] == "ok"]
        keys, threads, foreign, hardware = zip(*ok) if ok else ((), (), (), ())
        tries: dict[str, int] = {}
        for r in rows:  # a rerun that failed counts too: the limit bounds attempts, not successes
            tries[r[0]] = tries.get(r[0], 0) + 1
        return busy_only(keys, threads, foreign, hardware), tries

    def _due_reruns(self, n_pick: int) -> list[tuple[Config, float]]:
        """The busy-machine reruns to submit now: none while this machine is still busy.

        Rerunning during the disturbance would only measure it again, so on the local executor
        the loop first watches the machine's load for a second
        (:func:`hardware.protocol.foreign_load`) and postpones the reruns — acquiring new
        configurations meanwhile — until it is quiet. While benchmarks of this loop run
        (``--workers`` > 1) they are the load, and a rerun beside them would be disturbed the same
        way: it waits for a moment when none runs. Where benchmarks run on other machines (Ray)
        this one's load says nothing about theirs, and the reruns are submitted.
        """
        pending = self.executor.pending()
        due = self.busy_reruns({c.key for c in pending})[:n_pick]
        if not due or self.executor.name != "local":
            return due
        if pending:
            return []
        from hardware.protocol import busy_machine, foreign_load

        load = foreign_load(1.0)
        due_now = []
        for c, foreign in due:
            if not busy_machine(load, c.threads):
                due_now.append((c, foreign))
            elif c.key not in self._postponed:  # said once, not at every step it waits
                self._postponed.add(c.key)
                self._emit("info", f"rerun of {c.key} postponed: other processes keep {load:.2f} CPU cores busy")
        return due_now

    def _save_state(self, status: str, extra: Optional[dict[str, Any]] = None) -> None:
        if self.mode == "replay" and status == "running":
            return  # a replay is reproducible from its seed: only its final record is kept
        state = {"steps": [s.to_dict() for s in self.steps], "prequential": self.prequential,
                 "predicted": self._predicted, "mode": self.mode, "seed": self.seed, **(extra or {})}
        if status == "running" and self._owner:
            state["owner"] = self._owner  # engine.store.owner: a second process must not run it too
        self.store.upsert_experiment(self.experiment_id, self.cfg.name, self.cfg.model_dump(mode="json"), status,
                                     state)

    def _lock_wait_note(self, why: str) -> None:
        self._emit("info", f"{why}; this loop waits until the lock is released (Ctrl-C to stop it)")

    def _load_state(self) -> int:
        exp = self.store.get_experiment(self.experiment_id)
        if not exp:
            return 0
        st = exp.get("state") or {}
        self.steps = [StepRecord(**s) for s in st.get("steps", [])]
        self.prequential = list(st.get("prequential", []))
        self._predicted = dict(st.get("predicted", {}))
        # a kill during a step's benchmarks leaves its record with picks that never landed: the loop
        # acquires again from the same data, and the old record would put two steps at one count
        keys = self.committed()[3]
        lost: list[str] = []
        n_steps = 0
        while self.steps and self.steps[-1].chosen and not any(c["config_key"] in keys for c in self.steps[-1].chosen):
            lost += [c["config_key"] for c in self.steps.pop().chosen]
            n_steps += 1
        if lost:
            what = "the last step" if n_steps == 1 else f"the last {n_steps} steps"
            self._emit("info", f"{what} chose {', '.join(lost[:3])}{', …' if len(lost) > 3 else ''}, which never "
                               f"landed in the store; {'it is' if n_steps == 1 else 'they are'} acquired again")
        return len(self.steps)

    # -- budget and stopping ------------------------------------------------------------------------
    def _runs_budget(self) -> Optional[int]:
        b = self.cfg.budget
        if b.runs is None and b.benchmark_seconds is None:
            return 10
        return b.runs

    def _spent_fraction(self, runs: int, seconds: float) -> Optional[float]:
        """Share of the budget already spent (the larger of runs and benchmark-seconds)."""
        parts = []
        rb = self._runs_budget()
        if rb:
            parts.append(runs / rb)
        if self.cfg.budget.benchmark_seconds:
            parts.append(seconds / self.cfg.budget.benchmark_seconds)
        return max(parts) if parts else None

    def _budget_left(self, runs: int, seconds: float) -> tuple[Optional[int], Optional[str]]:
        """(runs that may still be submitted, None) or (0, reason)."""
        inflight = len(self.executor.pending())
        rb = self._runs_budget()
        if self.cfg.budget.benchmark_seconds is not None and seconds >= self.cfg.budget.benchmark_seconds:
            return 0, f"benchmark-seconds budget spent ({seconds:.0f} s >= {self.cfg.budget.benchmark_seconds:g} s)"
        if rb is not None:
            left = rb - runs - inflight
            if left <= 0:
                return 0, f"run budget spent ({runs} done + {inflight} running of {rb})"
            return left, None
        return None, None

    # -- fitting --------------------------------------------------------------------------------------
    def _fit(self, data: Any) -> str:
        from engine.acquisition.gp_seam import condition_gp

        due = self._fits % self.cfg.predictor.refit_every == 0
        self._fits += 1
        if self.predictor is not None and not due and condition_gp(self.predictor, data):
            return "condition"
        if self.predictor is None and self._factory == self._default_factory:
            # the first fit goes through the model cache: reused when the store's data are unchanged
            # (a resumed loop, or `perfcast predict` fitted the same data before)
            from engine.models.cache import load_or_fit

            self.predictor = load_or_fit(self.cfg.predictor.kind, self.store, **self.cfg.predictor.options)
            return "cached fit"
        if self.predictor is None:
            self.predictor = self._factory()
        self.predictor.fit(data)
        return "fit"

    # -- one acquisition ----------------------------------------------------------------------------
    @staticmethod
    def _stored_id(cfg: "ExperimentConfig", store: Any, mode: str) -> str:
        """The config's experiment id; or, when no experiment has it, the id of a stored loop of the
        same name whose saved config measures and chooses the same way (:meth:`ExperimentConfig.run_digest`):
        one stored before ids left out the budget and stop rule (they hashed every setting), which
        then resumes with the new budget instead of starting again from zero."""
        new = cfg.experiment_id(mode)
        if mode != "run" or not hasattr(store, "experiments"):
            return new
        if getattr(store, "path", None) is not None and not Path(store.path).exists():
            # a store not made yet holds no experiment; reading it made it (seeded) before prepare()
            # could refuse the run, and a refused run left a new store behind
            return new
        try:
            if store.get_experiment(new) is not None:
                return new
            from experiments.config import parse_config

            want = cfg.run_digest()
            for exp in store.experiments():  # most recent first
                eid = str(exp.get("experiment_id", ""))
                if exp.get("name") != cfg.name or not eid.startswith(f"{cfg.name}-run-"):
                    continue
                try:
                    if parse_config(exp.get("config") or {}, eid).run_digest() == want:
                        return eid
                except Exception:  # noqa: BLE001 - a config saved by an older perfcast that no longer parses
                    continue
        except Exception:  # noqa: BLE001 - a store without the table yet holds nothing to resume
            pass
        return new

    def _failed_keys(self) -> set[str]:
        """Configurations whose failures leave them out of the pool: every failed run in the store,
        except those that only hit a time or memory limit lower than this experiment's
        (:func:`engine.acquisition.pool.blocking_failures`): raising the limit retries them."""
        from engine.acquisition.pool import FAILED_STATUSES, blocking_failures

        failures = self.store.failures(list(FAILED_STATUSES))
        if self.mode != "run":  # a replay's oracle failed whatever its limits were
            return set(failures)
        b = self.cfg.benchmark
        blocked, retry = blocking_failures(failures, b.time_limit_s, b.memory_limit_mib)
        again = retry & self._space_keys
        if again and not self._retry_noted:
            self._retry_noted = True
            self._emit("info", f"{len(again)} configuration(s) that failed only under a lower time or memory limit "
                               f"than this experiment's are in the pool again, e.g. {sorted(again)[0]}")
        return blocked

    def acquire(self, n_pick: int, runs: int, seconds: float) -> tuple[list[Config], StepRecord, Optional[str]]:
        from engine.acquisition.pool import build_pool, capacity_for, empty_pool_reason

        step = len(self.steps)
        pending = self.executor.pending()
        pend_keys = {c.key for c in pending}
        measured = self.store.configs_with_status(["ok"])
        failed = self._failed_keys()
        data = training_data(self.store)
        rec = StepRecord(step=step, n_benchmarks=runs, benchmark_seconds=seconds, n_train=len(data), pool_size=0,
                         acquisition=self.cfg.acquisition.name)
        rng = np.random.default_rng([self.seed, step])
        # The initial design counts runs of this search space only. A store seeded with other
        # devices' runs can fit a GP, but on a device new to it eig's first picks (cheap, at the
        # extremes, one per software path) are the ones whose surprises generalise worst: each lands
        # in the new device's shared offsets. Replayed (bench/active_learning.py --prior shipped,
        # the Xeon's grid, 36 seeds) eig was worse than random for 30 benchmarks without this
        # (22.4% against 19.2% at 10) and is no worse at any budget with it. On a device close to the
        # shipped one (the Zen 3 grid) it gives up an early lead instead (docs/active-learning.md).
        if _distinct_configs(data, self._space_keys) < self.initial_design:
            pool = build_pool(self.space, measured=measured, failed=failed)
            cand = [c for c in pool.configs if c.key not in pend_keys]
            rec.pool_size = len(cand)
            rec.fitted = "initial design"
            if not cand:
                return [], rec, empty_pool_reason(pool)
            idx = rng.choice(len(cand), size=min(n_pick, len(cand)), replace=False)
            picks = [cand[i] for i in idx]
            rec.chosen = [{"config_key": c.key, "reason": "initial design (random)"} for c in picks]
            return picks, rec, None

        t0 = time.perf_counter()
        rec.fitted = self._fit(data)
        rec.fit_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        preds = self.predictor.predict(self.space)
        cap = capacity_for(self.space, getattr(self.predictor, "featurizer", None), self.cfg.benchmark.memory_limit_mib)
        pool = build_pool(self.space, measured=measured, failed=failed, predictions=preds, capacity_mib=cap)
        index = {c.key: i for i, c in enumerate(self.space)}
        pool_idx = [index[c.key] for c in pool.configs if c.key not in pend_keys]
        cand = [self.space[i] for i in pool_idx]
        rec.pool_size = len(cand)
        self._score(rec, preds, pool_idx, cand, data)
        stopped = self._stop_rule(rec, runs)
        if stopped:
            return [], rec, stopped
        if not cand:
            return [], rec, empty_pool_reason(pool)
        from engine.acquisition.cost import CostModel, MeasuringPlan
        from engine.acquisition.select import cooled_cost_exponent, select, subset_predictions

        sub = subset_predictions(preds, pool_idx)
        # predicted cost is always reported; the acquisition divides by it only when cost-aware
        b = self.cfg.benchmark
        plan = MeasuringPlan(b.iterations, b.warmup, b.min_time_s, b.max_time_s, b.max_iterations)
        cost = CostModel.from_store(self.store, plan).predict(cand, sub)
        a = self.cfg.acquisition
        alpha = cooled_cost_exponent(self._spent_fraction(runs, seconds), a.cost_exponent) if a.cost_cooling \
            else a.cost_exponent
        # random picks uniformly: no cost exponent to report (its steps printed "info/cost^0.24")
        rec.cost_exponent = alpha if self.cfg.acquisition.cost_aware and a.name != "random" else None
        sel = select(self.cfg.acquisition.name, self.predictor, cand, n_pick, metric=self.metric, pending=pending,
                     cost=cost if self.cfg.acquisition.cost_aware else None, predictions=sub, cost_exponent=alpha,
                     mc_points=self.cfg.acquisition.mc_points, seed=int(rng.integers(2**31)))
        rec.acquire_s = time.perf_counter() - t1
        med = sub.quantiles(self.pmetric, [0.5])[0]
        pos = {c.key: i for i, c in enumerate(cand)}
        rec.chosen = []
        for it in sel.items:
            d = {"config_key": it.config.key, "information_gain": it.information_gain,
                 "acquisition_value": it.acquisition_value, "uncertainty": it.uncertainty, "diversity": it.diversity,
                 "cost_s": float(cost[pos[it.config.key]]),
                 "predicted": float(med[pos[it.config.key]])}
            rec.chosen.append(d)
            self._predicted[it.config.key] = d["predicted"]
        return sel.configs, rec, None

    def _stop_rule(self, rec: StepRecord, runs: int) -> Optional[str]:
        """Why the loop stops here by its stop rule, or None. Says once when ``max_rel_width90`` is
        below the pool's widest interval at the predictor's floor: that target cannot be met."""
        stop = self.cfg.stop
        if (stop.max_rel_width90 is not None and rec.max_floor_width90 is not None and not self._said_unreachable
                and stop.max_rel_width90 < rec.max_floor_width90):
            self._said_unreachable = True
            self._emit("info", f"stop.max_rel_width90 {stop.max_rel_width90:.0%} cannot be met: with the surface "
                               f"known exactly, the widest 90% interval of the pool would still be "
                               f"{rec.max_floor_width90:.0%} (run noise and each configuration's own roughness); "
                               "stop.max_reducible stops on what more benchmarks can still narrow")
        if (stop.max_reducible is not None and rec.max_rel_width90 is not None and rec.max_reducible90 is None
                and not self._said_no_floor):
            self._said_no_floor = True
            self._emit("info", f"stop.max_reducible cannot be read: predictor {getattr(self.predictor, 'name', '?')} "
                               "has no floor_sd (gp and hierarchical have one); the loop stops on its budget")
        if runs < stop.min_runs:
            return None
        if (stop.max_rel_width90 is not None and rec.max_rel_width90 is not None
                and rec.max_rel_width90 < stop.max_rel_width90):
            return f"stop rule: largest relative 90% interval {rec.max_rel_width90:.1%} < {stop.max_rel_width90:.1%}"
        if (stop.max_reducible is not None and rec.max_reducible90 is not None
                and rec.max_reducible90 < stop.max_reducible):
            why = (f"stop rule: no configuration's 90% interval can narrow by more than {rec.max_reducible90:.1%} "
                   f"(< {stop.max_reducible:.1%}) without measuring it")
            # the share at the loop's first scored step (``rec`` is not in self.steps yet)
            first = next((s.max_reducible90 for s in [*self.steps, rec] if s.max_reducible90 is not None))
            if first < stop.max_reducible:
                # met before the loop learnt anything: the predictor's floor is most of every interval. The
                # hierarchical model's floor (its run noise) holds each configuration's own departure, so
                # pooled with other devices' runs it reaches this after min_runs (session 21: 3 runs, 17%)
                why += (f"; already {first:.0%} at this run's first fit: predictor "
                        f"{getattr(self.predictor, 'name', '?')}'s floor is most of every interval, so it "
                        "expects little from more benchmarks of this space")
            return why
        return self._plateau(stop.plateau_runs, stop.plateau_min_gain)

    def _plateau(self, w: Optional[int], min_gain: float) -> Optional[str]:
        """``stop.plateau_runs``: why the loop stops because its forecast error stopped falling, or
        None. Reads the prequential record, so it works on real runs (no held-out truth there)."""
        if w is None:
            return None
        apes = [p["ape"] for p in self.prequential if p.get("ape") is not None]
        if len(apes) < 2 * w:
            return None
        recent, before = float(np.median(apes[-w:])), float(np.median(apes[-2 * w:-w]))
        if before - recent >= min_gain:
            return None
        return (f"stop rule: the forecast error stopped falling (median prequential APE {recent:.1%} over the "
                f"last {w} runs, {before:.1%} over the {w} before)")

    def _score(self, rec: StepRecord, preds: "PredictionSet", pool_idx: list[int], cand: list[Config],
               data: Any) -> None:
        """Pool widths and (where the truth is known) held-out error of the current posterior;
        ``data`` are the training runs the step fitted on (a fresh-fit scorer refits on them)."""
        if pool_idx:
            q = preds.quantiles(self.pmetric, [0.05, 0.5, 0.95])[:, pool_idx]
            w = (q[2] - q[0]) / q[1]
            rec.max_rel_width90, rec.mean_rel_width90 = float(np.max(w)), float(np.mean(w))
            floor_sd = getattr(self.predictor, "floor_sd", None)
            if floor_sd is not None:
                # a lognormal's relative 90% width: exp(1.645 sd) - exp(-1.645 sd)
                wf = 2.0 * np.sinh(1.6448536 * np.asarray(floor_sd(cand, self.pmetric), dtype=float))
                # clipped: a draws-based width can fall a little under the floor's Gaussian one
                reducible = np.clip(1.0 - wf / np.maximum(w, 1e-12), 0.0, 1.0)
                rec.max_reducible90 = float(np.max(reducible))
                rec.q90_reducible90 = float(np.quantile(reducible, 0.9))
                rec.max_floor_width90 = float(np.max(wf))
        if self.truth is not None and pool_idx:
            if self._score_factory is not None:
                fresh = self._score_factory().fit(data)
                qs = fresh.predict(cand).quantiles(self.pmetric, list(SCORE_QUANTILES))
            else:
                qs = preds.quantiles(self.pmetric, list(SCORE_QUANTILES))[:, pool_idx]
            truth = self.truth(cand, self.truth_col)
            rec.heldout_median_ape, rec.heldout_n = _median_ape(qs[2], truth)
            rec.heldout_cover50, rec.heldout_cover90 = _coverage(qs, truth)

    def final_evaluation(self, runs: int, seconds: float) -> Optional[StepRecord]:
        """Fit on everything and score once more, so the curve ends after the last benchmark."""
        from engine.acquisition.pool import build_pool

        data = training_data(self.store)
        if _distinct_configs(data) < max(self.initial_design, 1):
            return None
        rec = StepRecord(step=len(self.steps), n_benchmarks=runs, benchmark_seconds=seconds, n_train=len(data),
                         pool_size=0, acquisition=self.cfg.acquisition.name)
        t0 = time.perf_counter()
        rec.fitted = self._fit(data)
        rec.fit_s = time.perf_counter() - t0
        preds = self.predictor.predict(self.space)
        pool = build_pool(self.space, measured=self.store.configs_with_status(["ok"]), failed=self._failed_keys())
        index = {c.key: i for i, c in enumerate(self.space)}
        pool_idx = [index[c.key] for c in pool.configs]
        rec.pool_size = len(pool_idx)
        self._score(rec, preds, pool_idx, pool.configs, data)
        return rec

    # -- the loop -------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Everything before the first fit that can refuse the run: drop the configurations the
        executor cannot run (none left is an error), claim the experiment for this process (another
        live process running it is an error, :mod:`engine.store.owner`) and read what the store
        already holds. :meth:`run` calls it; the CLI calls it first, so that a refusal is one line
        before any progress bar. A refused run leaves no experiment row behind."""
        if self._prepared is not None:
            return
        runnable = self.executor.check(self.space)
        keep = set(runnable)
        dropped = [c for c in self.space if c not in keep]
        why = self.executor.skipped.get(dropped[0].key, "no adapter runs it") if dropped else ""
        if dropped and not runnable:  # nothing to learn: an error, not an empty "finished" experiment
            from engine.errors import NotAvailableError

            raise NotAvailableError(f"none of the {len(self.space)} configurations of {self.cfg.name}'s search "
                                    f"space can run on executor '{self.executor.name}': {why}")
        if self.mode != "replay":  # a replay is a throwaway record; a real loop has one runner at a time
            from engine.store.owner import claim

            self._owner = claim(self.store, self.experiment_id, self.cfg.name, self.cfg.model_dump(mode="json"))
        resumed_steps = self._load_state()
        runs, _, seconds, _ = self.committed()
        if runs:
            self._emit("info", f"resuming {self.experiment_id}: {runs} runs ({seconds:.0f} benchmark-s) already "
                               f"committed, {resumed_steps} steps recorded")
        if dropped:
            self._emit("info", f"{len(dropped)} configurations of the search space cannot run on executor "
                               f"'{self.executor.name}' and are left out, e.g. {dropped[0].key}: {why}")
        self._note_runtime_choices(runnable)
        self.space = runnable
        self._prepared = runs

    def _note_runtime_choices(self, configs: Sequence[Config]) -> None:
        """Say once where a runtime runs another precision than the one asked (OpenVINO's bf16 hint on
        a CPU without bf16 kernels runs f32): the runs are stored under the precision asked, and the
        models price them at the one run (:func:`engine.models.features.executed_precision`)."""
        if self.mode != "run":
            return
        asked = {c.hardware for c in configs if c.runtime == "openvino" and c.precision == "bf16"}
        for hw in sorted(asked):
            try:
                from engine.models.features import default_featurizer, executed_precision

                if executed_precision("openvino", "bf16", default_featurizer().hardware(hw)) != "bf16":
                    self._emit("info", f"openvino bf16 on {hw} runs at f32 (the CPU has no bf16 kernels): its runs "
                                       "are stored as bf16, what was asked, and priced by the models as fp32")
            except Exception:  # noqa: BLE001 - a device the catalog cannot resolve: nothing to say
                continue

    def run(self) -> LoopResult:
        import warnings

        with warnings.catch_warnings():
            # each busy run already has its caution line, and the result lists the ones never rerun:
            # the fits' warning that they are left out would repeat at every step
            warnings.filterwarnings("ignore", message=r"left \d+ runs? timed on a busy machine",
                                    category=RuntimeWarning)
            # a notebook or DuckDB shell holding the store open delays the loop's reads and writes,
            # never crashes it (a measured run would be lost and the experiment left "running")
            with self.store.patience(self._lock_wait_note):
                try:
                    return self._run()
                except KeyboardInterrupt:
                    self._mark_stopped_at_once()
                    raise

    #: the stop reason of a loop stopped by a second Ctrl-C (or a KeyboardInterrupt outside the CLI)
    STOPPED_AT_ONCE = "interrupted at once (a second Ctrl-C): the runs in flight were lost; the same command resumes"

    def _mark_stopped_at_once(self) -> None:
        """A second Ctrl-C stops the loop at once: what is stored stays, and the listing says
        ``interrupted`` as for the first Ctrl-C (it said ``killed``, which ``perfcast experiments``
        keeps for a process that vanished: kill -9, a reboot). Best effort: nothing here may hide
        the interrupt."""
        if self.mode != "run" or not self.steps:
            return
        from engine.interrupts import sigint_held

        # a third Ctrl-C during this read and write rolled the write back (the row stayed "running"): it
        # waits for them now; a fourth stops at once (a write waiting on a lock); the loop is stopping anyway
        with sigint_held(deliver=False):
            try:
                runs, n_failed, seconds, _ = self.committed()
                self._save_state("interrupted", {"stopped_because": self.STOPPED_AT_ONCE, "n_benchmarks": runs,
                                                 "benchmark_seconds": seconds, "n_failed": n_failed})
            except Exception:  # noqa: BLE001 - a locked or closed store: the row stays "running", listed as killed
                pass

    def _run(self) -> LoopResult:
        self.prepare()
        runs, n_failed, seconds, keys = self.committed()
        resumed_runs = self._prepared
        self._save_state("running")
        stopped = ""
        while True:
            if self._stop_request and not stopped:
                stopped = self._stop_request
            left, reason = self._budget_left(runs, seconds)
            free = self.executor.free()
            if reason is None and free > 0 and not stopped:
                n_pick = max(free, self.cfg.acquisition.q)
                if left is not None:
                    n_pick = min(n_pick, left)
                reruns = self._due_reruns(n_pick)
                for c, foreign in reruns:
                    self._emit("info", f"rerunning {c.key}: it was timed while other processes kept "
                                       f"{foreign:.2f} CPU cores busy")
                    self._reruns.add(c.key)
                picks: list[Config] = [c for c, _ in reruns]
                if n_pick > len(reruns):
                    chosen, rec, why = self.acquire(n_pick - len(reruns), runs, seconds)
                    picks += chosen
                    self.steps.append(rec)
                    self._save_state("running")
                    self._emit("step", rec)
                    if why:
                        stopped = why
                for c in ([] if self._stop_request else picks):  # a stop asked for during the fit
                    try:
                        self.executor.submit(self.spec_for(c))
                    except NotAvailableError as e:  # e.g. its worker left: drop it, never re-pick it
                        self.space = [x for x in self.space if x.key != c.key]
                        self._emit("info", f"skipped {c.key}: {e}")
            elif reason and not stopped:
                stopped = reason
            if not self.executor.pending():
                if stopped:
                    break
                if reason is None and self.executor.free() > 0:
                    if self.steps and not self.steps[-1].chosen:
                        stopped = stopped or "nothing left to run"
                        break
                    continue
                stopped = stopped or "nothing left to run"
                break
            result = self.executor.wait()
            if result is None:
                continue
            m = result.measurement
            self.store.save_measurement(m, experiment_id=self.experiment_id)  # committed as it lands
            runs += 1
            seconds += float(m.wall_time_s or 0.0)
            n_failed += 0 if m.ok else 1
            rerun = m.config.key in self._reruns
            self._reruns.discard(m.config.key)
            # a rerun's prediction was made before the first run, which the model has seen since:
            # scoring it again would count one forecast twice
            pred = None if rerun else self._predicted.get(m.config.key)
            entry = {"config_key": m.config.key, "status": m.status, "n_benchmarks": runs,
                     "benchmark_seconds": seconds, "predicted": pred, "observed": None, "ape": None,
                     "wall_time_s": m.wall_time_s, "error": (m.error or "")[:300] or None, "rerun": rerun}
            if m.ok:
                obs = m.latency.median_ms if self.truth_col == "latency_median_ms" else m.memory_peak_mib
                entry["observed"] = obs
                if pred is not None and obs:
                    entry["ape"] = abs(pred - obs) / obs
                from hardware.protocol import run_was_busy

                if self.mode == "run" and run_was_busy(m.foreign_cpu_cores, m.config.threads, m.config.hardware):
                    # a busy timing is a bound above the truth, which the fits leave out: scoring the
                    # forecast against it read the machine's load as model error (audit: 68% on a demo)
                    entry["busy"] = True
                    entry["ape_busy"], entry["ape"] = entry["ape"], None
            self.prequential.append(entry)
            self._save_state("running")
            self._emit("result", (m, entry))
        last = self.steps[-1] if self.steps else None
        # a stop rule (or an empty pool) ends on a step that scored the data as they are now: scoring
        # the same data again would print a second, identical "final fit"
        scored_now = (last is not None and not last.chosen and last.n_benchmarks == runs
                      and last.max_rel_width90 is not None)
        final = None if scored_now else self.final_evaluation(runs, seconds)
        if final is not None:
            self.steps.append(final)
            self._emit("step", final)
        result = LoopResult(self.experiment_id, self.cfg.name, self.mode, self.cfg.acquisition.name, self.steps, runs,
                            n_failed, seconds, stopped, resumed_runs, self.prequential, dict(self.executor.skipped),
                            n_reruns=sum(1 for p in self.prequential if p.get("rerun")),
                            busy_only=list(self._busy_only()[0]) if self.mode == "run" else [])
        status = "interrupted" if self._stop_request and stopped == self._stop_request else "finished"
        self._save_state(status, {"stopped_because": stopped, "n_benchmarks": runs,
                                      "benchmark_seconds": seconds, "n_failed": n_failed})
        return result
