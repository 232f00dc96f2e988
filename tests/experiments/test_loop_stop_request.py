"""Ctrl-C in a loop: the first one lets the benchmarks in flight land and stops (status
``interrupted``), the same command resumes; the CLI exits 130 after its report."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _oracle_data import oracle_frame
from engine.store import Store
from experiments.config import parse_config
from experiments.executors import OracleExecutor
from experiments.loop import ExperimentLoop
from experiments.space import space_from_dataset
from tests.ctrl_c import start_until


def _cfg():
    return parse_config({"name": "syn", "search_space": {}, "acquisition": {"name": "random", "q": 2},
                         "budget": {"runs": 8}, "initial_design": 2, "seed": 3})


def test_a_stop_request_lets_the_runs_in_flight_land_and_the_same_loop_resumes(syn, tmp_path) -> None:
    from engine.models.gp import GPPredictor

    fz, configs, _ = syn
    df = oracle_frame(configs[:30])
    store = Store(tmp_path / "s.duckdb", seed=False)
    cfg = _cfg()

    def loop(on_event=None):
        ex = OracleExecutor(df)
        return ExperimentLoop(cfg, store, ex, space_from_dataset(cfg.search_space, df), mode="replay",
                              truth=ex.truth, on_event=on_event,
                              predictor_factory=lambda: GPPredictor(featurizer=fz, maxiter=10, calibrate=False))

    first = None

    def stop_at_first_result(kind, payload):
        if kind == "result":
            first.request_stop("asked to stop")

    first = loop(stop_at_first_result)
    r = first.run()
    # q = 2 went out together: the second of the pair was in flight when the stop was asked for
    assert r.stopped_because == "asked to stop" and r.n_benchmarks == 2
    assert len(store.measurements(status=None)) == 2
    assert store.get_experiment(first.experiment_id)["status"] == "interrupted"
    again = loop().run()
    assert again.resumed_runs == 2 and again.n_benchmarks == 8 and "run budget" in again.stopped_because
    assert store.get_experiment(first.experiment_id)["status"] == "finished"
    assert store.measurements(status=None)["config_key"].is_unique  # nothing run twice


@pytest.mark.slow
def test_ctrl_c_during_a_real_benchmark_stores_it_reports_and_exits_130(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("""
name: ctrlc-tiny
seed: 1
search_space: {models: [distilbert-base-uncased], hardware: [cpu], batch_sizes: [1, 2], seq_lengths: [16],
               threads: [1]}
acquisition: {name: random, q: 1}
budget: {runs: 2}
initial_design: 2
benchmark: {iterations: 3, warmup: 1, min_time_s: 4, max_time_s: 6, time_limit_s: 240, decode_tokens: 0}
""")
    db = tmp_path / "c.duckdb"
    p, lines, env = start_until(["run", str(cfg), "--db", str(db), "--no-compare"], tmp_path,
                                lambda line: line.startswith("step 0"))  # the first pick is out
    time.sleep(3)  # the forkserver preloads, then the child benchmarks for at least min_time_s
    os.killpg(p.pid, signal.SIGINT)
    rest, _ = p.communicate(timeout=300)
    out = "".join(lines) + rest
    (tmp_path / "out.txt").write_text(out)
    assert p.returncode == 130, out[-3000:]
    assert "Traceback" not in out and "Ctrl-C: the benchmark in flight will finish" in out, out[-3000:]
    assert "stopped: interrupted (Ctrl-C)" in out.replace("\n", " "), out[-3000:]
    runs = Store(db, seed=False).measurements(status=None)
    runs = runs[runs["experiment_id"].notna()]  # the store was seeded with the shipped runs
    assert len(runs) == 1 and runs["status"].eq("ok").all(), (runs.get("error"), out[-3000:])
    listing = subprocess.run([sys.executable, "-m", "engine.cli.main", "experiments", "--db", str(db), "--json"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert [e["status"] for e in json.loads(listing.stdout)["experiments"]] == ["interrupted"]


def test_a_second_ctrl_c_leaves_the_loop_listed_as_interrupted_not_killed(syn, tmp_path) -> None:
    """Audit: a second Ctrl-C (KeyboardInterrupt) stopped the loop at once and left its row "running",
    which `perfcast experiments` lists as "killed" (kept for kill -9 and reboots); its help says a
    loop stopped with Ctrl-C is "interrupted". The stored runs stay, and the same loop resumes."""
    from engine.models.gp import GPPredictor
    from experiments.history import summary

    fz, configs, _ = syn
    df = oracle_frame(configs[:30])
    store = Store(tmp_path / "s.duckdb", seed=False)
    cfg = _cfg()

    class InterruptedAfterTwo(OracleExecutor):
        def wait(self, timeout=None):  # type: ignore[no-untyped-def]
            if len(store.measurements(status=None)) >= 2:
                raise KeyboardInterrupt
            return super().wait(timeout)

    def loop(ex):  # type: ignore[no-untyped-def]
        return ExperimentLoop(cfg, store, ex, space_from_dataset(cfg.search_space, df), mode="run",
                              predictor_factory=lambda: GPPredictor(featurizer=fz, maxiter=10, calibrate=False))

    first = loop(InterruptedAfterTwo(df))
    with pytest.raises(KeyboardInterrupt):
        first.run()
    exp = store.get_experiment(first.experiment_id)
    assert exp["status"] == "interrupted" and summary(exp)["status"] == "interrupted"
    assert "second Ctrl-C" in exp["state"]["stopped_because"] and exp["state"]["n_benchmarks"] == 2
    again = loop(OracleExecutor(df)).run()
    assert again.resumed_runs == 2 and again.n_benchmarks == 8
    assert store.measurements(status=None)["config_key"].is_unique


def test_a_third_ctrl_c_while_the_loop_records_its_stop_waits_for_the_write(syn, tmp_path) -> None:
    """Session 33: a Ctrl-C (the third) while a loop stopped by a second one wrote its
    ``interrupted`` row rolled that write back, leaving the row "running" (listed as killed)."""
    from engine.models.gp import GPPredictor

    fz, configs, _ = syn
    df = oracle_frame(configs[:30])
    store = Store(tmp_path / "s.duckdb", seed=False)
    cfg = _cfg()
    real = store.upsert_experiment
    sent: list[str] = []

    def upsert(experiment_id, name, config, status, state=None):  # type: ignore[no-untyped-def]
        if status == "interrupted" and not sent:
            sent.append(status)
            signal.raise_signal(signal.SIGINT)  # the third Ctrl-C, as the row is written (to the main thread)
        return real(experiment_id, name, config, status, state)

    store.upsert_experiment = upsert  # type: ignore[method-assign]

    class InterruptedAfterTwo(OracleExecutor):
        def wait(self, timeout=None):  # type: ignore[no-untyped-def]
            if len(store.measurements(status=None)) >= 2:
                raise KeyboardInterrupt  # the second Ctrl-C
            return super().wait(timeout)

    loop = ExperimentLoop(cfg, store, InterruptedAfterTwo(df), space_from_dataset(cfg.search_space, df), mode="run",
                          predictor_factory=lambda: GPPredictor(featurizer=fz, maxiter=10, calibrate=False))
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    assert sent and signal.getsignal(signal.SIGINT) is before
    exp = store.get_experiment(loop.experiment_id)
    assert exp["status"] == "interrupted" and "second Ctrl-C" in exp["state"]["stopped_because"]
