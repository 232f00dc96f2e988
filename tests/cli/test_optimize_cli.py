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
    # (this machine's CPU may also be cautioned for peaks measured while the test machine was busy)
    warnings = [w for w in json.loads(mixed.stdout)["warnings"] if "while the machine was busy" not in w]
    assert len(warnings) == 1 and "no cpu device has been measured" in warnings[0]
    gpus = perfcast(*common, "--available", "t4,l4")
    assert gpus.returncode == 0, gpus.stderr
    assert json.loads(gpus.stdout)["warnings"] == []


def test_a_platform_price_for_another_device_is_named(tmp_path) -> None:
    """Audit O: `--price-per-hour cpu=0.1` priced this machine's CPU; the space's CPU then had no
    price and the error said to give one, though one was given."""
    import pytest
    from _cli_errors import invoke

    from hardware.detect import local_cpu_id

    if local_cpu_id() == "cpu-amd-epyc-2c":
        pytest.skip("on the shipped CPU itself `cpu` is that device")
    r = invoke("optimize", "--model", "bert-base-uncased", "--hardware", "cpu-amd-epyc-2c", "--objective", "cost",
               "--price-per-hour", "cpu=0.1", "--db", str(tmp_path / "s.duckdb"))
    assert r.exit_code == 2 and "names no device of this space" in r.stderr
    assert "--price-per-hour cpu-amd-epyc-2c=USD" in r.stderr
