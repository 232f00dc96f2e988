"""The benchmark store: schema, one transaction per write, import validation, round trips, locks."""
from __future__ import annotations

import json
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import duckdb
import pandas as pd
import pytest

from engine.config import Config
from engine.errors import DatabaseLockedError, ImportRejectedError
from engine.records import Measurement
from engine.store import Store
from engine.store.schema import SCHEMA_VERSION
from engine.store.transfer import export_measurements, import_measurements

TABLES = {"schema_version", "hardware", "models", "benchmark_runs", "benchmark_results", "raw_samples",
          "predictions", "recommendations", "experiments"}


def _store(tmp_path: Path, name: str = "s.duckdb") -> Store:
    return Store(tmp_path / name, seed=False)


def _filled(tmp_path: Path) -> Store:
    s = _store(tmp_path)
    c = Config("bert-base-uncased", "cpu-test", 4, 128, "fp32", threads=2)
    s.save_measurement(Measurement.from_samples(c, [10.1, 10.3, 9.9, 0.1 + 0.2, 1 / 3], adapter="torch-cpu",
                                                 memory_peak_mib=812.5, load_time_s=1.25, warmup=2,
                                                 versions={"torch": "2.13.0"}))
    s.save_measurement(Measurement.from_samples(c.with_(precision="int8", runtime="onnxruntime"), [5.5, 5.25]))
    s.save_measurement(Measurement.failed(c.with_(batch_size=64), "oom", "exceeded 100 MiB"))
    return s


def test_schema_has_contract_tables_and_version(tmp_path: Path) -> None:
    s = _store(tmp_path)
    assert s.ensure_schema() is True
    with s.connect() as con:
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert TABLES <= names
    assert s.schema_version() == SCHEMA_VERSION
    assert Store(tmp_path / "s.duckdb", seed=False).ensure_schema() is False  # second open: no migration


def test_migration_upgrades_an_old_file_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
    con.execute("CREATE TABLE keepme (x INTEGER)")
    con.execute("INSERT INTO keepme VALUES (42)")
    con.close()
    s = Store(path, seed=False)
    s.ensure_schema()
    assert s.schema_version() == SCHEMA_VERSION
    with s.connect() as con:
        assert con.execute("SELECT x FROM keepme").fetchone()[0] == 42


def test_measurement_round_trip_and_failed_runs(tmp_path: Path) -> None:
    s = _filled(tmp_path)
    assert s.count("benchmark_runs") == 3
    assert s.count("benchmark_results") == 2
    assert s.count("raw_samples") == 7
    ok = s.measurements()
    assert len(ok) == 2 and set(ok["status"]) == {"ok"}
    assert s.configs_with_status(["oom"]) == {Config("bert-base-uncased", "cpu-test", 64, 128, "fp32", threads=2).key}
    row = ok[ok.precision == "fp32"].iloc[0]
    assert row.latency_median_ms == pytest.approx(9.9)
    assert row.throughput_items_s == pytest.approx(4 / 0.0099)


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    s = _store(tmp_path)
    good = Measurement.from_samples(Config("gpt2", "cpu-test"), [1.0, 2.0])
    bad = Measurement.from_samples(Config("gpt2", "cpu-test", 2), [1.0, 2.0])
    bad.latency = None  # invalid: an ok run without stats
    with pytest.raises(AssertionError):
        s.save_measurements([good, bad])
    assert s.count("benchmark_runs") == 0 and s.count("raw_samples") == 0


@pytest.mark.parametrize("ext", ["csv", "parquet", "json", "jsonl", "ndjson"])
def test_export_import_round_trips_exactly(tmp_path: Path, ext: str) -> None:
    s = _filled(tmp_path)
    f = tmp_path / f"runs.{ext}"
    assert export_measurements(s, f) == 3
    s2 = _store(tmp_path, "fresh.duckdb")
    assert import_measurements(s2, f) == 3
    a = s.measurements(status=None, with_samples=True)
    b = s2.measurements(status=None, with_samples=True)
    pd.testing.assert_frame_equal(a.drop(columns=["versions"]), b.drop(columns=["versions"]))
    assert [pd.io.json.ujson_loads(x) for x in a.versions] == [pd.io.json.ujson_loads(x) for x in b.versions]


@pytest.mark.parametrize("ext", ["jsonl", "ndjson"])
def test_a_line_delimited_json_export_has_one_run_per_line(tmp_path: Path, ext: str) -> None:
    """Audit: ``db export runs.jsonl`` wrote one JSON array, which line-delimited readers (pandas'
    ``lines=True``, ``jq -c``, warehouse loaders) refuse; ``.json`` stays one array."""
    import json

    s = _filled(tmp_path)
    f = tmp_path / f"runs.{ext}"
    assert export_measurements(s, f) == 3
    lines = f.read_text().splitlines()
    assert len(lines) == 3 and all(isinstance(json.loads(ln), dict) for ln in lines)
    assert len(pd.read_json(f, lines=True)) == 3
    export_measurements(s, tmp_path / "runs.json")
    assert len(json.loads((tmp_path / "runs.json").read_text())) == 3


GOOD = {"model": "gpt2", "hardware": "cpu-x", "batch_size": 1, "precision": "fp32", "latency_median_ms": 3.0,
        "throughput_items_s": 333.0}


@pytest.mark.parametrize("column,value,fragment", [
    ("latency_median_ms", float("nan"), "latency_median_ms"),
    ("latency_median_ms", float("inf"), "latency_median_ms"),
    ("latency_median_ms", 0.0, "latency_median_ms"),
    ("throughput_items_s", -5.0, "throughput_items_s"),
    ("batch_size", 0, "batch_size"),
    ("precision", "fp64", "precision"),
    ("memory_peak_mib", -1.0, "memory_peak_mib"),
    ("iterations", -5, "iterations"),
    ("started_at", "yesterday", "started_at"),  # a value no column type takes: named by row too
])
def test_import_rejects_bad_values_and_writes_nothing(tmp_path: Path, column: str, value: object, fragment: str) -> None:
    rows = [dict(GOOD), dict(GOOD), dict(GOOD)]
    rows[2][column] = value
    f = tmp_path / "bad.parquet"
    pd.DataFrame(rows).to_parquet(f)
    s = _filled(tmp_path)
    before = s.count("benchmark_runs")
    with pytest.raises(ImportRejectedError) as e:
        import_measurements(s, f)
    msg = str(e.value)
    assert "bad.parquet" in msg and "row 3" in msg and f"'{fragment}'" in msg and "nothing was imported" in msg
    assert "\n" not in msg
    assert s.count("benchmark_runs") == before


def test_a_file_without_run_ids_imported_twice_is_refused_not_stored_twice(tmp_path: Path) -> None:
    """Rows without a run_id get one derived from their values: the same hand-written CSV imported
    again is refused (or skipped), while identical rows within one file are still separate runs."""
    f = tmp_path / "noids.csv"
    pd.DataFrame([GOOD, GOOD, {**GOOD, "batch_size": 2}]).to_csv(f, index=False)
    s = _store(tmp_path)
    assert import_measurements(s, f) == 3
    with pytest.raises(ImportRejectedError, match=r"row 1 is already in the database .*same values"):
        import_measurements(s, f)
    assert import_measurements(s, f, skip_existing=True) == 0 and s.count("benchmark_runs") == 3
    g = tmp_path / "more.csv"
    pd.DataFrame([GOOD, GOOD, GOOD, {**GOOD, "batch_size": 4}]).to_csv(g, index=False)
    assert import_measurements(s, g, skip_existing=True) == 2  # a third identical run and the b4 one
    assert s.count("benchmark_runs") == 5
    # audit: the same rows with a column the import ignores were stored a second time
    h = tmp_path / "with-notes.csv"
    pd.DataFrame([{**GOOD, "batch_size": 2, "foo": "x"}]).to_csv(h, index=False)
    with pytest.warns(UserWarning, match="ignored 1 column"):
        with pytest.raises(ImportRejectedError, match="already in the database"):
            import_measurements(s, h)


def test_import_refuses_a_misspelt_column_and_warns_about_foreign_ones(tmp_path: Path) -> None:
    s = _store(tmp_path)
    f = tmp_path / "typo.csv"
    pd.DataFrame([{**GOOD, "latency_p90": 4.0}]).to_csv(f, index=False)
    with pytest.raises(ImportRejectedError, match=r"unknown column 'latency_p90' \(did you mean 'latency_p90_ms'\?\)"):
        import_measurements(s, f)
    g = tmp_path / "notes.csv"
    pd.DataFrame([{**GOOD, "notes": "laptop on battery"}]).to_csv(g, index=False)
    with pytest.warns(UserWarning, match="ignored 1 column perfcast does not store: notes"):
        assert import_measurements(s, g) == 1
    out = tmp_path / "round.csv"
    export_measurements(s, out)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an export's own columns are all known
        warnings.filterwarnings("ignore", message=".*no catalog here defines")  # GOOD's device, cpu-x
        assert import_measurements(_store(tmp_path, "t.duckdb"), out) == 1


def test_import_rejects_missing_column(tmp_path: Path) -> None:
    f = tmp_path / "nolat.csv"
    pd.DataFrame([{k: v for k, v in GOOD.items() if k != "latency_median_ms"}]).to_csv(f, index=False)
    s = _store(tmp_path)
    with pytest.raises(ImportRejectedError, match="missing required column 'latency_median_ms'"):
        import_measurements(s, f)
    assert s.count("benchmark_runs") == 0


def test_cli_import_rejection_exit_code_and_one_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    pd.DataFrame([dict(GOOD), {**GOOD, "batch_size": -1}]).to_csv(f, index=False)
    store = _filled(tmp_path)  # something already stored must survive the rejected import
    db = store.path
    r = subprocess.run([sys.executable, "-m", "engine.cli.main", "db", "import", str(f), "--db", str(db)],
                       capture_output=True, text=True)
    assert r.returncode == 3
    assert r.stderr.strip().count("\n") == 0 and "row 2" in r.stderr and "batch_size" in r.stderr
    assert Store(db, seed=False).count("benchmark_runs") == 3


@contextmanager
def _held(path: Path, *, read_only: bool = False, release_after: Optional[float] = None) -> Iterator[None]:
    """Another process holding the store open (read-only: a notebook; read-write: a DuckDB shell),
    letting go after ``release_after`` seconds, else at the end of the block."""
    code = (f"import duckdb, time\ncon = duckdb.connect({str(path)!r}, read_only={read_only})\n"
            "print('locked', flush=True)\n"
            + (f"time.sleep({release_after})\ncon.close()\n" if release_after else "") + "time.sleep(30)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait()


def test_second_process_gets_one_line_when_locked(tmp_path: Path, monkeypatch) -> None:
    from engine.store import api_store

    s = _filled(tmp_path)
    with _held(s.path):
        blocked = Store(s.path, seed=False, lock_wait_s=0.3)
        with pytest.raises(DatabaseLockedError, match="is locked by process"):
            blocked.save_measurement(Measurement.from_samples(Config("gpt2", "cpu-x"), [1.0]))
        # the way out is named in the caller's words: the Python API has db=, not --db (session 33)
        monkeypatch.setenv("PERFCAST_LOCK_WAIT_S", "0.3")
        with pytest.raises(DatabaseLockedError, match="wait for it to finish or pass another file as db=$") as e:
            api_store(s.path).measurements()
        assert "--db" not in str(e.value)
        r = subprocess.run([sys.executable, "-m", "engine.cli.main", "db", "info", "--db", str(s.path)],
                           capture_output=True, text=True, env={**__import__("os").environ, "PERFCAST_LOCK_WAIT_S": "0.3"})
        assert r.returncode == 3, r.stderr
        assert r.stderr.strip().startswith("error:") and "Traceback" not in r.stderr
        assert r.stderr.strip().endswith("wait for it to finish or pick another --db"), r.stderr


def test_a_patient_write_waits_out_a_reader_instead_of_losing_the_run(tmp_path: Path) -> None:
    """A notebook's read-only connection held past lock_wait_s: the loop's write waits, says why
    once, and lands when the reader lets go (it used to crash the loop and drop the run)."""
    s = _filled(tmp_path)
    before = s.count("benchmark_runs")
    with _held(s.path, read_only=True, release_after=2.0):
        waiting = Store(s.path, seed=False, lock_wait_s=0.3)
        told: list[str] = []
        m = Measurement.from_samples(Config("gpt2", "cpu-x"), [1.0])
        rid = waiting.patiently(lambda: waiting.save_measurement(m), told.append)
        assert len(told) == 1 and "is locked by" in told[0] and "notebook" in told[0]
        assert waiting.count("benchmark_runs") == before + 1 and len(waiting.find_runs([rid])) == 1


def test_under_patience_a_read_waits_out_a_writer_too(tmp_path: Path) -> None:
    """Review: a loop's reads (the next step's training data) still gave up after lock_wait_s
    while a DuckDB shell held the file read-write; under Store.patience every open waits."""
    s = _filled(tmp_path)
    with _held(s.path, release_after=2.0):
        waiting = Store(s.path, seed=False, lock_wait_s=0.3)
        with pytest.raises(DatabaseLockedError):
            waiting.measurements()  # outside patience: the one-line error, as for predict
        told: list[str] = []
        with waiting.patience(told.append):
            n = len(waiting.measurements())
        assert n == 2 and len(told) == 1 and "is locked by" in told[0]  # the two successful runs


def test_a_v1_store_with_runs_gains_the_busy_machine_column(tmp_path: Path) -> None:
    """v2 adds benchmark_runs.foreign_cpu_cores: old runs keep their data (NULL there), new ones
    store the figure, and export/import carries it."""
    from engine.store.schema import MIGRATIONS

    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    for stmt in MIGRATIONS[0]:
        con.execute(stmt)
    con.execute("INSERT INTO schema_version VALUES (1, now()::TIMESTAMP)")
    # a run written by the v1 code (20 columns, no load figure)
    con.execute("INSERT INTO benchmark_runs VALUES ('r1', 'k', 'gpt2', 'cpu-test', 1, 16, 'fp32', 'inference', "
                "'torch', 1, now()::TIMESTAMP, 'h', 'torch-cpu', 'd', '{}', 'failed', 'x', 1.0, 'measured', NULL)")
    con.close()
    old = Store(path, seed=False)
    old.ensure_schema()
    assert old.schema_version() == SCHEMA_VERSION
    c = Config("gpt2", "cpu-test", 2, 16, "fp32")
    old.save_measurement(Measurement.from_samples(c, [3.0, 3.5], foreign_cpu_cores=1.25))
    df = old.measurements(status=None).set_index("run_id")
    assert pd.isna(df.loc["r1", "foreign_cpu_cores"])
    assert df["foreign_cpu_cores"].dropna().tolist() == [1.25]
    out = tmp_path / "runs.parquet"
    export_measurements(old, out)
    fresh = _store(tmp_path, "fresh.duckdb")
    import_measurements(fresh, out)
    assert sorted(fresh.measurements(status=None)["foreign_cpu_cores"].dropna().tolist()) == [1.25]
    # `perfcast db info` counts the runs a quieter rerun supersedes in fits
    from engine.cli.db_cmd import _info

    assert _info(old)["busy_runs_superseded"] == 0
    old.save_measurement(Measurement.from_samples(c, [2.0, 2.1], foreign_cpu_cores=0.1))
    assert _info(old)["busy_runs_superseded"] == 1


def test_import_skip_existing_merges_an_overlapping_export(tmp_path: Path) -> None:
    s = _filled(tmp_path)
    f = tmp_path / "runs.parquet"
    export_measurements(s, f)
    with pytest.raises(ImportRejectedError, match="--skip-existing"):
        import_measurements(s, f)
    assert import_measurements(s, f, skip_existing=True) == 0
    extra = tmp_path / "extra.parquet"
    pd.DataFrame([dict(GOOD, run_id="new-run-1")]).to_parquet(extra)
    both = tmp_path / "both.parquet"
    pd.concat([pd.read_parquet(f), pd.read_parquet(extra)], ignore_index=True).to_parquet(both)
    before = s.measurements(status=None)
    assert import_measurements(s, both, skip_existing=True) == 1
    after = s.measurements(status=None)
    assert len(after) == len(before) + 1 and "new-run-1" in set(after.run_id)
    kept = after[after.run_id.isin(before.run_id)].sort_values("run_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before.sort_values("run_id").reset_index(drop=True))


def test_delete_lists_first_then_removes_a_run_with_its_results_and_samples(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from engine.cli.main import cli
    from engine.errors import InvalidValueError

    s = _filled(tmp_path)
    assert len(s.find_runs(model="bert-base-uncased", status="ok")) == 2
    rid = s.measurements().query("runtime == 'onnxruntime'")["run_id"].iloc[0]
    args = ["db", "delete", rid[:8], "--db", str(s.path), "--json"]
    preview = CliRunner().invoke(cli, args)
    assert preview.exit_code == 0, preview.output
    assert json.loads(preview.output) == {"selected": 1, "deleted": 0, "run_ids": [rid]}
    assert s.count("benchmark_runs") == 3  # listing deletes nothing
    done = CliRunner().invoke(cli, [*args, "--yes"])
    assert json.loads(done.output)["deleted"] == 1
    assert (s.count("benchmark_runs"), s.count("benchmark_results"), s.count("raw_samples")) == (2, 1, 5)
    assert rid not in set(s.measurements(status=None)["run_id"])
    # a filter selects too; an unknown or too short id names itself and deletes nothing
    assert s.find_runs(status="oom")["status"].tolist() == ["oom"]
    for bad, fragment in (("zzzzzzzz", "id of a stored run"), ("ab", "at least 6 characters")):
        with pytest.raises(InvalidValueError, match=fragment):
            s.find_runs([bad])
    assert s.count("benchmark_runs") == 2
    nothing = CliRunner().invoke(cli, ["db", "delete", "--db", str(s.path)])
    assert nothing.exit_code != 0 and s.count("benchmark_runs") == 2
    # a model no stored run has is named with the closest stored one (it said "no run matches", exit 0)
    typo = CliRunner().invoke(cli, ["db", "delete", "--model", "bert-base-uncase", "--yes", "--db", str(s.path)])
    assert typo.exit_code == 2 and "did you mean 'bert-base-uncased'" in typo.stderr, typo.output
    assert s.count("benchmark_runs") == 2


def test_rows_imported_before_ids_left_out_ignored_columns_are_still_recognised(tmp_path: Path, monkeypatch) -> None:
    """The review: derived ids used to hash the ignored columns too, so a file imported before that
    change and imported again would be stored twice. Its old id is still matched."""
    import warnings

    import engine.store.transfer as transfer

    f = tmp_path / "notes.csv"
    pd.DataFrame([GOOD, {**GOOD, "batch_size": 2}]).assign(notes="on battery").to_csv(f, index=False)
    s = _store(tmp_path)
    with monkeypatch.context() as m:  # the old rule: every column of the file in the hash
        m.setattr(transfer, "KNOWN_COLUMNS", transfer.KNOWN_COLUMNS | {"notes"})
        assert import_measurements(s, f) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ImportRejectedError, match="already in the database"):
            import_measurements(s, f)
        assert import_measurements(s, f, skip_existing=True) == 0
    assert s.count("benchmark_runs") == 2


def test_db_info_counts_the_runs_built_the_old_way(tmp_path: Path) -> None:
    """Every shipped torch bf16/int8 run (2026-11-22) built its model in fp32 first; a run stored
    with the build protocol in its versions did not."""
    from engine.cli.db_cmd import _info
    from hardware.torch_common import build_versions

    s = Store(tmp_path / "s.duckdb")  # seeded with the shipped runs
    before = _info(s)["runs_built_the_old_way"]
    shipped = s.measurements()
    assert before == int(((shipped["runtime"] == "torch") & (shipped["precision"] != "fp32")).sum()) > 100
    m = Measurement.from_samples(Config("gpt2", "cpu-test", 2, 16, "bf16"), [3.0, 3.5])
    m.versions = {"torch": "2.13.0", **build_versions()}
    s.save_measurement(m)
    assert _info(s)["runs_built_the_old_way"] == before
    s.save_measurement(Measurement.from_samples(Config("gpt2", "cpu-test", 4, 16, "bf16"), [3.0, 3.5]))
    assert _info(s)["runs_built_the_old_way"] == before + 1


def test_the_data_hash_sees_every_figure_a_fit_reads_not_only_the_median(tmp_path: Path) -> None:
    """Two stores with the same runs, one of them imported without its memory column, shared a
    cached fit (the hash held run ids and medians only), so the one without memory answered memory."""
    s = _filled(tmp_path)
    f = tmp_path / "runs.csv"
    export_measurements(s, f)
    same = _store(tmp_path, "same.duckdb")
    import_measurements(same, f)
    assert same.data_hash() == s.data_hash()  # the same runs: the cached fit is theirs
    df = pd.read_csv(f).drop(columns=["memory_peak_mib"])
    df.to_csv(f, index=False)
    no_memory = _store(tmp_path, "no-memory.duckdb")
    import_measurements(no_memory, f)
    assert no_memory.measurements()["run_id"].tolist() == s.measurements()["run_id"].tolist()
    assert no_memory.data_hash() != s.data_hash()
