"""``perfcast models list | show``: the model catalog and its computed descriptors."""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import click

from engine.cli.common import console, emit_json, json_option

FAMILY_CHOICES = ("text_embedding", "text_generation", "vision", "audio", "multimodal")


class UserError(click.ClickException):
    """A PerfcastError surfaced through Click, keeping its exit code (2 for unknown names)."""

    def __init__(self, err: Exception) -> None:
        super().__init__(str(err))
        self.exit_code = int(getattr(err, "exit_code", 1))

    def show(self, file: Any = None) -> None:
        click.secho(f"error: {self.message}", fg="red", err=True)


def user_errors(f: Callable[..., Any]) -> Callable[..., Any]:
    """Turn PerfcastError into a one-line Click error with its exit code, also under CliRunner."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from engine.errors import PerfcastError

        try:
            return f(*args, **kwargs)
        except PerfcastError as e:
            raise UserError(e) from None

    return wrapper


def _si(x: Optional[float], unit: str = "") -> str:
    if x is None:
        return "-"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:,.2f} {prefix}{unit}"
    return f"{x:,.0f} {unit}".rstrip()


def _bytes(x: Optional[float]) -> str:
    if x is None:
        return "-"
    for factor, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(x) >= factor:
            return f"{x / factor:,.2f} {unit}"
    return f"{x:,.0f} B"


@click.group()
def models() -> None:
    """The model catalog (configs/models.yaml, plus your own in PERFCAST_MODELS) and its computed descriptors.

    \b
    Examples:
      perfcast models list --family text_generation
      perfcast models show bert-base-uncased --batch-size 8 --seq-length 256 --precision fp16
      perfcast models show llama-7b --mode training --json
    """


@models.command(name="list")
@json_option
@click.option("--family", type=click.Choice(FAMILY_CHOICES), default=None, help="Only this model family.")
@user_errors
def list_(as_json: bool, family: Optional[str]) -> None:
    """Catalog models with parameters computed (meta-device count) vs published, and forward FLOPs
    at batch 1, sequence length 128.

    Example: perfcast models list --family vision --json
    """
    from engine.catalog import models as catalog_models
    from engine.config import Config
    from engine.descriptors import describe

    rows = []
    for name, e in catalog_models().items():
        if family and e.family != family:
            continue
        d = describe(Config(name, "descriptor", 1, 128))
        rel = (d.params / e.published_params - 1.0) if e.published_params else None
        rows.append({"model": name, "family": e.family, "params": d.params, "published_params": e.published_params,
                     "params_rel_diff": rel, "params_source": e.params_source, "flops_b1_s128": d.flops,
                     "seq_len_effective": d.seq_len, "method": d.method, "origin": e.origin})
    if as_json:
        emit_json({"models": rows})
        return
    from rich.table import Table

    from rich import box

    t = Table(title=f"Models ({len(rows)}); GFLOPs: one forward pass, batch 1, seq 128",
              box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for col, just in (("model", "left"), ("family", "left"), ("params", "right"),
                      ("published", "right"), ("diff", "right"), ("GFLOPs", "right")):
        t.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        diff = "-" if r["params_rel_diff"] is None else f"{100 * r['params_rel_diff']:+.2f}%"
        pub = r["published_params"]
        mark = "*" if r["origin"] != "shipped" else ""  # a user model (PERFCAST_MODELS)
        t.add_row(r["model"] + mark, r["family"], f"{r['params'] / 1e6:,.1f}M", f"{pub / 1e6:,.1f}M" if pub else "-",
                  diff, f"{r['flops_b1_s128'] / 1e9:,.0f}")
    out = console()
    out.print(t)
    out.print("counted with: " + ", ".join(sorted({r["method"] for r in rows})), highlight=False)
    user = sorted({r["origin"] for r in rows if r["origin"] != "shipped"})
    if user:
        out.print(f"* from {', '.join(user)} (PERFCAST_MODELS)", highlight=False)


@models.command()
@click.argument("name")
@click.option("--batch-size", type=int, default=1, show_default=True)
@click.option("--seq-length", "seq_len", type=int, default=128, show_default=True,
              help="Sequence length (ignored by vision models; CLIP's text tower caps at 77).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16", "int8"]), default="fp32", show_default=True)
@click.option("--mode", type=click.Choice(["inference", "training"]), default="inference", show_default=True)
@click.option("--runtime", type=click.Choice(["torch", "onnxruntime", "openvino"]), default="torch", show_default=True,
              help="Whose bytes: int8 weights (torch quantizes Linear layers only, ONNX Runtime every weight) "
                   "and the KV cache (an exported graph keeps none) depend on it.")
@click.option("--method", type=click.Choice(["auto", "flop_counter", "analytic"]), default="auto", show_default=True,
              help="FLOP counter on the meta device, or the analytic formulas.")
@json_option
@user_errors
def show(name: str, batch_size: int, seq_len: int, precision: str, mode: str, runtime: str, method: str,
         as_json: bool) -> None:
    """Architecture and descriptors of one model: FLOPs, parameters, bytes moved, memory.

    Generative models also show one decode step (a token attending to a KV cache of
    --seq-length tokens).

    Example: perfcast models show gpt2 --batch-size 4 --seq-length 512 --precision fp16
    """
    from engine.catalog import get_model
    from engine.config import Config
    from engine.descriptors import TRAFFIC, describe, describe_decode, has_decode_step

    entry = get_model(name)
    cfg = Config(name, "descriptor", batch_size, seq_len, precision, mode, runtime)
    # an uncached shape builds the model and counts its operators (seconds): say so on stderr
    with console(stderr=True).status(f"counting {name}'s operators (cached after the first time)…"):
        d = describe(cfg, method=method)
        dec = describe_decode(cfg, method=method) if mode == "inference" and has_decode_step(cfg) else None
    from hardware.registry import refusal_reason

    # the descriptors are counted for any combination, but int8 training or ONNX Runtime/OpenVINO
    # training runs nowhere, and ONNX Runtime's fp16/bf16 not on a CPU: predict and benchmark refuse
    # them there, and the table's "(run in int8)" was a claim about a pass no adapter runs
    refused = refusal_reason("cpu", runtime, precision, mode)
    payload = {"model": name, "family": entry.family, "hf_config": entry.hf_config, "arch": entry.arch,
               "published_params": entry.published_params, "params_source": entry.params_source,
               "descriptor": d.to_dict(), "decode": dec.to_dict() if dec else None, "refused_on_cpu": refused}
    if as_json:
        emit_json(payload)
        return
    from rich.table import Table

    out = console()
    out.print(f"[bold]{name}[/] · {entry.family} · {entry.hf_config} · "
              f"published {entry.published_params:,} params ({entry.params_source})" if entry.published_params
              else f"[bold]{name}[/] · {entry.family}")
    out.print("arch: " + ", ".join(f"{k}={v}" for k, v in entry.arch.items()))
    from rich import box

    t = Table(title=f"batch {batch_size} · seq {d.seq_len} · {precision} · {mode} · {runtime}", box=box.SIMPLE_HEAD)
    t.add_column("quantity")
    t.add_column(mode, justify="right")
    if dec:
        t.add_column("decode step (1 token)", justify="right")

    def row(label: str, a: str, b: str = "") -> None:
        t.add_row(label, a, *([b] if dec else []))

    row("parameters", f"{d.params:,}", f"{dec.params:,}" if dec else "")
    row("FLOPs", _si(d.flops, "FLOP"), _si(dec.flops, "FLOP") if dec else "")

    def share(x: Any) -> str:
        return f"{x.linear_flops / x.flops:.1%}" if x.flops else "–"

    # the part int8 dynamic quantization runs in int8 (the roofline's int8 compute time rests on it);
    # the label says so only at int8, where it is true
    row("  in weight matmuls" + (" (run in int8)" if precision == "int8" and not refused else ""), share(d),
        share(dec) if dec else "")

    def tied(x: Any) -> str:
        return f"{x.tied_head_flops / x.flops:.1%}" if x.flops else "–"

    if d.tied_head_flops or (dec and dec.tied_head_flops):
        # ONNX Runtime's int8 graph runs an LM head tied to the input embedding in fp32
        row("    of which a tied LM head", tied(d), tied(dec) if dec else "")
    # the parts are sizes; the multipliers say how often a pass moves each (they sum to bytes moved)
    tw, ta = TRAFFIC[mode]
    row("bytes moved", _bytes(d.bytes_moved), _bytes(dec.bytes_moved) if dec else "")
    row(f"  weights{f' (moved ×{tw})' if tw > 1 else ''}", _bytes(d.weight_bytes),
        _bytes(dec.weight_bytes) if dec else "")
    row(f"  activations (moved ×{ta})", _bytes(d.activation_bytes), _bytes(dec.activation_bytes) if dec else "")
    row("  KV cache", _bytes(d.kv_cache_bytes), _bytes(dec.kv_cache_bytes) if dec else "")
    if mode == "training":
        row("  optimizer traffic", _bytes(d.bytes_moved - tw * d.weight_bytes - ta * d.activation_bytes
                                          - d.kv_cache_bytes), "")
    row("arithmetic intensity (FLOP/B)", f"{d.arithmetic_intensity:,.1f}", f"{dec.arithmetic_intensity:,.1f}" if dec else "")
    row("memory (weights+state+live acts+KV)", _bytes(d.memory_bytes), _bytes(dec.memory_bytes) if dec else "")
    if mode == "training":
        row("  gradients + Adam states", _bytes(d.state_bytes))
    row("  resident at once (the floor)", _bytes(d.floor_bytes), _bytes(dec.floor_bytes) if dec else "")
    # a process's peak is at least its build: torch's int8 is quantized from the fp32 model
    row("  held while building the model", _bytes(d.build_bytes), _bytes(dec.build_bytes) if dec else "")
    row("method", d.method, dec.method if dec else "")
    out.print(t)
    if d.note:
        out.print(f"note: {d.note}")
    if refused:
        out.print(f"[yellow]note:[/] no adapter runs {runtime} {precision} {mode} on a CPU ({refused}): predict and "
                  "benchmark refuse it there", highlight=False)
