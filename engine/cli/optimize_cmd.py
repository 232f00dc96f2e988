"""``perfcast optimize``: Bayesian optimisation of a deployment configuration (online or offline).

Heavy libraries are imported inside the command so ``perfcast --help`` stays instant.
"""
from __future__ import annotations

from typing import Any, Optional

import click

from engine.cli.common import (SEED, config_text, db_option, emit_json, fmt_number, json_option,
                               median_over_interval, parse_prices, split_csv)

EXAMPLE = """\b
Examples:
  perfcast optimize --model bert-base-uncased --objective throughput --max-latency-ms 50
  perfcast optimize --model distilbert-base-uncased --objective throughput --max-latency-ms 200 \\
      --budget 6 --online --iterations 5 --db /tmp/opt.duckdb
  perfcast optimize --model gpt2 --objective throughput,latency_p90_ms --batch-sizes 1,4,16 --json
"""


@click.command(epilog=EXAMPLE)
@click.option("--model", required=True, help="Catalog model name (perfcast models).")
@click.option("--objective", default="throughput", show_default=True,
              help="throughput | latency | latency_p90_ms | memory | cost; comma-separated for a Pareto front.")
@click.option("--max-latency-ms", type=float, default=None, help="Constraint on p90 latency (ms) of one batch.")
@click.option("--max-median-latency-ms", type=float, default=None, help="Constraint on median latency (ms).")
@click.option("--max-memory-mib", type=float, default=None, help="Constraint on peak memory (MiB).")
@click.option("--min-throughput", type=float, default=None, help="Constraint: at least this many items/s.")
@click.option("--max-cost", type=float, default=None, help="Constraint: at most this many USD per 1M items.")
@click.option("--price-per-hour", default=None,
              help="Hourly USD price for the cost metric: one number for every device, or cpu=0.05,t4=0.53.")
@click.option("--budget", type=int, default=20, show_default=True, help="Number of benchmarks (online).")
@click.option("--online/--offline", default=False, show_default=True,
              help="Online: really benchmark (BoTorch qLogNEI/qLogNEHVI). Offline: rank by the posterior only.")
@click.option("--hardware", default="cpu", show_default=True, help="Hardware ids or platform names, comma-separated.")
@click.option("--batch-sizes", default="1,2,4,8,16,32,64", show_default=True)
@click.option("--precision", default="fp32,bf16,int8", show_default=True)
@click.option("--threads", default="1,2", show_default=True, help="CPU threads (0 = runtime default).")
@click.option("--runtime", default="torch,onnxruntime,openvino", show_default=True)
@click.option("--seq-lengths", default="128", show_default=True)
@click.option("--mode", type=click.Choice(["inference", "training"]), default="inference", show_default=True)
@click.option("--iterations", type=int, default=10, show_default=True, help="Timed iterations per benchmark (online).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--ignore-existing", is_flag=True, help="Do not use the store's measurements of the space as observations.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--top", type=click.IntRange(min=0), default=5, show_default=True, help="Alternatives to show.")
@db_option
@json_option
def optimize(model: str, objective: str, max_latency_ms: Optional[float], max_median_latency_ms: Optional[float],
             max_memory_mib: Optional[float], min_throughput: Optional[float], max_cost: Optional[float],
             price_per_hour: Optional[str], budget: int,
             online: bool, hardware: str, batch_sizes: str, precision: str, threads: str, runtime: str,
             seq_lengths: str, mode: str, iterations: int, executor: str, ignore_existing: bool, seed: int, top: int,
             db_path: Optional[str], as_json: bool) -> None:
    """Find the deployment configuration that optimises an objective under constraints.

    Online, every evaluation is a real benchmark through the adapters (isolated child process),
    stored like any other; offline, the store's fitted posterior ranks the space by
    E[objective] x P(feasible) without running anything. Online, the first Ctrl-C lets the
    benchmark in flight finish and be stored, prints the ranking of what was measured and exits
    130; a second stops at once.
    """
    from engine.cli.common import console
    from engine.errors import InvalidValueError
    from engine.optimize.optimizer import optimize_deployment

    if iterations < 1:
        raise InvalidValueError("iterations", iterations, "an integer >= 1")
    if budget < 1:  # before the progress bar is drawn
        raise InvalidValueError("budget", budget, "an integer >= 1 (the number of benchmarks)")
    constraints = {k: v for k, v in {"latency_p90_ms": max_latency_ms, "latency_ms": max_median_latency_ms,
                                     "memory_mib": max_memory_mib, "throughput": min_throughput,
                                     "cost_per_1m_usd": max_cost}.items() if v is not None}
    space = {"hardware": split_csv(hardware, what="hardware"),
             "batch_size": split_csv(batch_sizes, int, "batch size"),
             "precision": split_csv(precision, what="precision"), "threads": split_csv(threads, int, "threads"),
             "runtime": split_csv(runtime, what="runtime"), "seq_len": split_csv(seq_lengths, int, "sequence length"),
             "mode": [mode]}
    prices = parse_prices(price_per_hour, space["hardware"])
    err = console(stderr=True)
    progress_cm: Any = None
    callback = None
    if online:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress_cm = Progress(TextColumn("[bold]optimize"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                               TextColumn("{task.description}"), console=err, transient=False)
        task = progress_cm.add_task("fitting…", total=budget)

        inflight: list[bool] = [False]

        def callback(step: int, total: int, cfg: Any, ev: Any) -> None:
            inflight[0] = ev is None
            if ev is None:  # `completed`, not `advance`: a resumed optimisation starts past its earlier runs
                progress_cm.update(task, completed=step - 1, description=f"running {config_text(cfg)}")
                return
            obj = "failed: " + ev.status if ev.objective is None else f"{fmt_number(ev.objective)}"
            flag = "feasible" if ev.feasible else "infeasible"
            progress_cm.console.print(f"  {step:>2}. {config_text(cfg):<42} {ev.chosen_by:<9} {obj} ({flag})")
            progress_cm.update(task, completed=step, description="fitting…")

    from engine.cli.common import open_store

    store = open_store(db_path)
    if progress_cm is not None:
        from engine.cli.interrupt import first_interrupt_calls

        stop = []

        def stop_after_inflight() -> None:
            stop.append(True)
            what = ("the benchmark in flight will finish and be stored, then the ranking is printed" if inflight[0]
                    else "no benchmark is running; the ranking is printed before the next one would start")
            progress_cm.console.print(f"[yellow]Ctrl-C: {what} (Ctrl-C again stops now)[/yellow]", highlight=False)

        with progress_cm, first_interrupt_calls(stop_after_inflight):
            result = optimize_deployment(model, objective, constraints, space, budget=budget, online=True,
                                         executor=executor, db=store, iterations=iterations, seed=seed, prices=prices,
                                         use_existing=not ignore_existing, callback=callback, top_k=top,
                                         should_stop=lambda: bool(stop))
            # a resumed optimisation with nothing left to run never calls back: the bar shows its earlier runs
            done = max((e.step for e in result.history), default=0)
            progress_cm.update(task, completed=min(done, budget),
                               description="interrupted" if result.interrupted else "done")
    else:
        with err.status("ranking the space under the posterior…"):
            result = optimize_deployment(model, objective, constraints, space, budget=budget, online=False,
                                         db=store, seed=seed, top_k=top, prices=prices)
    if as_json:
        emit_json(result.to_dict())
    else:
        out = console()
        _render(result, out)
        for c in result.warnings:
            out.print(f"[yellow]caution:[/] {c}", highlight=False)
    if result.interrupted:  # the ranking is out; the exit status still says the budget was not spent
        raise click.exceptions.Exit(130)


def _interval(mi: Any) -> str:
    return median_over_interval(mi.median, mi.q05, mi.q95)


def _render(result: Any, con: Any) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from engine.optimize.spec import UNITS

    cons = ", ".join(f"{k} {'>=' if k == 'throughput' else '<='} {v:g}" for k, v in result.constraints.items())
    cons = f"subject to {cons}" if cons else "(no constraint)"
    mode = "online (benchmarks run)" if result.online else "offline (posterior only)"
    con.print(f"[bold]{result.model}[/bold]: {' / '.join(result.objectives)} {cons} — {mode}, "
              f"{result.n_candidates} candidate configurations")
    b = result.best
    if b is not None:
        # below 0.5 the "best" is only the least infeasible: the headline says so, not a dim note
        head = "Best" if b.prob_feasible >= 0.5 else "Nothing is likely feasible; closest"
        style = "" if b.prob_feasible >= 0.5 else "bold red"
        t = Table(title=f"{head}: {config_text(b.config)} — P(feasible) = {b.prob_feasible:.2f}"
                        + (" (evaluated)" if b.evaluated else " (not evaluated)"), title_style=style or None)
        t.add_column("metric")
        t.add_column("median", justify="right")
        t.add_column("90% interval", justify="right")
        t.add_column("measured", justify="right")
        for m, mi in b.metrics.items():
            meas = b.measured.get(m) if b.measured else None
            bound = result.constraints.get(m)
            label = f"{m} ({UNITS.get(m, '')})" + (f" [{'>=' if m == 'throughput' else '<='} {bound:g}]" if bound else "")
            t.add_row(label, fmt_number(mi.median), f"{fmt_number(mi.q05)}–{fmt_number(mi.q95)}", fmt_number(meas))
        con.print(t)
    shown = [result.objectives[0]] + [m for m in (*result.objectives[1:], *result.constraints)
                                      if m != result.objectives[0]]
    shown = list(dict.fromkeys(shown))
    rows = result.pareto if result.pareto else result.alternatives
    if rows:
        # online the metrics are sampled jointly (engine.optimize.ranking); offline they are independent
        rank = "E[utility × 1{feasible}]" if result.online else "E[utility] × P(feasible)"
        title = "Pareto set" if result.pareto else escape(f"Alternatives (ranked by {rank})")
        # borderless, each interval under its median: five columns read in 80 columns (like compare-hardware)
        t = Table(title=title, caption="median, and under it the 90% credible interval", box=box.SIMPLE_HEAD,
                  collapse_padding=True, pad_edge=False)
        t.add_column("configuration", overflow="fold")
        for m in shown:
            short = {"latency_ms": "latency", "latency_p90_ms": "p90 latency", "memory_mib": "memory"}.get(m, m)
            t.add_column(f"{short}\n{UNITS.get(m, '')}", justify="right", no_wrap=True)
        t.add_column("P(feas.)", justify="right", no_wrap=True)
        t.add_column("eval.", justify="center", no_wrap=True)
        for a in rows:
            t.add_row(config_text(a.config), *[_interval(a.metrics[m]) if m in a.metrics else "–" for m in shown],
                      f"{a.prob_feasible:.2f}", "✓" if a.evaluated else "")
        con.print(t)
    if result.history:
        t = Table(title="Evaluations (in order)")
        for col in ("#", "configuration", "chosen by", "status", result.objectives[0], "feasible", "s"):
            t.add_column(col, justify="right" if col in ("#", "s", result.objectives[0]) else "left")
        for e in result.history:
            t.add_row(str(e.step), config_text(e.config), e.chosen_by, e.status, fmt_number(e.objective),
                      "yes" if e.feasible else "no", fmt_number(e.wall_time_s))
        con.print(t)
    for n in result.notes:
        con.print(f"[dim]note: {escape(n)}[/dim]")
