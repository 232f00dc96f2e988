"""``perfcast evaluate``: held-out accuracy and calibration of every predictor, side by side."""
from __future__ import annotations

import sys
from typing import Optional

import click

from engine.cli.common import SEED, console, db_option, emit_json, json_option, split_csv

HOLDOUTS = ("random", "hardware", "model", "family")
ALL_PREDICTORS = "roofline,baseline,gp,hierarchical"


def _pct(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x: Optional[float], digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


@click.command(epilog=("Examples:\n\n  perfcast evaluate --holdout random --fraction 0.2 --seed 0 --by-path\n\n"
                       "  perfcast evaluate --holdout model --predictors roofline,baseline,gp --json"))
@click.option("--holdout", type=click.Choice(HOLDOUTS), default="random", show_default=True,
              help="random configurations, or leave-one-hardware/model/family-out.")
@click.option("--fraction", type=float, default=None,
              help="random: share of configurations held out (default 0.2); hardware/model/family: share of "
                   "the groups held out in turn (default: every group).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--predictors", default=ALL_PREDICTORS, show_default=True, help="Comma-separated subset.")
@click.option("--allow-bad-diagnostics", is_flag=True, help="Score hierarchical fits even if r_hat/divergences fail.")
@click.option("--by-path", is_flag=True,
              help="Also print latency scores per software path (runtime/precision/mode); --json always has them.")
@db_option
@json_option
def evaluate(holdout: str, fraction: Optional[float], seed: int, predictors: str, allow_bad_diagnostics: bool,
             by_path: bool, db_path: Optional[str], as_json: bool) -> None:
    """Fit each predictor on a train split and score it on held-out measurements.

    Metrics: median latency, p90 latency and peak memory, each on the posterior the answers show
    (p90 never below the median, memory never below what must be resident). Scores: median APE and MAPE of the posterior median, Spearman rank correlation, empirical
    coverage of the 50% and 90% credible intervals, mean relative 90% width ((q95 - q05) / median)
    and CRPS on the log scale (natural-log units; ~0.1 = a 10% miss). The baseline is a point
    prediction (gradient boosting, no posterior): its coverage and width are n/a and its CRPS is
    its absolute log error. The result is stored in the ``evaluations`` table.
    """
    from engine.cli.common import open_store
    from engine.evaluate import evaluate as run_evaluation

    names = split_csv(predictors, what="predictor")
    store = open_store(db_path)
    df = store.measurements(with_samples=True)
    err = console(stderr=True)
    progress = None if as_json else (lambda msg: err.print(f"[dim]{msg}[/]"))
    report = run_evaluation(df, holdout, fraction=fraction, seed=seed, predictors=names,
                            allow_bad_diagnostics=allow_bad_diagnostics, progress=progress)
    payload = report.to_dict()
    payload["_meta"]["data_hash"] = store.data_hash()
    payload["_meta"]["evaluation_id"] = store.save_json_record("evaluations", holdout, payload)
    if as_json:
        emit_json(payload)
    else:
        _print(report, payload["_meta"]["evaluation_id"], by_path)
    codes = [r.exit_code for r in report.results.values() if r.error]
    if codes:
        sys.exit(max(codes))


def _print(report, evaluation_id: str, by_path: bool = False) -> None:  # type: ignore[no-untyped-def]
    from rich import box
    from rich.table import Table

    out = console()
    metrics = [m for m in ("latency_ms", "latency_p90_ms", "memory_mib")
               if any(m in r.scores for r in report.results.values())]
    folds = report.folds if len(report.folds) <= 6 else report.folds[:6] + [f"... ({len(report.folds)} folds)"]
    out.print(f"holdout [bold]{report.holdout}[/] · {report.n_measurements} measurements · "
              f"{report.n_test} test rows · folds: {', '.join(folds)}")
    for metric in metrics:
        # a borderless box, two-line headers and unwrapped cells: the ten columns read in 80 columns
        t = Table(title=f"{metric}: held-out accuracy and calibration", box=box.SIMPLE_HEAD, collapse_padding=True)
        for col in ("predictor", "n", "median\nAPE", "MAPE", "Spear-\nman", "cover\n50%", "cover\n90%",
                    "width\n90%", "CRPS\n(log)", "fit\ns"):
            t.add_column(col, justify="left" if col == "predictor" else "right", no_wrap=True)
        for name, r in report.results.items():
            s = r.scores.get(metric)
            if r.error or s is None:
                continue
            t.add_row(name, str(s.n), _pct(s.median_ape), _pct(s.mape), _num(s.spearman), _pct(s.coverage_50),
                      _pct(s.coverage_90), _num(s.mean_rel_width_90, 2), _num(s.crps_log), f"{r.fit_s:.1f}")
        out.print(t)
    if report.holdout != "random" and 1 < len(report.folds) <= 40:
        t = Table(title="latency median APE per held-out " + report.holdout)
        t.add_column(report.holdout)
        names = [n for n, r in report.results.items() if not r.error]
        for n in names:
            t.add_column(n, justify="right")
        for fold in report.folds:
            t.add_row(fold, *[_pct(report.results[n].fold_median_ape.get(fold)) for n in names])
        out.print(t)
    if by_path:
        for name, r in report.results.items():
            if r.error or r.point_estimate or not r.by_path:
                continue
            t = Table(title=f"{name}: latency per software path",
                      box=box.SIMPLE_HEAD, collapse_padding=True)
            for col in ("runtime/precision/mode", "n", "median\nAPE", "cover\n50%", "cover\n90%", "width\n90%"):
                t.add_column(col, justify="left" if col.startswith("runtime") else "right", no_wrap=True)
            for path, sc in r.by_path.items():
                t.add_row(path, str(sc.n), _pct(sc.median_ape), _pct(sc.coverage_50), _pct(sc.coverage_90),
                          _num(sc.mean_rel_width_90, 2))
            out.print(t)
    for name, r in report.results.items():
        if r.error:
            out.print(f"[red]{name} failed: {r.error}[/]")
        if r.diagnostics:  # what the hierarchical rows rest on (--allow-bad-diagnostics scores failed fits too)
            bad = [d for d in r.diagnostics if not d["ok"]]
            worst = max(d["rhat_max"] for d in r.diagnostics)
            ess = min(d["ess_bulk_min"] for d in r.diagnostics)
            div = sum(d["divergences"] for d in r.diagnostics)
            style, verdict = ("bold red", f"FAILED on {len(bad)} of") if bad else ("dim", "passed on")
            fits = f"{len(r.diagnostics)} fold fit{'s' if len(r.diagnostics) != 1 else ''}"
            out.print(f"[{style}]{name}: NUTS diagnostics {verdict} {fits} (max R-hat {worst:.4f}, "
                      f"min bulk ESS {ess:.0f}, {div} divergent transitions)[/]", highlight=False)
    nf = report.noise
    bits = []
    if nf.get("between_runs_median_ape") is not None:
        bits.append(f"repeat runs differ from each other by a median {_pct(nf['between_runs_median_ape'])} "
                    f"({nf['n_repeated_configs']} repeated configurations; the README's noise floor is their "
                    "coefficient of variation, bench/noise_floor.py)")
    if nf.get("within_run_cv_median") is not None:
        bits.append(f"within-run CV median {_pct(nf['within_run_cv_median'])}")
    if bits:
        out.print("noise floor (latency): " + "; ".join(bits))
    if "baseline" in report.results:
        out.print("baseline = gradient boosting point prediction: coverage/width n/a, CRPS = |log error|.")
    out.print(f"CRPS on the log scale (natural-log units). Stored as evaluation {evaluation_id}.")
