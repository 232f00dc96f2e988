"""A store a command creates is announced on stderr, once; commands that only read or edit what is
stored create none. Before session 22 a mistyped --db silently answered from a new store seeded
with the shipped runs alone."""
from __future__ import annotations

import json
from pathlib import Path

from _cli_errors import invoke, one_error_line


def test_a_new_store_is_announced_once_on_stderr_and_json_stays_clean(tmp_path: Path) -> None:
    db = tmp_path / "typo.duckdb"
    first = invoke("db", "import", str(tmp_path / "none.csv"), "--db", str(db))
    assert first.exit_code != 0 and not db.exists()  # a missing import file is refused before the store is made
    made = invoke("suggest", "--budget", "1", "--space", "cpu-quick", "--acquisition", "random", "--db", str(db),
                  "--json")
    assert made.exit_code == 0, made.output
    notices = [ln for ln in made.stderr.splitlines() if "created a new store" in ln]
    assert notices == [f"perfcast: created a new store {db} (with the {notices[0].split('the ')[1].split()[0]} "
                       "shipped runs)"]
    assert json.loads(made.stdout)["final_recommendations"]  # stdout is only the JSON
    again = invoke("suggest", "--budget", "1", "--space", "cpu-quick", "--acquisition", "random", "--db", str(db),
                   "--json")
    assert again.exit_code == 0 and "created a new store" not in again.stderr


def test_reading_commands_create_no_store(tmp_path: Path) -> None:
    db = tmp_path / "missing.duckdb"
    for argv in (["db", "info"], ["db", "export", str(tmp_path / "out.csv")], ["db", "delete", "abcdef12"]):
        one_error_line(invoke(*argv, "--db", str(db)), f"no store at {db}", "perfcast db init")
    listing = invoke("hardware", "list", "--no-detect", "--db", str(db), "--json")
    assert listing.exit_code == 0 and json.loads(listing.stdout)["hardware"]
    assert not db.exists() and not (tmp_path / "out.csv").exists()


def test_db_init_reports_creation_itself(tmp_path: Path) -> None:
    db = tmp_path / "new.duckdb"
    r = invoke("db", "init", "--db", str(db), "--no-seed")
    assert r.exit_code == 0 and "created" in r.stdout and "created a new store" not in r.stderr


def test_a_db_path_in_a_missing_folder_is_refused_and_only_the_default_gets_its_folders(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Audit (session 32): ``--db`` (or ``PERFCAST_DB``) in a folder that does not exist made the
    folders and a new store there, so a typo in the folder answered from the shipped runs alone."""
    import pytest

    from engine.errors import NotADatabaseError
    from engine.store import Store

    db = tmp_path / "typo" / "lab.duckdb"
    one_error_line(invoke("db", "init", "--db", str(db)), f"--db {db} cannot be created",
                   f"folder {db.parent} does not exist; create it or pick another --db")
    one_error_line(invoke("db", "info", "--db", str(db)), f"no store at {db}", f"its folder {db.parent} does not")
    monkeypatch.setenv("PERFCAST_DB", str(db))
    one_error_line(invoke("predict", "--model", "gpt2", "--hardware", "cpu-amd-epyc-2c", "--predictor", "roofline"),
                   f"PERFCAST_DB {db} cannot be created", "set PERFCAST_DB to a file in an existing folder")
    with pytest.raises(NotADatabaseError, match="does not exist"):
        Store(db)  # the Python API too, when the store is named, before any work
    assert not db.parent.exists()
    # the platform default (neither --db nor PERFCAST_DB) is made with its folders: `perfcast demo` on a new machine
    monkeypatch.delenv("PERFCAST_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data" / "home"))
    from engine.store.paths import platform_db_path

    assert platform_db_path().is_relative_to(tmp_path)
    r = invoke("db", "init", "--no-seed")
    assert r.exit_code == 0 and platform_db_path().is_file(), r.output


def test_the_commands_that_create_no_store_refuse_a_missing_folder_too(tmp_path: Path) -> None:
    """Audit 2026-12-08: `doctor --db typo/lab.duckdb` said "not created yet: perfcast db init creates
    it" (db init refuses it) and exited 0; `experiments` and `hardware list` answered as for an empty
    store, exit 0. The README: a --db in a folder that does not exist is refused, by every command."""
    import json

    db = tmp_path / "typo" / "lab.duckdb"
    why = f"folder {db.parent} does not exist; create it or pick another --db"
    one_error_line(invoke("experiments", "--db", str(db)), f"--db {db} cannot be created", why)
    one_error_line(invoke("hardware", "list", "--no-detect", "--db", str(db)), f"--db {db} cannot be created", why)
    r = invoke("doctor", "--db", str(db), "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["store"]["error"].endswith(why), r.output
    r = invoke("doctor", "--db", str(db))
    assert r.exit_code == 2 and "db init creates it" not in r.stdout, r.output
    fresh = tmp_path / "new.duckdb"  # a new file in an existing folder stays fine: nothing to refuse
    assert invoke("doctor", "--db", str(fresh)).exit_code == 0
    assert invoke("experiments", "--db", str(fresh)).exit_code == 0 and not fresh.exists()
    assert not db.parent.exists()
