"""The lines `perfcast run` prints per step must read in an 80-column terminal (a CI log, a pipe)."""
import pytest
from rich.console import Console

from engine.cli.run_cmd import LoopDisplay
from engine.config import Config
from experiments.loop import StepRecord


@pytest.fixture(autouse=True)
def _this_cpu_is_the_shipped_one(monkeypatch) -> None:
    """A loop runs on this machine, whose CPU id prints as "cpu"; the configurations below use the
    shipped CPU's id, so it stands in for this machine's."""
    import engine.cli.common as common

    monkeypatch.setattr(common, "_local_cpu", lambda: "cpu-amd-epyc-2c")


def test_a_step_prints_in_80_columns_without_wrapping() -> None:
    con = Console(width=80, record=True, force_terminal=False, color_system=None)
    key = Config(model="distilbert-base-uncased", hardware="cpu-amd-epyc-2c", batch_size=16, seq_len=128,
                 precision="int8", runtime="onnxruntime", threads=2).key
    step = StepRecord(step=12, n_benchmarks=48, benchmark_seconds=1234.5, n_train=530, pool_size=403,
                      acquisition="eig", max_rel_width90=1.234, mean_rel_width90=0.456, heldout_median_ape=0.123,
                      heldout_n=403, fit_s=12.3, acquire_s=4.5, cost_exponent=0.25, fitted="condition",
                      chosen=[{"config_key": key, "information_gain": 0.1234, "cost_s": 12.0, "predicted": 123.456}])
    from engine.records import Measurement

    m = Measurement.from_samples(Config.from_key(key), [123.4, 125.0, 121.9])
    with LoopDisplay(con, total=100, label="cpu-quick", quiet=False) as display:
        display("step", step)
        display("result", (m, {"observed": m.latency.median_ms, "predicted": 130.0, "ape": 0.05}))
    lines = [ln for ln in con.export_text().splitlines()
             if "step 12" in ln or "pool 403" in ln or "→" in ln or "✓" in ln]
    # one header line, one posterior line, one chosen configuration, one landed result: none wrapped
    assert len(lines) == 4, lines
    assert all(len(ln) <= 80 for ln in lines), lines
    assert "held-out APE 12%" in lines[1] and "info/cost^0.25" in lines[1]
    assert ": 123 ms (APE 5%)" in lines[3]


def test_a_real_runs_step_prints_what_more_benchmarks_can_still_narrow_in_80_columns() -> None:
    """A real run has no held-out error; the reducible share (what stop.max_reducible reads) takes its place."""
    con = Console(width=80, record=True, force_terminal=False, color_system=None)
    step = StepRecord(step=12, n_benchmarks=48, benchmark_seconds=1234.5, n_train=530, pool_size=1403,
                      acquisition="eig", max_rel_width90=1.234, mean_rel_width90=0.456, max_reducible90=0.333,
                      max_floor_width90=0.41, fit_s=12.3, acquire_s=4.5, cost_exponent=0.25, fitted="condition",
                      chosen=[{"config_key": Config("gpt2", "cpu-amd-epyc-2c", 16, 256).key, "information_gain": 0.5,
                               "cost_s": 20.0, "predicted": 1234.5}])
    with LoopDisplay(con, total=100, label="cpu-full", quiet=False) as display:
        display("step", step)
    lines = [ln for ln in con.export_text().splitlines() if "pool 1403" in ln]
    assert len(lines) == 1 and len(lines[0]) <= 80, lines
    assert "90% width max 123% mean 46% · ≤33% reducible · info/cost^0.25" in lines[0]


def test_a_failed_runs_error_and_an_info_line_print_as_written_not_as_markup() -> None:
    """Audit: a failed run's error is the adapter's text; "[/x]" in it raised rich's MarkupError, which
    ended the loop after the run was stored, and "[batch, seq]" vanished from the line."""
    from engine.records import Measurement

    con = Console(width=200, record=True, force_terminal=False, color_system=None)
    c = Config("gpt2", "cpu-amd-epyc-2c", 8, 128)
    m = Measurement(config=c, status="failed", error="RuntimeError: shape [batch, seq] is invalid for [/x] input")
    with LoopDisplay(con, total=2, label="t", quiet=False) as display:
        display("result", (m, {}))
        display("info", "skipped a config: adapter said [/dim] and [red]no[/red]")
    text = con.export_text()
    assert "failed: RuntimeError: shape [batch, seq] is invalid for [/x] input" in text
    assert "adapter said [/dim] and [red]no[/red]" in text


def test_benchmarks_failure_lines_print_the_adapters_error_as_written(capsys) -> None:  # type: ignore[no-untyped-def]
    """The same for `perfcast benchmark`: its failure lines under the table came after --save had
    stored the runs, so a MarkupError there was a traceback instead of exit 1."""
    from engine.cli.benchmark_cmd import _table
    from engine.records import Measurement

    m = Measurement(config=Config("gpt2", "cpu-amd-epyc-2c", 8, 128), status="failed",
                    error="ValueError: [/x] expected [batch, seq]")
    _table([(None, m, None)], saved=True)
    assert "ValueError: [/x] expected [batch, seq]" in " ".join(capsys.readouterr().out.split())  # unwrapped


def test_suggests_notes_print_as_written() -> None:
    """`perfcast suggest`'s notes can hold an exception's text (a failed hardware ranking)."""
    from engine.cli.suggest_cmd import _footer

    con = Console(width=200, record=True, force_terminal=False, color_system=None)
    _footer(con, {"notes": ["hardware recommender failed for k: bad [/x] in [batch, seq]"],
                  "final_recommendations": []}, None, None)
    assert "bad [/x] in [batch, seq]" in con.export_text()


def test_paths_print_as_written_in_rerun_lines_footers_and_db_info(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Audit: a store or output path is the user's text, and Rich read "[v2]" in it as markup: a loop's
    rerun line printed `--db .../lab.duckdb` for lab[v2].duckdb (a shell line that saves elsewhere),
    and suggest's footer and `db info` dropped it too."""
    from click.testing import CliRunner

    from engine.cli.main import cli
    from engine.cli.run_cmd import _busy_caution
    from engine.cli.suggest_cmd import _footer
    from experiments.config import load_config

    db = str(tmp_path / "lab[v2].duckdb")
    con = Console(width=400, record=True, force_terminal=False, color_system=None)
    _busy_caution(con, load_config("cpu-quick"), [Config("gpt2", "cpu-amd-epyc-2c", 4, 128, threads=1).key], db=db)
    _footer(con, {"final_recommendations": [{}], "notes": []}, db + ".json", db + ".sh")
    text = con.export_text()
    assert f"--db '{db}'" in text or f"--db {db}" in text
    assert f"written to {db}.json" in text and f"written to {db}.sh" in text
    assert CliRunner().invoke(cli, ["db", "init", "--no-seed", "--db", db]).exit_code == 0
    monkeypatch.setenv("COLUMNS", "400")  # rich's width: the path on one line
    r = CliRunner().invoke(cli, ["db", "info", "--db", db])
    assert r.exit_code == 0 and "lab[v2].duckdb" in r.stdout


def test_a_busy_run_is_said_on_its_own_line_without_a_caution_under_each() -> None:
    """Audit: each busy run of a loop printed a caution line under its result, advice the loop
    follows itself (it reruns busy runs); the report ends with those never rerun, counted."""
    from engine.records import Measurement

    con = Console(width=200, record=True, force_terminal=False, color_system=None)
    m = Measurement.from_samples(Config("gpt2", "cpu-amd-epyc-2c", 4, 128, threads=1), [50.0, 51.0],
                                 foreign_cpu_cores=1.9)
    with LoopDisplay(con, total=10, label="cpu-quick", quiet=False) as display:
        display("result", (m, {"observed": 50.5, "predicted": 20.0, "ape": None, "busy": True}))
    text = con.export_text()
    assert "(not scored: timed on a busy machine)" in text and "caution" not in text, text
