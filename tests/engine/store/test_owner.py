"""One process runs an experiment at a time: a live owner is refused, a killed one is resumed."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import psutil
import pytest

from engine.records import utcnow
from engine.store import Store
from engine.store.owner import ExperimentBusyError, claim, owner_alive, owner_stamp


def test_owner_alive_tells_a_live_process_from_a_gone_or_reused_one(other_process) -> None:
    assert owner_alive(other_process)
    assert not owner_alive(None) and not owner_alive({})
    assert not owner_alive(owner_stamp())  # this process is never its own rival
    assert not owner_alive({**other_process, "started": other_process["started"] - 100})  # a reused pid
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert not owner_alive({**other_process, "pid": p.pid})
    far = {**other_process, "host": "some-other-host"}
    assert owner_alive(far, utcnow()) and not owner_alive(far, utcnow() - timedelta(hours=2))


def test_claim_refuses_a_live_owner_keeps_its_state_and_takes_over_a_dead_one(tmp_path, other_process) -> None:
    store = Store(tmp_path / "s.duckdb", seed=False)
    store.upsert_experiment("e1", "cfg", {"a": 1}, "running", {"owner": other_process, "steps": [1, 2]})
    with pytest.raises(ExperimentBusyError, match=rf"already running in process {other_process['pid']} on this "
                                                  "machine"):
        claim(store, "e1", "cfg", {"a": 1})
    exp = store.get_experiment("e1")
    assert exp["status"] == "running" and exp["state"] == {"owner": other_process, "steps": [1, 2]}
    psutil.Process(other_process["pid"]).kill()
    psutil.Process(other_process["pid"]).wait()
    me = claim(store, "e1", "cfg", {"a": 1})
    exp = store.get_experiment("e1")
    assert me["pid"] == os.getpid() and exp["state"] == {"owner": me, "steps": [1, 2]}  # the resume keeps it
    claim(store, "new", "cfg2", {"b": 2})
    assert store.get_experiment("new")["config"] == {"b": 2}


def test_an_optimisation_left_running_by_a_live_process_is_not_resumed_but_started_beside(tmp_path,
                                                                                          other_process) -> None:
    from engine.optimize.optimizer import _claim, _problem_dict
    from engine.optimize.spec import Problem
    from engine.records import Config

    store = Store(tmp_path / "s.duckdb", seed=False)
    cands = tuple(Config("gpt2", "cpu", b, 16, "fp32", "inference", "torch", 1) for b in (1, 2))
    problem = Problem("gpt2", ("throughput",), (), cands, {"batch_size": [1, 2]})
    store.upsert_experiment("optimize-aaa", "optimize gpt2", _problem_dict(problem, 3), "running",
                            {"owner": other_process})
    notes: list[str] = []
    eid, done, _, owner = _claim(store, problem, 3, True, notes)
    assert owner["pid"] == __import__("os").getpid()
    assert eid != "optimize-aaa" and done == 0
    assert "already running in process" in notes[0] and "new experiment beside it" in notes[0]
    psutil.Process(other_process["pid"]).kill()
    psutil.Process(other_process["pid"]).wait()
    # the newer experiment is the latest of this problem now, and it is running in this process
    store.upsert_experiment(eid, "optimize gpt2", _problem_dict(problem, 3), "interrupted")
    eid2, _, _, _ = _claim(store, problem, 3, True, notes)
    assert eid2 == eid and notes[-1].startswith(f"resumed {eid}")
