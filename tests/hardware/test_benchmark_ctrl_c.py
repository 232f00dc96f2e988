"""Ctrl-C in a real multi-configuration `perfcast benchmark --save`: the run in flight lands and is
stored, the next never starts, the measured runs are shown and the exit status is 130."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _measured(db: Path) -> int:
    """Runs the command has stored so far (0 while its write holds the file)."""
    import duckdb

    try:
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute("SELECT count(*) FROM benchmark_runs WHERE source = 'measured'").fetchone()[0]
    except Exception:  # noqa: BLE001 - not created yet, or being written
        return 0


@pytest.mark.slow
def test_ctrl_c_during_a_real_benchmark_stores_the_run_in_flight_and_exits_130(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    db = tmp_path / "b.duckdb"
    env = {**os.environ, "PERFCAST_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    args = ["benchmark", "--model", "distilbert-base-uncased", "--batch-sizes", "1,2,4", "--seq-lengths", "16",
            "--threads", "1", "--iterations", "3", "--warmup", "1", "--min-time", "3", "--save", "--db", str(db)]
    p = subprocess.Popen([sys.executable, "-m", "engine.cli.main", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    deadline = time.monotonic() + 240
    while _measured(db) < 1 and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.3)
    assert p.poll() is None, "the command ended before it could be interrupted"
    os.killpg(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole process group
    out, _ = p.communicate(timeout=120)
    flat = " ".join(out.split())
    assert p.returncode == 130, out[-3000:]
    assert "Traceback" not in out and "the benchmark in flight will finish and be stored" in flat, out[-3000:]
    assert "interrupted: 2 of 3 configurations measured and stored; 1 not started" in flat, out[-3000:]
    assert "Measurements (saved)" in flat
    assert _measured(db) == 2
