"""The Ray executor on a REAL local cluster (head + worker nodes on loopback, `ray start`).

Placement is by custom resources, so the tests give nodes different ones: the head offers a
hardware id but no runtime, a worker offers the targeted hardware and runtime. Every cluster
process is killed in the fixtures' teardown, failure or not.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Iterator

import pytest

from engine.config import Config
from engine.errors import NotADatabaseError, NotAvailableError
from engine.records import Measurement
from experiments.ray_cluster import WORKER_MARK, capacity, nodes_from_ray, task_resources, unmet

ray = pytest.importorskip("ray")

FAKE = "fake-b"  # hardware id only the worker node w1 offers
SYN = "cpu-syn-2c"  # a hardware of bench/synthetic.py's world (the loop test's GP knows it)


def _cfg(batch: int, hardware: str = FAKE, runtime: str = "torch") -> Config:
    return Config("gpt2", hardware, batch, 16, "fp32", "inference", runtime, 0)


def _table(configs: list[Config], wall_s: float) -> dict[str, dict[str, Any]]:
    return {c.key: Measurement.from_samples(c, [10.0, 11.0, 12.0], wall_time_s=wall_s).to_dict() for c in configs}


# -- pure functions --------------------------------------------------------------------------------
def test_resources_requested_and_offered_match_by_name() -> None:
    c = _cfg(1, "cpu-x", "onnxruntime")
    assert task_resources(c) == {"hw:cpu-x": 1.0, "rt:onnxruntime": 1.0}
    nodes = nodes_from_ray([
        {"NodeID": "a", "Alive": True, "Resources": {"hw:cpu-x": 1.0, "rt:torch": 1000.0, WORKER_MARK: 1.0,
                                                       "ad:torch-cpu/cpu-x": 1.0}},
        {"NodeID": "b", "Alive": False, "Resources": {"hw:cpu-x": 1.0, "rt:onnxruntime": 1000.0}},
    ])
    assert nodes[0].is_worker and nodes[0].adapters == {"torch-cpu": "cpu-x"} and not nodes[1].is_worker
    assert unmet(_cfg(1, "cpu-x", "torch"), nodes) is None
    why = unmet(c, nodes)  # only the DEAD node had onnxruntime
    assert why is not None and "rt:onnxruntime on a node with hw:cpu-x" in why
    assert capacity(nodes) == 1 and capacity(nodes, [c]) == 0 and capacity(nodes, [_cfg(1, "cpu-x")]) == 1


def test_hardware_on_one_node_and_runtime_on_another_do_not_add_up() -> None:
    nodes = nodes_from_ray([
        {"NodeID": "head", "Alive": True, "Resources": {"hw:fake-a": 1.0}},
        {"NodeID": "w1", "Alive": True, "Resources": {"hw:fake-b": 1.0, "rt:torch": 1000.0}},
    ])
    why = unmet(_cfg(1, "fake-a"), nodes)
    assert why is not None and "rt:torch on a node with hw:fake-a" in why
    assert "hw:gpu-x" in (unmet(_cfg(1, "gpu-x"), nodes) or "")


def test_replay_runner_sleeps_in_proportion_to_the_recorded_cost() -> None:
    from experiments.ray_worker import ReplayRunner

    c = _cfg(2)
    runner = ReplayRunner(_table([c], wall_s=20.0), time_scale=0.01)
    t0 = time.monotonic()
    m = runner({"config": c.to_dict()})
    assert 0.19 <= time.monotonic() - t0 < 1.0
    assert m.ok and m.latency is not None and m.latency.median_ms == 11.0 and m.adapter == "replay"
    missing = runner({"config": _cfg(3).to_dict()})
    assert missing.status == "failed" and "not in the replay dataset" in (missing.error or "")


# -- a real cluster ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Head offers hw:fake-a only; worker w1 offers hw:fake-b, hw:cpu-syn-2c + rt:torch (a perfcast worker)."""
    from experiments.ray_cluster import connect
    from experiments.ray_local import LocalRayCluster

    c = LocalRayCluster(head_resources={"hw:fake-a": 1.0})
    try:
        try:
            c.start_head()
            c.add_node("w1", {WORKER_MARK: 1.0, f"hw:{FAKE}": 1.0, f"hw:{SYN}": 1.0, "rt:torch": 1000.0, "test:w1": 1.0})
        except NotAvailableError as exc:
            # Ray itself gives a raylet 30 s to register; a machine starved by a benchmark grid at
            # high priority can miss that. That is not a perfcast failure: say so and skip.
            pytest.skip(f"a local Ray cluster could not start on this (overloaded?) machine: {str(exc)[:200]}")
        connect(c.address)  # this test process is the driver
        yield c
    finally:
        c.shutdown()


def _node_with(resource: str) -> str:
    nodes = [n for n in ray.nodes() if n["Alive"] and resource in n["Resources"]]
    assert len(nodes) == 1, nodes
    return str(nodes[0]["NodeID"])


@pytest.mark.ray
def test_tasks_land_on_the_node_with_their_hardware_and_workers_lists_them(
        cluster: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli.main import main
    from experiments.ray_executor import RayExecutor
    from experiments.ray_worker import ReplayRunner

    ok = [_cfg(b) for b in (1, 2, 3)]
    no_runtime = _cfg(1, "fake-a")  # the head has the hardware but not the runtime
    no_hardware = _cfg(1, "cuda-h100")
    ex = RayExecutor(cluster.address, runner=ReplayRunner(_table(ok, wall_s=1.5), time_scale=1.0))
    assert ex.check([*ok, no_runtime, no_hardware]) == ok
    assert "rt:torch" in ex.skipped[no_runtime.key] and "hw:cuda-h100" in ex.skipped[no_hardware.key]
    assert ex.capacity(ok) == 1
    with pytest.raises(NotAvailableError, match="hw:cuda-h100"):
        ex.submit(no_hardware)  # refused at once instead of queueing a task Ray could never place

    handles = [ex.submit(c) for c in ok]
    assert sorted(c.key for c in ex.pending()) == sorted(c.key for c in ok)
    w1 = _node_with("test:w1")
    deadline = time.monotonic() + 60
    while True:  # until the first task has started on w1 (a Ray worker process starts first)
        assert main(["workers", "--address", cluster.address, "--json"]) in (None, 0)
        by_id = {n["node_id"]: n for n in json.loads(capsys.readouterr().out)}
        if by_id[w1]["running"] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert by_id[w1]["alive"] and by_id[w1]["hardware"] == sorted([FAKE, SYN]) and by_id[w1]["runtimes"] == ["torch"]
    assert [r["config"] for r in by_id[w1]["running"]] == [ok[0].key]

    results = list(ex.as_completed())
    assert {r.handle.task_id for r in results} == {h.task_id for h in handles}
    assert all(r.measurement.ok for r in results)
    assert {r.node_id for r in results} == {w1}  # every one ran on the node with hw:fake-b
    assert all(r.measurement.versions["ray_node_id"] == w1 for r in results)
    # one hw:fake-b unit: the three ran one after another, never two at once
    spans = sorted((r.started, r.finished) for r in results)
    assert all(b[0] >= a[1] - 0.05 for a, b in zip(spans, spans[1:]))
    assert ex.pending() == []


def _wait_until(pred: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


@pytest.mark.ray
@pytest.mark.slow
def test_killing_a_node_mid_run_loses_no_committed_measurement(cluster: Any, tmp_path: Any,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """w2 runs benchmarks of fake-b (also on w1) and of fake-c (only on w2); w2 is killed mid-run.

    The fake-b task it was running is retried on w1; the fake-c task cannot be placed anywhere
    any more and comes back as a failed run with the reason; everything committed stays.
    """
    from engine.store import Store
    from experiments.ray_executor import RayExecutor
    from experiments.ray_worker import ReplayRunner, running_tasks

    cluster.add_node("w2", {WORKER_MARK: 1.0, f"hw:{FAKE}": 1.0, "hw:fake-c": 1.0, "rt:torch": 1000.0})
    try:
        w1, w2 = _node_with("test:w1"), _node_with("hw:fake-c")
        b_cfgs = [_cfg(b) for b in range(1, 7)]
        c_cfg = _cfg(1, "fake-c")
        ex = RayExecutor(cluster.address, runner=ReplayRunner(_table([*b_cfgs, c_cfg], wall_s=2.5), time_scale=1.0),
                         max_retries=2, liveness_s=0.5)
        store = Store(tmp_path / "k.duckdb", seed=False)
        committed: list[str] = []
        for c in [c_cfg, *b_cfgs[:2]]:
            ex.submit(c)
        queue = b_cfgs[2:]
        _wait_until(lambda: {t["config"] for t in running_tasks() if t["node_id"] == w2} >= {c_cfg.key}
                    and len([t for t in running_tasks() if t["node_id"] == w2]) == 2, 120, "w2 to run two tasks")
        w2_b = next(t["config"] for t in running_tasks() if t["node_id"] == w2 and t["config"] != c_cfg.key)
        cluster.kill_node("w2")
        results = []
        while len(ex) or queue:
            r = ex.wait(timeout=60)
            assert r is not None, "the executor hung after a node died"
            committed.append(store.save_measurement(r.measurement))  # the driver commits as results land
            results.append(r)
            if queue and ex.free([queue[0]]) > 0:
                ex.submit(queue.pop(0))
        by_key = {r.config.key: r for r in results}
        assert set(by_key) == {c.key for c in [*b_cfgs, c_cfg]}
        assert by_key[w2_b].measurement.ok and by_key[w2_b].node_id == w1  # retried on the survivor
        lost = by_key[c_cfg.key].measurement
        assert lost.status == "failed" and "hw:fake-c" in (lost.error or "") and "died" in (lost.error or "")
        df = store.measurements(status=None)
        assert len(df) == len(committed) == 7
        assert (df["status"] == "ok").sum() == 6
        assert "(raylet)" not in capsys.readouterr().out  # Ray's notices go to stderr: --json stays clean
    finally:
        cluster.kill_node("w2")


@pytest.mark.ray
@pytest.mark.slow
def test_real_cpu_benchmarks_run_on_the_worker_with_the_cpu(cluster: Any, tmp_path: Any,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`perfcast benchmark --executor ray`: real benchmarks of a small model, stored by the driver."""
    from engine.cli.main import main
    from engine.store import Store
    from experiments.ray_cluster import local_resources
    from hardware.detect import local_cpu_id

    cluster.add_node("cpu", local_resources())  # hw:<this cpu> + rt:torch/onnxruntime/openvino
    try:
        cpu_node = _node_with(f"hw:{local_cpu_id()}")
        db = tmp_path / "b.duckdb"
        code = main(["benchmark", "--executor", "ray", "--address", cluster.address, "--model", "distilbert-base-uncased",
                     "--hardware", "cpu", "--batch-sizes", "1,2", "--seq-lengths", "16", "--iterations", "3",
                     "--warmup", "1", "--min-time", "0.1", "--max-time", "2", "--decode-tokens", "0", "--save",
                     "--db", str(db), "--json"])
        assert code in (None, 0)
        out = json.loads(capsys.readouterr().out)
        assert len(out) == 2 and all(m["status"] == "ok" and m["saved"] for m in out)
        assert {m["versions"]["ray_node_id"] for m in out} == {cpu_node}
        assert {m["adapter"] for m in out} == {"torch-cpu"}
        df = Store(db, seed=False).measurements()
        df = df[df["source"] == "measured"]  # the store was seeded with the shipped dataset
        assert sorted(df["batch_size"]) == [1, 2] and (df["latency_median_ms"] > 0).all()
        # a model only the driver's PERFCAST_MODELS file defines: its text travels with the task
        from engine.catalog import user_catalog_env

        tiny = ("models:\n  tiny-bert-test:\n    family: text_embedding\n    hf_config: BertConfig\n"
                "    hf_model: BertModel\n    arch: {vocab_size: 1000, hidden_size: 32, num_hidden_layers: 2,"
                " num_attention_heads: 2, intermediate_size: 64, max_position_embeddings: 64}\n")
        with user_catalog_env({"PERFCAST_MODELS": tiny}):
            code = main(["benchmark", "--executor", "ray", "--address", cluster.address, "--model", "tiny-bert-test",
                         "--hardware", "cpu", "--batch-sizes", "1", "--seq-lengths", "8", "--iterations", "2",
                         "--warmup", "1", "--min-time", "0.1", "--max-time", "2", "--json"])
        assert code in (None, 0)
        own = json.loads(capsys.readouterr().out)
        assert [m["status"] for m in own] == ["ok"], own
        assert own[0]["versions"]["ray_node_id"] == cpu_node
    finally:
        cluster.kill_node("cpu")


@pytest.mark.ray
@pytest.mark.slow
def test_loop_finishes_when_a_worker_node_is_killed_mid_run(cluster: Any, syn: Any, tmp_path: Any) -> None:
    """The active-learning loop (experiments.loop) on two worker nodes; one is killed mid-run.

    Nothing committed is lost, the loop spends its whole budget, the killed node's in-flight
    benchmark is retried on the survivor (or stored as failed), and no benchmark ever runs on
    the head, which does not offer the hardware.
    """
    from _oracle_data import oracle_frame
    from engine.models.gp import GPPredictor
    from engine.store import Store
    from experiments.config import parse_config
    from experiments.executors import measurement_from_row
    from experiments.loop import ExperimentLoop
    from experiments.ray_executor import RayExecutor
    from experiments.ray_worker import ReplayRunner, running_tasks

    fz, configs, _ = syn
    space = [c for c in configs if c.hardware == SYN and c.runtime == "torch"][:30]
    assert len(space) >= 12
    df = oracle_frame(space)
    table = {r["config_key"]: measurement_from_row(r).to_dict() for r in df.to_dict("records")}
    scale = 2.5 / float(df["wall_time_s"].max())  # every replayed benchmark takes 1.5-2.5 s
    cluster.add_node("w3", {WORKER_MARK: 1.0, f"hw:{SYN}": 1.0, "rt:torch": 1000.0, "test:w3": 1.0})
    try:
        w1, w3 = _node_with("test:w1"), _node_with("test:w3")
        ex = RayExecutor(cluster.address, runner=ReplayRunner(table, time_scale=scale, min_sleep_s=1.5),
                         liveness_s=0.5)
        cfg = parse_config({"name": "ray-kill", "search_space": {}, "acquisition": {"name": "eig", "q": 1, "mc_points": 64},
                            "budget": {"runs": 9}, "predictor": {"refit_every": 3}, "initial_design": 2})
        store = Store(tmp_path / "loop.duckdb", seed=False)
        killed: dict[str, Any] = {}
        committed_before_kill: list[str] = []
        results_seen: list[str] = []
        stop = threading.Event()

        def on_event(kind: str, payload: Any) -> None:
            if kind == "result":
                results_seen.append(payload[0].config.key)

        def killer() -> None:
            """Kill w3 once two results are in and w3 is surely mid-benchmark (started 0.2-0.8 s ago,
            every benchmark takes >= 1.5 s)."""
            while not stop.is_set():
                now = time.time()
                on_w3 = [t for t in running_tasks() if t["node_id"] == w3 and 0.2 < now - t["started_at"] < 0.8]
                if len(results_seen) >= 2 and on_w3:
                    try:
                        committed = store.configs_with_status(["ok", "failed", "oom", "timeout"])
                    except NotADatabaseError:  # the loop's own connection had the file: try the next tick
                        time.sleep(0.05)
                        continue
                    killed["config"] = on_w3[0]["config"]
                    committed_before_kill.extend(committed)
                    cluster.kill_node("w3")
                    return
                time.sleep(0.05)

        watcher = threading.Thread(target=killer, daemon=True)
        watcher.start()
        loop = ExperimentLoop(cfg, store, ex, space, mode="run", on_event=on_event,
                              predictor_factory=lambda: GPPredictor(featurizer=fz, maxiter=10, calibrate=False))
        try:
            result = loop.run()
        finally:
            stop.set()
            watcher.join(timeout=30)
        assert killed, "w3 was never caught mid-benchmark"
        assert result.n_benchmarks == 9 and "budget" in result.stopped_because
        df_all = store.measurements(status=None)
        assert len(df_all) == 9
        assert set(committed_before_kill) <= set(df_all["config_key"])  # nothing committed was lost
        row = df_all[df_all["config_key"] == killed["config"]]
        assert len(row) == 1  # the in-flight benchmark came back exactly once
        import json as _json

        nodes = {(_json.loads(v) if isinstance(v, str) else v).get("ray_node_id")
                 for v in df_all.loc[df_all["status"] == "ok", "versions"]}
        assert nodes <= {w1, w3} and w1 in nodes  # never on the head
        if row["status"].iloc[0] == "ok":
            v = row["versions"].iloc[0]
            assert (_json.loads(v) if isinstance(v, str) else v)["ray_node_id"] == w1  # retried on the survivor
        else:
            assert "ray" in str(row["error"].iloc[0])
    finally:
        cluster.kill_node("w3")
