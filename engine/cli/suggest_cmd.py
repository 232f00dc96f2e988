"""``perfcast suggest``: the most informative benchmarks to run next, as the old JSON and a script."""
from __future__ import annotations

from typing import Any, Optional

import click

from engine.cli.common import SEED, console, db_option, emit_json, json_option


@click.command("suggest")
@click.option("--budget", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="How many configurations to recommend (chosen jointly).")
@click.option("--metric", type=click.Choice(["throughput", "latency", "memory"]), default="throughput",
              show_default=True, help="The metric to learn (and to rank hardware by).")
@click.option("--acquisition", type=click.Choice(["eig", "bald", "max-variance", "random"]), default="eig",
              show_default=True, help="eig/bald are cost-aware information gain; the others are baselines.")
@click.option("--predictor", type=click.Choice(["gp", "hierarchical"]), default="gp", show_default=True)
@click.option("--space", default="cpu-full", show_default=True,
              help="Experiment config (name or YAML path) whose search space is the candidate set.")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="Write the recommendation JSON here.")
@click.option("--emit-commands", type=click.Path(dir_okay=False), default=None,
              help="Write a shell script of matching `perfcast benchmark` lines (values shell-quoted).")
@click.option("--no-cost", is_flag=True,
              help="Do not predict each benchmark's cost at all. The default --cost-exponent 0 already ranks by "
                   "information per run and only shows the cost; this leaves it out too.")
@click.option("--cost-exponent", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Information / cost^this: 0 = information per benchmark, 1 = per benchmark-second. Replayed "
                   "with a fixed exponent, 0 needed the fewest benchmarks and benchmark-seconds and 1 was worse "
                   "than random; raise it to favour cheap runs (loops cool it from 0.25 to 0 over their budget).")
@click.option("--new-device-start/--no-new-device-start", default=True, show_default=True,
              help="eig: on a device with fewer than 5 measured configurations, pick its first ones at random "
                   "(as a loop does; random first picks taught the model more there in replay).")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of the random picks (random start, random acquisition, the integration sample).")
@db_option
@json_option
def suggest(budget: int, metric: str, acquisition: str, predictor: str, space: str, output: Optional[str],
            emit_commands: Optional[str], no_cost: bool, cost_exponent: float, new_device_start: bool, seed: int,
            db_path: Optional[str], as_json: bool) -> None:
    """Choose the next benchmarks: the most informative ones (per benchmark-second**α), chosen jointly.

    Candidates are the search space minus what is measured, what failed and what will not fit in
    memory (P > 0.9). The result is stored in the `recommendations` table.

    \b
    Examples:
      perfcast suggest --budget 10 --metric throughput --output recs.json --emit-commands run.sh
      perfcast suggest --budget 4 --space configs/experiments/cpu-quick.yaml --acquisition max-variance --json
    """
    import json
    import os
    import stat

    from engine.active_learning import ActiveLearningSystem, commands_script, elsewhere
    from engine.cli.common import check_writable, config_text, open_store
    from engine.store.paths import db_argument

    if no_cost and cost_exponent != 0.0:  # the exponent of a cost that is ignored: it was dropped without a word
        from engine.errors import InvalidValueError

        raise InvalidValueError("--cost-exponent with --no-cost", cost_exponent,
                                "leave it out (--no-cost ignores the cost), or drop --no-cost")
    check_writable("--output", output)  # before the fit, which takes a while
    check_writable("--emit-commands", emit_commands)
    from experiments.config import load_config, resolve_config
    from experiments.space import expand_space

    # a bad --space is one line before a store is opened (or created): its values, and a search space
    # that cannot be expanded here (a replay config without models, an unknown device). Its warnings
    # (thread counts left out) are said once, by the expansion that builds the candidates
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expand_space(load_config(space).search_space, resolve_config(space)[0])
    store = open_store(db_path)
    als = ActiveLearningSystem(store, predictor=predictor, space=space, acquisition=acquisition,
                               cost_aware=not no_cost, seed=seed, cost_exponent=cost_exponent,
                               new_device_start=new_device_start)
    with console(stderr=True).status(f"fitting {predictor} and choosing {budget} benchmarks jointly…"):
        payload = als.integrate_with_hardware_recommender(None, test_budget=budget, optimize_for=metric)
    away = elsewhere(payload["final_recommendations"])
    if away:
        payload.setdefault("notes", []).append(
            f"this machine cannot measure {', '.join(away)}: the benchmark lines for "
            f"{'it' if len(away) == 1 else 'them'} run only on {'that device' if len(away) == 1 else 'those devices'}")
    payload["recommendation_id"] = store.save_json_record("recommendations", "active_learning", payload)
    db = db_argument(store.path)  # the reruns' commands (ActiveLearningSystem.busy_reruns) name it already
    if output:
        with open(output, "w") as f:
            json.dump(payload, f, indent=2, default=str)
    if emit_commands:
        with open(emit_commands, "w") as f:
            f.write(commands_script(payload["final_recommendations"], reruns=payload.get("reruns", ()), db=db,
                                    protocol=payload.get("benchmark")))
        os.chmod(emit_commands, os.stat(emit_commands).st_mode | stat.S_IXUSR)
    if as_json:
        emit_json(payload)
        return
    from rich.table import Table

    con = console()
    if not payload["final_recommendations"]:
        ex = payload["excluded"]
        n = payload["total_candidates"]
        which = "the space's only configuration is not" if n == 1 else f"none of the space's {n} configurations is"
        con.print(f"nothing new to suggest: {which} left ({ex.get('measured', 0)} measured, {ex.get('failed', 0)} "
                  f"failed, {ex.get('memory', 0)} predicted not to fit in memory); widen --space", highlight=False)
        _footer(con, payload, output, emit_commands)
        return
    # model and configuration share one column (two lines) so the table reads in 80 columns
    t = Table(title=f"Next {len(payload['final_recommendations'])} benchmarks: {payload['strategy']}")
    t.add_column("#", justify="right")
    t.add_column("model / configuration", min_width=23)
    for col in ("info\nnats", "90%\nwidth", "div.", "cost\ns", "nats/s", "P(best\nhw)"):
        t.add_column(col, justify="right", no_wrap=True)

    def f(v: Optional[float], fmt: str) -> str:
        return "–" if v is None else format(v, fmt)

    for i, it in enumerate(payload["final_recommendations"], 1):
        start = " [yellow](random start)[/yellow]" if it.get("picked_by", "").startswith("new-device") else ""
        t.add_row(str(i), f"{it['model_name']}{start}\n[dim]{config_text(it)}[/dim]",
                  f(it["expected_information_gain"], ".2f"),
                  f(it["uncertainty"], ".0%"), f(it["diversity"], ".2f"), f(it["predicted_cost_s"], ".0f"),
                  f(it["combined_score"], ".3f"), f(it["hardware_score"], ".2f"))
    con.print(t)
    ex = payload["excluded"]
    con.print(f"{payload['total_candidates']} configurations in the space; {payload['enhanced_candidates']} candidates "
              f"after excluding {ex.get('measured', 0)} measured, {ex.get('failed', 0)} failed, "
              f"{ex.get('memory', 0)} predicted not to fit in memory.")
    _footer(con, payload, output, emit_commands)


def _footer(con: Any, payload: dict[str, Any], output: Optional[str], emit_commands: Optional[str]) -> None:
    """Notes (reruns of busy runs among them) and where the files went: printed even when nothing
    new is left to suggest, since the script may still hold reruns."""
    from rich.markup import escape

    for n in payload.get("notes", []):  # some hold an exception's text ("hardware recommender failed ..."): not markup
        con.print(f"[dim]{escape(str(n))}[/dim]")
    if output:
        con.print(f"recommendations written to {escape(output)}", highlight=False)
    if emit_commands:
        n = len(payload["final_recommendations"]) + len(payload.get("reruns", ()))
        con.print(f"{n} benchmark command{'s' if n != 1 else ''} written to {escape(emit_commands)}", highlight=False)

