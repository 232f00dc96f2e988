"""`perfcast run/replay/suggest` through the CLI: one-line config errors, a replay, a suggestion."""
from __future__ import annotations

import json
import shlex

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from engine.cli.main import cli


def _local_dataset(path) -> None:
    """Roofline-shaped latencies of real catalog models on this machine's CPU id (an export file)."""
    from hardware.detect import local_cpu_id

    hw = local_cpu_id()
    rng = np.random.default_rng(0)
    rows = []
    for model, scale in (("distilbert-base-uncased", 1.0), ("gpt2", 2.1)):
        for b in (1, 2, 4, 8):
            for s in (32, 64, 128):
                for t in (1, 2):
                    med = scale * 0.08 * b * s / t ** 0.8 * float(np.exp(rng.normal(0, 0.05))) + 2.0
                    rows.append({"model": model, "hardware": hw, "batch_size": b, "seq_len": s, "precision": "fp32",
                                 "mode": "inference", "runtime": "torch", "threads": t, "status": "ok",
                                 "started_at": pd.Timestamp("2026-01-01"), "latency_median_ms": med,
                                 "latency_mean_ms": med, "latency_p90_ms": med * 1.05, "latency_std_ms": med * 0.02,
                                 "iterations": 10, "warmup": 2, "throughput_items_s": b / med * 1000,
                                 "memory_peak_mib": 300 + 20 * b, "wall_time_s": 3 + med * 12 / 1000,
                                 "samples_ms": list(med * np.exp(rng.normal(0, 0.02, 10)))})
    pd.DataFrame(rows).to_parquet(path, index=False)


def test_bad_config_is_one_line_naming_the_key(tmp_path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nsearch_space: {models: [gpt2], hardware: [cpu]}\nacquisition: {name: thompson}\n")
    r = CliRunner().invoke(cli, ["run", str(p)])
    assert r.exit_code == 2
    msg = r.stderr.strip()
    assert "acquisition.name" in msg and "eig" in msg and "random" in msg and "\n" not in msg


@pytest.mark.slow
def test_replay_and_suggest_cli(tmp_path) -> None:
    data = tmp_path / "runs.parquet"
    _local_dataset(data)
    cfg = tmp_path / "r.yaml"
    cfg.write_text("name: cli-replay\nsearch_space: {}\nacquisition: {name: eig, q: 2, mc_points: 64}\n"
                   "budget: {runs: 8}\npredictor: {refit_every: 4, options: {maxiter: 10}}\n"
                   "replay: {initial_runs: 3, seeds: [0]}\n")
    plot = tmp_path / "curve.png"
    r = CliRunner().invoke(cli, ["replay", str(cfg), "--dataset", str(data), "--strategies", "eig,random",
                                 "--plot", str(plot), "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [c["strategy"] for c in out["curves"]] == ["eig", "random"]
    assert set(out["savings_vs_random"]) == {"eig"} and out["savings_vs_random"]["eig"]["seeds"] == 1
    gap = out["savings_vs_random"]["eig"]
    # from the first pick after the 3-run shared start (nothing differs before it) to the target at 5
    assert gap["gap_range"] == [4, 5] and gap["gap_se"] is None  # one seed: a gap, no standard error
    assert gap["mean_gap"] is not None and -1 < gap["mean_gap"] < 1
    for runs in out["runs"].values():
        assert runs[0]["n_benchmarks"] == 8
    assert plot.exists() and plot.stat().st_size > 1000

    db = tmp_path / "s.duckdb"
    assert CliRunner().invoke(cli, ["db", "import", str(data), "--db", str(db)]).exit_code == 0
    space = tmp_path / "space.yaml"
    space.write_text("name: s\nsearch_space: {models: [distilbert-base-uncased, gpt2], hardware: [cpu], "
                     "batch_sizes: [1, 2, 4, 8, 16], seq_lengths: [32, 64, 128, 256], threads: [1, 2]}\n")
    recs, sh = tmp_path / "recs.json", tmp_path / "run.sh"
    r = CliRunner().invoke(cli, ["suggest", "--budget", "3", "--metric", "latency", "--space", str(space),
                                 "--output", str(recs), "--emit-commands", str(sh), "--db", str(db), "--json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    payload = json.loads(recs.read_text())
    # the imported 48 configurations, plus any of the shipped dataset's that fall in this space
    # (a fresh store is seeded with it; on the machine that recorded it, its CPU id is this one's)
    from engine.store import Store

    runs = Store(db).measurements()
    in_space = (runs["model"].isin(["distilbert-base-uncased", "gpt2"]) & runs["batch_size"].isin([1, 2, 4, 8, 16])
                & runs["seq_len"].isin([32, 64, 128, 256]) & runs["threads"].isin([1, 2])
                & (runs["hardware"] == payload["final_recommendations"][0]["hardware"])
                & (runs["precision"] == "fp32") & (runs["mode"] == "inference") & (runs["runtime"] == "torch"))
    measured = set(runs.loc[in_space, "config_key"])
    assert len(measured) >= 48
    assert payload["total_candidates"] == 80 and payload["excluded"]["measured"] == len(measured)
    assert not {it["config_key"] for it in payload["final_recommendations"]} & measured
    assert len(payload["final_recommendations"]) == 3
    lines = [ln for ln in sh.read_text().splitlines() if ln.startswith("\"$PERFCAST\" benchmark")]
    assert len(lines) == 3
    for ln, it in zip(lines, payload["final_recommendations"]):
        args = shlex.split(ln)
        assert args[args.index("--model") + 1] == it["model_name"]
        assert args[args.index("--batch-sizes") + 1] == str(it["batch_size"])


def test_address_without_ray_executor_is_one_line_exit_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "engine.cli.main", "run", "cpu-quick", "--address", "127.0.0.1:6379",
                        "--db", str(tmp_path / "x.duckdb")], capture_output=True, text=True)
    assert r.returncode == 2
    assert "--address" in r.stderr and "--executor ray" in r.stderr and "Traceback" not in r.stderr


def test_the_busy_rerun_lines_of_a_loop_save_into_its_own_store(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Audit: a loop on ``--db lab.duckdb`` whose runs were all timed on a busy machine printed rerun
    lines without ``--db``, so running them as printed saved into the default store, which the loop
    never reads. The lines name the loop's store, as ``suggest --emit-commands`` does."""
    import experiments.executors as executors
    from engine.records import Measurement

    def busy(adapter: str, spec):  # type: ignore[no-untyped-def]
        return Measurement.from_samples(spec.config, [20.0, 21.0, 22.0], wall_time_s=1.0, foreign_cpu_cores=64.0)

    class BusyLocal(executors.LocalExecutor):
        def __init__(self, workers: int = 1) -> None:
            super().__init__(workers, runner=busy)

    monkeypatch.setattr(executors, "LocalExecutor", BusyLocal)
    cfg = tmp_path / "busy.yaml"
    cfg.write_text("name: busy\nsearch_space: {models: [distilbert-base-uncased], hardware: [cpu], "
                   "batch_sizes: [1, 2], seq_lengths: [32], threads: [1]}\nacquisition: {name: random}\n"
                   "budget: {runs: 2}\ninitial_design: 2\nbenchmark: {rerun_busy: 0}\n")
    db = tmp_path / "lab.duckdb"
    r = CliRunner().invoke(cli, ["run", str(cfg), "--db", str(db), "--no-compare"], catch_exceptions=False,
                           terminal_width=400)
    assert r.exit_code == 0, r.output
    lines = [shlex.split(x) for x in r.stdout.splitlines() if " benchmark --model " in x]
    assert len(lines) == 2, r.stdout
    for words in lines:
        assert words[words.index("--db") + 1] == str(db.resolve()) and "--save" in words


@pytest.mark.parametrize("space, needle", [("replay-shipped", "missing required key 'search_space.models'"),
                                           ("nope", "unknown experiment config 'nope'")])
def test_suggest_refuses_a_space_it_cannot_expand_before_making_a_store(tmp_path, space, needle) -> None:  # type: ignore[no-untyped-def]
    """Audit: `suggest --space replay-shipped --db new.duckdb` created and seeded new.duckdb, read its
    runs (a warning about them), then said the space has no models; the space is checked first."""
    db = tmp_path / "new.duckdb"
    r = CliRunner().invoke(cli, ["suggest", "--space", space, "--db", str(db), "--budget", "1"])
    assert r.exit_code == 2 and needle in r.stderr and "created a new store" not in r.stderr
    assert not db.exists()


@pytest.mark.parametrize("command", ["run", "replay"])
def test_a_misspelt_predictor_option_is_named_by_its_file_before_a_store_is_made(tmp_path, command) -> None:  # type: ignore[no-untyped-def]
    """Audit: `run my.yaml --db new.duckdb` with `predictor.options: {maxiterr: 3}` created and seeded
    new.duckdb before the one-line error, and both commands named the config's name, not its file."""
    cfg = tmp_path / "my-variant.yaml"
    cfg.write_text("name: cpu-quick\nsearch_space: {models: [gpt2], hardware: [cpu], threads: [1]}\n"
                   "predictor: {options: {maxiterr: 3}}\n")
    db = tmp_path / "new.duckdb"
    r = CliRunner().invoke(cli, [command, str(cfg), "--db", str(db), *(["--no-compare"] if command == "run" else [])])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(f"error: {cfg}: unknown predictor.options key 'maxiterr'")
    assert not db.exists()


def test_suggest_says_a_space_warning_once(tmp_path, recwarn) -> None:  # type: ignore[no-untyped-def]
    """The early check of --space above must not repeat its warnings (thread counts left out)."""
    space = tmp_path / "space.yaml"
    space.write_text("name: s\nsearch_space: {models: [distilbert-base-uncased], hardware: [cpu], batch_sizes: [1],"
                     " seq_lengths: [32], threads: [1, 4096]}\n")
    r = CliRunner().invoke(cli, ["suggest", "--space", str(space), "--db", str(tmp_path / "s.duckdb"), "--budget", "1",
                                 "--json"])
    assert r.exit_code == 0, r.output
    said = [w for w in recwarn if "search_space.threads 4096 left out" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in recwarn]


@pytest.mark.parametrize("hardware, db_content, needle", [
    ("t4", None, "none of the 1 configurations of t's search space can run on executor 'local'"),
    ("cpu", b"not a database", "is not a DuckDB database"),
    ("cpu", "no-folder", "folder"),
])
def test_run_refuses_bad_input_before_printing_its_header(tmp_path, hardware, db_content, needle) -> None:  # type: ignore[no-untyped-def]
    """Audit (session 32): `perfcast run` printed its header (name, configurations, db) before a
    device no adapter here measures, or a --db that is no DuckDB file, was refused; and the first
    left a new seeded store behind. Now every refusal is the only line, and no store is made."""
    from _cli_errors import one_error_line

    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"name: t\nsearch_space: {{models: [gpt2], hardware: [{hardware}], batch_sizes: [1], "
                   "seq_lengths: [32], threads: [1]}\nbudget: {runs: 1}\n")
    db = tmp_path / ("missing" if db_content == "no-folder" else "") / "t.duckdb"
    if isinstance(db_content, bytes):
        db.write_bytes(db_content)
    r = CliRunner().invoke(cli, ["run", str(cfg), "--db", str(db), "--no-compare"])
    one_error_line(r, needle)
    assert r.stdout == "" and "created a new store" not in r.stderr
    assert db.exists() == isinstance(db_content, bytes)
