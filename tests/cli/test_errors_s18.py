"""One clear line, not a traceback: a non-DuckDB --db, an unwritable output path, a negative seed,
a malformed Ray address, a non-positive latency SLO; and `suggest --emit-commands` keeps --db."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from _cli_errors import invoke, one_error_line


# -- 1: --db that is not a DuckDB database ----------------------------------------------------------
@pytest.mark.parametrize("name, content", [("runs.csv", b"model,hardware\ngpt2,cpu\n"),
                                           ("junk.duckdb", bytes(range(100))), ("empty.duckdb", b"")],
                         ids=["csv", "junk", "empty"])
def test_db_that_is_not_duckdb_is_one_line(tmp_path: Path, name: str, content: bytes) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    line = one_error_line(invoke("db", "info", "--db", str(p)), str(p), "is not a DuckDB database")
    assert ("perfcast db import" in line) == name.endswith(".csv")
    assert p.read_bytes() == content  # left untouched


def test_db_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    p = tmp_path / "file" / "x.duckdb"  # its "folder" is a file
    one_error_line(invoke("db", "init", "--db", str(p)), str(p), "cannot be created")


def test_store_open_error_is_a_perfcast_error(tmp_path: Path) -> None:
    from engine.errors import PerfcastError
    from engine.store import Store

    p = tmp_path / "runs.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(PerfcastError, match="is not a DuckDB database"):
        Store(p).measurements()


# -- 2: the emitted benchmark lines save into the analysed store ------------------------------------
def _fake_suggest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the fit: a system that recommends one configuration, and one busy rerun."""
    import engine.active_learning as al

    item = {"model_name": "gpt2", "hardware": "cpu", "batch_size": 2, "seq_len": 64, "precision": "fp32",
            "mode": "inference", "runtime": "torch", "threads": 1}

    class Fake:
        def __init__(self, *a: Any, **k: Any) -> None:
            pass

        def integrate_with_hardware_recommender(self, *a: Any, **k: Any) -> dict[str, Any]:
            return {"final_recommendations": [item], "strategy": "fake", "excluded": {}, "total_candidates": 1,
                    "enhanced_candidates": 1, "notes": [],
                    "reruns": [{**item, "command": al.benchmark_command(item)}]}

    monkeypatch.setattr(al, "ActiveLearningSystem", Fake)


def test_emit_commands_carry_quoted_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_suggest(monkeypatch)
    db, sh = tmp_path / "my store.duckdb", tmp_path / "run.sh"
    r = invoke("suggest", "--budget", "1", "--db", str(db), "--emit-commands", str(sh), "--json")
    assert r.exit_code == 0, r.output
    lines = [ln for ln in sh.read_text().splitlines() if ln.startswith('"$PERFCAST" benchmark')]
    assert len(lines) == 2  # the rerun and the recommendation
    for ln in lines:
        args = shlex.split(ln)
        assert args[args.index("--db") + 1] == str(db.resolve())
    assert "'" in lines[0]  # the space is quoted


def test_emit_commands_for_the_default_store_have_no_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.store.paths as paths

    _fake_suggest(monkeypatch)
    db, sh = tmp_path / "default.duckdb", tmp_path / "run.sh"
    monkeypatch.setattr(paths, "platform_db_path", lambda: db)
    r = invoke("suggest", "--budget", "1", "--db", str(db), "--emit-commands", str(sh), "--json")
    assert r.exit_code == 0, r.output
    assert "--db" not in sh.read_text()


# -- 3: replay seeds ---------------------------------------------------------------------------------
def test_replay_negative_seed_is_one_line() -> None:
    one_error_line(invoke("replay", "cpu-quick", "--seeds", "0,-1", "--strategies", "random"),
                   "seed -1", "non-negative")


# -- 4: Ray address ----------------------------------------------------------------------------------
@pytest.mark.parametrize("address", ["notanaddress", "host:port", "10.0.0.5:99999"])
def test_workers_bad_address_is_one_line_without_ray(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # checked before Ray is needed
    one_error_line(invoke("workers", "--address", address), f"'{address}'", "HOST:PORT", "auto")


def test_workers_bad_ray_address_env_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setenv("RAY_ADDRESS", "nohost")
    one_error_line(invoke("workers"), "RAY_ADDRESS", "'nohost'")


# -- 5: unwritable output paths, refused before any work ---------------------------------------------
@pytest.mark.parametrize("argv, option", [
    (["db", "export", "{bad}/x.csv"], "FILE"),
    (["matrix", "--models", "gpt2", "--hardware", "cpu", "--output", "{bad}/m.json"], "--output"),
    (["matrix", "--models", "gpt2", "--hardware", "cpu", "--output", "{ok}/m.json", "--plot", "{bad}/p.png"],
     "--plot"),
    (["compare-hardware", "--model", "gpt2", "--hardware", "cpu", "--plot", "{bad}/p.png"], "--plot"),
    (["suggest", "--output", "{bad}/r.json"], "--output"),
    (["suggest", "--emit-commands", "{bad}/r.sh"], "--emit-commands"),
])
def test_unwritable_output_is_one_line_before_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   argv: list[str], option: str) -> None:
    import engine.cli.common as common

    def no_store(*a: Any, **k: Any) -> None:
        raise AssertionError("the store was opened before the output path was checked")

    monkeypatch.setattr(common, "open_store", no_store)
    monkeypatch.setattr("engine.cli.db_cmd.open_store", no_store)
    monkeypatch.setattr("engine.cli.predict_cmd._predictor", no_store)
    bad = tmp_path / "missing"
    argv = [a.format(bad=bad, ok=tmp_path) for a in argv]
    one_error_line(invoke(*argv), option, str(bad), "does not exist")


def test_read_only_folder_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from engine.cli.common import check_writable
    from engine.errors import InvalidValueError

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    with pytest.raises(InvalidValueError, match="is not writable"):
        check_writable("--plot", str(tmp_path / "p.png"))
    check_writable("--plot", None)


# -- 6: latency SLO -----------------------------------------------------------------------------------
@pytest.mark.parametrize("slo", ["-5", "0", "nan"])
def test_predict_non_positive_slo_is_one_line(monkeypatch: pytest.MonkeyPatch, slo: str) -> None:
    def no_fit(*a: Any, **k: Any) -> None:
        raise AssertionError("fitted before checking --latency-slo-ms")

    monkeypatch.setattr("engine.cli.predict_cmd._predictor", no_fit)
    one_error_line(invoke("predict", "--model", "gpt2", "--hardware", "cpu", "--latency-slo-ms", slo),
                   "--latency-slo-ms", "positive")
