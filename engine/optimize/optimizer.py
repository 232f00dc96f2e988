"""``optimize_deployment``: what should I deploy? Bayesian optimisation over deployment configs.

Online (``online=True``) — the loop::

    validate → enumerate candidates → keep what the executor can run
    repeat budget times:
        fit the surrogate's three GPs (log latency, log p90/median, log memory; warm start,
        roofline prior mean) on every observation so far; every metric is derived from them
        pick: posterior ranking while some metric has no data yet, then qLogNEI (one objective)
              or qLogNEHVI (several), the objectives and constraints sampled jointly
        benchmark it through the adapters (isolated child process), store it like any benchmark
        a failed / out-of-memory run is recorded and the configuration counts as infeasible
    final fit → best (posterior intervals, P(feasible)), Pareto set, alternatives (ranked by
    E[utility × 1{feasible}]), history

Observations already in the store for configurations of the space count from the start
(``use_existing``), so an optimisation never pays twice for a measurement perfcast already has;
measurements of other models of the same family on the same hardware are context for the GP
(``transfer``).

Offline (``online=False``) — no benchmark: the store's fitted predictor (the GP by default)
ranks the whole space by E[utility] × P(feasible) (see :mod:`engine.optimize.ranking`).
"""
from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np

from engine.config import Config, count_arg
from engine.errors import InvalidValueError
from engine.optimize import ranking
from engine.optimize.executors import Executor, make_executor
from engine.optimize.result import Assessment, Evaluation, OptimizationResult
from engine.optimize.spec import METRICS, Problem, build_problem, hourly_price, resolve_prices
from engine.records import Measurement

if TYPE_CHECKING:
    import pandas as pd

    from engine.store import Store

Callback = Callable[[int, int, Config, Optional[Evaluation]], None]
#: Adapter error texts that mean "this runtime refuses this precision/mode": not worth retrying
#: at another batch size or thread count.
REFUSAL_MARKERS: tuple[str, ...] = ("valid precisions", "valid modes")


def measured_values(m: Measurement, price: Optional[float]) -> dict[str, Optional[float]]:
    """The metrics of one successful run, natural units."""
    if not m.ok or m.latency is None:
        return {k: None for k in METRICS}
    med = m.latency.median_ms
    thr = m.throughput or m.config.batch_size * 1000.0 / med
    return {"throughput": thr, "latency_ms": med, "latency_p90_ms": max(m.latency.p90_ms, med),
            "memory_mib": m.memory_peak_mib, "cost_per_1m_usd": price * 1e6 / 3600.0 / thr if price else None}


def _row_values(r: Any, batch: int, price: Optional[float]) -> dict[str, Optional[float]]:
    def num(k: str) -> Optional[float]:
        try:
            v = float(r[k])
        except (KeyError, TypeError, ValueError):
            return None
        return v if np.isfinite(v) and v > 0 else None

    med = num("latency_median_ms")
    if med is None:
        return {k: None for k in METRICS}
    thr = batch * 1000.0 / med
    p90 = num("latency_p90_ms")
    return {"throughput": thr, "latency_ms": med, "latency_p90_ms": max(p90 or med, med),
            "memory_mib": num("memory_peak_mib"), "cost_per_1m_usd": price * 1e6 / 3600.0 / thr if price else None}


def _open_store(db: Union[None, str, "Store", bool]) -> Optional["Store"]:
    if db is False:
        return None
    from engine.store import api_store

    return api_store(None if db is None or db is True else db)  # a Path was once read as "the default store"


def _report_metrics(problem: Problem, prices: dict[str, Optional[float]]) -> list[str]:
    out = list(problem.metrics)
    for m in ("throughput", "latency_ms", "latency_p90_ms", "memory_mib"):
        if m not in out:
            out.append(m)
    if "cost_per_1m_usd" not in out and all(prices.get(c.hardware) for c in problem.candidates):
        out.append("cost_per_1m_usd")
    return out


def optimize_deployment(model: str, objective: Union[str, Sequence[str]] = "throughput",
                        constraints: Optional[Mapping[str, float]] = None,
                        space: Optional[Mapping[str, Any]] = None, budget: int = 20, online: bool = False,
                        executor: Union[str, Executor, None] = "local", db: Union[None, str, "Store", bool] = None, *,
                        iterations: Optional[int] = None, seed: int = 0, n_init: int = 1, use_existing: bool = True,
                        transfer: bool = True, max_context: int = 250, prices: Optional[Mapping[str, float]] = None,
                        predictor: Any = None, prior_data: Optional["pd.DataFrame"] = None,
                        candidates: Optional[Sequence[Config]] = None, featurizer: Any = None,
                        callback: Optional[Callback] = None, mc_samples: int = 128,
                        top_k: int = 5, should_stop: Optional[Callable[[], bool]] = None) -> OptimizationResult:
    """Find the deployment configuration of ``model`` that optimises ``objective`` under ``constraints``.

    >>> r = optimize_deployment("bert-base-uncased", "throughput", {"latency_p90_ms": 50},
    ...                         space={"hardware": ["cpu"], "batch_size": [1, 4, 16]}, budget=6, online=True)
    >>> r.best.config, r.best.throughput.interval(), r.best.prob_feasible

    ``objective``: a metric or a list of metrics (Pareto front): throughput, latency_ms (latency),
    latency_p90_ms, memory_mib (memory), cost_per_1m_usd (cost). ``constraints``: metric -> bound
    (an upper bound; a lower bound for throughput). ``space``: any of hardware, batch_size,
    precision, threads, runtime, seq_len, mode (lists; defaults fill the rest). ``budget``: the
    number of benchmarks (online). ``executor``: ``"local"`` (adapters, isolated child process),
    ``"ray"``, or an object with ``run(config) -> Measurement`` (and optionally ``check``).
    ``db``: a path, a Store, None (the default store) or False (store nothing). ``predictor``: a
    fitted predictor, a PerformancePredictor, or a predictor name (``"gp"``, ``"roofline"``, ...), for offline mode
    (default: the store's GP). ``prior_data``: measurements that
    calibrate the roofline prior and supply existing observations (default: the store's).
    ``candidates``: an explicit candidate list instead of the Cartesian product of ``space``.
    ``prices``: hourly USD prices by hardware id or platform name, overriding the catalog's (the
    local CPU has none) for the cost metric.
    ``transfer``: let the GP also learn from measurements of other models of the same family on the
    same hardware (at most ``max_context``): runtime, precision, batch and thread effects carry
    over between, say, BERT and RoBERTa, but not from a CNN or a decoder (on the shipped data, all
    families as context made the optimiser worse than random; the same family made it better).
    ``callback(step, budget, config, evaluation_or_None)`` reports progress. ``should_stop()`` is
    read before each fit and each benchmark; when it says True the loop ends there and the result
    ranks what was measured so far (``interrupted``; the experiment is stored as ``interrupted``).
    The CLI's first Ctrl-C sets it, so the benchmark in flight is stored and the ranking still
    printed. Online, the latest interrupted (or killed) optimisation of the same problem is resumed
    (its budget counts its runs) unless ``use_existing`` is False.
    """
    budget = count_arg("budget", budget, 1, "an integer >= 1 (the number of benchmarks)")
    if not isinstance(online, bool):  # online="no" is truthy and started real benchmarks
        raise InvalidValueError("online", online, "True (run benchmarks) or False (posterior only)")
    top_k = count_arg("top_k", top_k, 0, "an integer >= 0 (alternatives to return)")
    if iterations is not None:
        iterations = count_arg("iterations", iterations, 1, "an integer >= 1, or None for the adapter's default")
    # each checked before anything runs: seed=-1 and mc_samples=0 started a real benchmark and failed
    # after it, n_init="2" was a TypeError on '<', callback=5 "'int' object is not callable"
    n_init = count_arg("n_init", n_init, 1, "an integer >= 1")
    seed = count_arg("seed", seed, 0, "an integer >= 0")
    mc_samples = count_arg("mc_samples", mc_samples, 1, "an integer >= 1 (128 is enough)")
    max_context = count_arg("max_context", max_context, 0, "an integer >= 0 (measurements of related models)")
    for name, fn in (("callback", callback), ("should_stop", should_stop)):
        if fn is not None and not callable(fn):
            raise InvalidValueError(name, fn, "a function, or None")
    if not (predictor is None or isinstance(predictor, str) or hasattr(predictor, "fitted")
            or callable(getattr(predictor, "predict", None))):
        raise InvalidValueError("predictor", predictor, "a predictor name (gp, hierarchical, roofline), a "
                                "PerformancePredictor, a fitted predictor (engine.models), or None")
    store = _open_store(db)
    user_prices = resolve_prices(prices, store)
    problem = build_problem(model, objective, constraints, space, store, candidates, user_prices)
    prices_by_hw = {h: hourly_price(h, store, user_prices) for h in {c.hardware for c in problem.candidates}}
    if not online:
        result = _offline(problem, store, predictor, prices_by_hw, top_k)
    else:
        runner = make_executor(executor, iterations)
        runnable = runner.check(list(problem.candidates))
        from contextlib import nullcontext

        # a notebook or DuckDB shell holding the store open delays the optimisation, never crashes it
        with store.patience(_lock_wait_warning) if store is not None else nullcontext():
            result = _online(problem, runner, runnable, store, prices_by_hw, budget=budget, seed=seed,
                             n_init=n_init, use_existing=use_existing, prior_data=prior_data, featurizer=featurizer,
                             callback=callback, mc_samples=mc_samples, top_k=top_k,
                             max_context=max_context if transfer else 0, should_stop=should_stop)
    result.warnings = _cautions(result, store)
    return result


def _lock_wait_warning(why: str) -> None:
    import warnings

    warnings.warn(f"{why}; the optimisation waits until the lock is released (Ctrl-C to stop it)", RuntimeWarning,
                  stacklevel=2)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _cautions(result: OptimizationResult, store: Optional["Store"]) -> list[str]:
    """What ``predict`` says of the reported rows (:func:`engine.predict.answer_cautions`): an
    unmeasured kind (cuda on the shipped data) or a device without runs extrapolates, and the
    ranking can be wrong for the same reasons. Needs the store (none with ``db=False``)."""
    if store is None:
        return []
    from engine.predict import PerformancePredictor, answer_cautions, resolve

    rows = [a for a in (result.best, *result.pareto, *result.alternatives) if a is not None]
    devices = {h: resolve(h, store) for h in {a.config.hardware for a in rows}}
    return answer_cautions(PerformancePredictor(store), [(a.config, devices[a.config.hardware]) for a in rows], "rows",
                           ", and so can the ranking; one real run on each kind (perfcast benchmark ... --save) is "
                           "the fix")


# -- offline ---------------------------------------------------------------------------------------
def _offline(problem: Problem, store: Optional["Store"], predictor: Any, prices: dict[str, Optional[float]],
             top_k: int) -> OptimizationResult:
    if predictor is None or isinstance(predictor, str):  # a name, as PerformancePredictor takes ("roofline")
        from engine.predict import PerformancePredictor

        if store is None:
            raise InvalidValueError("db", False, "a store (offline mode ranks with the store's fitted predictor)")
        predictor = PerformancePredictor(store, predictor=predictor or "gp").fitted()
    elif hasattr(predictor, "fitted"):  # a PerformancePredictor: its predict() takes names, not Configs
        predictor = predictor.fitted()
    configs = list(problem.candidates)
    pset = predictor.predict(configs)
    post: dict[str, ranking.LogNormal] = {}
    for m in ("throughput", "latency_ms", "latency_p90_ms", "memory_mib"):
        if m in pset.mu_log:
            post[m] = (np.asarray(pset.mu_log[m], float), np.asarray(pset.sigma_log[m], float))
        elif m in pset.samples:
            logs = np.log(np.maximum(pset.samples[m], 1e-12))
            post[m] = (logs.mean(0), logs.std(0))
    if "latency_p90_ms" not in post and "latency_ms" in post:
        post["latency_p90_ms"] = post["latency_ms"]
    price = np.array([prices.get(c.hardware) or np.nan for c in configs])
    if np.all(np.isfinite(price)):
        mu, sd = post["throughput"]
        post["cost_per_1m_usd"] = (np.log(price * 1e6 / 3600.0) - mu, sd)
    missing = [m for m in problem.metrics if m not in post]
    if missing:
        raise InvalidValueError("metric", missing[0], f"one the predictor '{getattr(predictor, 'name', '?')}' "
                                f"models: {', '.join(post)}")
    floors = dict(pset.floor)  # memory: never below what must be resident
    score, pf = ranking.scores(problem, post, floors=floors)
    order = [int(i) for i in np.argsort(-score, kind="stable")]
    # the answer: the best score among configurations feasible with P >= 0.5; with none, the one
    # closest to feasible. The top score alone could sit below 0.5 with 16 rows above it, and the
    # answer then read "nothing is likely feasible" (audit O)
    feasible_rows = [i for i in order if pf[i] >= 0.5]
    best_i = feasible_rows[0] if feasible_rows else max(order, key=lambda i: (pf[i], score[i]))
    order = [best_i, *(i for i in order if i != best_i)]
    measured = _store_values(store, configs, prices)
    top = [ranking.assessment(configs, post, score, pf, i, evaluated=i in measured,
                              measured=measured.get(i), floors=floors) for i in order[: top_k + 1]]
    pareto: list[Assessment] = []
    if problem.multi:
        feas = [int(i) for i in np.nonzero(pf >= 0.5)[0]]
        pareto = [ranking.assessment(configs, post, score, pf, i, evaluated=i in measured, measured=measured.get(i),
                                     floors=floors) for i in ranking.pareto_indices(problem, post, feas, floors)]
    notes = [f"offline: ranked {len(configs)} configurations by E[utility] x P(feasible) under the "
             f"'{getattr(predictor, 'name', 'predictor')}' posterior; no benchmark was run"]
    if top and top[0].prob_feasible < 0.5:
        notes.append(f"no configuration is feasible with probability >= 0.5 (best: {top[0].prob_feasible:.2f})")
    return OptimizationResult(problem.model, problem.objectives, {c.metric: c.bound for c in problem.constraints},
                              False, top[0] if top else None, pareto, top[1:], [], len(configs),
                              getattr(predictor, "name", ""), notes)


def _store_values(store: Optional["Store"], configs: Sequence[Config],
                  prices: dict[str, Optional[float]]) -> dict[int, dict[str, Optional[float]]]:
    """Latest measured values of candidates that the store already has (offline annotations)."""
    if store is None:
        return {}
    from engine.models.features import configs_from_frame
    from engine.models.targets import left_out_busy

    models = sorted({c.model for c in configs})
    df = store.measurements(where="model IN (" + ", ".join("?" * len(models)) + ")", params=models)
    if len(df):  # the fits' rule: a run timed on a busy machine is no measurement of the configuration
        df = df[~left_out_busy(df)].reset_index(drop=True)  # (audit O: shown as "evaluated" beside it)
    index = {c.key: i for i, c in enumerate(configs)}
    out: dict[int, dict[str, Optional[float]]] = {}
    for r, c in enumerate(configs_from_frame(df)):
        i = index.get(c.key)
        if i is not None:
            out[i] = _row_values(df.iloc[r], c.batch_size, prices.get(c.hardware))
    return out


# -- online ----------------------------------------------------------------------------------------
def _online(problem: Problem, runner: Executor, runnable: Sequence[Config], store: Optional["Store"],
            prices: dict[str, Optional[float]], *, budget: int, seed: int, n_init: int, use_existing: bool,
            prior_data: Optional["pd.DataFrame"], featurizer: Any, callback: Optional[Callback], mc_samples: int,
            top_k: int, max_context: int = 0,
            should_stop: Optional[Callable[[], bool]] = None) -> OptimizationResult:
    from engine.optimize.acquisition import choose_next
    from engine.models.features import configs_from_frame
    from hardware.protocol import busy_note
    from engine.optimize.surrogate import Observation, Surrogate, build_table, calibrated_roofline, single_thread

    if prior_data is None and store is not None:
        prior_data = store.measurements()
    df = prior_data if prior_data is not None else None
    if df is not None and len(df):
        from engine.models.targets import left_out_busy

        df = df[df["status"] == "ok"] if "status" in df.columns else df
        df = df[df["latency_median_ms"].notna()].reset_index(drop=True)
        # the fits' rule: a stored run timed on a busy machine is no observation (engine.models.targets);
        # this optimisation's own runs are, with the busy-machine note below
        df = df[~left_out_busy(df)].reset_index(drop=True)
    rows = configs_from_frame(df) if df is not None and len(df) else []
    configs = list(problem.candidates)
    hw = {c.hardware for c in configs}
    modes = {c.mode for c in configs}
    cand_keys = {c.key for c in configs}
    from engine.catalog import get_model, models as catalog_models

    family = get_model(problem.model).family
    known = catalog_models()  # a stored run of a user model whose file is not set here is no context (audit)
    context = [c for c in rows if c.key not in cand_keys and c.hardware in hw and c.mode in modes
               and c.model in known and known[c.model].family == family]
    context = context[-max_context:] if max_context > 0 else []
    roof = calibrated_roofline(prior_data, featurizer)
    table = build_table(configs, roof, prices, featurizer, context=context)
    n_cand = table.n_candidates
    metrics = _report_metrics(problem, prices)
    surrogate = Surrogate(table, metrics)
    notes: list[str] = []
    skipped = len(configs) - len(runnable)
    if skipped:
        notes.append(f"{skipped} of {len(configs)} configurations cannot be benchmarked by this executor "
                     "and were only predicted")

    observations: list[Observation] = []
    evaluated: set[int] = set()
    excluded: set[int] = set()
    n_old = n_ctx = 0
    for i, c in enumerate(rows):
        j = table.index.get(c.key)
        if j is None or (j < n_cand and not use_existing):
            continue
        observations.append(Observation(j, _row_values(df.iloc[i], c.batch_size, prices.get(c.hardware))))
        if j < n_cand:
            evaluated.add(j)
            n_old += 1
        else:
            n_ctx += 1
    if n_old:
        notes.append(f"{_plural(n_old, 'measurement')} already in the store cover{'s' if n_old == 1 else ''} "
                     f"{_plural(len(evaluated), 'configuration')} of the space; they count as observations")
    if n_ctx:
        notes.append(f"the GP also learned from {_plural(n_ctx, 'measurement')} of other configurations on the same "
                     f"hardware ({_plural(len({c.model for c in context}), 'model')}; transfer)")

    experiment_id, done, earlier, owner = None, 0, [], None
    if store is not None:
        experiment_id, done, earlier, owner = _claim(store, problem, budget, use_existing, notes)

    run_rows = [table.index[c.key] for c in runnable]
    cap = next((c.bound for c in problem.constraints if c.metric == "memory_mib"), None)
    over: set[int] = set()
    if cap is not None:  # what must be resident is over the cap: certain to fail it, never worth a run
        over = {j for j in run_rows if table.floors["memory_mib"][j] > cap}
        if over:
            excluded |= over
            notes.append(f"{_plural(len(over), 'configuration')} not run: the memory that must be resident "
                         f"(weights, largest activation, KV cache) is over the {cap:g} MiB cap")
    history: list[Evaluation] = []
    busy: list[str] = []  # keys of runs timed while other processes kept the cores busy
    interrupted = False

    def stopped(step: int) -> bool:
        """Read before each step's fit and again before its benchmark starts: a Ctrl-C during the
        fit or the acquisition must not start another benchmark."""
        if should_stop is None or not should_stop():
            return False
        notes.append(f"interrupted after {_plural(step - 1, 'evaluation')} of {budget}; the ranking uses "
                     f"{'it' if step == 2 else 'those'}" if step > 1 else
                     f"interrupted before the first of {budget} evaluations: the ranking is the posterior's alone")
        return True

    try:
        for step in range(done + 1, budget + 1):
            if stopped(step):
                interrupted = True
                break
            available = [j for j in run_rows if j not in evaluated and j not in excluded]
            if not available:
                why = "every runnable configuration has been measured"
                if over:  # review D2: an all-over-cap space read "has been measured" with nothing run
                    why = (f"every runnable configuration must hold more than the {cap:g} MiB cap"
                           if not set(run_rows) - over else
                           f"every runnable configuration under the {cap:g} MiB cap has been measured")
                notes.append(f"stopped after {_plural(step - 1, 'evaluation')}: {why}")
                break
            with single_thread():
                # hyperparameters re-optimised on steps 1, 2 and every fourth step; in between the GP is only
                # conditioned on the new data (one point barely moves them; fits dominate the loop's time)
                surrogate.fit(observations, problem.metrics, optimize=step <= 2 or step % 4 == 0)
                own = [o.index for o in observations if o.index < n_cand]
                if surrogate.ready(problem.metrics) and len(own) >= n_init:
                    choice = choose_next(problem, surrogate, own, available,
                                         mc_samples=mc_samples, seed=seed + step)
                    j, method, value = choice.index, choice.method, choice.value
                else:
                    floors = {m: f[available] for m, f in surrogate.table.floors.items()}
                    score, _ = ranking.joint_scores(problem, surrogate.joint(problem.metrics, available), floors)
                    k = int(np.argmax(score))
                    j, method, value = available[k], "prior", float(score[k])
            cfg = configs[j]
            if stopped(step):
                interrupted = True
                break
            if callback is not None:
                callback(step, budget, cfg, None)
            m = runner.run(cfg)
            run_id = store.patiently(lambda: store.save_measurement(m, experiment_id),
                                     lambda why: notes.append(f"{why}: a write waited for it")) \
                if store is not None else None
            evaluated.add(j)
            vals = measured_values(m, prices.get(cfg.hardware))
            if m.ok:
                observations.append(Observation(j, vals))
            else:
                excluded.add(j)
                if m.error and any(s in m.error for s in REFUSAL_MARKERS):
                    group = (cfg.hardware, cfg.runtime, cfg.precision, cfg.mode)
                    same = {i for i, c in enumerate(configs) if (c.hardware, c.runtime, c.precision, c.mode) == group}
                    excluded |= same
                    notes.append(f"{cfg.runtime} refused {cfg.precision}/{cfg.mode} on {cfg.hardware}; "
                                 f"{len(same) - 1} similar configurations dropped")
            first = problem.objectives[0]
            ev = Evaluation(step=step, config=cfg, status=m.status, measured=vals,
                            feasible=bool(m.ok and problem.feasible(vals)), objective=vals.get(first), chosen_by=method,
                            acquisition_value=value, error=(m.error or "").splitlines()[0][:300] if m.error else None,
                            wall_time_s=m.wall_time_s, run_id=run_id)
            history.append(ev)
            if store is not None and experiment_id is not None:  # a kill -9 keeps the history up to here
                store.upsert_experiment(experiment_id, f"optimize {problem.model}", _problem_dict(problem, budget),
                                        "running", state={"owner": owner,
                                                          "history": [*earlier, *(e.to_dict() for e in history)]})
            if busy_note(m):
                busy.append(cfg.key)
            if callback is not None:
                callback(step, budget, cfg, ev)
        if busy:
            notes.append(f"{len(busy)} of the {len(history)} runs {'was' if len(busy) == 1 else 'were'} timed while "
                         "other processes kept this machine's "
                         f"cores busy ({', '.join(busy[:3])}{', …' if len(busy) > 3 else ''}): their timings are "
                         "probably slow; rerun them on a quiet machine (perfcast benchmark ... --save)")
        with single_thread():
            result = _final(problem, surrogate, observations, metrics, [*_earlier(earlier), *history], notes, top_k)
    except BaseException:
        # Ctrl-C (a second one during the final fit too, which left the row "running", listed as
        # killed) or a crash: the runs are stored already; the experiment must not stay "running"
        _mark_interrupted(store, experiment_id, problem, budget, [*earlier, *(e.to_dict() for e in history)])
        raise
    result.experiment_id = experiment_id
    result.interrupted = interrupted
    if store is not None and experiment_id is not None:
        from engine.interrupts import sigint_held

        # a Ctrl-C during this write (the second, after a first one stopped the loop) waits for it, then
        # stops the call: it rolled the write back, and the row stayed "running" (listed as killed)
        with sigint_held():
            store.upsert_experiment(experiment_id, f"optimize {problem.model}", _problem_dict(problem, budget),
                                    "interrupted" if interrupted else "done",
                                    state={"history": [e.to_dict() for e in result.history],
                                           "best": result.best.to_dict() if result.best else None})
    return result


def _mark_interrupted(store: Optional["Store"], experiment_id: Optional[str], problem: Problem, budget: int,
                      history: list[dict[str, Any]]) -> None:
    """The experiment of an optimisation stopped at once (a second Ctrl-C, a crash) reads
    ``interrupted`` and resumes, as a loop's does. Best effort: a locked or closed store must not
    replace the interrupt with a traceback of its own (the row then stays "running", listed as killed).
    A Ctrl-C during the write (a third one; users press it repeatedly) waits for it to land: it rolled
    the write back, leaving the row "running" (session 33). A fourth still stops it at once, for a
    write that waits on another process's lock; the exception on its way out already stops the call,
    so the held one is not delivered again."""
    if store is None or experiment_id is None:
        return
    from engine.interrupts import sigint_held

    with sigint_held(deliver=False):
        try:
            store.upsert_experiment(experiment_id, f"optimize {problem.model}", _problem_dict(problem, budget),
                                    "interrupted", state={"history": history})
        except Exception:  # noqa: BLE001 - see the docstring
            pass


def _claim(store: "Store", problem: Problem, budget: int, use_existing: bool,
           notes: list[str]) -> tuple[str, int, list[dict[str, Any]], dict[str, Any]]:
    """The experiment this optimisation records its runs under, marked as run by this process
    (``engine.store.owner``): the same problem's unfinished one if there is one to resume (see
    :func:`_resumable`), else a new one. One that another live process is still running is left to
    it, and this optimisation starts its own."""
    from engine.store.owner import ExperimentBusyError, claim

    name, config = f"optimize {problem.model}", _problem_dict(problem, budget)
    experiment_id, done, earlier = _resumable(store, problem, budget) if use_existing else (None, 0, [])
    if experiment_id is not None:
        try:
            owner = claim(store, experiment_id, name, config)
        except ExperimentBusyError as e:
            notes.append(f"{e.args[0].split(';')[0]}: this optimisation is a new experiment beside it")
        else:
            notes.append(f"resumed {experiment_id}, which stopped after {done} of {budget} evaluations (its runs "
                         "count as observations, except one timed on a busy machine, which may be measured "
                         f"again); {max(budget - done, 0)} more now")
            return experiment_id, done, earlier, owner
    experiment_id = f"optimize-{uuid.uuid4().hex[:12]}"
    return experiment_id, 0, [], claim(store, experiment_id, name, config)


def _earlier(history: list[dict[str, Any]]) -> list[Evaluation]:
    """A resumed experiment's earlier evaluations, as its state kept them (a record that no longer
    reads, e.g. of a configuration key from an older version, is left out, not fatal)."""
    out = []
    for d in history:
        try:
            out.append(Evaluation.from_dict(d))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _resumable(store: "Store", problem: Problem, budget: int) -> tuple[Optional[str], int, list[dict[str, Any]]]:
    """The latest optimisation of the same problem (model, objectives, constraints, space) that
    stopped before its end (Ctrl-C, a crash, a kill), to go on with: (its id, how many runs it
    stored, its history), else (None, 0, []). Its runs are already observations (they are in the
    store), so going on means only not spending the budget again: the same command resumes, as
    ``perfcast run CONFIG`` does. The budget may differ (more or fewer evaluations in all)."""
    import json

    def key(d: Mapping[str, Any]) -> str:
        return json.dumps({k: v for k, v in d.items() if k != "budget"}, sort_keys=True, default=str)

    want = key(_problem_dict(problem, budget))
    for e in store.experiments():  # most recently updated first
        if not e["experiment_id"].startswith("optimize-") or key(e.get("config") or {}) != want:
            continue
        if e["status"] not in ("interrupted", "running"):  # "running" whose process is gone: killed
            break  # the latest of this problem finished: start afresh
        runs = store.measurements(status=None, where="experiment_id = ?", params=[e["experiment_id"]])
        return e["experiment_id"], len(runs), list((e.get("state") or {}).get("history") or [])
    return None, 0, []


def _final(problem: Problem, surrogate: Any, observations: list, metrics: list[str], history: list[Evaluation],
           notes: list[str], top_k: int) -> OptimizationResult:
    n_cand = surrogate.table.n_candidates
    configs = list(surrogate.table.configs[:n_cand])
    cons = {c.metric: c.bound for c in problem.constraints}
    if not observations:
        notes.append("no successful evaluation: the ranking below is the roofline prior only")
    surrogate.fit(observations, metrics)
    joint = surrogate.joint(metrics)  # each base GP's posterior once, for every metric derived from it
    post = {m: joint.marginal(m) for m in metrics}
    floors = {m: f[:n_cand] for m, f in surrogate.table.floors.items()}  # memory: never below what must be resident
    score, pf = ranking.scores(problem, post, joint, floors)
    measured: dict[int, dict[str, Optional[float]]] = {}
    for o in observations:
        if o.index < n_cand:
            measured[o.index] = o.values  # the latest run of a configuration
    seen = sorted(measured)
    best_i: Optional[int] = None
    if seen:
        first = problem.objectives[0]
        feas = [i for i in seen if pf[i] >= 0.5]
        if feas:
            median = ranking.posterior_median(post, first, floors)
            best_i = max(feas, key=lambda i: problem.sign(first) * median[i])
        else:
            best_i = max(seen, key=lambda i: pf[i])
            notes.append(f"no evaluated configuration is feasible with probability >= 0.5 (best: {pf[best_i]:.2f})")
    else:
        best_i = int(np.argmax(score))

    def assess(i: int) -> Assessment:
        return ranking.assessment(configs, post, score, pf, i, evaluated=i in measured, measured=measured.get(i),
                                  floors=floors)

    best = assess(best_i) if best_i is not None else None
    order = [int(i) for i in np.argsort(-score, kind="stable") if int(i) != best_i][:top_k]
    pareto = []
    if problem.multi:
        rows = [i for i in seen if pf[i] >= 0.5] or seen
        pareto = [assess(i) for i in ranking.pareto_indices(problem, post, rows, floors)]
    return OptimizationResult(problem.model, problem.objectives, cons, True, best, pareto,
                              [assess(i) for i in order], history, len(configs),
                              "per-metric SingleTaskGP (roofline prior mean)", notes)


def _problem_dict(problem: Problem, budget: int) -> dict[str, Any]:
    return {"model": problem.model, "objectives": list(problem.objectives),
            "constraints": {c.metric: c.bound for c in problem.constraints}, "space": problem.space,
            "budget": budget, "n_candidates": len(problem.candidates)}
