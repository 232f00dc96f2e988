"""`perfcast benchmark`: run real benchmarks through the hardware adapters.

Every configuration runs in its own child process with a time and memory limit; failures are
shown (and stored with --save) like successes, because "does not fit" is a result too. The exit
status is 1 when any run failed, so a script can tell without parsing the table.
"""
from __future__ import annotations

import itertools
from typing import Any, Optional

import click

from engine.cli.common import console, db_option, emit_json, fmt_number, json_option, split_csv


@click.command("benchmark")
@click.option("--model", "models_", required=True, help="Catalog model name(s), comma-separated.")
@click.option("--hardware", "hardware", default="cpu", show_default=True,
              help="Adapter names (torch-cpu, torch-cuda, torch-mps, onnxruntime, openvino, qnn) or "
                   "platform names (cpu, cuda, rocm, gpu, mps, openvino, qnn), comma-separated.")
@click.option("--batch-sizes", default="1", show_default=True, help="Comma-separated batch sizes.")
@click.option("--seq-lengths", default="128", show_default=True,
              help="Comma-separated sequence lengths (ignored by vision models; 0 = the model's default, 128).")
@click.option("--precision", "precisions", default="fp32", show_default=True, help="fp32, fp16, bf16, int8 (comma-separated).")
@click.option("--mode", "modes", default="inference", show_default=True, help="inference, training (comma-separated).")
@click.option("--runtime", "runtime", default=None,
              help="torch, onnxruntime, openvino (comma-separated for several): picks the adapter for a platform "
                   "name (default: the platform's own).")
@click.option("--threads", "threads", default="0", show_default=True, help="Thread counts (0 = runtime default).")
@click.option("--iterations", type=click.IntRange(1), default=20, show_default=True, help="Minimum timed iterations.")
@click.option("--warmup", type=click.IntRange(1), default=3, show_default=True, help="Warm-up iterations (the first is the load-time run).")
@click.option("--min-time", "min_time_s", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Minimum timed seconds (timing continues until both minima are met).")
@click.option("--max-time", "max_time_s", type=click.FloatRange(0.01), default=60.0, show_default=True,
              help="Stop timing after this many seconds even if the minima are not met.")
@click.option("--decode-tokens", type=click.IntRange(0), default=8, show_default=True,
              help="text_generation with torch: new tokens generated to time first-token and decode latency "
                   "(1: the first token only; 0: neither).")
@click.option("--time-limit", "time_limit_s", type=click.FloatRange(0.1), default=600.0, show_default=True,
              help="Kill a benchmark after this many seconds (recorded as timeout).")
@click.option("--memory-limit-mib", type=click.FloatRange(1), default=None,
              help="Kill a benchmark whose resident memory exceeds this (recorded as oom).")
@click.option("--save", is_flag=True, help="Store every run (failed ones too) in the database as it lands.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine; ray: the Ray cluster's workers, each run on a node with its hardware.")
@click.option("--address", default=None, help="Ray head HOST:PORT for --executor ray (default: RAY_ADDRESS, else local).")
@db_option
@json_option
def benchmark(models_: str, hardware: str, batch_sizes: str, seq_lengths: str, precisions: str, modes: str,
              runtime: Optional[str], threads: str, iterations: int, warmup: int, min_time_s: float,
              max_time_s: float, decode_tokens: int, time_limit_s: float, memory_limit_mib: Optional[float],
              save: bool, executor: str, address: Optional[str], db_path: Optional[str], as_json: bool) -> None:
    """Run real benchmarks and show (and optionally store) the measurements.

    Every configuration is measured, stored (--save) and shown even when some fail; the command
    then exits 1 if any run failed (oom, timeout, failed) or, with --executor ray, if no live
    worker could run one, else 0. Run locally, the first Ctrl-C lets the run in flight finish (and be stored),
    shows what was measured and exits 130; a second one stops the run in flight too.

    \b
    Examples:
      perfcast benchmark --model gpt2 --hardware cpu --batch-sizes 1,2,4,8 --seq-lengths 128,256 \\
          --precision fp32,bf16 --mode inference --runtime torch --iterations 20 --save
      perfcast benchmark --model resnet50 --hardware openvino --precision fp32,bf16 --threads 1,2 --json
    """
    from engine.catalog import get_model
    from engine.config import MODES, PRECISIONS, RUNTIMES, Config
    from engine.errors import InvalidValueError, NotAvailableError
    from engine.workloads import effective_seq_len
    from hardware.base import BenchmarkSpec
    from hardware.registry import resolve

    if min_time_s > max_time_s:  # an experiment config refuses the same; the caps were silently swapped
        raise InvalidValueError("--min-time", min_time_s, f"at most --max-time ({max_time_s:g} s)")
    model_names = split_csv(models_, what="model")
    for m in model_names:
        get_model(m)
    batches = split_csv(batch_sizes, int, "batch size")
    seqs = split_csv(seq_lengths, int, "sequence length")
    precs = split_csv(precisions, what="precision")
    mode_list = split_csv(modes, what="mode")
    thread_list = split_csv(threads, int, "threads")
    for p in precs:
        if p not in PRECISIONS:
            raise InvalidValueError("precision", p, ", ".join(PRECISIONS))
    for m in mode_list:
        if m not in MODES:
            raise InvalidValueError("mode", m, ", ".join(MODES))
    runtimes: list[Optional[str]] = list(split_csv(runtime, what="runtime")) if runtime else [None]
    for r in runtimes:
        if r is not None and r not in RUNTIMES:
            raise InvalidValueError("runtime", r, ", ".join(RUNTIMES))
    if executor == "ray":  # hardware ids come from the cluster's workers, not this machine
        from engine.cli.common import open_store
        from experiments.ray_benchmark import benchmark_on_ray

        spec_kw = dict(iterations=iterations, warmup=warmup, min_time_s=min_time_s, max_time_s=max(max_time_s, min_time_s),
                       time_limit_s=time_limit_s, memory_limit_mib=memory_limit_mib, decode_tokens=decode_tokens)
        store = open_store(db_path) if save else None
        skipped: dict[str, str] = {}  # no live worker ran them: said on stderr, and exit 1 below
        ray_results = benchmark_on_ray(split_csv(hardware, what="hardware"), runtimes, model_names, batches, seqs,
                                       precs, mode_list, thread_list, spec_kw, store, address, quiet=as_json,
                                       skipped=skipped, select=_before_any_run)
        if as_json:
            _emit_json(ray_results)
        else:
            _table(ray_results, saved=save)
        _exit_if_any_failed(ray_results, not_run=len(skipped))
        return
    adapters = []
    for h, r in itertools.product(split_csv(hardware, what="hardware"), runtimes):
        a = resolve(h, r)
        if r is not None and a.runtime != r:
            raise InvalidValueError(f"runtime for adapter '{a.name}'", r, a.runtime)
        ok, why = a.available()
        if not ok:
            raise NotAvailableError(f"{a.name}: {why}")
        adapters.append(a)

    configs: list[tuple[Any, Config]] = []
    for a, m, b, s, p, mode, t in itertools.product(adapters, model_names, batches, seqs, precs, mode_list, thread_list):
        entry = get_model(m)
        seq = effective_seq_len(entry, s)  # 0 on a text model means the default 128, as in predict
        c = Config(m, a.hardware_id(), b, seq, p, mode, a.runtime, t)
        if (a, c) not in configs:
            configs.append((a, c))

    configs = _before_any_run(configs)
    store = None
    if save:
        from engine.cli.common import open_store

        store = open_store(db_path)
    results = []
    err = console(stderr=True)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from engine.cli.interrupt import first_interrupt_calls

    stop: list[bool] = []  # the first Ctrl-C: no configuration starts after the one in flight
    stopped_in_flight: Optional[str] = None  # the second: the run in flight was killed, not stored
    with Progress(TextColumn("[bold]benchmark"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=err, transient=as_json) as progress:
        task = progress.add_task("", total=len(configs))

        def stop_after_inflight() -> None:
            stop.append(True)
            stored = " and be stored" if store is not None else ""
            progress.console.print(f"[yellow]Ctrl-C: the benchmark in flight will finish{stored}, then benchmark "
                                   f"stops (Ctrl-C again stops now)[/yellow]", highlight=False)

        with first_interrupt_calls(stop_after_inflight):
            for a, c in configs:
                if stop:
                    break
                progress.update(task, description=f"{a.name} {c.model} b{c.batch_size} s{c.seq_len} {c.precision} t{c.threads}")
                spec = BenchmarkSpec(c, iterations=iterations, warmup=warmup, min_time_s=min_time_s,
                                     max_time_s=max(max_time_s, min_time_s), time_limit_s=time_limit_s,
                                     memory_limit_mib=memory_limit_mib, decode_tokens=decode_tokens)
                try:
                    m = a.run(spec)
                    if store is not None:
                        m_id = store.patiently(lambda: store.save_measurement(m), lambda why: progress.console.print(
                            f"[yellow]{why}; the result is written once the lock is released (Ctrl-C to give up)[/]",
                            highlight=False))  # a measured run is not lost to a reader holding the file
                    else:
                        m_id = None
                except KeyboardInterrupt:  # the second Ctrl-C: the child is killed (run_isolated's finally)
                    stopped_in_flight = c.key
                    break
                results.append((a, m, m_id))
                progress.advance(task)

    interrupted = bool(stop or stopped_in_flight)
    if as_json:
        _emit_json(results)
    elif results or not interrupted:  # stopped before any run landed: the line below says so, no empty table
        _table(results, saved=store is not None)
    if interrupted:
        _interrupted(results, len(configs), stopped_in_flight, saved=store is not None)
    _exit_if_any_failed(results)


def _interrupted(results: list[tuple[Any, Any, Optional[str]]], total: int, stopped_in_flight: Optional[str],
                 saved: bool) -> None:
    """After Ctrl-C: the runs that finished are shown (and were stored with --save) like a whole
    command's; one line on stderr says how many of the configurations ran, which one was stopped in
    flight, and exit 130. Before, Ctrl-C printed only "Aborted.": a run measured without --save was
    never shown, and nothing said which runs the store held."""
    from rich.markup import escape

    n = len(results)
    not_run = total - n - (1 if stopped_in_flight else 0)
    parts = [f"interrupted: {n} of {total} configuration{'s' if total != 1 else ''} measured"
             + (" and stored" if saved and n else "")]
    if stopped_in_flight:
        parts.append(f"{stopped_in_flight} was stopped in flight" + (", not stored" if saved else ""))
    if not_run:
        parts.append(f"{not_run} not started")
    console(stderr=True).print(f"[yellow]{escape('; '.join(parts))}[/yellow]", highlight=False)
    raise click.exceptions.Exit(130)


def _exit_if_any_failed(results: list[tuple[Any, Any, Optional[str]]], not_run: int = 0) -> None:
    """Exit 1 once every run is measured, stored and shown, if any of them failed or ``not_run``
    configurations were never run (Ray: no live worker could): the table (or the JSON's ``status``,
    or the stderr line) says why, the exit status says so to a script. Before, only a command whose
    every run failed exited 1, so a grid with one oom among twenty looked like a clean one."""
    if not_run or any(not m.ok for _, m, _ in results):
        raise click.exceptions.Exit(1)


def _before_any_run(configs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """The (adapter, configuration) pairs to run, with the cautions said, before the first child
    starts: the local branch's and, through ``benchmark_on_ray``'s ``select``, the Ray branch's,
    whose adapters are the workers' (:class:`experiments.ray_benchmark.RemoteAdapter`)."""
    _check_thread_counts(configs)
    keep = _runnable(configs)
    _slow_precision_caution(keep)
    _int8_share_caution([c for _, c in keep])
    return keep


def _check_thread_counts(configs: list[tuple[Any, Any]]) -> None:
    """More threads than the CPU has cores is one line, exit 2, before any child starts, as predict
    and a loop's search space refuse it: ``--threads 999`` on a 2-core machine ran and stored a t999
    run, which every fit reads as t2 (the roofline caps threads at the cores) though it ran
    oversubscribed. A device the catalog cannot resolve here (a Ray worker's CPU) is not checked."""
    from engine.catalog import resolve_hardware
    from engine.models.features import check_threads

    for hw, t in dict.fromkeys((c.hardware, c.threads) for _, c in configs if c.threads):
        try:
            entry = resolve_hardware(hw)
        except Exception:  # noqa: BLE001 - unknown here: a remote worker's CPU
            continue
        check_threads(entry, t)


def _slow_precision_caution(configs: list[tuple[Any, Any]]) -> None:
    """Say before the first child starts when a precision runs far below fp32 on its device: torch's
    bf16 on a CPU without bf16 kernels (the AVX2 Zen 3: 0.98 GFLOP/s against 185 for fp32) makes a
    gpt2 pass take minutes, and the README's first benchmark command would have run for an hour
    without a word (audit, 2026-12-07). The peaks are the catalog's measured GEMM rates."""
    from engine.models.features import default_featurizer

    seen = set()
    for a, c in configs:
        key = (c.hardware, c.runtime, c.precision)
        if key in seen or c.precision == "fp32" or c.runtime != "torch":
            continue
        seen.add(key)
        try:
            peaks = default_featurizer().hardware(c.hardware).peak_flops
        except Exception:  # noqa: BLE001 - a device the catalog cannot resolve: nothing to compare
            continue
        p, f32 = peaks.get(c.precision), peaks.get("fp32")
        if p and f32 and p < f32 / 4:
            console(stderr=True).print(
                f"[yellow]caution:[/] {c.precision} on {c.hardware} runs at {p / 1e9:,.2f} GFLOP/s against "
                f"{f32 / 1e9:,.0f} for fp32 (no {c.precision} kernels here): each {c.precision} run can take "
                f"minutes, up to --time-limit", highlight=False)


def _int8_share_caution(configs: list[Any]) -> None:
    """Say once per model, before the first child starts, when its torch int8 runs are mostly fp32:
    dynamic quantization rewrites only Linear layers, so resnet50's "int8" runs 0.1% of its FLOPs
    in int8 (:func:`engine.predict.int8_share_caution`, which also says why other runtimes are not
    cautioned). Any failure is silence, as in :func:`_slow_precision_caution`."""
    from engine.predict import int8_share_caution  # silent on any failure to count

    for c in {(c.model, c.runtime, c.precision): c for c in configs}.values():  # once per model and path
        note = int8_share_caution(c)
        if note:
            console(stderr=True).print(f"[yellow]caution:[/] {note}", highlight=False)


def _runnable(configs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Leave out, before any child starts, what the adapter is known to refuse (onnxruntime and
    openvino measure inference only; onnxruntime has no fp16/bf16 CPU kernels; torch int8 is
    CPU-only; openvino's fp16 on a CPU without f16 inference): a note names them, and if nothing is
    left it is a one-line error (exit 2). Before, each one started a child that failed, and the
    command exited 0. A local adapter is asked itself (:meth:`hardware.base.AdapterBase.refusal`,
    which knows this machine: openvino fp16 was run as bf16 and stored as fp16); a Ray worker's
    stand-in gets the adapters' table, and its worker refuses the rest."""
    from engine.errors import InvalidValueError
    from hardware.registry import refusal_reason

    def why(a: Any, c: Any) -> Optional[str]:  # what AdapterBase.refusal says, for any adapter-like object
        own = getattr(a, "refusal", None)
        if callable(own):
            return own(c)
        return refusal_reason(getattr(a, "platform", "cpu"), a.runtime, c.precision, c.mode)

    keep = [(a, c) for a, c in configs if not why(a, c)]
    dropped = sorted({f"{a.name} {c.precision}/{c.mode}" for a, c in configs if (a, c) not in keep})
    if not keep:
        a, c = configs[0]
        err = InvalidValueError("configuration", f"{a.name} {c.precision}/{c.mode}", "")
        err.args = (f"invalid configuration '{a.name} {c.precision}/{c.mode}': {why(a, c)}",)  # its own reason
        raise err
    if dropped:
        console(stderr=True).print(f"[dim]left out {len(configs) - len(keep)} configuration"
                                   f"{'s' if len(configs) - len(keep) != 1 else ''} that the adapter refuses: "
                                   f"{', '.join(dropped[:4])}[/dim]", highlight=False)
    return keep


def _emit_json(results: list[tuple[Any, Any, Optional[str]]]) -> None:
    """One JSON row per run (its start time with its zone, as every --json prints times); the busy
    cautions go to stderr, so stdout stays one JSON document."""
    _busy_cautions(results, console(stderr=True))
    emit_json([{**m.to_dict(), "started_at": m.started_at, "run_id": rid, "saved": rid is not None}
               for _, m, rid in results])


def _busy_cautions(results: list[tuple[Any, Any, Optional[str]]], out: Any) -> None:
    """One caution for the runs timed while other processes needed their cores, with a count (with
    --json on stderr too); it was one per run, the same advice repeated down the screen."""
    from rich.markup import escape

    from hardware.protocol import busy_summary

    note = busy_summary([m for _, m, _ in results])
    if note:
        out.print(f"[yellow]caution:[/] {escape(note)}", highlight=False)


def _fmt(x: Optional[float]) -> str:
    """Three significant figures: a table of timings is read for magnitudes, the JSON has every digit."""
    return fmt_number(x, missing="—")


def _table(results: list[tuple[Any, Any, Optional[str]]], saved: bool) -> None:
    from rich.table import Table

    from engine.cli.common import config_text

    # model and configuration share one column, and the generative columns appear only when a
    # run has them, so the table reads in 80 columns
    generative = any(m.first_token_ms is not None or m.decode_token_ms is not None for _, m, _ in results)
    t = Table(title="Measurements" + (" (saved)" if saved else ""), show_lines=False)
    t.add_column("model / configuration", overflow="fold")
    cols = ["median\nms", "p90\nms", "items/s", "peak\nMiB"] + (["1st tok\nms", "decode\nms/tok"] if generative else [])
    for col in cols + ["load\ns"]:
        t.add_column(col, justify="right", no_wrap=True)
    failures = []
    for _, m, _ in results:
        c = m.config
        lat = m.latency
        status = "" if m.ok else f" [red]{m.status}[/]"  # failures are also listed under the table
        gen = [_fmt(m.first_token_ms), _fmt(m.decode_token_ms)] if generative else []
        t.add_row(f"{c.model}{status}\n[dim]{config_text(c)}[/dim]",
                  _fmt(lat.median_ms if lat else None), _fmt(lat.p90_ms if lat else None), _fmt(m.throughput),
                  _fmt(m.memory_peak_mib), *gen, _fmt(m.load_time_s))
        if not m.ok:
            failures.append((c.key, m.status, (m.error or "").strip().splitlines()[0] if m.error else ""))
    out = console()
    out.print(t)
    from rich.markup import escape

    for key, status, err in failures:  # the adapter's text: "[/x]" in it was a MarkupError after the runs were saved
        out.print(f"[red]{status}[/] {escape(key)}: {escape(err)}", highlight=False)
    _busy_cautions(results, out)
