"""``perfcast run``, ``perfcast replay`` and ``perfcast demo``: config-driven active-learning loops."""
from __future__ import annotations

import json
from typing import Any, Optional

import click
from rich.markup import escape

from engine.cli.common import check_plot, console, db_option, emit_json, fmt_number, json_option, split_csv

DEMO_CONFIG = "cpu-quick"
#: The stop reason of a loop ended by Ctrl-C (its status is then ``interrupted``).
INTERRUPTED = "interrupted (Ctrl-C) after the benchmarks in flight; the same command resumes"


def _fmt_pct(v: Optional[float]) -> str:
    return "–" if v is None else f"{v:.0%}"


def _ratio_end(ratio: float) -> str:
    """An end of a bootstrap interval of the savings ratio: 0 is a resample in which the strategy
    never reached the target (no saving), which printed as "0.00"."""
    return "never reached" if ratio <= 0.0 else f"{ratio:.2f}"


def _times(ratio: float, what: str) -> str:
    """'1.27× fewer benchmarks', or for a ratio below one '1.33× more benchmarks' (not '0.75× fewer')."""
    if round(ratio, 2) == 1.0:
        return f"as many {what}"
    if ratio > 1.0 or ratio <= 0.0:
        return f"{ratio:.2f}× fewer {what}"
    return f"{1.0 / ratio:.2f}× more {what}"


def _short(config: Any) -> str:
    """A configuration (or its key) as a person reads it: ``gpt2 cpu torch fp32 b8 s128 t1``; the
    store and ``--json`` keep the full key."""
    from engine.cli.common import config_text
    from engine.config import Config

    if isinstance(config, str):
        try:
            config = Config.from_key(config)
        except Exception:  # noqa: BLE001 - an unparsable key is shown as it is
            return config
    return f"{config.model} {config_text(config)}"


class LoopDisplay:
    """Rich progress bar plus one line per acquisition step and per landed benchmark."""

    def __init__(self, con: Any, total: Optional[int], label: str, quiet: bool = False, unit: str = "ms") -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.quiet = quiet
        self.unit = unit  # of a landed run's observed value: the loop's metric (latency ms, memory MiB)
        # with --json the step lines stay off, but a person at the terminal still sees the bar (on
        # stderr: stdout is the JSON document); a script's captured stderr gets neither
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=con, transient=quiet,
                                 disable=quiet and not getattr(con, "is_terminal", False))
        self.task = self.progress.add_task(label, total=total)
        self.con = con

    def __enter__(self) -> "LoopDisplay":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def print(self, text: str) -> None:
        if not self.quiet:
            self.progress.console.print(text, highlight=False)

    def __call__(self, kind: str, payload: Any) -> None:
        if kind == "info":  # perfcast's words, with an adapter's or DuckDB's message inside: not markup
            self.print(f"[dim]{escape(str(payload))}[/dim]")
        elif kind == "step":
            s = payload
            # a step that chose nothing and fitted is the last scoring; one that stopped on an empty
            # pool before any fit ("initial design") is not a fit at all (it printed "final fit" twice)
            head = "final fit" if not s.chosen and s.fitted != "initial design" else f"step {s.step}"
            # two lines, so that each fits an 80-column terminal: what was done, then what the posterior says
            self.print(f"[bold cyan]{head}[/bold cyan] · {s.n_benchmarks} runs, {s.benchmark_seconds:.0f} benchmark-s · "
                       f"{s.fitted} {s.fit_s:.1f}s, acquire {s.acquire_s:.1f}s")
            width = (f"90% width max {_fmt_pct(s.max_rel_width90)} mean {_fmt_pct(s.mean_rel_width90)}"
                     if s.max_rel_width90 is not None else ("nothing left to predict" if s.pool_size == 0
                                                            else "no model yet"))
            ape = ""
            if s.heldout_median_ape is not None:
                held = "" if s.heldout_n == s.pool_size else f" (n={s.heldout_n})"
                ape = f" · held-out APE {_fmt_pct(s.heldout_median_ape)}{held}"
            elif s.max_reducible90 is not None:
                # a real run has no held-out error; what more benchmarks can still narrow takes its place
                # (stop.max_reducible reads it); a replay line has no room for both in 80 columns
                width += f" · ≤{_fmt_pct(s.max_reducible90)} reducible"
            alpha = f" · info/cost^{s.cost_exponent:.2f}" if s.cost_exponent is not None and s.chosen else ""
            self.print(f"   [dim]pool {s.pool_size} · {width}{ape}{alpha}[/dim]")
            for c in s.chosen:
                if "information_gain" in c:
                    ig = c.get("information_gain")
                    cost = c.get("cost_s")
                    # the prediction is printed with the result (as its APE) and kept in --json
                    self.print(f"   → {_short(c['config_key'])} · {'n/a' if ig is None else f'{ig:.2f}'} nats, "
                               f"~{cost or 0:.0f}s")
                else:
                    self.print(f"   → {_short(c['config_key'])} ({escape(str(c.get('reason', '')))})")
        elif kind == "result":
            m, entry = payload
            if m.ok:
                pred = entry.get("predicted")
                extra = f" (APE {entry['ape']:.0%})" if pred is not None and entry.get("ape") is not None else ""
                if entry.get("busy"):
                    # said on the run's own line: a caution line under each busy run repeated advice
                    # the loop follows itself (it reruns them, benchmark.rerun_busy) and the report
                    # ends with the ones never rerun, counted, with their commands (_busy_caution)
                    extra = " (not scored: timed on a busy machine)"
                again = " (rerun)" if entry.get("rerun") else ""
                value = f"{fmt_number(entry['observed'])} {self.unit}"
                self.print(f"   [green]✓[/green] {_short(m.config)}{again}: {value}{extra} {m.wall_time_s or 0:.0f}s")
            else:
                # a failed run's error is the adapter's text: "[/x]" in it was a MarkupError that ended
                # the loop, and "[batch, seq]" vanished from the line
                self.print(f"   [red]✗[/red] {_short(m.config)}: {m.status}: "
                           f"{escape(m.error.splitlines()[0][:120]) if m.error else ''}")
            self.progress.advance(self.task)


def _compare_after_run(cfg: Any, result: Any, con: Any, quiet: bool) -> tuple[list[Any], str]:
    """Replay random and max-variance (and the chosen acquisition) on the same pool, if the
    config's replay dataset (``replay.dataset``: the shipped runs or a bundled grid of the space)
    covers it; returns the curves and a one-line note of what was done."""
    from engine.errors import InvalidValueError, NotAvailableError
    from experiments.replay import load_dataset
    from experiments.report import compare, curve_of
    from experiments.space import replay_pool, space_from_dataset

    try:
        data = load_dataset(cfg.replay.dataset)
    except (NotAvailableError, InvalidValueError) as e:
        return [], f"baselines not replayed: {e}"
    what = "the shipped dataset" if cfg.replay.dataset == "shipped" else f"the replay dataset {cfg.replay.dataset!r}"
    need = max(2 * max(result.n_benchmarks, 1), cfg.replay.initial_runs + 4)
    # this machine's device may not be in the data: then the same pool as measured on the device
    # that is (every axis but the device), said so in the note
    found = replay_pool(cfg.search_space, data, need)
    if found is None:
        other = " here, nor that many on another device" if cfg.search_space.hardware else ""
        return [], (f"baselines not replayed: {what} has {len(space_from_dataset(cfg.search_space, data))} "
                    f"configurations of this search space{other} (need >= {need} to replay "
                    f"{result.n_benchmarks} benchmarks)")
    space, pool = found.space, found.configs
    where = "" if found.device is None else (
        f" as measured on {found.device} (this machine's device is not in it, so the baselines ran on another "
        "device than the real run)")
    rcfg = cfg.model_copy(update={"budget": cfg.budget.model_copy(update={"runs": max(result.n_benchmarks, 1),
                                                                          "benchmark_seconds": None}),
                                  "stop": type(cfg.stop)(),  # no stop rule: a baseline spends the run's count
                                  "search_space": space})
    if not quiet:
        con.print(f"[dim]replaying {cfg.acquisition.name}, random and max-variance on the {len(pool)} configurations "
                  f"of this search space in {what}{where}…[/dim]")
    from contextlib import nullcontext

    strategies = [cfg.acquisition.name, "random", "max-variance"]
    # 3 strategies × the seeds: a minute or two with nothing else on the screen
    with nullcontext() if quiet else con.status(f"replaying {len(strategies)} strategies × {len(cfg.replay.seeds)} "
                                                "seeds…"):
        res = compare(rcfg, data, strategies, cfg.replay.seeds)
    start = ("each replay starting, as the real run did, from a store holding the shipped runs"
             if cfg.replay.prior == "shipped" else "each replay starting from an empty store")
    if cfg.replay.prior != "shipped" and result.n_benchmarks <= cfg.replay.initial_runs:
        # every strategy's replay is its random start: the same picks, the same figures (audit)
        start += (f"; with {result.n_benchmarks} benchmarks, no more than replay.initial_runs "
                  f"({cfg.replay.initial_runs}), every strategy's replay is the same random start, so the "
                  "rows cannot differ")
    return [curve_of(k, v, n_max=max(result.n_benchmarks, 1)) for k, v in res.items()], \
        f"baselines replayed on the {len(pool)} configurations of this search space in {what}{where}; {start}"


def _space_in_dataset(cfg: Any, data: Any, source: Optional[str] = None) -> tuple[Any, str]:
    """``cfg`` as is when the replay data hold enough of its search space (a random initial design
    and one pick); else pointed at the device of the data that holds most of it (a real loop's
    ``hardware: [cpu]`` is this machine's CPU, which a recorded dataset rarely holds), with a line
    saying so. A ``hardware`` entry that names nothing (a typo) is refused first, naming ``source``."""
    from experiments.space import check_replay_hardware, replay_pool

    check_replay_hardware(cfg.search_space, data, source or cfg.name)
    need = cfg.replay.initial_runs + 1
    found = replay_pool(cfg.search_space, data, need=need)
    if found is None:
        some = replay_pool(cfg.search_space, data, need=1)
        if some is not None:  # the space is there, only smaller than the random start plus one pick
            from engine.errors import InvalidValueError

            where = f" on {some.device}" if some.device else ""
            raise InvalidValueError("replay.initial_runs", cfg.replay.initial_runs,
                                    f"fewer than the {len(some.configs)} configurations of {cfg.name}'s search "
                                    f"space in the replay data{where} (a replay needs initial_runs + 1)")
    if found is None or found.device is None:
        return cfg, ""  # as given (run_replay says so when too little of it is in the data)
    # "this machine's device" only when the space names this machine (cpu, torch-cpu): a config that
    # names another device the data lack was told it was this machine's
    from hardware.registry import ADAPTERS, PLATFORMS

    named = cfg.search_space.hardware or []
    here = all(h.strip().lower() in (*ADAPTERS, *PLATFORMS) for h in named)
    missing = "this machine's device is" if here else f"{', '.join(named)} {'is' if len(named) == 1 else 'are'}"
    return (cfg.model_copy(update={"search_space": found.space}),
            f"{missing} not in the replay data: replaying the {len(found.configs)} configurations of "
            f"this search space as measured on {found.device}")


def run_experiment(config: str, executor: str, workers: int, db_path: Optional[str], plot: Optional[str],
                   as_json: bool, compare_baselines: bool = True, address: Optional[str] = None) -> dict[str, Any]:
    from experiments.config import check_predictor_options, load_config, resolve_config
    from experiments.executors import LocalExecutor, make_executor
    from experiments.loop import ExperimentLoop
    from experiments.report import plot_report, print_report, real_run_curve
    from experiments.space import expand_space

    from engine.cli.common import open_store
    from engine.store.paths import db_argument
    from engine.cli.interrupt import first_interrupt_calls

    if address and executor != "ray":
        from engine.errors import InvalidValueError

        raise InvalidValueError("--address", address, "a Ray head HOST:PORT, only with --executor ray")
    check_plot("--plot", plot)  # now, not after the loop
    cfg = load_config(config)
    if compare_baselines:  # the baselines replay after the loop: a typo in their dataset is refused now
        from experiments.replay import check_dataset

        check_dataset(cfg.replay.dataset)
    source, _ = resolve_config(config)
    space = expand_space(cfg.search_space, source)
    # the loop checks it too, but after the store is made (a typo left a new seeded --db behind)
    check_predictor_options(cfg, source)
    if executor == "ray":  # no Ray, or a head that does not answer: one line before a store is made
        import os

        from experiments.ray_cluster import check_reachable, require_ray

        require_ray()
        check_reachable(address or os.environ.get("RAY_ADDRESS") or "auto")
    store = open_store(db_path)
    ex = LocalExecutor(workers=workers) if executor == "local" else make_executor(executor, address=address)
    con = console(stderr=as_json)
    total = cfg.budget.runs if cfg.budget.runs is not None else (None if cfg.budget.benchmark_seconds else 10)
    try:
        unit = "MiB" if cfg.acquisition.metric == "memory" else "ms"  # what the loop observes (experiments.loop)
        display = LoopDisplay(con, total, f"{cfg.name} benchmarks", quiet=as_json, unit=unit)
        held: list[tuple[str, Any]] = []  # prepare()'s lines (resuming, left-out configurations) go under the header
        loop = ExperimentLoop(cfg, store, ex, space, mode="run", on_event=lambda kind, p: held.append((kind, p)))
        # before the header: an executor that runs none of it, a --db that is no DuckDB file, another
        # process running it are one line with nothing printed before it (the header came first)
        loop.prepare()
        if not as_json:
            how = (f"q={cfg.acquisition.q}" if cfg.acquisition.name == "random"  # uniform picks: cost plays no part
                   else f"q={cfg.acquisition.q}, cost-aware={cfg.acquisition.cost_aware}")
            # the config's path and the store's are the user's words: "lab[v2].duckdb" printed as "lab.duckdb"
            con.print(f"[bold]{cfg.name}[/bold] ({escape(source)}): {len(space)} configurations · predictor "
                      f"{cfg.predictor.kind} · acquisition {cfg.acquisition.name} ({how}) · executor {ex.name} · "
                      f"db {escape(str(store.path))}")
        for kind, payload in held:
            display(kind, payload)
        loop.on_event = display
        with display:
            display.progress.update(display.task, completed=loop.committed()[0])  # a resumed loop's runs count

            def stop_after_inflight() -> None:
                loop.request_stop(INTERRUPTED)
                con.print("[yellow]Ctrl-C: the benchmark in flight will finish and be stored, then the loop "
                          "stops (Ctrl-C again stops now)[/yellow]", highlight=False)

            with first_interrupt_calls(stop_after_inflight):
                result = loop.run()
    finally:
        ex.close()
    interrupted = result.stopped_because == INTERRUPTED
    curves = [real_run_curve(result)]
    note = "baselines not replayed (--no-compare)" if not interrupted else "baselines not replayed (interrupted)"
    if compare_baselines and not interrupted and result.n_benchmarks == result.resumed_runs and result.resumed_runs:
        # a finished loop started again: nothing new was measured, and the same replays would cost a minute
        note = ("baselines not replayed: this run measured nothing new (the loop had finished); raise budget.runs "
                "to continue it")
    elif compare_baselines and not interrupted:
        more, note = _compare_after_run(cfg, result, con, as_json)
        curves += more
    if not as_json:
        reruns = f", {result.n_reruns} rerun on a busy machine" if result.n_reruns else ""
        con.print(f"[bold]done[/bold]: {result.n_benchmarks} benchmarks ({result.n_failed} failed{reruns}), "
                  f"{result.benchmark_seconds:.0f} benchmark-s; stopped: {escape(str(result.stopped_because))}")
        print_report(con, curves, title=f"{cfg.name}: learning curves")
        con.print(f"[dim]{note}[/dim]")
        if result.busy_only:
            _busy_caution(con, cfg, result.busy_only, db=db_argument(store.path))
    if plot:
        plot_report(plot, curves, title=f"{cfg.name} ({cfg.acquisition.name})")
        if not as_json:
            con.print(f"plot written to {escape(plot)}", highlight=False)
    out = {"experiment": result.to_dict(), "curves": [c.to_dict() for c in curves], "comparison_note": note,
           "db": str(store.path), "plot": plot}
    if as_json:
        emit_json(out)
    if interrupted:  # the report is out; the exit status still says the loop did not finish
        raise click.exceptions.Exit(130)
    return out


def _busy_caution(con: Any, cfg: Any, keys: list[str], db: Optional[str] = None) -> None:
    """Name the configurations measured only while other processes kept the cores busy: their runs
    are left out of every fit (engine.models.targets.busy_runs) until rerun on a quiet machine.
    ``db`` (:func:`engine.store.paths.db_argument`): the loop's store, which the rerun lines save
    into; without it they saved into the default store, where the loop never sees them."""
    from engine.active_learning import benchmark_command, config_item
    from engine.config import Config

    n = len(keys)
    why = ("reruns are off (benchmark.rerun_busy: 0)" if cfg.benchmark.rerun_busy <= 0 else
           "no quiet rerun happened (the budget or the stop rule ended the loop first, or the machine stayed busy)")
    con.print(f"[yellow]caution:[/] {n} configuration{'s were' if n != 1 else ' was'} measured only while other "
              f"processes kept this machine's cores busy, and {why}: "
              f"{'their runs are' if n != 1 else 'its run is'} left out of every fit until rerun on a quiet "
              "machine:", highlight=False)
    for k in keys[:5]:
        line = benchmark_command(config_item(Config.from_key(k)), db=db, protocol=cfg.benchmark.model_dump())
        con.print(f"  {escape(line)}", highlight=False, soft_wrap=True)  # a shell line: "[v2]" in --db is no markup
    if n > 5:
        con.print(f"  … and {n - 5} more (perfcast run --json lists them as busy_only)", highlight=False)


EXECUTOR_CHOICES = click.Choice(["local", "ray"])


@click.command("run")
@click.argument("config")
@click.option("--executor", type=EXECUTOR_CHOICES, default="local", show_default=True,
              help="Where benchmarks run: this machine (isolated child processes) or a Ray cluster.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Concurrent local benchmarks (local executor).")
@click.option("--address", default=None, metavar="HOST:PORT",
              help="Ray head to connect to (with --executor ray; default: RAY_ADDRESS, else the cluster running here).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write the learning-curve figure (PNG).")
@click.option("--compare/--no-compare", "compare_baselines", default=True, show_default=True,
              help="Replay the config's acquisition, random and max-variance on the same pool afterwards (when the "
                   "config's replay dataset covers it; skipped when a finished loop is run again and measures nothing).")
@db_option
@json_option
def run(config: str, executor: str, workers: int, address: Optional[str], plot: Optional[str], compare_baselines: bool,
        db_path: Optional[str], as_json: bool) -> None:
    """Run an active-learning loop from a YAML config: fit → acquire → benchmark → store → refit.

    CONFIG is a path or the name of a shipped config (cpu-quick, cpu-quick-grid, cpu-full; replay-shipped is
    replayed with `perfcast replay`).
    Every measurement is committed as it lands; run the same command again after an
    interruption (even kill -9) and it resumes where the store says it stopped. Ctrl-C lets the
    benchmark in flight finish and be stored, then reports and exits 130; a second Ctrl-C stops
    at once.

    \b
    Examples:
      perfcast run configs/experiments/cpu-quick.yaml --plot curve.png
      perfcast run cpu-full --db lab.duckdb --json
      perfcast run cpu-quick --executor ray --address head:6379
    """
    run_experiment(config, executor, workers, db_path, plot, as_json, compare_baselines, address=address)


@click.command("demo")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write the learning-curve figure (PNG).")
@db_option
@json_option
def demo(plot: Optional[str], db_path: Optional[str], as_json: bool) -> None:
    """The quick real CPU loop: `perfcast run configs/experiments/cpu-quick.yaml` on the default DB.

    \b
    Example:
      perfcast demo --plot demo.png
    """
    run_experiment(DEMO_CONFIG, "local", 1, db_path, plot, as_json, True)


@click.command("replay")
@click.argument("config")
@click.option("--strategies", default=None,
              help="Comma-separated acquisitions to compare (default: the config's, random, max-variance).")
@click.option("--seeds", default=None, help="Comma-separated seeds (default: the config's replay.seeds).")
@click.option("--dataset", default=None,
              help="Oracle data (default: the config's replay.dataset): 'shipped', a bundled replay grid "
                   "(cpu-quick-grid), or an exported CSV/Parquet/JSON file.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write the learning-curve figure (PNG).")
@db_option
@json_option
def replay(config: str, strategies: Optional[str], seeds: Optional[str], dataset: Optional[str], plot: Optional[str],
           db_path: Optional[str], as_json: bool) -> None:
    """Replay a loop with recorded measurements as the oracle: fast, reproducible strategy comparison.

    Each strategy and seed runs the same loop in a fresh temporary database on the pool of
    configurations the dataset has (filtered by the config's search space); measured values and
    their recorded benchmark cost are looked up, not run. A search space on this machine's CPU that
    the data lack is replayed on the data's device, and the output says so. --db (or PERFCAST_DB)
    records the summary in the experiments table, one row per config, seeds, strategies and data.

    \b
    Examples:
      perfcast replay replay-shipped --plot replay.png
      perfcast replay cpu-quick --seeds 0,1,2,3            # the demo's space, on its bundled grid
      perfcast replay configs/experiments/replay-shipped.yaml --strategies eig,random --seeds 0,1,2 --json
    """
    from engine.acquisition.select import check_acquisition
    from experiments.config import check_predictor_options, load_config, prior_is_oracle, resolve_config
    from experiments.replay import load_dataset, run_replay
    from experiments.report import curve_of, plot_report, print_report, savings_vs_random

    check_plot("--plot", plot)  # now, not after the replays
    cfg = load_config(config)
    # each strategy once, like each seed
    strats = list(dict.fromkeys(split_csv(strategies) or [cfg.acquisition.name, "random", "max-variance"]))
    for s in strats:
        check_acquisition(s)
    # each seed once: a repeated seed would count one paired comparison twice in the statistics
    seed_list = list(dict.fromkeys(split_csv(seeds, int, "--seeds") or cfg.replay.seeds))
    for s in seed_list:  # numpy's generators take non-negative seeds only; say so before any replay
        if s < 0:
            from engine.errors import InvalidValueError

            raise InvalidValueError("seed", s, "non-negative integers, e.g. --seeds 0,1,2")
    if dataset is not None and prior_is_oracle(dataset, cfg.replay.prior):
        from engine.errors import InvalidValueError

        raise InvalidValueError("--dataset", dataset, f"another dataset than {cfg.name}'s prior (replay.prior: shipped "
                                "seeds each replay with the shipped runs, so they cannot be the oracle too)")
    data = load_dataset(dataset or cfg.replay.dataset)
    cfg, where = _space_in_dataset(cfg, data, config)
    # the replays' loops check it too, but after --db has made a store; named by the file, as the
    # other config errors are (it said the config's name, "cpu-quick", for my-variant.yaml)
    check_predictor_options(cfg, resolve_config(config)[0])
    record = None
    if db_path:  # opened now: a bad --db is one line before the replays, not after them
        from engine.cli.common import open_store

        record = open_store(db_path)
        record.ensure_schema()  # a Store opens lazily; this is where a non-DuckDB file is refused
    con = console(stderr=as_json)
    if where and not as_json:
        con.print(f"[dim]{where}[/dim]")
    results: dict[str, list[Any]] = {}
    total = len(strats) * len(seed_list)
    with LoopDisplay(con, total, "replays", quiet=as_json) as display:
        for s in strats:
            for seed in seed_list:
                r = run_replay(cfg, data, acquisition=s, seed=seed)
                results.setdefault(s, []).append(r)
                last = r.steps[-1] if r.steps else None
                display.print(f"{s} seed {seed}: {r.n_benchmarks} benchmarks, {r.benchmark_seconds:.0f} benchmark-s, "
                              f"final held-out APE {_fmt_pct(last.heldout_median_ape if last else None)}")
                display.progress.advance(display.task)
    n_max = max(r.n_benchmarks for v in results.values() for r in v)
    curves = [curve_of(k, v, n_max=n_max) for k, v in results.items()]
    savings = savings_vs_random(results, start_n=cfg.replay.initial_runs)
    if not as_json:
        print_report(con, curves, title=f"{cfg.name}: replay learning curves")
        for name, row in savings.items():
            ci = " (one seed: no interval; --seeds 0,1,2,3,4,5,6,7 gives one)" if len(seed_list) == 1 else ""
            if "ratio_ci90" in row:
                (lo, hi), (slo, shi) = row["ratio_ci90"], row["seconds_ratio_ci90"]
                ci = (f" (90% interval over seeds {_ratio_end(lo)}–{hi:.2f}; benchmark-s {_ratio_end(slo)}–{shi:.2f}"
                      f"{'; from only ' + str(len(seed_list)) + ' seeds' if len(seed_list) < 8 else ''})")
            goal = f"the held-out error random has at {row['target_n']} benchmarks ({row['target_ape']:.1%})"
            if row.get("note"):
                con.print(f"{name}: {row['note']}")
                continue
            if not row["ratio"] > 0:
                con.print(f"{name} does not reach {goal} within the budget")
                continue
            if row.get("n") and row.get("random_n"):
                said = (f"{name} first reaches {goal} after {row['n']} benchmarks, random (whose curve is noisy) "
                        f"after {row['random_n']}:")
            else:
                said = f"{name} reaches {goal}:"
            con.print(f"{said} {_times(row['ratio'], 'benchmarks')} and "
                      f"{_times(row['seconds_ratio'], 'benchmark-seconds')}{ci}")
        for name, row in savings.items():
            if row.get("mean_gap") is None:  # no seed had a score in the range
                continue
            lo, hi = row["gap_range"]
            se = f"s.e. {100 * row['gap_se']:.1f}, " if row.get("gap_se") is not None else ""
            points = 100 * abs(row["mean_gap"])
            side = ("level with random's" if points < 0.05 else
                    f"{points:.1f} points {'below' if row['mean_gap'] < 0 else 'above'} random's")
            con.print(f"{name}'s held-out error, seed by seed over {lo}–{hi} benchmarks: "
                      f"{side} ({se}lower on "
                      f"{row['share_better']:.0%} of {row['seeds']} seed{'s' if row['seeds'] != 1 else ''})")
    if plot:
        plot_report(plot, curves, title=f"{cfg.name} (replay)")
        if not as_json:
            con.print(f"plot written to {escape(plot)}", highlight=False)
    out = {"experiment": cfg.name, "strategies": strats, "seeds": seed_list, "replayed_on": where or None,
           "curves": [c.to_dict() for c in curves],
           "savings_vs_random": savings,
           "runs": {k: [r.to_dict() for r in v] for k, v in results.items()}, "plot": plot}
    if record is not None:
        # one summary per comparison: the seeds, strategies and oracle are part of its id, so a later
        # replay of another selection does not overwrite it
        import hashlib

        what = json.dumps([sorted(seed_list), strats, dataset or cfg.replay.dataset])
        which = hashlib.sha1(what.encode()).hexdigest()[:6]
        record.upsert_experiment(f"{cfg.name}-replay-summary-{cfg.digest()}-{which}", cfg.name,
                                 cfg.model_dump(mode="json"), "finished",
                                 {"mode": "replay", "strategies": strats,
                                  "dataset": dataset or cfg.replay.dataset, "curves": out["curves"],
                                  "seeds": seed_list, "savings_vs_random": savings})
    if as_json:
        emit_json(out)


@click.command("experiments")
@click.argument("experiment", required=False)
@db_option
@json_option
def experiments_(experiment: Optional[str], db_path: Optional[str], as_json: bool) -> None:
    """The loops run against this store: progress against the budget, spend, forecast error, status
    and why each stopped; with EXPERIMENT (an id, or a unique start of one), that loop's settings and
    every run it stored.

    A loop that shows `killed` (its process is gone: kill -9, a reboot) or `interrupted` (stopped
    with Ctrl-C) resumes when its `perfcast run CONFIG` is started again; one that shows `running`
    is being run by a live process (its pid is in --json), and a second run of it is refused.
    An interrupted online `optimize` resumes the same way, when the same command (model,
    objectives, constraints, space) runs again. Runs and bench-s are the runs stored now (a `db
    delete` shows); replay rows have none (the oracle answered).

    Examples:
      perfcast experiments --json
      perfcast experiments cpu-quick-run        # one loop: settings, stop reason, its runs
    """
    from engine.cli.common import listing_db_path, open_store
    from experiments.history import stop_word, stored_run_counts, summary

    path = listing_db_path(db_path)  # a folder that does not exist is refused, as by every command (exit 2)
    if not path.exists():  # a listing creates nothing (a typo in --db made a seeded store before)
        if as_json:
            emit_json({"experiments": [], "db": str(path), "exists": False})
        else:
            console().print(f"no store at {escape(str(path))}: nothing has been run against it", highlight=False)
        return
    store = open_store(db_path)
    counts = stored_run_counts(store)
    stored = store.experiments()
    rows = [summary(e, counts) for e in stored]
    if experiment is not None:
        _show_experiment(store, stored, rows, experiment, as_json)
        return
    if as_json:
        emit_json({"experiments": rows})
        return
    con = console()
    if not rows:
        con.print("no experiments in this store yet: perfcast demo runs one", highlight=False)
        return
    from rich import box
    from rich.table import Table

    t = Table(title=f"Experiments ({len(rows)}), most recent first", box=box.SIMPLE_HEAD, pad_edge=False,
              collapse_padding=True)
    # an 80-column terminal gets the columns that tell loops apart; a wide one also the acquisition,
    # the failed runs and the benchmark-seconds (all always in --json and in `perfcast experiments ID`)
    wide = con.width >= 110
    cols = ("acq.", "status", "runs", "failed", "bench-s", "APE", "stopped", "updated") if wide else \
        ("status", "runs", "APE", "stopped", "updated")
    t.add_column("experiment", overflow="fold", min_width=min(26, max(len(r["experiment_id"]) for r in rows)))
    for col in cols:
        t.add_column(col, justify="left" if col in ("acq.", "status", "stopped", "updated") else "right", no_wrap=True)
    for r in rows:
        ape = "–" if r["prequential_median_ape"] is None else f"{r['prequential_median_ape']:.0%}"
        cells = {"acq.": r["acquisition"] or "–", "status": r["status"], "runs": _runs_of(r),
                 "failed": "–" if r["failed"] is None else str(r["failed"]),
                 "bench-s": fmt_number(r["benchmark_seconds"], missing="–"), "APE": ape,
                 "stopped": stop_word(r["stopped_because"]),
                 "updated": r["updated_at"][5:16].replace("T", " ")}  # MM-DD HH:MM (UTC)
        t.add_row(r["experiment_id"], *(cells[c] for c in cols))
    con.print(t)
    con.print("[dim]runs: stored / the run budget · APE: median prequential error (each run against the forecast "
              "made when it was chosen) · `perfcast experiments ID` shows one loop · a wider terminal shows the "
              "acquisition, failed runs and benchmark-seconds[/]")


def _runs_of(row: dict[str, Any]) -> str:
    """"7/20": runs stored against the run budget (how far a loop got), "–" for a replay."""
    if row["benchmarks"] is None:
        return "–"
    return f"{row['benchmarks']}/{row['budget_runs']}" if row.get("budget_runs") else str(row["benchmarks"])


def _show_experiment(store: Any, stored: list[dict[str, Any]], rows: list[dict[str, Any]], wanted: str,
                     as_json: bool) -> None:
    """``perfcast experiments ID``: one loop's settings, why it stopped and every run it stored."""
    from engine.errors import UnknownNameError

    ids = [e["experiment_id"] for e in stored]
    match = [i for i in ids if i == wanted] or [i for i in ids if i.startswith(wanted)]
    if len(match) != 1:
        if match:
            from engine.errors import InvalidValueError

            raise InvalidValueError("experiment", wanted, f"a unique start of one id; it starts {len(match)}: "
                                    f"{', '.join(match[:5])}")
        raise UnknownNameError("experiment", wanted, ids)
    i = ids.index(match[0])
    exp, row = stored[i], rows[i]
    with store.connect() as con_:
        runs = con_.execute("SELECT run_id, config_key, status, latency_median_ms, memory_peak_mib, wall_time_s, "
                            "error, started_at FROM measurements WHERE experiment_id = ? ORDER BY started_at",
                            [match[0]]).df()
    # a run timed on a busy machine is stored "ok" but left out of every fit (its time is a bound
    # above the truth): listed as plain "ok", its 5-25x slow latency read as a measurement
    from engine.models.targets import left_out_busy

    ok_runs = store.measurements()
    distrusted = set(ok_runs.loc[left_out_busy(ok_runs), "run_id"]) if len(ok_runs) else set()
    runs["left_out_busy"] = runs["run_id"].isin(distrusted)
    if as_json:
        from engine.records import utc_iso

        runs["started_at"] = [utc_iso(t) for t in runs["started_at"]]
        emit_json({**row, "config": exp.get("config"), "runs": runs.to_dict("records")})
        return
    con = console()
    cfg = exp.get("config") or {}
    con.print(f"[bold]{row['experiment_id']}[/] · {row['status']} · {row['mode'] or 'run'} · acquisition "
              f"{row['acquisition'] or '–'} · runs {_runs_of(row)} · {fmt_number(row['benchmark_seconds'], missing='0')} "
              f"benchmark-s · updated {row['updated_at'][:16].replace('T', ' ')} UTC", highlight=False)
    if row.get("stopped_because"):
        con.print(f"stopped: {escape(str(row['stopped_because']))}", highlight=False)
    space = cfg.get("search_space") or {}
    con.print("[dim]" + "; ".join(f"{k} {v}" for k, v in space.items() if v) + f"; budget {cfg.get('budget')}[/dim]",
              highlight=False)
    if runs.empty:
        con.print("no runs stored (a replay's oracle answered, or `db delete` removed them)", highlight=False)
        return
    from rich import box
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("run", "configuration", "status", "latency ms", "memory MiB", "wall s"):
        t.add_column(col, justify="right" if col.endswith(("ms", "MiB", " s")) else "left",
                     overflow="fold" if col == "configuration" else "ellipsis")
    for r in runs.itertuples(index=False):
        ok = r.status == "ok"
        status = ("ok, busy" if r.left_out_busy else "ok") if ok else \
            f"{r.status}: {escape((r.error or '')[:40])}"
        t.add_row(str(r.run_id)[:8], _short(r.config_key), status,
                  fmt_number(r.latency_median_ms) if ok else "–", fmt_number(r.memory_peak_mib) if ok else "–",
                  fmt_number(r.wall_time_s))
    con.print(t)
    if runs["left_out_busy"].any():
        con.print("[dim]busy: timed while other processes kept the cores busy, so slow by an unknown factor; left out "
                  "of every fit until a quiet rerun (`perfcast suggest` lists the commands)[/]", highlight=False)
