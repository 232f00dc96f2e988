"""``perfcast hardware detect | list``: what this machine is, and every device perfcast knows."""
from __future__ import annotations

from typing import Any, Optional

import click

from engine.cli.common import console, db_option, emit_json, json_option, listing_db_path, open_store
from engine.cli.models_cmd import user_errors
from engine.config import PRECISIONS


@click.group()
def hardware() -> None:
    """Detect this machine's devices and list the hardware catalog (plus your own in PERFCAST_HARDWARE).

    \b
    Examples:
      perfcast hardware detect                 # CPU (measured peaks), GPUs, OpenVINO devices
      perfcast hardware detect --refresh --json
      perfcast hardware list --kind cuda
    """


def _peak(v: Optional[float]) -> str:
    """TFLOP/s with three significant digits (0.0359, 19.5, 1,979). Below 0.01 (a CPU that
    emulates fp16/bf16 in software measures about 0.001) it reads "<0.01": the digits would widen
    the column past 80 terminal columns, and ``--json`` keeps the measured value."""
    if not v:
        return "-"
    if v < 0.01:
        return "<0.01"
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def _num(v: Optional[float], fmt: str = "{:,.0f}") -> str:
    return "-" if v is None else fmt.format(v)


#: Terminal width from which the device list has a name column (and the `(ref: cuda)` beside it).
NAME_COLUMN_WIDTH = 110


def _table(entries: list[Any], title: str, width: int = 200) -> Any:
    """Rich table of devices; the name column only where the terminal is wide enough."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    with_name = width >= NAME_COLUMN_WIDTH
    t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    # numbers never shrink (a bandwidth cut to "1,5…" reads as another number); in a narrow terminal
    # the id folds instead, and a reference device gets `^` after its id (the name column is gone)
    rows = []
    for e in entries:
        flag = " *" if e.detected else (" †" if e.origin != "shipped" else "")
        flag += " ^" if e.reference_for and not with_name else ""
        ref = f" (ref: {e.reference_for})" if e.reference_for else ""
        rows.append([e.id + flag, e.kind, *(_peak(e.peak_tflops.get(p)) for p in PRECISIONS),
                     _num(e.memory_bandwidth_gbs, "{:,.0f}"), _num(e.memory_gib, "{:,.0f}"),
                     _num(e.price_per_hour_usd, "{:,.2f}"), *([e.name + ref] if with_name else [])])
    t.add_column("id", style="bold", overflow="fold")
    t.add_column("kind", no_wrap=True)
    for j, head in enumerate([*PRECISIONS, "GB/s", "GiB", "$/h"], start=2):
        t.add_column(head, justify="right", no_wrap=True, min_width=max(len(head), *(len(r[j]) for r in rows)))
    if with_name:
        t.add_column("name", overflow="fold")
    for r in rows:
        t.add_row(*(escape(c) for c in r))  # a name or id with [brackets] is text, not a style tag
    return t


def _print_sources(out: Any, entries: list[Any]) -> None:
    from rich.markup import escape

    for e in entries:  # names and sources are free text: "[...]" in them is text, not a style tag
        out.print(f"[bold]{escape(e.id)}[/] ({escape(e.name)}; TDP {_num(e.tdp_w)} W)")
        for k, v in e.sources.items():
            out.print(escape(f"  {k}: {v}"), highlight=False)


@hardware.command()
@db_option
@json_option
@click.option("--refresh", is_flag=True, help="Measure again instead of using the cached detection.")
@click.option("--no-store", is_flag=True, help="Do not write the result into the database.")
@user_errors
def detect(db_path: Optional[str], as_json: bool, refresh: bool, no_store: bool) -> None:
    """Detect the local CPU, CUDA/ROCm/MPS devices and OpenVINO devices; store them.

    The CPU's peaks are MEASURED (GEMM GFLOP/s per precision, copy bandwidth; < 3 s) and the
    spec-style estimate (cores x clock x SIMD FLOPs/cycle) is kept alongside. Detection is
    cached; --refresh measures again (keeping the best figure ever seen on this machine).

    Example: perfcast hardware detect --db ./perf.duckdb --json
    """
    from hardware.detect import detect_local

    with console(stderr=True).status("measuring this machine's GEMM and copy bandwidth…" if refresh
                                     else "detecting this machine's devices…"):
        entries = detect_local(refresh=refresh)
    stored = 0
    if not no_store:
        store = open_store(db_path)
        stored = store.upsert_hardware(e.to_row() for e in entries)
    if as_json:
        emit_json({"devices": [e.to_dict() for e in entries], "stored": stored})
        return
    from rich.markup import escape

    out = console()
    out.print(_table(entries, "Detected hardware (peak TFLOP/s, int8 TOPS)", out.width))
    cpu = entries[0]
    d = cpu.details
    est = d.get("spec_estimate_tflops") or {}
    m = d.get("measured") or {}
    out.print(f"[bold]{cpu.id}[/]: {escape(str(d.get('model')))} · {d.get('usable_cores')} cores · "
              f"{d.get('freq_ghz')} GHz ({d.get('freq_source')}) · {cpu.memory_gib} GiB")
    out.print(f"vector extensions: {', '.join(d.get('extensions', [])) or 'none found'}")
    if m:
        g = m.get("matmul_gflops", {})
        out.print("last measurement, GEMM GFLOP/s: " + ", ".join(f"{k} {v:,.1f}" for k, v in g.items() if v)
                  + f" · copy bandwidth {m.get('bandwidth_gbs', 0):,.1f} GB/s ({m.get('library')}, {m.get('elapsed_s')} s)")
        if d.get("peaks_are"):
            out.print(f"the table's peaks: {d['peaks_are']} (and of configs/hardware.yaml for this CPU)")
        _busy_note(out, [cpu])
    out.print("spec estimate TFLOP/s: " + ", ".join(f"{k} {v}" for k, v in est.items() if v))
    if d.get("openvino_devices"):
        out.print("OpenVINO devices: " + ", ".join(f"{x.get('device')} ({x.get('full_name', '')})" for x in d["openvino_devices"]))
    if not no_store:
        out.print(f"stored {stored} device(s) in the hardware table of {store.path}")


def _busy_note(out: Any, cpus: list[Any]) -> None:
    """The note for a CPU whose peaks in use were measured on a busy machine (predict's caution)."""
    from engine.predict import busy_peak_caution

    for cpu in cpus:
        why = busy_peak_caution(cpu.id)
        if why:
            out.print(f"[yellow]note: {why}[/]")


@hardware.command(name="list")
@db_option
@json_option
@click.option("--kind", type=click.Choice(["cpu", "cuda", "rocm", "mps", "openvino", "qnn", "webgpu", "webnn"]),
              default=None, help="Only this platform.")
@click.option("--no-detect", is_flag=True, help="Catalog (and store) only; skip local detection.")
@click.option("--sources", is_flag=True, help="Also print where every figure comes from.")
@user_errors
def list_(db_path: Optional[str], as_json: bool, kind: Optional[str], no_detect: bool, sources: bool) -> None:
    """Catalog devices plus the ones detected here (and any in the database), with their figures.

    Peaks are dense TFLOP/s (int8: TOPS), bandwidth GB/s, memory GiB, power W, price $/hour for one
    device. `(ref: cuda)` beside the name (`^` after the id in a narrow terminal) marks the device
    that answers `--hardware cuda` when no GPU is detected.

    Example: perfcast hardware list --kind cuda --json
    """
    from engine.catalog import PLATFORMS, all_hardware, catalog_hardware
    from engine.errors import PerfcastError

    catalog_hardware()  # a bad user catalog (PERFCAST_HARDWARE) is an error of its own, not a store problem
    # a listing reads the store's devices where there is a store, and creates none; a path in a
    # folder that does not exist is refused, as by every command (it listed as if no --db was given)
    path = listing_db_path(db_path)
    store = open_store(db_path) if path.exists() else None
    try:
        entries = all_hardware(store, detect=not no_detect)
    except PerfcastError as e:  # a locked database must not hide the catalog
        click.secho(f"warning: {e}; listing without the database's devices", fg="yellow", err=True)
        entries = all_hardware(None, detect=not no_detect)
    rows = [e for e in entries.values() if kind is None or e.kind == kind]
    rows.sort(key=lambda e: (not e.detected, PLATFORMS.index(e.kind) if e.kind in PLATFORMS else 99, e.id))
    if as_json:
        emit_json({"hardware": [e.to_dict() for e in rows]})
        return
    out = console()
    user = sorted({e.origin for e in rows if e.origin != "shipped" and not e.detected})
    mark = f"; † = from {', '.join(user)}" if user else ""
    ref = "" if out.width >= NAME_COLUMN_WIDTH else "; ^ = answers for its kind"  # wide: `(ref: cuda)` beside the name
    out.print(_table(rows, f"Hardware ({len(rows)}; * = detected here{mark}{ref}; dense peak TFLOP/s (int8 TOPS))",
                     out.width))
    if sources:
        _print_sources(out, rows)
    else:
        out.print("names and sources of every figure: perfcast hardware list --sources", highlight=False)
    _busy_note(out, [e for e in rows if e.detected and e.kind == "cpu"])
