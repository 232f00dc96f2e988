"""`perfcast benchmark --executor ray`: the same product of configurations, run on the cluster.

The driver may not have the hardware it asks for (a laptop submitting CUDA benchmarks), so the
hardware ids come from the cluster, not from local detection: each worker advertises
``ad:<adapter>/<hardware id>`` for every adapter it can run, and ``--hardware cuda`` means "every
hardware id that a live worker's torch-cuda adapter measures". The caller's ``select`` sees the
whole product before anything is sent (the local command's up-front refusals and cautions), and
each result is committed to the store the moment it arrives.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from engine.config import Config
from engine.errors import NotAvailableError


@dataclass(frozen=True)
class RemoteAdapter:
    """Stands in for an adapter in the benchmark table: its name and where it ran."""

    name: str
    runtime: str
    hardware_id: str
    platform: str = "cpu"  # the adapter's catalog platform, for its refusals (hardware.registry.refusal_reason)


def cluster_targets(hardware_names: Sequence[str], runtime: Optional[str], nodes: Sequence[Any]) -> tuple[list[RemoteAdapter], list[str]]:
    """(targets, messages): each requested adapter/platform name -> hardware ids live workers offer.

    A name may also be a hardware id a worker advertises (``cpu-amd-epyc-2c``), measured with
    ``runtime`` (default torch). Names no live worker can serve become messages, not errors, so one
    missing GPU does not stop the CPU benchmarks.
    """
    from hardware.registry import ADAPTERS, PLATFORMS, resolve

    live = [n for n in nodes if n.alive]
    offered_ids = {h for n in live for h in n.hardware}
    targets: list[RemoteAdapter] = []
    messages: list[str] = []
    for h in hardware_names:
        low = h.strip().lower()
        if low not in ADAPTERS and low not in PLATFORMS and h in offered_ids:
            rt = runtime or "torch"
            names = sorted({a for n in live for a, hid in n.adapters.items() if hid == h})
            ad = next((a for a in names if resolve(a).runtime == rt), None)
            if ad is None:
                messages.append(f"no live Ray worker measures {h} with runtime {rt}")
                continue
            targets.append(RemoteAdapter(ad, rt, h, resolve(ad).platform))
            continue
        adapter = resolve(h, runtime)  # UnknownNameError / InvalidValueError for bad names
        hids = sorted({n.adapters[adapter.name] for n in live if adapter.name in n.adapters})
        if not hids:
            messages.append(f"no live Ray worker offers adapter {adapter.name} (asked for by --hardware {h}); "
                            f"skipping its benchmarks")
        for hid in hids:
            t = RemoteAdapter(adapter.name, adapter.runtime, hid, adapter.platform)
            if t not in targets:
                targets.append(t)
    return targets, messages


Pairs = list[tuple[RemoteAdapter, Config]]


def benchmark_on_ray(hardware_names: Sequence[str], runtimes: Sequence[Optional[str]], model_names: Sequence[str],
                     batches: Sequence[int], seqs: Sequence[int], precisions: Sequence[str], modes: Sequence[str],
                     threads: Sequence[int], spec_kwargs: dict[str, Any], store: Any = None,
                     address: Optional[str] = None, quiet: bool = False,
                     say: Optional[Callable[[str], None]] = None,
                     skipped: Optional[dict[str, str]] = None,
                     select: Optional[Callable[[Pairs], Pairs]] = None) -> list[tuple[RemoteAdapter, Any, Optional[str]]]:
    """Run the product on the cluster; ``[(target, Measurement, run id or None)]`` in arrival order.

    ``runtimes``: each one picks the adapters of the platform names (None: the platform's own), as
    ``--runtime torch,onnxruntime`` does locally. ``select``, if given, receives every (target,
    configuration) pair before any is sent and returns those to run: ``perfcast benchmark`` leaves
    out what the adapter is known to refuse and says its cautions there, as its local branch does
    (before, a refused configuration went to a worker, failed there and was stored as a failed run).
    ``skipped``, if given, receives the configurations no live worker ran (key -> why), which the
    caller's exit status has to count: they were neither measured nor stored."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from engine.catalog import get_model
    from engine.cli.common import console
    from engine.workloads import effective_seq_len
    from experiments.ray_executor import RayExecutor
    from hardware.base import BenchmarkSpec

    err = console(stderr=True)
    say = say or (lambda msg: err.print(f"[yellow]{msg}[/]"))
    ex = RayExecutor(address)
    nodes = ex.nodes(refresh=True)
    targets: list[RemoteAdapter] = []
    for runtime in runtimes:  # a worker's targets are chosen per runtime
        found, messages = cluster_targets(hardware_names, runtime, nodes)
        for msg in messages:
            say(msg)
        targets += [t for t in found if t not in targets]
    if not targets:
        raise NotAvailableError("no live Ray worker can run any of the requested hardware ("
                                + ", ".join(hardware_names) + "); see `perfcast workers`")
    by_key: dict[str, RemoteAdapter] = {}
    pairs: Pairs = []
    for t, m, b, s, p, mode, th in itertools.product(targets, model_names, batches, seqs, precisions, modes, threads):
        seq = effective_seq_len(get_model(m), s)  # as `perfcast benchmark` and predict read it
        c = Config(m, t.hardware_id, b, seq, p, mode, t.runtime, th)
        if c.key in by_key:
            continue
        by_key[c.key] = t
        pairs.append((t, c))
    if select is not None:
        pairs = select(pairs)
    specs = [BenchmarkSpec(c, **spec_kwargs) for _, c in pairs]
    results: list[tuple[RemoteAdapter, Any, Optional[str]]] = []
    with Progress(TextColumn("[bold]benchmark on ray"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=err, transient=quiet) as progress:
        task = progress.add_task("", total=len(specs))

        def landed(r: Any) -> None:
            m = r.measurement
            rid = store.patiently(lambda: store.save_measurement(m), progress.console.print) \
                if store is not None else None  # one writer: the driver
            results.append((by_key[r.config.key], m, rid))
            progress.update(task, advance=1, description=f"{r.config.model} b{r.config.batch_size} "
                                                         f"s{r.config.seq_len} on node {r.node_id[:8]}: {m.status}")

        ex.map(specs, on_result=landed)
    for key, why in ex.skipped.items():
        say(f"skipped {key}: {why}")
    if skipped is not None:
        skipped.update(ex.skipped)
    return results
