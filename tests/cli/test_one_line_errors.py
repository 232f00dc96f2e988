"""One clear line on stderr, exit 2, and before any work: bad --db files, unwritable outputs, seeds,
SLOs, plot paths, option values and config values the CLI is given."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from _cli_errors import invoke, one_error_line
from engine.cli.main import cli


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


def test_replay_negative_seed_is_one_line() -> None:
    one_error_line(invoke("replay", "cpu-quick", "--seeds", "0,-1", "--strategies", "random"),
                   "seed -1", "non-negative")


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


@pytest.mark.parametrize("slo", ["-5", "0", "nan"])
def test_predict_non_positive_slo_is_one_line(monkeypatch: pytest.MonkeyPatch, slo: str) -> None:
    def no_fit(*a: Any, **k: Any) -> None:
        raise AssertionError("fitted before checking --latency-slo-ms")

    monkeypatch.setattr("engine.cli.predict_cmd._predictor", no_fit)
    one_error_line(invoke("predict", "--model", "gpt2", "--hardware", "cpu", "--latency-slo-ms", slo),
                   "--latency-slo-ms", "positive")


def test_a_misspelt_predictor_option_stops_a_replay_before_any_benchmark(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(Path("configs/experiments/cpu-quick.yaml").read_text().replace("{maxiter: 30}", "{maxiterr: 30}"))
    one_error_line(invoke("replay", str(cfg), "--seeds", "0", "--strategies", "random"), "maxiterr", "maxiter")


@pytest.mark.parametrize("plot, needle", [("curve.txt", ".png"), ("missing/curve.png", "does not exist")])
def test_a_bad_plot_path_fails_before_the_replay(tmp_path: Path, plot: str, needle: str) -> None:
    r = invoke("replay", "cpu-quick", "--seeds", "0", "--strategies", "random", "--plot", str(tmp_path / plot))
    one_error_line(r, "--plot", needle)
    assert "seed 0" not in r.output  # no replay ran


def test_a_bad_plot_path_fails_before_a_real_loop(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    one_error_line(invoke("run", "cpu-quick", "--plot", str(tmp_path / "c.txt"), "--db", str(db)), "--plot", ".png")
    assert not db.exists()  # nothing opened, nothing benchmarked


def test_replay_checks_its_db_before_replaying(tmp_path: Path) -> None:
    bad = tmp_path / "runs.csv"
    bad.write_text("model,hardware\ngpt2,cpu\n")
    r = invoke("replay", "cpu-quick", "--seeds", "0", "--strategies", "random", "--db", str(bad))
    one_error_line(r, "is not a DuckDB database")
    assert "seed 0" not in r.output


def test_initial_runs_above_the_pool_say_so(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(Path("configs/experiments/cpu-quick.yaml").read_text().replace("initial_runs: 3",
                                                                                  "initial_runs: 500"))
    one_error_line(invoke("replay", str(cfg), "--seeds", "0", "--strategies", "random"),
                   "replay.initial_runs", "500", "fewer than the 48 configurations")


@pytest.mark.parametrize("seeds", [" ", ","])
def test_replay_blank_seeds_are_an_error(seeds: str) -> None:
    one_error_line(invoke("replay", "cpu-quick", "--seeds", seeds), "--seeds")


@pytest.mark.parametrize("argv, needle", [
    (["benchmark", "--model", "distilbert-base-uncased", "--hardware", "cpu", "--batch-sizes", ""], "batch size"),
    (["benchmark", "--model", "distilbert-base-uncased", "--hardware", "cpu", "--precision", ","], "precision"),
    (["benchmark", "--model", "distilbert-base-uncased", "--hardware", "cpu", "--min-time", "5", "--max-time", "1"],
     "--min-time"),
    (["evaluate", "--predictors", ""], "predictor"),
])
def test_empty_lists_and_crossed_time_caps_are_one_line_errors(argv: list[str], needle: str) -> None:
    one_error_line(invoke(*argv), needle)


def test_optimize_top_must_not_be_negative() -> None:
    r = invoke("optimize", "--model", "bert-base-uncased", "--top", "-1")
    assert r.exit_code == 2 and "--top" in r.output


@pytest.mark.parametrize("argv", [["evaluate", "--seed", "-1", "--predictors", "roofline"],
                                  ["recommend-hardware", "--model", "gpt2", "--seed", "99999999999999999999"],
                                  ["recommend-hardware", "--model", "gpt2", "--available", ""]])
def test_bad_seeds_and_an_empty_available_list_exit_2_before_any_work(argv, tmp_path) -> None:
    from engine.cli.main import cli

    r = CliRunner().invoke(cli, [*argv, "--db", str(tmp_path / "x.duckdb")])
    assert r.exit_code == 2, (r.output, r.exception)
    assert "Traceback" not in r.output and not (tmp_path / "x.duckdb").exists()


def test_db_delete_of_an_unknown_experiment_is_an_error(tmp_path: Path) -> None:
    from engine.store import Store

    db = tmp_path / "d.duckdb"
    assert Store(db, seed=False).experiments() == []  # an existing, empty store
    r = CliRunner().invoke(cli, ["db", "delete", "--experiment", "tiny-run", "--db", str(db)])
    assert r.exit_code == 2 and "unknown experiment in this store 'tiny-run'" in r.output


def test_run_refuses_a_misspelt_replay_dataset_before_its_first_benchmark(tmp_path: Path) -> None:
    """The baselines replay after the loop: a typo in replay.dataset surfaced minutes later as
    "baselines not replayed". It is now refused at once, and nothing is stored."""
    from engine.store import Store
    from experiments.config import resolve_config

    _, text = resolve_config("cpu-quick")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("dataset: cpu-quick-grid", "dataset: nope-grid"))
    db = tmp_path / "s.duckdb"
    r = CliRunner().invoke(cli, ["run", str(bad), "--db", str(db)])
    assert r.exit_code == 2 and "invalid replay.dataset 'nope-grid'" in r.output and "cpu-quick-grid" in r.output
    assert not db.exists() or Store(db, seed=False).experiments() == []
    # without the baselines the dataset is not needed, so it is not checked
    from experiments.replay import check_dataset

    check_dataset("cpu-quick-grid")


def test_a_bad_option_value_is_one_line_naming_the_help_to_read(capsys) -> None:
    """Audit: click's own errors (a value outside a choice or range) were three lines (usage, try,
    error) where perfcast's are one."""
    import pytest

    from engine.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["predict", "--model", "bert-base-uncased", "--hardware", "cpu", "--precision", "fp8"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "\n" not in err
    assert err.startswith("error: Invalid value for '--precision': 'fp8'") and "(perfcast predict --help)" in err


def test_a_store_without_runs_is_a_data_problem_in_one_line(tmp_path: Path) -> None:
    """An empty --db (or one whose runs all failed) has nothing to fit on: exit 3, the README's data
    problem, with how to add runs (it was exit 2, bad input, and said only "invalid training data")."""
    db = tmp_path / "empty.duckdb"
    assert CliRunner().invoke(cli, ["db", "init", "--db", str(db), "--no-seed"]).exit_code == 0
    r = CliRunner().invoke(cli, ["predict", "--model", "gpt2", "--hardware", "cpu", "--db", str(db)])
    assert r.exit_code == 3, r.output
    assert "0 measurements" in r.output and "perfcast db import" in r.output and "Traceback" not in r.output
