"""Run benchmarks on a Ray cluster: each one on a node that has its hardware, results streamed back.

Why Ray and not a coordinator of ours: placement (custom resources ``hw:<id>``/``rt:<runtime>``,
see :mod:`experiments.ray_cluster`), retries of tasks whose worker died, and node liveness are
exactly what Ray already does well. What this module adds is the perfcast contract:

* **asynchronous**: :meth:`RayExecutor.submit` returns at once; :meth:`RayExecutor.wait` hands
  back whichever benchmark finished first (``ray.wait(num_returns=1)``), so the driver can commit
  it to DuckDB immediately and refill the idle worker while the others keep running;
  :meth:`RayExecutor.pending` is what the acquisition treats as ``X_pending``;
* **never hangs**: a configuration whose hardware no live node offers is refused at submit time
  (:meth:`RayExecutor.check` / :meth:`RayExecutor.unavailable` say why), and an in-flight task
  whose only capable node died is cancelled and returned as a failed measurement with the reason;
* **failures are results**: a task that keeps failing after ``max_retries`` retries (worker or
  node died, object lost, out of memory) becomes ``Measurement.failed(config, "failed"|"oom",
  reason)``, stored like any other failed run.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

from engine.config import Config
from engine.errors import NotAvailableError
from engine.records import Measurement
from experiments.ray_cluster import NodeInfo, capacity, connect, nodes_from_ray, require_ray, task_resources, unmet

Spec = Any  # hardware.base.BenchmarkSpec (imported lazily: it pulls in the catalog)


@dataclass
class RayHandle:
    """One submitted benchmark: what runs, its Ray object ref, and since when."""

    task_id: str
    config: Config
    spec: Spec
    ref: Any
    submitted_at: float = field(default_factory=time.time)

    @property
    def key(self) -> str:
        return self.config.key


@dataclass
class RayResult:
    """A finished benchmark as the driver receives it."""

    handle: RayHandle
    measurement: Measurement
    node_id: str = ""
    host: str = ""
    started: Optional[float] = None  # epoch seconds on the worker (None when it never reported)
    finished: Optional[float] = None

    @property
    def config(self) -> Config:
        return self.handle.config


def _failure_status(exc: BaseException) -> str:
    name = type(exc).__name__
    return "oom" if "OutOfMemory" in name else "failed"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = next((ln for ln in text if ln.strip()), "")
    return f"ray {type(exc).__name__}: {first[:500]}"


class RayExecutor:
    """Benchmarks on a Ray cluster (``address`` or RAY_ADDRESS or ``auto``).

    ``runner`` is the function the task runs on the worker (``spec dict -> Measurement``): the
    real adapters by default (:func:`experiments.ray_worker.benchmark_runner`); the distributed
    benchmark passes a replay runner. ``max_retries`` bounds Ray's retries of a task whose worker
    or node died; ``liveness_s`` is how often, while waiting, the driver re-reads which nodes are
    alive (a GCS call of a few milliseconds).
    """

    name = "ray"

    def __init__(self, address: Optional[str] = None, *, runner: Optional[Callable[[dict[str, Any]], Measurement]] = None,
                 max_retries: int = 2, liveness_s: float = 1.0, iterations: int = 10, warmup: int = 2,
                 min_time_s: float = 0.5, max_time_s: float = 10.0, time_limit_s: float = 600.0,
                 memory_limit_mib: Optional[float] = None, log: Optional[Callable[[str], None]] = None) -> None:
        require_ray()  # fail fast with the install hint, before any work is planned
        self.address = address
        self.max_retries = int(max_retries)
        self.liveness_s = float(liveness_s)
        self.spec_defaults = dict(iterations=iterations, warmup=warmup, min_time_s=min_time_s, max_time_s=max_time_s,
                                  time_limit_s=time_limit_s, memory_limit_mib=memory_limit_mib)
        self._runner = runner
        self._log = log or (lambda msg: None)
        self._remote: Any = None
        self._runner_ref: Any = None
        self._inflight: dict[Any, RayHandle] = {}  # object ref -> handle
        self._nodes: list[NodeInfo] = []
        self._nodes_at = 0.0
        self.skipped: dict[str, str] = {}  # config key -> why it was not run
        self.node_of: dict[str, str] = {}  # config key -> node id that measured it
        self.late: list[RayResult] = []  # results that finished while run() waited for another
        self._space: Optional[list[Config]] = None  # what check() accepted: what free() counts for
        self._catalog: dict[str, Any] = {}  # {"user_catalog": {env var: YAML text}} sent with each task

    # -- connection ---------------------------------------------------------------------------
    def _ensure(self) -> Any:
        ray = require_ray()
        if self._remote is None:
            connect(self.address)
            from experiments.ray_worker import benchmark_runner, ray_task, registry

            registry(create=True)
            if self._runner is None:
                self._runner = benchmark_runner
            # shipped once to the object store, not pickled into every task (a replay runner
            # carries a whole dataset)
            self._runner_ref = ray.put(self._runner)
            self._remote = ray.remote(ray_task)
            # the driver's own catalog files travel with every task: a worker has not got them
            from engine.catalog import user_catalog_payload

            own = user_catalog_payload()
            self._catalog = {"user_catalog": own} if own else {}
        return ray

    def close(self) -> None:
        """Cancel what is still running (used when the driver stops early)."""
        if self._inflight:
            ray = require_ray()
            for ref in list(self._inflight):
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001
                    pass
            self._inflight.clear()

    # -- what the cluster offers ----------------------------------------------------------------
    def nodes(self, refresh: bool = False) -> list[NodeInfo]:
        ray = self._ensure()
        now = time.monotonic()
        if refresh or not self._nodes or now - self._nodes_at > self.liveness_s:
            self._nodes = nodes_from_ray(ray.nodes())
            self._nodes_at = now
        return self._nodes

    def unavailable(self, config: Config, refresh: bool = False) -> Optional[str]:
        """Why no live node can run ``config`` now (None when one can)."""
        return unmet(config, self.nodes(refresh))

    def check(self, configs: Sequence[Config]) -> list[Config]:
        """The configurations some live node can run; the rest go to :attr:`skipped` with the reason."""
        nodes = self.nodes(refresh=True)
        ok = []
        for c in configs:
            why = unmet(c, nodes)
            if why is None:
                ok.append(c)
            else:
                self.skipped[c.key] = why
        self._space = ok
        return ok

    def capacity(self, configs: Optional[Iterable[Config]] = None) -> int:
        """How many benchmarks the live nodes can run at once (for the hardware of ``configs``).

        One per ``hw:`` unit on each live node: the number of workers the acquisition must keep
        busy. Without ``configs``, every hardware any live perfcast worker offers counts.
        """
        return capacity(self.nodes(), configs)

    def free(self, configs: Optional[Iterable[Config]] = None) -> int:
        """Idle slots: capacity (for ``configs``, else the space last :meth:`check`-ed) minus in flight."""
        if configs is None:
            configs = self._space
        return max(self.capacity(configs) - len(self._inflight), 0)

    # -- asynchronous interface -----------------------------------------------------------------
    def make_spec(self, item: Union[Config, Spec]) -> Spec:
        from hardware.base import BenchmarkSpec

        if isinstance(item, Config):
            return BenchmarkSpec(item, isolate=True, **self.spec_defaults)
        return item

    def submit(self, item: Union[Config, Spec]) -> RayHandle:
        """Start one benchmark on a node that has its hardware; returns at once.

        Raises NotAvailableError when no live node offers the hardware and runtime (the caller
        skips the candidate instead of queueing a task Ray could never place).
        """
        self._ensure()
        spec = self.make_spec(item)
        cfg: Config = spec.config
        why = self.unavailable(cfg)
        if why is not None:
            self.skipped[cfg.key] = why
            raise NotAvailableError(why)
        task_id = uuid.uuid4().hex[:12]
        ref = self._remote.options(
            num_cpus=0, resources=task_resources(cfg), max_retries=self.max_retries, retry_exceptions=False,
            name=f"perfcast-benchmark:{cfg.model}:b{cfg.batch_size}:s{cfg.seq_len}:{cfg.precision}",
        ).remote(self._runner_ref, {**spec.to_dict(), **self._catalog}, task_id)
        handle = RayHandle(task_id, cfg, spec, ref)
        self._inflight[ref] = handle
        self._log(f"submitted {cfg.key} as task {task_id}")
        return handle

    def pending(self) -> list[Config]:
        """Configurations submitted and not yet returned: the acquisition's ``X_pending``."""
        return [h.config for h in list(self._inflight.values())]  # list(): the bench planner reads from a thread

    def handles(self) -> list[RayHandle]:
        return list(self._inflight.values())

    def __len__(self) -> int:
        return len(self._inflight)

    def wait(self, timeout: Optional[float] = None) -> Optional[RayResult]:
        """The next benchmark to finish (None after ``timeout`` seconds, or when nothing runs).

        While waiting, every ``liveness_s`` the driver checks that each in-flight task still has a
        live node able to run it; one that has none (its only node died, so Ray's retry can never
        be placed) is cancelled and returned as a failed measurement with that reason.
        """
        ray = self._ensure()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._inflight:
            step = self.liveness_s if deadline is None else max(0.0, min(self.liveness_s, deadline - time.monotonic()))
            ready, _ = ray.wait(list(self._inflight), num_returns=1, timeout=step)
            if ready:
                return self._collect(ready[0])
            orphan = self._orphan()
            if orphan is not None:
                return orphan
            if deadline is not None and time.monotonic() >= deadline:
                return None
        return None

    def as_completed(self) -> Iterator[RayResult]:
        """Every in-flight benchmark, in the order they finish."""
        while self._inflight:
            r = self.wait()
            if r is not None:
                yield r

    def _collect(self, ref: Any) -> RayResult:
        ray = require_ray()
        from experiments.ray_worker import mark_finished

        handle = self._inflight.pop(ref)
        try:
            out = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - ray.exceptions.*: retries exhausted
            mark_finished(handle.task_id)
            m = Measurement.failed(handle.config, _failure_status(exc),
                                   f"{_reason(exc)} (after up to {self.max_retries} retries)")
            self._log(f"failed {handle.key}: {m.error}")
            return RayResult(handle, m)
        mark_finished(handle.task_id)
        m = Measurement.from_dict(out["measurement"])
        self.node_of[handle.key] = out.get("node_id", "")
        return RayResult(handle, m, node_id=out.get("node_id", ""), host=out.get("host", ""),
                         started=out.get("started"), finished=out.get("finished"))

    def _orphan(self) -> Optional[RayResult]:
        nodes = self.nodes(refresh=True)
        for ref, handle in list(self._inflight.items()):
            why = unmet(handle.config, nodes)
            if why is None:
                continue
            ray = require_ray()
            from experiments.ray_worker import mark_finished

            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001
                pass
            self._inflight.pop(ref, None)
            mark_finished(handle.task_id)
            m = Measurement.failed(handle.config, "failed",
                                   f"ray: the node running this benchmark died and {why}; not retried")
            self._log(f"failed {handle.key}: {m.error}")
            return RayResult(handle, m)
        return None

    # -- synchronous conveniences -----------------------------------------------------------------
    def run(self, item: Union[Config, Spec]) -> Measurement:
        """Run one benchmark and wait for it (what a sequential caller, e.g. the optimiser, needs)."""
        try:
            h = self.submit(item)
        except NotAvailableError as exc:
            spec = self.make_spec(item)
            return Measurement.failed(spec.config, "failed", str(exc))
        while True:
            r = self.wait()
            if r is None:  # pragma: no cover - nothing in flight can only mean it was cancelled
                return Measurement.failed(h.config, "failed", "ray: task vanished")
            if r.handle is h:
                return r.measurement
            self.late.append(r)

    def map(self, items: Sequence[Union[Config, Spec]], on_result: Optional[Callable[[RayResult], None]] = None,
            ) -> list[RayResult]:
        """Run many, keeping every capable worker busy; ``on_result`` sees each as it lands.

        Items for hardware no live node offers are skipped (see :attr:`skipped`), not queued.
        """
        queue = list(items)
        out: list[RayResult] = []
        while queue or self._inflight:
            while queue and (not self._inflight or self.free([self.make_spec(q).config for q in queue]) > 0):
                item = queue.pop(0)
                try:
                    self.submit(item)
                except NotAvailableError as exc:
                    self._log(f"skipped: {exc}")
            r = self.wait()
            if r is None:
                continue
            if on_result is not None:
                on_result(r)
            out.append(r)
        return out
