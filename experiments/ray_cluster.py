"""What a Ray cluster of perfcast workers offers, and how a benchmark asks for it.

Placement is done by Ray's own scheduler through *custom resources*, not by a coordinator of
ours: every worker advertises one resource per hardware id it can measure (``hw:<id>``, the id
that ends up in ``Config.hardware``) and one per runtime (``rt:<runtime>``); a benchmark task
asks for ``hw:<its hardware>`` and ``rt:<its runtime>``. So a CUDA benchmark can only ever land
on a node with that GPU, and because a node offers one unit of each ``hw:`` resource, two
benchmarks never share (and disturb) one device.

Ray is an optional extra: nothing here imports it at module level, and :func:`require_ray`
turns its absence into one line telling the user how to install it.
"""
from __future__ import annotations

import socket
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Optional, Sequence

from engine.config import Config
from engine.errors import NotAvailableError

RAY_INSTALL_HINT = "the Ray executor needs Ray, an optional extra: pip install 'perfcast[ray]'"
HW_PREFIX = "hw:"
RT_PREFIX = "rt:"
AD_PREFIX = "ad:"  # ad:<adapter>/<hardware id>: which adapter measures which hardware on a node
WORKER_MARK = "perfcast-worker"  # resource every `perfcast worker start` node advertises
RUNTIME_UNITS = 1000.0  # rt: resources are plentiful; only hw: resources serialise benchmarks
NAMESPACE = "perfcast"


def require_ray() -> Any:
    """The ``ray`` module, or NotAvailableError (exit code 2) with the install hint."""
    try:
        import ray
    except ImportError:
        raise NotAvailableError(RAY_INSTALL_HINT) from None
    return ray


def hw_resource(hardware_id: str) -> str:
    return f"{HW_PREFIX}{hardware_id}"


def rt_resource(runtime: str) -> str:
    return f"{RT_PREFIX}{runtime}"


def task_resources(config: Config) -> dict[str, float]:
    """The custom resources a benchmark of ``config`` asks Ray for."""
    return {hw_resource(config.hardware): 1.0, rt_resource(config.runtime): 1.0}


def local_resources() -> dict[str, float]:
    """What this machine can benchmark, as Ray custom resources.

    One ``hw:`` resource per hardware id an *available* adapter measures (the id stored in
    ``Config.hardware`` of its runs: the same key the loop's search space uses), one ``rt:``
    resource per runtime of those adapters. Adapters that are not usable here (no GPU, runtime
    not installed) advertise nothing, so Ray never sends their benchmarks to this machine.
    """
    from hardware.registry import adapter_names, get_adapter

    out: dict[str, float] = {WORKER_MARK: 1.0}
    for name in adapter_names():
        try:
            adapter = get_adapter(name)
            ok, _ = adapter.available()
            if not ok:
                continue
            hid = adapter.hardware_id()
        except Exception:  # noqa: BLE001 - a broken optional runtime only means "not offered"
            continue
        out[hw_resource(hid)] = 1.0
        out[rt_resource(adapter.runtime)] = RUNTIME_UNITS
        out[f"{AD_PREFIX}{name}/{hid}"] = 1.0
    return out


def adapter_for_here(config: Config) -> tuple[Optional[str], str]:
    """(adapter name, "") of the adapter on THIS machine that measures ``config``, or (None, why).

    Called inside the Ray task on the worker: only the worker knows which of its adapters
    reports ``config.hardware`` as its hardware id.
    """
    from hardware.registry import adapter_names, get_adapter

    reasons = []
    for name in adapter_names():
        try:
            adapter = get_adapter(name)
            if adapter.runtime != config.runtime:
                continue
            ok, why = adapter.available()
            if not ok:
                reasons.append(f"{name}: {why}")
                continue
            if adapter.hardware_id() == config.hardware:
                why = adapter.refusal(config)  # a mode or precision it has no kernels for
                return (None, f"{name}: {why}") if why else (name, "")
            reasons.append(f"{name} measures {adapter.hardware_id()}")
        except Exception as exc:  # noqa: BLE001
            reasons.append(f"{name}: {exc}")
    return None, (f"no adapter on {socket.gethostname()} measures {_named(config.hardware)} with runtime "
                  f"{config.runtime} ({'; '.join(reasons) or 'none for that runtime'})")


def _named(hardware_id: str) -> str:
    """``a100-80gb (what 'cuda' stands for here: ...)`` when the id is the catalog's stand-in for a
    platform name with no such device on this machine: the user wrote ``cuda``, not ``a100-80gb``."""
    from engine.catalog import resolve_hardware

    for platform in ("cuda", "rocm", "mps"):
        try:
            if resolve_hardware(platform).id == hardware_id:
                return (f"{hardware_id} (the catalog's device for '{platform}', which stands for it when this "
                        f"machine has no {platform} device)")
        except Exception:  # noqa: BLE001 - a platform the catalog cannot resolve here
            continue
    return hardware_id


def worker_start_argv(address: str, *, num_cpus: Optional[int] = None, resources: Optional[dict[str, float]] = None,
                      block: bool = False, extra: Sequence[str] = ()) -> list[str]:
    """The ``ray start`` command line that joins ``address`` as a benchmark worker."""
    import json
    import shutil
    import sys
    from pathlib import Path

    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    argv = [ray_bin, "start", "--address", address, "--resources", json.dumps(resources or local_resources(), sort_keys=True),
            "--disable-usage-stats"]
    if num_cpus is not None:
        argv += ["--num-cpus", str(num_cpus)]
    if block:
        argv.append("--block")
    return argv + list(extra)


def connect(address: Optional[str] = None) -> Any:
    """Connect this process to a running cluster (``address`` or RAY_ADDRESS or ``auto``)."""
    import logging
    import os

    ray = require_ray()
    if ray.is_initialized():
        return ray
    addr = address or os.environ.get("RAY_ADDRESS") or "auto"
    check_reachable(addr)
    _raylet_messages_to_stderr()
    extra = {}
    if addr.split(":")[0] in ("127.0.0.1", "localhost"):
        extra["_node_ip_address"] = "127.0.0.1"  # a loopback cluster: keep the driver on loopback too
    try:
        ray.init(address=addr, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING,
                 configure_logging=True, **extra)
    except ConnectionError as exc:
        raise NotAvailableError(f"no Ray cluster at {addr}: {str(exc).splitlines()[0]}; start one with "
                                f"`ray start --head` and pass --address HOST:PORT") from None
    return ray


def _raylet_messages_to_stderr() -> None:
    """Ray prints the raylet's notices ("node died, task will be retried") on the driver's STDOUT,
    which would corrupt `--json` output; send them to stderr, where diagnostics belong."""
    try:
        import ray._private.worker as rw

        original = rw.print_to_stdstream
        if getattr(original, "_perfcast", False):
            return

        def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> Any:
            if data.get("pid") == "raylet":
                data = {**data, "is_err": True}
            return original(data, ignore_prefix)

        to_stderr._perfcast = True  # type: ignore[attr-defined]
        rw.print_to_stdstream = to_stderr
    except Exception:  # noqa: BLE001 - a private API may move; the messages then stay on stdout
        pass


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, not minutes: Ray keeps retrying an unreachable head for a long time (the
    driver's ``ray.init`` and a worker's ``ray start`` alike; the latter retried for 10+ minutes)."""
    if address in ("auto", "local") or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise NotAvailableError(f"cannot reach the Ray head at {address}: {exc}; is `ray start --head` running "
                                f"there, and is the port open?") from None


@dataclass
class NodeInfo:
    """One node of the cluster as `perfcast workers` shows it."""

    node_id: str
    host: str
    ip: str
    alive: bool
    is_worker: bool  # joined through `perfcast worker start` (advertises WORKER_MARK)
    hardware: list[str] = field(default_factory=list)
    runtimes: list[str] = field(default_factory=list)
    adapters: dict[str, str] = field(default_factory=dict)  # adapter name -> hardware id it measures
    cpus: float = 0.0
    running: list[dict[str, Any]] = field(default_factory=list)
    death_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def nodes_from_ray(raw: Iterable[dict[str, Any]]) -> list[NodeInfo]:
    """``ray.nodes()`` records -> NodeInfo (hardware/runtimes read off the custom resources)."""
    out = []
    for n in raw:
        res = n.get("Resources") or {}
        out.append(NodeInfo(
            node_id=str(n.get("NodeID", "")), host=str(n.get("NodeManagerHostname", "")),
            ip=str(n.get("NodeManagerAddress", "")), alive=bool(n.get("Alive")),
            is_worker=WORKER_MARK in res,
            hardware=sorted(k[len(HW_PREFIX):] for k in res if k.startswith(HW_PREFIX)),
            runtimes=sorted(k[len(RT_PREFIX):] for k in res if k.startswith(RT_PREFIX)),
            adapters=dict(sorted(tuple(k[len(AD_PREFIX):].split("/", 1)) for k in res  # type: ignore[misc]
                                 if k.startswith(AD_PREFIX) and "/" in k)),
            cpus=float(res.get("CPU", 0.0)), death_reason=str(n.get("DeathReasonMessage") or "")))
    return out


def node_offers(node: NodeInfo) -> dict[str, float]:
    """The hw/rt resources one node advertises (nothing when it is dead)."""
    if not node.alive:
        return {}
    out = {hw_resource(h): 1.0 for h in node.hardware}
    out.update({rt_resource(r): RUNTIME_UNITS for r in node.runtimes})
    return out


def can_run(node: NodeInfo, config: Config) -> bool:
    """Whether ``node`` alone offers everything a benchmark of ``config`` asks for."""
    offers = node_offers(node)
    return all(offers.get(r, 0.0) >= need for r, need in task_resources(config).items())


def unmet(config: Config, nodes: Sequence[NodeInfo]) -> Optional[str]:
    """Why no live node can run ``config`` (None when one can).

    A node must offer the hardware AND the runtime itself: a head with the hardware and another
    node with the runtime do not add up to a place to run.
    """
    if any(can_run(n, config) for n in nodes):
        return None
    live = [n for n in nodes if n.alive]
    hw, rt = hw_resource(config.hardware), rt_resource(config.runtime)
    with_hw = [n for n in live if hw in node_offers(n)]
    if not with_hw:
        missing = f"{hw}" + ("" if any(rt in node_offers(n) for n in live) else f" + {rt}")
    else:
        missing = f"{rt} on a node with {hw}"
    return f"no live Ray worker offers {missing} (needed by {config.key})"


def capacity(nodes: Sequence[NodeInfo], configs: Optional[Iterable[Config]] = None) -> int:
    """How many benchmarks the live nodes can run at once: one per usable ``hw:`` unit.

    Without ``configs``, every hardware of every live node counts; with them, a node's hardware
    counts when it can run at least one of ``configs`` on it.
    """
    total = 0
    # distinct (hardware, runtime) pairs: a search space has thousands of configs but few pairs
    pairs = {(c.hardware, c.runtime) for c in configs} if configs is not None else None
    for n in nodes:
        if not n.alive:
            continue
        if pairs is None:
            total += len(n.hardware)
        else:
            hw, rt = set(n.hardware), set(n.runtimes)
            total += len({h for h, r in pairs if h in hw and r in rt})
    return total


def cluster_nodes(with_running: bool = True) -> list[NodeInfo]:
    """The connected cluster's nodes, with the perfcast benchmarks each is running."""
    ray = require_ray()
    nodes = nodes_from_ray(ray.nodes())
    if with_running:
        from experiments.ray_worker import running_tasks

        by_node: dict[str, list[dict[str, Any]]] = {}
        for t in running_tasks():
            by_node.setdefault(t.get("node_id", ""), []).append(t)
        for n in nodes:
            n.running = by_node.get(n.node_id, []) if n.alive else []
    return nodes
