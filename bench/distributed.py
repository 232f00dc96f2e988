"""Does the Ray executor keep two workers busy? Speed-up and idle time of an asynchronous loop.

A replay workload on a REAL local Ray cluster (a head and worker nodes on loopback, started with
``ray start``): every benchmark task sleeps for its shipped measurement's benchmark cost
(``wall_time_s``) times a scale factor and returns that measurement. The driver runs the
asynchronous active-learning loop the way ``perfcast run --executor ray`` does:

* whenever k workers are free it picks k configurations jointly with the acquisition
  (``engine.acquisition.select``), treating every configuration the posterior has not yet seen
  (still running, or finished after the last fit) as pending (BoTorch ``X_pending``);
* it commits each result to DuckDB the moment it lands (``ray.wait``) and hands the idle worker
  its next configuration at once; refitting the GP and precomputing the following pick happen
  on a planner thread while the workers run (see :class:`Planner`).

The same budget of benchmarks runs on 1 worker node, then on 2. Printed, last:
``speedup_2_workers`` = throughput on 2 workers / throughput on 1, throughput being benchmark-
seconds completed per wall-second (the two runs pick different configurations, so the ratio of
makespans, printed too, also reflects which were picked); ``idle_fraction`` = 1 − Σ task busy
time / (2 × makespan) for the 2-worker run (busy = the time tasks ran on the workers; everything
else — driver fits and picks, scheduling, result transfer — counts as idle).
Goal: speed-up ≥ 1.7 and idle fraction ≤ 0.15.

Run: ``python bench/distributed.py [--budget 14] [--task-s 4.0] [--db PATH]`` (the shipped
dataset by default). The whole run takes about 1.5–2 minutes here (most of it cluster start-up).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import Config  # noqa: E402
from engine.records import Measurement  # noqa: E402


@dataclass
class RunStats:
    workers: int
    n: int = 0
    makespan_s: float = 0.0
    busy_s: float = 0.0
    fit_s: list[float] = field(default_factory=list)
    pick_s: list[float] = field(default_factory=list)
    nodes: dict[str, int] = field(default_factory=dict)
    max_pending: int = 0
    gap_s: list[tuple[float, float]] = field(default_factory=list)  # (result -> pick, pick -> submitted)
    dispatch_s: list[float] = field(default_factory=list)  # submitted -> running on the worker

    @property
    def idle_fraction(self) -> float:
        return 1.0 - self.busy_s / (self.workers * self.makespan_s) if self.makespan_s > 0 else float("nan")


_SHIPPED_COPY: list[str] = []  # temp dir of the seeded copy of the shipped dataset (removed at the end)


def load_workload(db: Optional[str]) -> tuple[str, dict[str, dict[str, Any]], Any]:
    """(hardware id, config key -> measurement dict, frame) of the hardware with the most costed runs."""
    from engine.store import Store

    if db is None:
        from engine.store.seed import shipped_dataset_path

        if shipped_dataset_path() is None:
            raise SystemExit("no shipped dataset in engine/data; pass --db PATH of a store with measurements")
        _SHIPPED_COPY.append(tempfile.mkdtemp(prefix="pcdist"))
        db = str(Path(_SHIPPED_COPY[-1]) / "shipped.duckdb")
        store = Store(db, seed=True)
    else:
        store = Store(db, seed=False)
    df = store.measurements(status="ok")
    df = df[df["wall_time_s"].notna() & (df["wall_time_s"] > 0) & df["latency_median_ms"].notna()]
    if df.empty:
        raise SystemExit(f"{db}: no successful measurement with a wall time")
    hw = str(df["hardware"].value_counts().idxmax())
    df = df[df["hardware"] == hw].copy()
    from engine.optimize.executors import measurement_from_row

    table: dict[str, dict[str, Any]] = {}
    for _, r in df.iterrows():
        c = Config.from_mapping(r.to_dict())
        if c.key not in table:
            table[c.key] = measurement_from_row(c, r).to_dict()
    return hw, table, df.drop_duplicates(subset=["config_key"] if "config_key" in df.columns else None)


class Planner:
    """Fits and picks on a background thread, so dispatching to an idle worker never waits for them.

    The posterior used for a pick always comes with the set of configurations it was fitted on;
    every other configuration that is running or has finished since is passed as pending
    (``X_pending``), so a stale posterior never re-picks or ignores work in progress.

    After each fit the planner precomputes an ordered queue of ``workers`` picks with BoTorch's
    sequential greedy (``optimize_acqf_discrete``): pick j is the best given the pending set and
    picks 1..j-1. When a worker frees up, the configurations that count as pending are the same
    (the finished one is still unknown to this posterior) plus the earlier picks now running, so
    the next queued pick IS the acquisition's choice at that moment, and it goes out at once.
    """

    def __init__(self, ex: Any, space: list[Config], acquisition: str, seed: int, stats: RunStats,
                 workers: int) -> None:
        import threading

        self.ex, self.space, self.acquisition, self.seed, self.stats = ex, space, acquisition, seed, stats
        self.workers = workers
        self.lock = threading.Lock()  # guards the data handed over by the driver thread
        self.model_lock = threading.Lock()  # fits and picks never overlap (conditioning is in place)
        self.refit_every = 4
        self.wake = threading.Event()
        self.stop = False
        self.frame: Any = None  # latest committed measurements (set by the driver thread)
        self.frame_keys: set[str] = set()
        self.done: set[str] = set()
        self.model: Optional[tuple[Any, Any, set[str]]] = None  # (predictor, cost model, keys fitted on)
        self.queue: list[Config] = []
        self.submitted = 0
        self.thread = threading.Thread(target=self._loop, name="planner", daemon=True)

    # -- driver thread ----------------------------------------------------------------------------
    def start(self, frame: Any, done: set[str]) -> None:
        self.frame, self.frame_keys, self.done = frame, set(done), set(done)
        self._fit()
        self.thread.start()

    def landed(self, frame: Any, done: set[str]) -> None:
        with self.lock:
            self.frame, self.frame_keys, self.done = frame, set(done), set(done)
        self.wake.set()

    def take(self, k: int) -> list[Config]:
        """k configurations for k free workers: from the precomputed queue, else picked jointly now."""
        busy = {c.key for c in self.ex.pending()} | self.done
        with self.lock:
            self.queue = [c for c in self.queue if c.key not in busy]
            picks, self.queue = self.queue[:k], self.queue[k:]
        if len(picks) < k:  # only at the start, or when the planner fell behind
            picks += self._pick(k - len(picks), extra_pending=picks)
        self.submitted += len(picks)
        self.wake.set()
        return picks

    def close(self) -> None:
        self.stop = True
        self.wake.set()
        self.thread.join(timeout=30)

    # -- planner thread -----------------------------------------------------------------------------
    def _fit(self) -> None:
        """A full hyperparameter fit every ``refit_every`` fits; in between the GP is only
        conditioned on the new data (as the experiment loop does: milliseconds, not seconds)."""
        from engine.acquisition.cost import CostModel, MeasuringPlan, SetupModel
        from engine.acquisition.gp_seam import condition_gp
        from engine.models.registry import get_predictor

        t = time.perf_counter()
        with self.lock:
            frame, keys = self.frame, set(self.frame_keys)
        with self.model_lock:
            if self.model is not None and len(self.stats.fit_s) % self.refit_every and condition_gp(self.model[0], frame):
                predictor = self.model[0]
            else:
                predictor = get_predictor("gp", maxiter=30).fit(frame)
            self.model = (predictor, CostModel(MeasuringPlan(), SetupModel.from_runs(frame)), keys)
        self.stats.fit_s.append(time.perf_counter() - t)

    def _pick(self, k: int, extra_pending: list[Config] = ()) -> list[Config]:  # type: ignore[assignment]
        with self.model_lock:  # the driver thread picks only at the start or when the planner lags
            return self._pick_locked(k, extra_pending)

    def _pick_locked(self, k: int, extra_pending: list[Config]) -> list[Config]:
        from engine.acquisition import select

        t = time.perf_counter()
        predictor, cost, fitted = self.model  # type: ignore[misc]
        running = self.ex.pending() + list(extra_pending)
        with self.lock:
            done = set(self.done)
        pending = running + [c for c in self.space if c.key in done and c.key not in fitted]
        busy = {c.key for c in running} | done
        cands = [c for c in self.space if c.key not in busy]
        if not cands:
            return []
        preds = predictor.predict(cands)
        sel = select(self.acquisition, predictor, cands, q=min(k, len(cands)), pending=pending,
                     cost=cost.predict(cands, preds), predictions=preds, seed=self.seed + self.submitted)
        self.stats.pick_s.append(time.perf_counter() - t)
        return sel.configs

    def _loop(self) -> None:
        while not self.stop:
            self.wake.wait()
            self.wake.clear()
            if self.stop:
                return
            refit = bool(self.frame_keys - self.model[2])  # type: ignore[index]
            if refit:
                self._fit()
            if refit or not self.queue:
                queue = self._pick(self.workers)
                with self.lock:
                    self.queue = queue


def run_loop(ex: Any, space: list[Config], seed_configs: list[Config], table: dict[str, dict[str, Any]],
             budget: int, workers: int, acquisition: str, seed: int, db: Path) -> RunStats:
    """The asynchronous loop on ``workers`` nodes; returns its timings (see :class:`Planner`)."""
    from engine.store import Store

    store = Store(db, seed=False)
    store.save_measurements([Measurement.from_dict(table[c.key]) for c in seed_configs])
    done: set[str] = {c.key for c in seed_configs}
    stats = RunStats(workers)
    planner = Planner(ex, space, acquisition, seed, stats, workers)
    planner.start(store.measurements(status="ok"), done)
    submitted = 0
    first_submit = last_finish = None
    landed = False
    try:
        while stats.n < budget:
            k = min(ex.free(space), budget - submitted)
            if k > 0:
                t_take = time.time()
                for c in planner.take(k):
                    ex.submit(c)
                    submitted += 1
                    first_submit = first_submit or time.time()
                if last_finish is not None:
                    stats.gap_s.append((t_take - last_finish, time.time() - t_take))
                stats.max_pending = max(stats.max_pending, len(ex))
            if landed:  # after the idle worker got its next task: hand the new data to the planner
                planner.landed(store.measurements(status="ok"), done)
                landed = False
            r = ex.wait()
            if r is None:
                raise SystemExit("executor returned nothing: no worker offers the workload's hardware")
            store.save_measurement(r.measurement)  # the one writer commits as results land
            done.add(r.config.key)
            planner.done = set(done)
            stats.n += 1
            stats.busy_s += (r.finished or 0) - (r.started or 0)
            if r.started:
                stats.dispatch_s.append(r.started - r.handle.submitted_at)
            stats.nodes[r.node_id[:8]] = stats.nodes.get(r.node_id[:8], 0) + 1
            last_finish = r.finished or time.time()
            landed = stats.n + len(ex) < budget
    finally:
        planner.close()
    stats.makespan_s = (last_finish or time.time()) - (first_submit or time.time())
    return stats


def _runs(args: Any, hw: str, table: dict[str, dict[str, Any]], space: list[Config], seed_configs: list[Config],
          scale: float, node_res: dict[str, float], tmp: Path, results: dict[int, "RunStats"]) -> None:
    """The 1-worker run, then a second worker node joins and the 2-worker run (one cluster)."""
    from experiments.ray_executor import RayExecutor
    from experiments.ray_local import LocalRayCluster
    from experiments.ray_worker import ReplayRunner

    with LocalRayCluster(head_resources={}) as cluster:
        for n_workers in (1, 2):
            while len(cluster.nodes) - 1 < n_workers:
                cluster.add_node(f"w{len(cluster.nodes)}", node_res)
            ex = RayExecutor(cluster.address, runner=ReplayRunner(table, time_scale=scale), liveness_s=5.0)
            # warm-up: one short task per worker so Ray's worker processes exist before timing
            warm = ReplayRunner({c.key: {**table[c.key], "wall_time_s": 0.0} for c in space[:n_workers]}, 0.0,
                                min_sleep_s=0.5)
            RayExecutor(cluster.address, runner=warm).map(space[:n_workers])
            t = time.time()
            st = run_loop(ex, space, seed_configs, table, args.budget, n_workers, args.acquisition, args.seed,
                          tmp / f"run{n_workers}.duckdb")
            results[n_workers] = st
            print(f"{n_workers} worker(s): {st.n} benchmarks in {st.makespan_s:.1f} s (loop {time.time() - t:.1f} s), "
                  f"busy {st.busy_s:.1f} s, idle fraction {st.idle_fraction:.3f}, per node {st.nodes}, "
                  f"max in flight {st.max_pending}, fit {np.mean(st.fit_s or [0]):.2f} s x{len(st.fit_s)}, "
                  f"pick {np.mean(st.pick_s or [0]):.2f} s x{len(st.pick_s)}; a freed worker waited "
                  f"{np.mean([a for a, _ in st.gap_s] or [0]):.3f} s for the driver to take its result and "
                  f"{np.mean([b for _, b in st.gap_s] or [0]):.3f} s for its next task, which Ray started "
                  f"{np.median(st.dispatch_s or [0]):.3f} s (median) after submission")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default=None, help="store with measurements (default: the shipped dataset)")
    ap.add_argument("--budget", type=int, default=14, help="benchmarks per run")
    ap.add_argument("--init", type=int, default=8, help="measurements the loop starts from (not timed)")
    ap.add_argument("--task-s", type=float, default=4.0,
                    help="mean seconds a replayed task of the pool sleeps (cost-aware picks are cheaper)")
    ap.add_argument("--acquisition", default="eig", help="acquisition of the distributed loop")
    ap.add_argument("--seed", type=int, default=0, help="the loop's seed")
    args = ap.parse_args()

    from experiments.ray_cluster import WORKER_MARK

    t_all = time.time()
    hw, table, _ = load_workload(args.db)
    space = [Config.from_key(k) for k in table]
    walls = np.array([table[c.key]["wall_time_s"] for c in space], dtype=float)
    scale = args.task_s / float(np.mean(walls))
    rng = np.random.default_rng(args.seed)
    seed_configs = [space[i] for i in rng.choice(len(space), size=min(args.init, len(space) // 4), replace=False)]
    print(f"workload: {len(space)} configurations of {hw} from {args.db or 'the shipped dataset'}; "
          f"shipped benchmark cost {walls.min():.1f}-{walls.max():.1f} s (mean {walls.mean():.1f} s), "
          f"replayed x{scale:.4f} -> mean {args.task_s:.2f} s per task; budget {args.budget} per run, "
          f"acquisition {args.acquisition}")
    runtimes = sorted({c.runtime for c in space})
    node_res = {WORKER_MARK: 1.0, f"hw:{hw}": 1.0, **{f"rt:{r}": 1000.0 for r in runtimes}}
    tmp = Path(tempfile.mkdtemp(prefix="pcdist"))
    results: dict[int, RunStats] = {}
    try:
        _runs(args, hw, table, space, seed_configs, scale, node_res, tmp, results)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        if args.db is None and _SHIPPED_COPY:
            shutil.rmtree(_SHIPPED_COPY[0], ignore_errors=True)
    one, two = results[1], results[2]
    # The two runs pick different configurations (the pending sets differ, and a cost-aware
    # acquisition favours cheap runs), so the ratio of makespans also measures which runs were
    # picked. The headline speed-up is therefore throughput: benchmark-seconds done per
    # wall-second, 2 workers over 1, which does not depend on which configurations were picked.
    rate_speedup = (two.busy_s / two.makespan_s) / (one.busy_s / one.makespan_s)
    print(f"makespan ratio (same budget, different picks) {one.makespan_s / two.makespan_s:.2f}; "
          f"total bench time {time.time() - t_all:.0f} s")
    print(f"speedup_2_workers={rate_speedup:.2f} idle_fraction={two.idle_fraction:.3f}")


if __name__ == "__main__":
    main()
