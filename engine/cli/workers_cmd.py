"""`perfcast worker start` joins a Ray cluster as a benchmark worker; `perfcast workers` lists them.

A worker advertises what this machine can measure as Ray custom resources (``hw:<hardware id>``
per usable adapter, ``rt:<runtime>`` per runtime), so Ray only ever places a benchmark on a node
that has its hardware. Ray is an optional extra: without it both commands print the install hint
and exit with code 2.
"""
from __future__ import annotations

import sys
from typing import Any, Optional

import click

from engine.cli.common import console, emit_json, json_option


@click.group("worker")
def worker() -> None:
    """Run this machine as a benchmark worker of a Ray cluster.

    \b
    Examples:
      ray start --head --port 6379 --include-dashboard=false     # once, on the head machine
      perfcast worker start --address 10.0.0.5:6379               # on each benchmark machine
      RAY_ADDRESS=10.0.0.5:6379 perfcast run configs/experiments/cpu-quick.yaml --executor ray
    """


@worker.command("start", context_settings={"ignore_unknown_options": True})
@click.option("--address", required=True, help="The head node's HOST:PORT (what `ray start --head` printed).")
@click.option("--num-cpus", type=click.IntRange(0), default=None,
              help="CPUs this node gives Ray (default: Ray's own count). Benchmarks ask for hardware "
                   "resources, not CPUs, so a small number is fine.")
@click.option("--block/--no-block", default=False, show_default=True,
              help="Stay in the foreground until interrupted (for systemd/containers).")
@click.option("--dry-run", is_flag=True, help="Show the resources and the `ray start` command, run nothing.")
@click.argument("ray_args", nargs=-1, type=click.UNPROCESSED)
@json_option
def worker_start(address: str, num_cpus: Optional[int], block: bool, dry_run: bool, ray_args: tuple[str, ...],
                 as_json: bool) -> None:
    """Join the Ray cluster at ADDRESS, advertising this machine's hardware and runtimes.

    Anything after `--` is passed to `ray start` unchanged.

    \b
    Examples:
      perfcast worker start --address 10.0.0.5:6379 --num-cpus 2
      perfcast worker start --address 10.0.0.5:6379 --dry-run --json
      perfcast worker start --address 10.0.0.5:6379 -- --temp-dir /scratch/ray
    """
    import subprocess

    from engine.errors import InvalidValueError
    from experiments.ray_cluster import check_reachable, local_resources, require_ray, worker_start_argv

    if ":" not in address:
        raise InvalidValueError("address", address, "HOST:PORT of the Ray head node, e.g. 10.0.0.5:6379")
    check_address("--address", address)
    require_ray()
    if not dry_run:  # `ray start` retried an unreachable head for 10+ minutes, printing warnings
        check_reachable(address)
    resources = local_resources()
    argv = worker_start_argv(address, num_cpus=num_cpus, resources=resources, block=block, extra=ray_args)
    if as_json:
        emit_json({"address": address, "resources": resources, "command": argv, "dry_run": dry_run})
    else:
        _resource_table(resources)
        console().print("[dim]$ " + " ".join(_quote(a) for a in argv) + "[/]")
    if dry_run:
        return
    proc = subprocess.run(argv, stdout=sys.stderr if as_json else None)
    if proc.returncode != 0:
        from engine.errors import NotAvailableError

        raise NotAvailableError(f"`ray start` failed with exit code {proc.returncode} (is the head at {address} "
                                f"reachable, and this Ray version the same as the head's?)")


def check_address(option: str, address: Optional[str]) -> None:
    """One line for a Ray address Ray itself would reject with a traceback (``notanaddress``,
    ``host:port`` without a numeric port); checked before Ray is imported. ``None`` passes."""
    if not address or address in ("auto", "local") or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if sep and host and port.isdigit() and 0 < int(port) < 65536:
        return
    from engine.errors import InvalidValueError

    raise InvalidValueError(option, address, "HOST:PORT of the Ray head (e.g. 10.0.0.5:6379) or auto")


def _quote(a: str) -> str:
    import shlex

    return shlex.quote(a)


def _resource_table(resources: dict[str, float]) -> None:
    from rich.table import Table

    t = Table(title="Advertised Ray resources")
    t.add_column("resource")
    t.add_column("units", justify="right")
    t.add_column("meaning")
    for k, v in sorted(resources.items()):
        meaning = ("hardware: benchmarks targeting it run here, one at a time" if k.startswith("hw:") else
                   "runtime available here" if k.startswith("rt:") else
                   "adapter / hardware id it measures" if k.startswith("ad:") else "marks a perfcast benchmark worker")
        t.add_row(k, f"{v:g}", meaning)
    console().print(t)


@click.command("workers")
@click.option("--address", default=None, help="HOST:PORT of the Ray head (default: RAY_ADDRESS, else the local cluster).")
@click.option("--all-nodes", is_flag=True, help="Also list nodes that are not perfcast workers (e.g. the head).")
@json_option
def workers(address: Optional[str], all_nodes: bool, as_json: bool) -> None:
    """List the cluster's nodes: hardware and runtimes offered, alive or dead, what each runs now.

    \b
    Examples:
      perfcast workers --address 10.0.0.5:6379
      perfcast workers --json
    """
    import os

    from experiments.ray_cluster import cluster_nodes, connect

    check_address("--address", address)
    if not address:
        check_address("RAY_ADDRESS", os.environ.get("RAY_ADDRESS"))
    connect(address)
    nodes = cluster_nodes(with_running=True)
    if not all_nodes:
        nodes = [n for n in nodes if n.is_worker or n.hardware or n.running]
    if as_json:
        emit_json([n.to_dict() for n in nodes])
        return
    _nodes_table(nodes)


def _nodes_table(nodes: list[Any]) -> None:
    import time

    from rich.table import Table

    t = Table(title=f"Ray benchmark workers ({sum(n.alive for n in nodes)} alive of {len(nodes)})")
    for col in ("node", "host", "state", "hardware", "runtimes", "running"):
        t.add_column(col)
    now = time.time()
    for n in sorted(nodes, key=lambda n: (not n.alive, n.host, n.node_id)):
        running = "\n".join(f"{r.get('config', '?')} ({now - float(r.get('started_at', now)):.0f} s)" for r in n.running) or "—"
        state = "[green]alive[/]" if n.alive else f"[red]dead[/] {n.death_reason[:40]}"
        t.add_row(n.node_id[:12], f"{n.host} {n.ip}", state, "\n".join(n.hardware) or "—",
                  ", ".join(n.runtimes) or "—", running)
    out = console()
    out.print(t)
    if not nodes:
        out.print("no perfcast workers in this cluster; join one with `perfcast worker start --address HOST:PORT`")
