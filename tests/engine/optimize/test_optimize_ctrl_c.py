"""Ctrl-C in online ``perfcast optimize``: the first lets the benchmark in flight land, prints the
ranking of what was measured and exits 130; the experiment reads ``interrupted``."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.store import Store
from tests.ctrl_c import start_until


@pytest.mark.slow
def test_ctrl_c_in_online_optimize_stores_the_run_in_flight_ranks_and_exits_130(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    db = tmp_path / "o.duckdb"
    args = ["optimize", "--model", "distilbert-base-uncased", "--hardware", "cpu", "--batch-sizes", "1,2,4",
            "--precision", "fp32", "--threads", "1", "--runtime", "torch", "--seq-lengths", "16", "--budget", "3",
            "--iterations", "3", "--online", "--db", str(db)]
    p, lines, env = start_until(args, tmp_path, lambda line: line.strip().startswith("1."))  # the first is stored
    time.sleep(1.0)  # during the next fit or benchmark
    os.killpg(p.pid, signal.SIGINT)
    rest, _ = p.communicate(timeout=300)
    out = "".join(lines) + rest
    assert p.returncode == 130, out[-3000:]
    # during the next fit or the next benchmark: the message says which
    assert "Traceback" not in out and ("Ctrl-C: the benchmark in flight will finish" in out
                                       or "Ctrl-C: no benchmark is running" in out), out[-3000:]
    assert "Best:" in out and "interrupted after" in out, out[-3000:]
    runs = Store(db, seed=False).measurements(status=None)
    runs = runs[runs["experiment_id"].notna()]  # the store was seeded with the shipped runs
    assert 1 <= len(runs) <= 2 and runs["status"].eq("ok").all(), (runs.get("error"), out[-3000:])
    listing = subprocess.run([sys.executable, "-m", "engine.cli.main", "experiments", "--db", str(db), "--json"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert [e["status"] for e in json.loads(listing.stdout)["experiments"]] == ["interrupted"]
