"""What runs on a Ray worker: one benchmark task, and the registry of running tasks.

The task never writes to the database. It measures (through the same child-process isolation as
the local executor, so time and memory limits still apply) and RETURNS the measurement; the
driver is the one writer and commits each result the moment it arrives. A worker that dies
therefore loses at most the benchmark it was running, which Ray retries elsewhere.

Ray's task-listing API needs the dashboard, which perfcast clusters run without, so running
tasks are tracked by a tiny detached actor (:class:`TaskRegistry`) that `perfcast workers`
queries: the task says "started on node N", the task or the driver says "finished".
"""
from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from engine.records import Measurement

REGISTRY_NAME = "perfcast-task-registry"

Runner = Callable[[dict[str, Any]], Measurement]


class TaskRegistry:
    """task id -> what it runs and where; a plain class made a Ray actor by :func:`registry`."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}

    def started(self, task_id: str, info: dict[str, Any]) -> None:
        self.tasks[task_id] = info

    def finished(self, task_id: str) -> None:
        self.tasks.pop(task_id, None)

    def running(self) -> list[dict[str, Any]]:
        return [{"task_id": k, **v} for k, v in self.tasks.items()]


_HANDLE: dict[str, Any] = {}  # cluster id -> registry actor handle (a GCS lookup saved per task)


def registry(create: bool = False) -> Optional[Any]:
    """Handle to the cluster's registry actor (created on the head node when ``create``)."""
    import ray

    from experiments.ray_cluster import NAMESPACE

    if not ray.is_initialized():  # never let a lookup start a local Ray instance
        return None
    try:
        cluster = str(ray.get_runtime_context().gcs_address)
    except Exception:  # noqa: BLE001
        cluster = ""
    if cluster in _HANDLE:
        return _HANDLE[cluster]
    try:
        if create:
            handle = (ray.remote(TaskRegistry)
                      .options(name=REGISTRY_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                               num_cpus=0, resources={"node:__internal_head__": 0.001}, max_restarts=-1)
                      .remote())
        else:
            handle = ray.get_actor(REGISTRY_NAME, namespace=NAMESPACE)
    except Exception:  # noqa: BLE001 - bookkeeping must never fail a benchmark
        return None
    _HANDLE[cluster] = handle
    return handle


def running_tasks(timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """What the registry says is running ([] when no perfcast driver ever ran on this cluster)."""
    import ray

    actor = registry()
    if actor is None:
        return []
    try:
        return list(ray.get(actor.running.remote(), timeout=timeout_s))
    except Exception:  # noqa: BLE001
        return []


def mark_finished(task_id: str) -> None:
    actor = registry()
    if actor is not None:
        try:
            actor.finished.remote(task_id)
        except Exception:  # noqa: BLE001
            pass


@contextmanager
def _registered(task_id: str, info: dict[str, Any]) -> Iterator[None]:
    actor = registry()
    if actor is not None:
        try:
            actor.started.remote(task_id, info)
        except Exception:  # noqa: BLE001
            actor = None
    try:
        yield
    finally:
        if actor is not None:
            try:
                actor.finished.remote(task_id)
            except Exception:  # noqa: BLE001
                pass


def benchmark_runner(spec_dict: dict[str, Any]) -> Measurement:
    """The real thing: the adapter on this node that measures the config, in an isolated child."""
    from experiments.ray_cluster import adapter_for_here
    from hardware.base import BenchmarkSpec
    from hardware.isolation import run_isolated

    spec = BenchmarkSpec.from_dict(spec_dict)
    name, why = adapter_for_here(spec.config)
    if name is None:
        return Measurement.failed(spec.config, "failed", why, host=socket.gethostname())
    return run_isolated(name, spec)


def ray_task(runner: Runner, spec_dict: dict[str, Any], task_id: str) -> dict[str, Any]:
    """Body of every perfcast Ray task: run, tag the measurement with where it ran, return it."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    t0 = time.time()
    from engine.config import Config

    from engine.catalog import user_catalog_env

    spec_dict = dict(spec_dict)
    own = spec_dict.pop("user_catalog", None)  # the driver's own models/devices (see RayExecutor.submit)
    key = Config(**spec_dict["config"]).key
    info = {"node_id": node_id, "host": socket.gethostname(), "pid": os.getpid(), "config": key,
            "started_at": t0}
    with _registered(task_id, info), user_catalog_env(own):
        m = runner(spec_dict)
    m.versions = {**(m.versions or {}), "ray": ray.__version__, "ray_node_id": node_id}
    return {"measurement": m.to_dict(), "node_id": node_id, "host": socket.gethostname(), "pid": os.getpid(),
            "started": t0, "finished": time.time()}


class ReplayRunner:
    """Answers from recorded measurements after sleeping in proportion to their benchmark cost.

    The distributed benchmark and the tests use it to exercise scheduling on a real cluster
    without paying for real benchmarks: a run that took ``wall_time_s`` seconds when it was
    measured occupies its worker for ``wall_time_s * time_scale`` seconds here.
    """

    def __init__(self, measurements: dict[str, dict[str, Any]], time_scale: float = 0.01,
                 min_sleep_s: float = 0.0) -> None:
        self.measurements = measurements
        self.time_scale = float(time_scale)
        self.min_sleep_s = float(min_sleep_s)

    def __call__(self, spec_dict: dict[str, Any]) -> Measurement:
        from engine.config import Config

        cfg = Config(**spec_dict["config"])
        rec = self.measurements.get(cfg.key)
        if rec is None:
            return Measurement.failed(cfg, "failed", f"{cfg.key} is not in the replay dataset")
        m = Measurement.from_dict(rec)
        time.sleep(max(self.min_sleep_s, (m.wall_time_s or 0.0) * self.time_scale))
        m.host = socket.gethostname()
        m.adapter = "replay"
        return m
