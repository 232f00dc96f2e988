"""Session 21's audit of the active-learning commands: each finding that was a traceback, a silent
fallback or a check made only after the expensive part, now one line before any work."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from _cli_errors import invoke, one_error_line
from experiments.config import ExperimentConfigError, check_predictor_options, load_config, parse_config


# -- a mistyped config path is an error, not the shipped config of the same name ---------------------
def test_a_missing_config_path_is_named_not_replaced_by_the_shipped_one(tmp_path: Path) -> None:
    from engine.errors import InvalidValueError

    for path in (tmp_path / "nowhere" / "cpu-quick.yaml", tmp_path / "cpu-full.yml"):
        with pytest.raises(InvalidValueError, match="no such file") as ei:
            load_config(str(path))
        assert str(path) in str(ei.value) and "cpu-quick" in str(ei.value)
    # the README's repo-relative path and bare names still find the shipped files anywhere; a file
    # name in this folder is a path (session 22: "./cpu-quick.yaml" ran the shipped loop)
    assert load_config("configs/experiments/cpu-full.yaml").name == "cpu-full"
    assert load_config("cpu-full").name == "cpu-full"
    for name in ("cpu-full.yaml", "./cpu-full.yaml"):
        with pytest.raises(InvalidValueError, match="no such file"):
            load_config(name)
    one_error_line(invoke("suggest", "--space", str(tmp_path / "typo" / "cpu-quick.yaml")), "no such file")


# -- config values that gave tracebacks ------------------------------------------------------------
BASE: dict[str, Any] = {"name": "x", "search_space": {"models": ["gpt2"]}}


@pytest.mark.parametrize("data, fragments", [
    ({**BASE, "seed": -5}, ["seed", "-5", "greater than or equal to 0"]),
    ({**BASE, "replay": {"seeds": []}}, ["replay.seeds", "at least 1"]),
    ({**BASE, "replay": {"seeds": [0, -1]}}, ["replay.seeds", ">= 0"]),
    ({**BASE, "name": " "}, ["name", "blank"]),
    ({**BASE, "search_space": {"models": []}}, ["search_space.models", "empty list"]),
    ({**BASE, "search_space": {"models": ["gpt2"], "batch_sizes": [True]}}, ["search_space.batch_sizes", "integer"]),
    ({**BASE, "benchmark": {"min_time_s": 5, "max_time_s": 1}}, ["benchmark", "min_time_s 5 is above max_time_s 1"]),
    ({"name": "x", "search_spce": {"models": ["gpt2"]}}, ["unknown key 'search_spce'", "did you mean 'search_space'"]),
])
def test_config_values_are_one_line_errors(data: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ExperimentConfigError) as ei:
        parse_config(data, "x.yaml")
    msg = str(ei.value)
    assert "\n" not in msg and "Value error" not in msg
    for f in fragments:
        assert f in msg, (f, msg)


def test_predictor_options_are_checked_against_the_predictor() -> None:
    check_predictor_options(parse_config({**BASE, "predictor": {"options": {"maxiter": 3}}}))
    with pytest.raises(ExperimentConfigError, match="unknown predictor.options key 'maxiterr' for predictor gp; "
                                                    "did you mean 'maxiter'"):
        check_predictor_options(parse_config({**BASE, "predictor": {"options": {"maxiterr": 3}}}))


def test_a_misspelt_predictor_option_stops_a_replay_before_any_benchmark(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(Path("configs/experiments/cpu-quick.yaml").read_text().replace("{maxiter: 30}", "{maxiterr: 30}"))
    one_error_line(invoke("replay", str(cfg), "--seeds", "0", "--strategies", "random"), "maxiterr", "maxiter")


# -- checks made before the work, not after it ----------------------------------------------------
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


def test_experiments_on_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "typo" / "x.duckdb"
    r = invoke("experiments", "--db", str(db), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"experiments": [], "db": str(db), "exists": False}
    assert not db.parent.exists()
    r = invoke("experiments", "--db", str(db))
    assert "no store at" in r.output and not db.parent.exists()


# -- what a replay reports and records --------------------------------------------------------------
def test_no_saving_is_read_when_random_reaches_its_target_within_the_shared_start() -> None:
    from experiments.loop import LoopResult, StepRecord
    from experiments.report import savings_vs_random

    def replay(apes: dict[int, float]) -> LoopResult:
        steps = [StepRecord(step=i, n_benchmarks=n, benchmark_seconds=float(n), n_train=n, pool_size=40,
                            heldout_median_ape=a) for i, (n, a) in enumerate(sorted(apes.items()))]
        return LoopResult("x", "x", "replay", "s", steps, 7, 0, 7.0, "budget", 0)

    # 3 shared random runs; random is already at its 4-benchmark error after them
    rnd = [replay({3: 0.10, 4: 0.12, 5: 0.11, 6: 0.10, 7: 0.09})]
    mv = [replay({3: 0.10, 4: 0.15, 5: 0.14, 6: 0.12, 7: 0.11})]
    row = savings_vs_random({"random": rnd, "max-variance": mv}, start_n=3)["max-variance"]
    assert row["ratio"] is None and "within the 3 random runs" in row["note"]
    # read without the shared start, the same curves gave "as many benchmarks": a tie at n = 3, inside the start
    assert savings_vs_random({"random": rnd, "max-variance": mv})["max-variance"]["ratio"] == pytest.approx(1.0)


@pytest.mark.slow
def test_replay_summaries_of_different_selections_are_kept_apart(tmp_path: Path) -> None:
    from engine.store import Store
    from experiments.history import summary

    db = tmp_path / "r.duckdb"
    for strategies in ("random", "random,max-variance"):
        r = invoke("replay", "cpu-quick", "--seeds", "0", "--strategies", strategies, "--db", str(db), "--json")
        assert r.exit_code == 0, r.output
    rows = [summary(e) for e in Store(db, seed=False).experiments()]
    assert len(rows) == 2 and {r["mode"] for r in rows} == {"replay"}
    assert {r["acquisition"] for r in rows} == {"random", "random,max-variance"}


# -- the emitted script runs without an activated venv ------------------------------------------------
def test_the_emitted_script_calls_the_perfcast_that_wrote_it() -> None:
    from engine.active_learning import commands_script, perfcast_executable

    item = {"model_name": "gpt2", "hardware": "cpu", "batch_size": 1, "seq_len": 32, "precision": "fp32",
            "mode": "inference", "runtime": "torch", "threads": 1}
    script = commands_script([item])
    exe = perfcast_executable()
    # the entry point beside this Python, absolute: a script written from an activated venv must not
    # depend on the PATH of the shell that runs it (session 22)
    assert Path(exe).is_absolute() and Path(exe).is_file() and Path(exe).parent == Path(sys.executable).parent.absolute()
    line = next(ln for ln in script.splitlines() if "benchmark --model" in ln)
    assert line.startswith('"$PERFCAST" benchmark') and f'PERFCAST="${{PERFCAST:-{exe}}}"' in script
    assert shlex.split(line)[0] == "$PERFCAST"  # expanded by bash, not quoted away


# -- session 21's second audit: import and fitting on a store with foreign rows -----------------------
def test_runs_on_hardware_the_catalog_lacks_are_left_out_of_a_fit_with_a_warning() -> None:
    import pandas as pd

    from engine.store.seed import shipped_dataset_path
    from engine.models.targets import targets_from_measurements

    df = pd.read_parquet(shipped_dataset_path()).head(12).copy()
    df.loc[df.index[:3], "hardware"] = "cpu-intel-xeon-platinum-8c"  # a teammate's CPU, imported
    with pytest.warns(RuntimeWarning, match="left 3 stored runs out of the fit: their hardware is not in the "
                                            "catalog \\(cpu-intel-xeon-platinum-8c\\); set PERFCAST_HARDWARE"):
        tg = targets_from_measurements(df, catalog_models_only=True)
    assert len(tg.frame) == 9 and "cpu-intel-xeon-platinum-8c" not in set(tg.frame["hardware"])


@pytest.mark.parametrize("bad, needle", [("started_at", "timestamp"), ("samples_ms", "row 2, column 'samples_ms'"),
                                         ("run_id", "appears more than once")])
def test_a_file_with_a_bad_value_is_rejected_in_one_line_and_nothing_is_imported(tmp_path: Path, bad: str,
                                                                                  needle: str) -> None:
    import pandas as pd

    from engine.store.seed import shipped_dataset_path
    from engine.store import Store

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
