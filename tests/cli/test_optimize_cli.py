"""``perfcast optimize`` / ``recommend-hardware``: help with examples, one-line errors with exit code 2."""
from __future__ import annotations

import subprocess
import sys


def perfcast(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from engine.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_help_has_examples():
    for cmd in ("optimize", "recommend-hardware"):
        r = perfcast(cmd, "--help")
        assert r.returncode == 0 and "Example" in r.stdout and "--json" in r.stdout and "--db" in r.stdout


def test_bad_space_value_is_one_line_exit_2(tmp_path):
    r = perfcast("optimize", "--model", "bert-base-uncased", "--runtime", "torch,tensorrtx", "--db",
                 str(tmp_path / "x.duckdb"))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "tensorrtx" in lines[0] and "onnxruntime" in lines[0]


def test_impossible_constraint_is_refused_before_running(tmp_path):
    r = perfcast("optimize", "--model", "bert-base-uncased", "--max-latency-ms", "-1", "--online", "--db",
                 str(tmp_path / "x.duckdb"))
    assert r.returncode == 2 and "latency_p90_ms" in r.stderr and "positive" in r.stderr


def test_recommend_hardware_cautions_about_device_kinds_never_measured(tmp_path):
    """The store holds GPU runs only: a ranking that includes the CPU says its answer extrapolates."""
    import json

    from synthetic_measurements import synthetic_store

    db = tmp_path / "gpu-only.duckdb"
    synthetic_store(db)
    common = ("recommend-hardware", "--model", "bert-base-uncased", "--predictor", "roofline", "--samples", "200",
              "--json", "--db", str(db))
    mixed = perfcast(*common, "--available", "t4,cpu")
    assert mixed.returncode == 0, mixed.stderr
    warnings = json.loads(mixed.stdout)["warnings"]
    assert len(warnings) == 1 and "no cpu device has been measured" in warnings[0]
    gpus = perfcast(*common, "--available", "t4,l4")
    assert gpus.returncode == 0, gpus.stderr
    assert json.loads(gpus.stdout)["warnings"] == []
