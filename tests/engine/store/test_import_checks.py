"""`perfcast db import` refuses a file with a bad value in one line naming its row and column, and
imports nothing from it."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from _cli_errors import invoke
from engine.cli.main import cli


@pytest.mark.parametrize("bad, needle", [("started_at", "timestamp"), ("samples_ms", "row 2, column 'samples_ms'"),
                                         ("run_id", "appears more than once")])
def test_a_file_with_a_bad_value_is_rejected_in_one_line_and_nothing_is_imported(tmp_path: Path, bad: str,
                                                                                  needle: str) -> None:
    import pandas as pd

    from engine.store import Store
    from engine.store.seed import shipped_dataset_path

    df = pd.read_parquet(shipped_dataset_path()).head(3).copy()
    df["run_id"] = ["a", "b", "c"]
    df["samples_ms"] = ["[1.0, 2.0]"] * 3
    df["started_at"] = "2026-01-01 00:00:00"
    df.loc[df.index[1], bad] = {"started_at": "yesterday", "samples_ms": "[1, 2, x]", "run_id": "a"}[bad]
    path, db = tmp_path / "runs.csv", tmp_path / "s.duckdb"
    df.to_csv(path, index=False)
    before = len(Store(db).measurements(status=None))
    r = invoke("db", "import", str(path), "--db", str(db))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 3 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output
    assert needle in lines[0] and "nothing was imported" in lines[0]
    assert len(Store(db).measurements(status=None)) == before


def test_db_import_counts_one_run_in_the_singular(tmp_path: Path) -> None:
    f = tmp_path / "one.csv"
    f.write_text("model,hardware,batch_size,precision,latency_median_ms\ngpt2,cpu-x,1,fp32,3.0\n")
    r = CliRunner().invoke(cli, ["db", "import", str(f), "--db", str(tmp_path / "s.duckdb")])
    assert r.exit_code == 0 and "imported 1 run from" in r.output


def test_import_names_the_row_of_a_bad_sample_and_a_fractional_warmup(tmp_path: Path) -> None:
    import pytest

    from engine.errors import ImportRejectedError
    from engine.store import Store
    from engine.store.transfer import import_measurements

    head = "model,hardware,batch_size,precision,latency_median_ms"
    store = Store(tmp_path / "s.duckdb", seed=False)
    f = tmp_path / "samples.csv"
    f.write_text(f"{head},samples_ms\ngpt2,cpu-x,1,fp32,3.0,\"[1,2]\"\ngpt2,cpu-x,2,fp32,3.0,\"[1,x]\"\n")
    with pytest.raises(ImportRejectedError, match=r"row 2, column 'samples_ms'"):
        import_measurements(store, f)
    g = tmp_path / "warmup.csv"
    g.write_text(f"{head},warmup,iterations\ngpt2,cpu-x,1,fp32,3.0,2.5,3\n")
    with pytest.raises(ImportRejectedError, match=r"row 1, column 'warmup'"):
        import_measurements(store, g)
    assert store.count("benchmark_runs") == 0


def test_skip_existing_says_how_many_runs_it_left_out(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from engine.cli.main import cli

    head = "model,hardware,batch_size,precision,latency_median_ms\n"
    (tmp_path / "one.csv").write_text(head + "gpt2,cpu-x,1,fp32,3.0\n")
    (tmp_path / "two.csv").write_text(head + "gpt2,cpu-x,1,fp32,3.0\ngpt2,cpu-x,2,fp32,5.0\n")
    db = str(tmp_path / "s.duckdb")
    assert CliRunner().invoke(cli, ["db", "import", str(tmp_path / "one.csv"), "--db", db]).exit_code == 0
    r = CliRunner().invoke(cli, ["db", "import", str(tmp_path / "two.csv"), "--db", db, "--skip-existing", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["imported"] == 1 and json.loads(r.stdout)["skipped"] == 1
    r = CliRunner().invoke(cli, ["db", "import", str(tmp_path / "two.csv"), "--db", db, "--skip-existing"])
    assert "imported 0 runs" in r.output and "(2 already stored, skipped)" in r.output


@pytest.mark.parametrize("row, col", [("gpt2,cpu,1,fp32,3.0,128,1", "hardware"), ("gpt2,CUDA ,1,fp32,3.0,128,1", "hardware"),
                                      ("gpt2,cpu-x,1,fp32,3.0,128.7,1", "seq_len"),
                                      ("gpt2,cpu-x,1,fp32,3.0,128,1.5", "threads")])
def test_a_platform_as_the_device_and_fractional_lengths_are_refused(tmp_path: Path, row: str, col: str) -> None:
    """Audit S: ``hardware=cpu`` was stored as a device that meant whichever CPU ran the fit (and
    ``db delete --hardware cpu`` could not remove it); seq_len 128.7 became s129, threads 1.5 t2."""
    from engine.errors import ImportRejectedError
    from engine.store import Store
    from engine.store.transfer import import_measurements

    store = Store(tmp_path / "s.duckdb", seed=False)
    f = tmp_path / "runs.csv"
    f.write_text(f"model,hardware,batch_size,precision,latency_median_ms,seq_len,threads\n{row}\n")
    with pytest.raises(ImportRejectedError, match=rf"row 1, column '{col}'"):
        import_measurements(store, f)
    assert store.count("benchmark_runs") == 0


def test_an_empty_file_is_named_as_such(tmp_path: Path) -> None:
    from engine.errors import ImportRejectedError
    from engine.store import Store
    from engine.store.transfer import import_measurements

    f = tmp_path / "empty.csv"
    f.write_text("\n")
    with pytest.raises(ImportRejectedError, match="the file is empty; nothing was imported"):
        import_measurements(Store(tmp_path / "s.duckdb", seed=False), f)


@pytest.mark.parametrize("column, value", [("model", "x|y"), ("hardware", "cpu-[red]z"), ("model", "gpt2,bert")])
def test_a_name_no_key_list_or_table_can_hold_is_refused(tmp_path: Path, column: str, value: str) -> None:
    """Audit: a model "x|y" was stored under the key "x|y|cpu-zz|b1|...", which no command parses
    back (``|`` separates a key's fields), and a hardware id "cpu-[red]z" printed as "cpu-z" in
    ``db delete``'s listing (Rich markup). Both are refused in one line naming the row and column."""
    row = {"model": "gpt2", "hardware": "cpu-zz", "batch_size": 1, "precision": "fp32", "latency_median_ms": 3.0}
    row[column] = value
    f = tmp_path / "names.csv"
    f.write_text(",".join(row) + "\n" + ",".join(f'"{v}"' for v in row.values()) + "\n")
    db = tmp_path / "s.duckdb"
    r = invoke("db", "import", str(f), "--db", str(db))
    assert r.exit_code == 3, r.output
    assert f"row 1, column '{column}'" in r.stderr and repr(value) in r.stderr and "nothing was imported" in r.stderr


def test_an_import_names_models_and_devices_no_catalog_defines_with_the_closest_names(tmp_path: Path,
                                                                                     recwarn) -> None:  # type: ignore[no-untyped-def]
    """Audit 2026-12-08: a typo ('bert-base', 'a100') was stored with "imported 3 runs" and no word;
    only the next fit said it left them out. They stay stored (a teammate's CPU is no error), and
    the import names them with the names meant."""
    from engine.store import Store

    f, db = tmp_path / "team.csv", tmp_path / "s.duckdb"
    f.write_text("model,hardware,batch_size,precision,latency_median_ms\nbert-base,t4,1,fp32,3.0\n"
                 "gpt2,a100,1,fp32,3.0\ngpt2,t4,2,fp32,5.0\n")
    r = CliRunner().invoke(cli, ["db", "import", str(f), "--db", str(db)])
    assert r.exit_code == 0 and "imported 3 runs" in r.stdout
    said = [str(w.message) for w in recwarn if "no catalog here defines" in str(w.message)]
    assert len(said) == 2, said
    assert "1 run stored with a model no catalog here defines (bert-base: did you mean 'bert-base-uncased'" \
        in said[0] and "PERFCAST_MODELS" in said[0], said
    assert "1 run stored with a hardware id no catalog here defines (a100: did you mean 'a100-40gb'" in said[1] \
        and "PERFCAST_HARDWARE" in said[1], said
    assert Store(db).count("benchmark_runs") == 491 + 3
    recwarn.clear()
    g = tmp_path / "ok.csv"
    g.write_text("model,hardware,batch_size,precision,latency_median_ms\ngpt2,t4,4,fp32,7.0\n")
    assert CliRunner().invoke(cli, ["db", "import", str(g), "--db", str(db)]).exit_code == 0
    assert not [w for w in recwarn if "no catalog here defines" in str(w.message)]


def test_catalog_names_are_stored_as_the_catalog_spells_them(tmp_path: Path) -> None:
    """Audit 2026-12-08: 'T4' runs were stored as typed; the fits resolve the device case-insensitively
    but group runs by the stored id, so T4 was a second device beside t4 (its own fold in `evaluate
    --holdout hardware`); 'GPT2' was left out of every fit as an unknown model."""
    from engine.store import Store

    f, db = tmp_path / "case.csv", tmp_path / "s.duckdb"
    f.write_text("model,hardware,batch_size,precision,latency_median_ms\nGPT2,T4,1,fp32,40\n"
                 "gpt2, t4 ,2,fp32,50\nBert-Base-Uncased,A100-80GB,1,fp32,3\ngpt2,Tesla,1,fp32,9\n")
    Store(db, seed=False)
    r = CliRunner().invoke(cli, ["db", "import", str(f), "--db", str(db)])
    assert r.exit_code == 0, r.output
    got = Store(db).find_runs(source="imported")
    assert sorted(zip(got["model"], got["hardware"])) == [("bert-base-uncased", "a100-80gb"), ("gpt2", "Tesla"),
                                                          ("gpt2", "t4"), ("gpt2", "t4")]
    assert CliRunner().invoke(cli, ["db", "import", str(f), "--db", str(db)]).exit_code == 3  # the same rows again
