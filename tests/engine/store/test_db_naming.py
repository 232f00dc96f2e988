"""Errors about a store path name it the way its reader typed it: ``--db PATH`` on the command
line, ``db='PATH'`` in the Python API, ``PERFCAST_DB PATH`` when it came from the environment.
Before session 33 every one said ``--db``, also to a notebook's ``PerformancePredictor("notes.txt")``,
which has no such flag."""
from __future__ import annotations

from pathlib import Path

import pytest

from _cli_errors import invoke, one_error_line
from engine.errors import NotADatabaseError


def _notes(tmp_path: Path) -> Path:
    p = tmp_path / "notes.txt"
    p.write_text("not a database\n")
    return p


def test_the_python_api_names_its_db_argument_not_the_cli_flag(tmp_path: Path, monkeypatch) -> None:
    import engine

    monkeypatch.delenv("PERFCAST_DB", raising=False)
    notes = _notes(tmp_path)
    calls = {
        "PerformancePredictor": lambda: engine.PerformancePredictor(str(notes)).data_hash(),
        "ActiveLearningSystem": lambda: engine.ActiveLearningSystem(space="cpu-quick", db=notes).store.data_hash(),
        "optimize_deployment": lambda: engine.optimize_deployment("gpt2", db=notes, predictor="roofline"),
    }
    for name, call in calls.items():
        with pytest.raises(NotADatabaseError) as e:
            call()
        msg = str(e.value)
        assert msg.startswith(f"db={str(notes)!r} is not a DuckDB database (no DuckDB header)"), (name, msg)
        assert "--db" not in msg, (name, msg)
    missing = tmp_path / "typo" / "lab.duckdb"
    with pytest.raises(NotADatabaseError) as e:
        engine.PerformancePredictor(missing).data_hash()
    assert str(e.value) == (f"db={str(missing)!r} cannot be created: folder {missing.parent} does not exist; "
                            "create it or pass another file as db=")
    with pytest.raises(NotADatabaseError, match=r"^path='.*' is not a DuckDB database \(it is a directory\)$"):
        engine.Store(tmp_path).measurements()  # Store itself takes ``path``


def test_perfcast_db_is_named_as_such_in_the_python_api_and_the_cli(tmp_path: Path, monkeypatch) -> None:
    import engine

    notes = _notes(tmp_path)
    monkeypatch.setenv("PERFCAST_DB", str(notes))
    with pytest.raises(NotADatabaseError, match=f"^PERFCAST_DB {notes} is not a DuckDB database"):
        engine.PerformancePredictor().data_hash()
    one_error_line(invoke("db", "info"), f"PERFCAST_DB {notes} is not a DuckDB database")
    # a path passed to the Python API is that argument, even when PERFCAST_DB names the same file
    with pytest.raises(NotADatabaseError, match=r"^db='"):
        engine.PerformancePredictor(notes).data_hash()


def test_the_cli_still_names_its_flag(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PERFCAST_DB", raising=False)
    notes = _notes(tmp_path)
    one_error_line(invoke("predict", "--model", "gpt2", "--hardware", "cpu-amd-epyc-2c", "--predictor", "roofline",
                          "--db", str(notes)), f"--db {notes} is not a DuckDB database (no DuckDB header)")
    missing = tmp_path / "typo" / "lab.duckdb"
    one_error_line(invoke("predict", "--model", "gpt2", "--hardware", "cpu-amd-epyc-2c", "--predictor", "roofline",
                          "--db", str(missing)), f"--db {missing} cannot be created", "create it or pick another --db")
    assert not missing.parent.exists()
