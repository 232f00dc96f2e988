"""``perfcast train | predict | compare-hardware | matrix``: posteriors for people and scripts.

Heavy libraries (torch, jax, duckdb, pandas, matplotlib) are imported inside the commands so
``perfcast --help`` stays instant.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

import click

from engine.cli.common import (check_plot, check_writable, console, db_option, emit_json, fmt_number, json_option,
                               median_over_interval, split_csv)
from engine.errors import RefusedConfigError

PREDICTOR_CHOICES = ("gp", "hierarchical", "roofline")
METRIC_ALIASES = {"latency": "latency_ms", "p90": "latency_p90_ms", "throughput": "throughput",
                  "memory": "memory_mib"}
UNITS = {"latency_ms": "ms", "latency_p90_ms": "ms", "throughput": "items/s", "memory_mib": "MiB"}
ROW_LABELS = {"throughput": "throughput", "latency_ms": "latency (median)", "latency_p90_ms": "latency (p90)",
              "memory_mib": "memory (peak)"}


def _fmt(x: Optional[float]) -> str:
    return fmt_number(x, missing="n/a")


def workload_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by predict, compare-hardware and matrix-like commands."""
    opts = [
        click.option("--seq-length", "seq_len", type=int, default=128, show_default=True,
                     help="Sequence length (ignored for vision models; 0 = the model's default, 128)."),
        click.option("--mode", type=click.Choice(["inference", "training"]), default="inference", show_default=True),
        click.option("--runtime", default=None,
                     help="torch, onnxruntime, openvino, ... (default: implied by --hardware, else torch)."),
        click.option("--threads", type=int, default=0, show_default=True, help="CPU threads (0 = runtime default)."),
        click.option("--predictor", type=click.Choice(PREDICTOR_CHOICES), default="gp", show_default=True,
                     help="Which fitted posterior answers."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _predictor(db_path: Optional[str], name: str, allow_bad: bool = False) -> Any:
    from engine.cli.common import open_store
    from engine.predict import PerformancePredictor

    return PerformancePredictor(open_store(db_path), predictor=name, allow_bad_diagnostics=allow_bad)


@contextmanager
def fitting(predictor: str, cached: bool = False) -> Iterator[None]:
    """A spinner on stderr while the predictor is loaded or fitted (seconds for the GP, tens of
    seconds for NUTS); Rich shows it only on a terminal, so pipes and --json output stay clean."""
    if cached:
        yield
        return
    with console(stderr=True).status(f"fitting the {predictor} model on the store (once per change of the data)…"):
        yield


def _interval(mp: Any) -> str:
    lo, hi = mp.interval(0.9)
    return f"[{_fmt(lo)}, {_fmt(hi)}]"


def _cell(mp: Any) -> str:
    """Median over its 90% interval (see :func:`engine.cli.common.median_over_interval`)."""
    return median_over_interval(mp.median, *mp.interval(0.9), fmt=_fmt)


# -- train ------------------------------------------------------------------------------------------
@click.command(epilog="Example: perfcast train --predictor gp --json")
@click.option("--predictor", "--model", "name", type=click.Choice(PREDICTOR_CHOICES), default="gp", show_default=True,
              help="Which predictor to fit, as predict's --predictor (a fitted model is cached until the store's "
                   "data change). --model is the older name of this option.")
@click.option("--allow-bad-diagnostics", is_flag=True,
              help="Keep a hierarchical fit whose r_hat > 1.01 or that diverged (otherwise exit 4).")
@click.option("--refit", is_flag=True, help="Ignore a cached fit of the same data and fit again.")
@db_option
@json_option
def train(name: str, allow_bad_diagnostics: bool, refit: bool, db_path: Optional[str], as_json: bool) -> None:
    """Fit a predictor on the store's successful measurements.

    Runs timed on a busy machine (until a quiet rerun), and runs of models or devices no catalog
    defines, stay stored but are left out, with a warning: the output says "N of M measurements".
    """
    from engine.cli.common import open_store
    from engine.predict import _load_or_fit_fn, _supported_kwargs, predictor_kwargs

    store = open_store(db_path)
    n = store.count("benchmark_results")
    data_hash = store.data_hash()
    load_or_fit = _load_or_fit_fn()
    t0 = time.perf_counter()
    kwargs = predictor_kwargs(name, allow_bad_diagnostics=allow_bad_diagnostics)
    cached = False
    try:
        from engine.models.cache import model_dir

        cached = not refit and model_dir(name, data_hash, kwargs).exists()
    except ImportError:
        pass
    kwargs.update(_supported_kwargs(load_or_fit, refit=refit))
    with fitting(name, cached):
        fitted = load_or_fit(name, store, **kwargs)
    elapsed = time.perf_counter() - t0
    extras = {}
    for attr in ("diagnostics", "calibration"):
        v = getattr(fitted, attr, None)
        if callable(v):
            v = v()
        if v is not None and not isinstance(v, dict):
            v = v.to_dict() if hasattr(v, "to_dict") else getattr(v, "__dict__", {"value": str(v)})
        extras[attr] = v or None
    # the runs the fit used: busy runs a quieter rerun supersedes, and runs of models the catalog
    # does not define here, are left out (see engine.models.targets)
    n_fit = getattr(fitted, "n_train", None) or n
    payload = {"predictor": name, "n_measurements": n, "n_fitted": n_fit, "data_hash": data_hash, "cached": cached,
               "seconds": round(elapsed, 3), **extras, "db": str(store.path)}
    if as_json:
        emit_json(payload)
        return
    c = console()
    how = "loaded from the cache (same data)" if cached else "fitted"
    used = f"{n} measurements" if n_fit == n else f"{n_fit} of {n} measurements"
    c.print(f"[bold]{name}[/] {how} on {used} (data {data_hash}) in {elapsed:.2f} s")
    if hasattr(fitted, "diagnostics_text") and getattr(fitted, "diagnostics", None):
        ok = fitted.diagnostics_ok
        c.print(f"[{'green' if ok else 'bold red'}]{fitted.diagnostics_text()}[/]", highlight=False)
    for attr, v in extras.items():
        if v:
            c.print(f"{attr}:")
            for k, x in v.items():
                text = ", ".join(f"{a}={_value(b)}" for a, b in x.items()) if isinstance(x, dict) else _value(x)
                if k == "rhat_max" and isinstance(x, float):  # the gated figure, as the verdict line gives it
                    text = f"{x:.4f}"  # (3 digits printed 1.0048 as "1", under "max R-hat 1.0048")
                c.print(f"  {k}: {text}")


def _value(x: Any) -> str:
    """A fit summary's value as text: numbers rounded, a mapping as ``(a 0.879, b 0.91)``, not as a
    Python dict."""
    if isinstance(x, float):
        return _fmt(x)
    if isinstance(x, dict):
        return "(" + ", ".join(f"{k} {_value(v)}" for k, v in x.items()) + ")"
    return str(x)


# -- predict ----------------------------------------------------------------------------------------
@click.command(epilog="Example: perfcast predict --model bert-base-uncased --hardware cuda --batch-size 4 --precision fp16")
@click.option("--model", "model_name", required=True, help="Catalog model name (perfcast models list).")
@click.option("--hardware", required=True, help="Catalog id (h100-sxm) or platform (cpu, cuda, rocm, mps, openvino, ...).")
@click.option("--batch-size", type=int, default=1, show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16", "int8"]), default="fp32", show_default=True)
@workload_options
@click.option("--latency-slo-ms", type=float, default=None, help="Also report P(latency <= this bound).")
@click.option("--allow-bad-diagnostics", "allow_bad", is_flag=True,
              help="Answer from a hierarchical fit whose r_hat > 1.01 or that diverged (the answer says so).")
@db_option
@json_option
def predict(model_name: str, hardware: str, batch_size: int, precision: str, seq_len: int, mode: str,
            runtime: Optional[str], threads: int, predictor: str, latency_slo_ms: Optional[float], allow_bad: bool,
            db_path: Optional[str], as_json: bool) -> None:
    """Predict throughput, latency and memory, each with its median and 90% credible interval."""
    from engine.predict import prediction_record

    if latency_slo_ms is not None and not (math.isfinite(latency_slo_ms) and latency_slo_ms > 0):
        # a zero, negative or NaN bound would print P(...) = nan; optimize refuses it the same way
        from engine.errors import InvalidValueError

        raise InvalidValueError("--latency-slo-ms", latency_slo_ms, "a positive, finite number of milliseconds")
    pp = _predictor(db_path, predictor, allow_bad)
    cfg, hw = pp.config(model_name, hardware, batch_size=batch_size, precision=precision, seq_len=seq_len,
                        mode=mode, runtime=runtime, threads=threads)
    with fitting(predictor):
        pred = pp.predict_many([cfg])[0]
    warnings = pred.warnings  # the Python API's answer carries the same cautions
    if as_json:
        emit_json(prediction_record(pred, hw, latency_slo_ms))
        return
    from rich.markup import escape
    from rich.table import Table

    c = cfg
    # a device's display name is free text from a catalog (PERFCAST_HARDWARE) or the CPU's brand
    # string: "[/rack3]" in it was a Rich closing tag, and a MarkupError traceback
    device = escape(hw.describe())
    table = Table(title=f"{c.model} on {device}",
                  caption=f"batch {c.batch_size} · seq {c.seq_len} · {c.precision} · {c.mode} · {c.runtime}"
                          + (f" · {c.threads} threads" if c.threads else ""))
    table.add_column("metric")
    table.add_column("median", justify="right")
    table.add_column("90% credible interval", justify="right")
    table.add_column("unit")
    for m in ("throughput", "latency_ms", "latency_p90_ms", "memory_mib"):
        if m in pred.metrics:
            mp = pred.metrics[m]
            table.add_row(ROW_LABELS[m], _fmt(mp.median), _interval(mp), UNITS[m])
    out = console()
    out.print(table)
    out.print(f"answered by: [bold]{pred.predictor}[/] · device: [bold]{device}[/] · "
              f"measurements nearby (same model and hardware): [bold]{pred.n_nearby}[/]")
    fits = pred.prob_fits_memory()
    if fits is not None:
        out.print(f"P(memory fits the device's {hw.memory_gib:g} GiB) = {fits:.3f}")
    if latency_slo_ms is not None:
        out.print(f"P(median latency <= {latency_slo_ms:g} ms) = {pred.prob_latency_below(latency_slo_ms):.3f}")
        if "latency_p90_ms" in pred.metrics:
            out.print(f"P(p90 latency <= {latency_slo_ms:g} ms) = "
                      f"{pred.prob_latency_below(latency_slo_ms, 'latency_p90_ms'):.3f}")
    for w in warnings:
        out.print(f"[yellow]caution:[/] {escape(w)}", highlight=False)


# -- compare-hardware -------------------------------------------------------------------------------
def _all_hardware_ids() -> list[str]:
    from engine import catalog

    return list(catalog.all_hardware())


@click.command("compare-hardware", epilog=(
    "Examples:\n\n  perfcast compare-hardware --model gpt2 --hardware cpu,t4,a100-80gb,h100-sxm --plot hw.png\n\n"
    "  perfcast compare-hardware --model gpt2 --hardware cuda,cpu --batch-sizes 1,2,4,8 --plot scaling.png"))
@click.option("--model", "model_name", required=True, help="Catalog model name.")
@click.option("--hardware", default=None, help="Comma-separated ids or platforms (default: every known device).")
@click.option("--batch-sizes", default="1", show_default=True,
              help="One batch size compares devices; several show batch-size scaling.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16", "int8"]), default="fp32", show_default=True)
@workload_options
@click.option("--metric", type=click.Choice(sorted(METRIC_ALIASES)), default="latency", show_default=True,
              help="What to sort by and plot.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="PNG: bars with 90% whiskers (one batch size) or lines with 50/90% bands (several).")
@db_option
@json_option
def compare_hardware(model_name: str, hardware: Optional[str], batch_sizes: str, precision: str, seq_len: int,
                     mode: str, runtime: Optional[str], threads: int, predictor: str, metric: str,
                     plot_path: Optional[str], db_path: Optional[str], as_json: bool) -> None:
    """Compare devices (or batch sizes) for one model, with credible intervals."""
    from engine.models.features import threads_on_several
    from engine.predict import answer_cautions, prediction_record

    check_plot("--plot", plot_path)  # before any fitting
    hws = split_csv(hardware, what="hardware") or _all_hardware_ids()
    # a batch size named twice is one: `--batch-sizes 1,1` printed every row twice and, being
    # "several" batch sizes, drew a scaling plot of one point instead of the device comparison
    batches = list(dict.fromkeys(split_csv(batch_sizes, int, what="batch size"))) or [1]
    metric_name = METRIC_ALIASES[metric]
    pp = _predictor(db_path, predictor)
    requests = []
    resolved = []
    refused: list[RefusedConfigError] = []
    seen: set[tuple[str, int]] = set()
    memo: dict = {}  # each device resolved once, not once per batch size; each CPU's catalog entry read once
    for h in hws:
        for b in batches:
            try:
                cfg, hw = pp.config(model_name, h, batch_size=b, precision=precision, seq_len=seq_len, mode=mode,
                                    runtime=runtime, memo=memo)
            except RefusedConfigError as e:  # int8 on every GPU of the catalog: leave those out, say why
                refused.append(e)
                break
            if (hw.id, b) in seen:  # the same device twice (`cpu,cpu`, or `cpu` and its id): one row
                continue
            seen.add((hw.id, b))
            requests.append(cfg)
            resolved.append(hw)
    if not requests:
        raise refused[0]
    # --threads goes to the devices that take threads (every device's GPU row runs as it runs), checked
    # there: more than a CPU's cores, or threads on GPUs alone, is refused in one line
    per_device = threads_on_several([hw.kind for hw in resolved], threads)
    for hw, t in zip(resolved, per_device):
        pp.check_threads(memo, hw, t)
    requests = [c.with_(threads=t) for c, t in zip(requests, per_device)]
    for e in refused:
        click.echo(f"left out {e}", err=True)
    with fitting(predictor):
        preds = pp.predict_many(requests)  # one vectorised call for every (device, batch) pair
    if metric_name not in preds[0].metrics:
        # a GP with too few memory runs has no memory output: sorting and plotting by it were a
        # KeyError traceback (predict says why in its caution; optimize refuses the same way)
        from engine.errors import InvalidValueError

        why = getattr(pp.fitted(), "memory_caution", lambda: None)()
        raise InvalidValueError("--metric", metric, f"one the {predictor} fit answers here: "
                                f"{', '.join(k for k, v in METRIC_ALIASES.items() if v in preds[0].metrics)}"
                                + (f" ({why})" if why else ""))
    if plot_path:
        from engine import plots

        if len(batches) == 1:
            plots.hardware_bars(preds, metric_name, plot_path, title=f"{model_name}, batch {batches[0]}, {precision}",
                                labels=[f"{hw.requested}→{hw.id}" if hw.was_platform else hw.id for hw in resolved])
        else:
            series: dict[str, list[Any]] = {}
            for p, hw in zip(preds, resolved):
                series.setdefault(hw.describe(), []).append(p)
            plots.batch_scaling(series, metric_name, plot_path, title=f"{model_name}, {precision}")
    if as_json:  # each row carries predict's cautions for it (Prediction.warnings)
        # and the devices left out, with why, as matrix's "refused": a script reading stdout alone
        # saw a shorter list than it asked for, with the reason only on stderr
        emit_json({"model": model_name, "metric": metric_name, "plot": plot_path,
                   "predictions": [prediction_record(p, hw) for p, hw in zip(preds, resolved)],
                   "refused": [str(e) for e in refused]})
        return
    from rich.table import Table

    reverse = metric_name == "throughput"
    order = list(range(len(preds)))
    if len(batches) == 1:  # a device comparison: best first
        order.sort(key=lambda i: preds[i].metrics[metric_name].median * (-1 if reverse else 1))
    from rich import box

    # borderless with collapsed padding: seven columns of two-line cells read in 80 columns
    rt = f" · {runtime}" if runtime else ""
    table = Table(title=f"{model_name} · {precision} · {mode}{rt} · predictor {predictor}",
                  caption="median, and under it the 90% credible interval", box=box.SIMPLE_HEAD,
                  collapse_padding=True, pad_edge=False)
    # the device that answered, and under it the platform name it was asked for (`cpu`, `cuda`)
    labels = [f"{hw.id}\n[dim]as {hw.requested}[/dim]" if hw.was_platform else hw.id for hw in resolved]
    table.add_column("device", overflow="fold")
    # "runs": measurements of the same model on the same device (`n_nearby` in --json); a short header
    # keeps an 18-character device id on one line beside four-digit memory intervals
    for col in ("batch", "throughput\nitems/s", "latency\nms", "memory\nMiB", "P(fits)", "runs"):
        table.add_column(col, justify="right", no_wrap=True)
    for i in order:
        p, hw = preds[i], resolved[i]
        mem = p.metrics.get("memory_mib")
        fits = p.prob_fits_memory()
        table.add_row(labels[i], str(p.config.batch_size), _cell(p.metrics["throughput"]), _cell(p.metrics["latency_ms"]),
                      _cell(mem) if mem else "n/a", f"{fits:.2f}" if fits is not None else "n/a", str(p.n_nearby))
    out = console()
    out.print(table)
    out.print("[dim]runs: measurements of the same model on the same device[/dim]")
    # the JSON's cautions, once each: unmeasured kinds, devices without runs, per configuration
    for caution in answer_cautions(pp, [(p.config, hw) for p, hw in zip(preds, resolved)], "rows",
                                   "; `perfcast predict` on one of them says more."):
        out.print(f"[yellow]caution:[/] {caution}", highlight=False)
    if plot_path:
        out.print(f"plot written to {plot_path}")


# -- matrix -----------------------------------------------------------------------------------------
@click.command(epilog=("Example: perfcast matrix --models bert-base-uncased,gpt2 --hardware cpu,t4,h100-sxm "
                       "--batch-sizes 1,8 --precision fp32,fp16 --output matrix.json --plot heatmap.png"))
@click.option("--models", "models_csv", default=None, help="Comma-separated catalog models (default: all).")
@click.option("--hardware", default=None, help="Comma-separated ids or platforms (default: every known device).")
@click.option("--batch-sizes", default="1", show_default=True)
@click.option("--precision", "precisions", default="fp32", show_default=True, help="Comma-separated precisions.")
@workload_options
@click.option("--output", type=click.Path(dir_okay=False), default="matrix.json", show_default=True,
              help=".json (nested by model, hardware, batch, precision) or .csv / .parquet (one row per cell).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="PNG heatmap of median latency (models x hardware, first batch size and precision).")
@db_option
@json_option
def matrix(models_csv: Optional[str], hardware: Optional[str], batch_sizes: str, precisions: str, seq_len: int,
           mode: str, runtime: Optional[str], threads: int, predictor: str, output: str, plot_path: Optional[str],
           db_path: Optional[str], as_json: bool) -> None:
    """Prediction matrix over models x hardware x batch size x precision, every metric with intervals.

    A cell no adapter runs (int8 training, ONNX Runtime at fp16/bf16, torch int8 off a CPU) is not
    predicted: it is n/a (null in JSON, with its reason in "refused"), and a note names the reasons.
    If every cell is, the command refuses in one line (exit 2), as predict does.
    """
    from engine.catalog import models as catalog_models
    from engine.matrix import build_matrix, check_output

    check_output(output)  # before any fitting
    check_writable("--output", output)
    check_plot("--plot", plot_path)

    names = split_csv(models_csv, what="model") or list(catalog_models())
    hws = split_csv(hardware, what="hardware") or _all_hardware_ids()
    batches = split_csv(batch_sizes, int, what="batch size") or [1]
    precs = split_csv(precisions, what="precision") or ["fp32"]
    pp = _predictor(db_path, predictor)
    t0 = time.perf_counter()
    with fitting(predictor):
        result = build_matrix(pp, names, hws, batches, precs, seq_len=seq_len, mode=mode, runtime=runtime,
                              threads=threads, save=True)
    elapsed = time.perf_counter() - t0
    result.write(output)
    if plot_path:
        result.heatmap(plot_path)
    summary = {"output": output, "plot": plot_path, "n_predictions": result.n, "n_refused": result.n_refused,
               "predictor": predictor, "prediction_id": result.prediction_id, "seconds": round(elapsed, 3),
               "warnings": result.payload["warnings"], "refused": result.payload["refused"]}
    if as_json:
        emit_json(summary)  # the matrix itself is in --output (it can hold 100k cells)
        return
    out = console()
    out.print(f"{result.n} configuration{'s' if result.n != 1 else ''} predicted by [bold]{predictor}[/] in {elapsed:.2f} s -> {output}"
              + (f", heatmap {plot_path}" if plot_path else "")
              + f"; stored as prediction {result.prediction_id}")
    if result.n_refused:  # one line, each reason once: which cells are n/a in the output, and why
        out.print(f"[dim]n/a: {result.n_refused} cell{'s' if result.n_refused != 1 else ''} no adapter runs, "
                  f"not predicted ({'; '.join(result.payload['refused'])})[/dim]", highlight=False)
    for caution in result.payload["warnings"]:  # a CSV or Parquet file has nowhere to carry them
        out.print(f"[yellow]caution:[/] {caution}", highlight=False)
