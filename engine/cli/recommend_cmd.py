"""``perfcast recommend-hardware``: which device is best for a workload, with P(best).

Heavy libraries are imported inside the command so ``perfcast --help`` stays instant.
"""
from __future__ import annotations

from typing import Any, Optional

import click

from engine.cli.common import (SEED, db_option, emit_json, fmt_number, json_option, median_over_interval,
                               parse_prices, split_csv)

EXAMPLE = """\b
Examples:
  perfcast recommend-hardware --model bert-base-uncased --metric throughput
  perfcast recommend-hardware --model bert-base-uncased --available cuda,cpu --precision fp16 --batch-size 8
  perfcast recommend-hardware --model gpt2 --mode training --gpu-count 8 --metric throughput --json
  perfcast recommend-hardware --model resnet50 --detect-hardware
"""




@click.command(epilog=EXAMPLE)
@click.option("--model", required=True, help="Catalog model name (perfcast models).")
@click.option("--metric", default="throughput", show_default=True,
              help="throughput | latency | latency_p90_ms | memory | cost (per 1M items).")
@click.option("--available", default=None, help="Hardware ids or platform names to choose from (default: all known).")
@click.option("--detect-hardware", is_flag=True, help="Only the devices detected on this machine.")
@click.option("--batch-size", type=int, default=1, show_default=True)
@click.option("--precision", default="fp32", show_default=True)
@click.option("--seq-length", "seq_len", type=int, default=128, show_default=True)
@click.option("--mode", type=click.Choice(["inference", "training"]), default="inference", show_default=True)
@click.option("--runtime", default=None, help="Force a runtime (default: implied by each device, else torch).")
@click.option("--gpu-count", type=int, default=1, show_default=True,
              help="Data-parallel training on N GPUs (scaling efficiency from a stated prior).")
@click.option("--samples", type=int, default=2000, show_default=True, help="Joint posterior draws (100 to 200,000).")
@click.option("--price-per-hour", default=None,
              help="Hourly USD prices for the cost ranking, overriding the catalog's (the local CPU has none): "
                   "cpu=0.05,t4=0.53, or one number for every --available device.")
@click.option("--predictor", type=click.Choice(["gp", "hierarchical", "roofline"]), default="gp", show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@db_option
@json_option
def recommend_hardware(model: str, metric: str, available: Optional[str], detect_hardware: bool, batch_size: int,
                       precision: str, seq_len: int, mode: str, runtime: Optional[str], gpu_count: int, samples: int,
                       price_per_hour: Optional[str], predictor: str, seed: int, db_path: Optional[str],
                       as_json: bool) -> None:
    """Rank hardware by the posterior probability of being the best for a metric.

    P(best) is the share of joint posterior draws in which a device wins; fallbacks follow in
    order, with a cost-aware ranking (catalog hourly prices) and a one-sentence roofline
    explanation.
    """
    from engine.cli.common import console, open_store
    from engine.errors import InvalidValueError, NotAvailableError
    from engine.predict import PerformancePredictor, resolve
    from engine.recommend import HardwareRecommender, local_hardware

    store = open_store(db_path)
    names = split_csv(available, what="hardware") if available is not None else None  # "" is an error, not "all"
    if detect_hardware:
        local = local_hardware()
        if names is None:
            names = local
        else:
            wanted = {resolve(n, store).id for n in names}
            names = [h for h in local if h in wanted]
            if not names:
                raise NotAvailableError(f"none of --available {available} is on this machine "
                                        f"(detected: {', '.join(local)})")
    if names is not None and not names:
        raise InvalidValueError("--available", available, "a comma-separated list of hardware ids or platforms")
    pp = PerformancePredictor(store, predictor=predictor)
    rec = HardwareRecommender(pp, available_hardware=names, db=store)
    with console(stderr=True).status("drawing joint posterior samples…"):
        r = rec.recommend_hardware(model_name=model, batch_size=batch_size, optimization_metric=metric,
                                   precision=precision, seq_len=seq_len, mode=mode, runtime=runtime,
                                   gpu_count=gpu_count, n_samples=samples, seed=seed,
                                   prices=parse_prices(price_per_hour, names))
    if as_json:
        emit_json(r.to_dict())
        return
    _render(r, console())
    for caution in r.warnings:
        console().print(f"[yellow]caution:[/] {caution}", highlight=False)


def _render(r: Any, con: Any) -> None:
    from rich import box
    from rich.table import Table

    from engine.recommend.recommender import UNITS

    n = f" × {r.gpu_count} GPUs" if r.gpu_count > 1 else ""
    # borderless, collapsed padding, each interval under its median: the table reads in 80 columns
    t = Table(title=f"{r.model} ({r.mode}{n}): P(best) for {r.metric} from {r.n_samples} joint posterior draws",
              caption="median, and under it the 90% interval", box=box.SIMPLE_HEAD, collapse_padding=True,
              pad_edge=False)
    t.add_column("hardware", no_wrap=True)
    sized = any(o.prob_fits is not None for o in r.options)
    # P(fits) under P(best), as each interval sits under its median: the table still reads in 80 columns
    for col in ("P(best)\nP(fits)" if sized else "P(best)", f"{r.metric}\n{UNITS[r.metric]}", "USD per\n1M items"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("bound")
    t.add_column("runs", justify="right")
    if r.gpu_count > 1:
        t.add_column("scaling\neff.", justify="right", no_wrap=True)

    def cell(d: Any, fmt: Any = fmt_number) -> str:
        return median_over_interval(d.median, d.q05, d.q95, fmt)

    for o in r.options:
        # the device, and under it the name it was asked as (`cuda`) and the runtime it is ranked with
        how = " · ".join(([f"as {o.requested}"] if o.requested and o.requested != o.hardware else [])
                         + [o.config.runtime])
        fit = "" if not sized else "\n[dim]" + ("?" if o.prob_fits is None else f"{o.prob_fits:.2f}") + "[/dim]"
        row = [f"{o.hardware}\n[dim]{how}[/dim]", f"{o.prob_best:.2f}{fit}", cell(o.metric),
               cell(o.cost_per_1m_usd) if o.cost_per_1m_usd else "no price", o.bound or "?", str(o.n_measurements)]
        if r.gpu_count > 1:
            row.append(cell(o.scaling_efficiency, lambda v: f"{v:.2f}") if o.scaling_efficiency else "–")
        t.add_row(*row)
    con.print(t)
    if r.recommended is None:  # it fits nowhere: no winner and no cheapest (the explanation says why)
        con.print("[bold]recommended:[/bold] none (the workload fits in memory on none of these devices)")
    else:
        con.print(f"[bold]recommended:[/bold] {r.recommended}; fallbacks: "
                  + (", ".join(o.hardware for o in r.fallbacks) or "none"))
    if r.cost_ranking and r.recommended is not None:
        con.print("[bold]cheapest per 1M items:[/bold] " + ", ".join(
            f"{o.hardware} (P={o.prob_cheapest:.2f})" for o in r.cost_ranking[:5]))
    con.print(r.explanation)
    for note in r.notes:
        con.print(f"[dim]note: {note}[/dim]")
