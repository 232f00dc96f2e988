"""A throw-away Ray cluster of several nodes on this machine (loopback), for tests, benchmarks, demos.

Each node is a real ``ray start --block`` process in its own process group (so killing a node
kills its raylet, its workers and their benchmark children, and nothing else on the machine),
with its own free ports and a short private temp dir. Nothing here uses ``ray stop``, which
would stop every Ray process on the machine, including other people's.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import NotAvailableError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray")) if Path(sys.executable).with_name("ray").exists() \
        else (shutil.which("ray") or "ray")


@dataclass
class _Node:
    name: str
    proc: subprocess.Popen
    log: Path


@dataclass
class LocalRayCluster:
    """``with LocalRayCluster() as c: c.add_node("w1", {...}); ...`` — every process is ended on exit.

    ``nice`` lowers the nodes' priority (a benchmark grid may share the machine); ``health_check_ms``
    shortens how long the head takes to declare a killed node dead (Ray's default is ~30 s).
    """

    head_resources: dict[str, float] = field(default_factory=dict)
    head_cpus: int = 1
    nice: int = 19
    health_check_ms: int = 1000
    start_timeout_s: float = 120.0
    start_attempts: int = 2
    object_store_mib: int = 128
    env: dict[str, str] = field(default_factory=dict)
    address: str = ""
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pcr", dir="/tmp")))
    nodes: dict[str, _Node] = field(default_factory=dict)

    def __enter__(self) -> "LocalRayCluster":
        try:
            self.start_head()
        except BaseException:
            self.shutdown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- processes ----------------------------------------------------------------------------
    def _common(self, num_cpus: int, resources: dict[str, float]) -> list[str]:
        # loopback only: a local test cluster must never talk over the machine's network interface
        return ["--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus), "--resources", json.dumps(resources),
                "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
                "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port()),
                "--min-worker-port", "0", "--max-worker-port", "0",
                "--object-store-memory", str(self.object_store_mib * 2**20), "--disable-usage-stats",
                # fewer Python daemons per node: no log forwarding (drivers here use log_to_driver=False)
                "--include-log-monitor=false", "--block"]

    def _spawn(self, name: str, argv: list[str]) -> _Node:
        if name in self.nodes:
            raise ValueError(f"node {name!r} already exists")
        log = self.tmp / f"{name}.log"
        env = {**os.environ, **self.env,
               # the head declares a node dead after period x threshold without heartbeats
               "RAY_health_check_period_ms": str(self.health_check_ms),
               "RAY_health_check_timeout_ms": str(self.health_check_ms),
               "RAY_health_check_failure_threshold": "5",
               "RAY_health_check_initial_delay_ms": "0",
               "RAY_USAGE_STATS_ENABLED": "0"}
        cmd = (["nice", "-n", str(self.nice)] if self.nice else []) + argv
        for attempt in range(self.start_attempts):
            with open(log, "wb") as out:
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=env, start_new_session=True)
            node = _Node(name, proc, log)
            self.nodes[name] = node
            try:
                self._wait_started(node)
                return node
            except NotAvailableError:
                # Ray gives a raylet 30 s to register with the head; on a starved machine (a
                # benchmark grid at high priority) that can pass: start the node again
                if attempt + 1 == self.start_attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_started(self, node: _Node) -> str:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            text = node.log.read_text(errors="replace") if node.log.exists() else ""
            if "Ray runtime started" in text:
                return text
            if node.proc.poll() is not None:
                break
            time.sleep(0.2)
        tail = node.log.read_text(errors="replace")[-1500:] if node.log.exists() else ""
        self.kill_node(node.name)
        raise NotAvailableError(f"Ray node {node.name} did not start within {self.start_timeout_s:g} s: {tail}")

    def start_head(self) -> str:
        port = free_port()
        argv = [_ray_bin(), "start", "--head", "--port", str(port), "--include-dashboard=false",
                "--dashboard-port", str(free_port()), "--ray-client-server-port", str(free_port()),
                "--temp-dir", str(self.tmp), "--no-monitor",  # no autoscaler on a fixed local cluster
                *self._common(self.head_cpus, self.head_resources)]
        node = self._spawn("head", argv)
        text = node.log.read_text(errors="replace")
        m = re.search(r"--address='([^']+)'", text)
        self.address = m.group(1) if m else f"127.0.0.1:{port}"
        return self.address

    def add_node(self, name: str, resources: dict[str, float], num_cpus: int = 1) -> None:
        """Join a worker node advertising ``resources`` (like `perfcast worker start` does)."""
        tmp = self.tmp / name
        tmp.mkdir(exist_ok=True)
        argv = [_ray_bin(), "start", "--address", self.address, "--temp-dir", str(tmp),
                *self._common(num_cpus, resources)]
        self._spawn(name, argv)

    def kill_node(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill a node's whole process group (raylet, workers, their benchmark children)."""
        node = self.nodes.pop(name, None)
        if node is None:
            return
        # Ray's worker processes start their own sessions, so the group alone misses them: take
        # the node's whole process tree (raylet -> workers -> benchmark children) first
        try:
            import psutil

            tree = psutil.Process(node.proc.pid).children(recursive=True)
        except Exception:  # noqa: BLE001 - already gone
            tree = []
        for p in tree:
            try:
                p.send_signal(sig)
            except Exception:  # noqa: BLE001
                pass
        try:
            os.killpg(node.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            node.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        # wait until the group is gone (workers and children exit a moment after the raylet)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            try:
                os.killpg(node.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.1)

    def shutdown(self) -> None:
        """Disconnect this process from the cluster and kill every node (workers first)."""
        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        except ImportError:
            pass
        for name in [n for n in self.nodes if n != "head"] + (["head"] if "head" in self.nodes else []):
            self.kill_node(name)
        # detached processes of a session can outlive their group only if they called setsid;
        # sweep anything still holding our private temp dir (ours by construction)
        self._sweep()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _sweep(self) -> None:
        try:
            import psutil
        except ImportError:  # pragma: no cover
            return
        marker = str(self.tmp)
        me = os.getpid()
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if p.info["pid"] != me and any(marker in part for part in (p.info["cmdline"] or [])):
                    p.kill()
            except (psutil.Error, TypeError):
                pass
