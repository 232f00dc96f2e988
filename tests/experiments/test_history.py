"""perfcast experiments: the loops a store holds, read back from their saved state."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from _cli_errors import invoke, one_error_line
from engine.cli.main import cli
from engine.store import Store


def test_experiments_lists_progress_spend_and_forecast_error(tmp_path: Path, other_process) -> None:
    s = Store(tmp_path / "e.duckdb", seed=False)
    state = {"mode": "run", "owner": other_process, "steps": [{"benchmark_seconds": 12.5, "max_rel_width90": 0.4}],
             "prequential": [{"status": "ok", "ape": 0.1}, {"status": "ok", "ape": 0.3},
                             {"status": "oom", "ape": None}, {"status": "ok", "ape": None}]}
    s.upsert_experiment("lab-run-abc", "lab", {"acquisition": {"name": "eig"}}, "running", state)
    from engine.config import Config
    from engine.records import Measurement

    ids = []
    for b in (1, 2, 4):
        c = Config("gpt2", "cpu-amd-epyc-2c", b, 16)
        ids.append(s.save_measurement(Measurement.from_samples(c, [10.0, 11.0], wall_time_s=4.0), "lab-run-abc"))
    s.save_measurement(Measurement.failed(Config("gpt2", "cpu-amd-epyc-2c", 64, 16), "oom", "out of memory",
                                          wall_time_s=0.5), "lab-run-abc")
    s.upsert_experiment("old-run-def", "old", {"acquisition": {"name": "random"}}, "finished",
                        {"mode": "run", "steps": [], "prequential": [], "stopped_because": "run budget spent"})
    r = CliRunner().invoke(cli, ["experiments", "--db", str(s.path), "--json"])
    assert r.exit_code == 0, r.output
    rows = {x["experiment_id"]: x for x in json.loads(r.stdout)["experiments"]}
    lab = rows["lab-run-abc"]
    # the runs stored now, not the state's snapshot (12.5 s there)
    assert (lab["benchmarks"], lab["failed"], lab["benchmark_seconds"], lab["acquisition"]) == (4, 1, 12.5, "eig")
    assert abs(lab["prequential_median_ape"] - 0.2) < 1e-12 and lab["status"] == "running"
    assert lab["pid"] == other_process["pid"]
    assert rows["old-run-def"]["prequential_median_ape"] is None
    assert rows["old-run-def"]["stopped_because"] == "run budget spent"
    table = CliRunner().invoke(cli, ["experiments", "--db", str(s.path)])
    assert "lab-run-abc" in table.output and "20%" in table.output
    s.delete_runs([ids[0]])  # a `db delete` shows in the listing (the state still says 4)
    r = CliRunner().invoke(cli, ["experiments", "--db", str(s.path), "--json"])
    lab = {x["experiment_id"]: x for x in json.loads(r.stdout)["experiments"]}["lab-run-abc"]
    assert (lab["benchmarks"], lab["failed"], lab["benchmark_seconds"]) == (3, 1, 8.5)
    import psutil

    psutil.Process(other_process["pid"]).kill()  # its process is gone (a kill -9): the row says so
    psutil.Process(other_process["pid"]).wait()
    r = CliRunner().invoke(cli, ["experiments", "--db", str(s.path), "--json"])
    lab = {x["experiment_id"]: x for x in json.loads(r.stdout)["experiments"]}["lab-run-abc"]
    assert lab["status"] == "killed" and lab["pid"] is None


def test_experiments_on_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"  # (in a folder that does not exist it is refused: test_new_store_notice)
    r = invoke("experiments", "--db", str(db), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"experiments": [], "db": str(db), "exists": False}
    assert not db.exists()
    r = invoke("experiments", "--db", str(db))
    assert "no store at" in r.output and not db.exists()


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


def test_times_in_json_carry_their_zone(capsys) -> None:
    """The store keeps naive UTC times; --json printed them as '2026-12-07 02:36:06', read as local."""
    import json
    from datetime import datetime

    import pandas as pd

    from engine.cli.common import emit_json
    from experiments.history import _iso

    assert _iso(datetime(2026, 12, 7, 2, 36, 6)) == "2026-12-07T02:36:06+00:00" and _iso(None) is None
    emit_json({"a": datetime(2026, 12, 7, 2, 36, 6, 5), "b": pd.Timestamp("2026-12-07 02:36:06")})
    out = json.loads(capsys.readouterr().out)
    assert out == {"a": "2026-12-07T02:36:06.000005+00:00", "b": "2026-12-07T02:36:06+00:00"}


def test_experiments_show_the_budget_the_stop_reason_and_one_loop_in_full(tmp_path: Path) -> None:
    """Audit: 13 rows named tiny-run-<hash> could not be told apart (no budget, no stop reason) and
    one experiment could not be inspected."""
    from engine.config import Config
    from engine.records import Measurement

    s = Store(tmp_path / "e.duckdb", seed=False)
    for eid, runs in (("tiny-run-aaa111", 6), ("tiny-run-aab222", 3)):
        s.upsert_experiment(eid, "tiny", {"acquisition": {"name": "eig"}, "budget": {"runs": runs}}, "finished",
                            {"mode": "run", "steps": [], "prequential": [],
                             "stopped_because": "the pool is empty: of the 2 configurations, 2 already measured"})
    # an online optimisation stores its budget as a count (the slow Ctrl-C test found the listing crash)
    s.upsert_experiment("optimize-gpt2-abc", "optimize gpt2", {"model": "gpt2", "budget": 3}, "interrupted",
                        {"mode": "optimize", "steps": [], "prequential": []})
    c = Config("gpt2", "cpu-amd-epyc-2c", 2, 16)
    s.save_measurement(Measurement.from_samples(c, [10.0, 11.0], wall_time_s=4.0), "tiny-run-aaa111")
    s.save_measurement(Measurement.failed(c.with_(batch_size=64), "timeout", "time limit exceeded: 2 s; child killed",
                                          wall_time_s=2.5), "tiny-run-aaa111")
    table = CliRunner().invoke(cli, ["experiments", "--db", str(s.path)])
    assert table.exit_code == 0, table.output
    assert "2/6" in table.output and "0/3" in table.output and "optimize-gpt2-abc" in table.output
    assert "pool empty" in table.output and max(len(line) for line in table.output.splitlines()) <= 80
    one = CliRunner().invoke(cli, ["experiments", "tiny-run-aaa", "--db", str(s.path)])
    assert one.exit_code == 0, one.output
    words = " ".join(one.output.split())  # rich wraps the table's cells
    assert "the pool is empty" in words and "timeout: time" in words and "b64" in words
    js = json.loads(CliRunner().invoke(cli, ["experiments", "tiny-run-aaa1", "--db", str(s.path), "--json"]).stdout)
    assert js["budget_runs"] == 6 and [r["status"] for r in js["runs"]] == ["ok", "timeout"]
    one_error_line(invoke("experiments", "tiny-run-aa", "--db", str(s.path)), "invalid experiment 'tiny-run-aa'",
                   "it starts 2")
    one_error_line(invoke("experiments", "nope", "--db", str(s.path)), "unknown experiment 'nope'")


def test_one_loop_marks_the_runs_timed_on_a_busy_machine(tmp_path: Path) -> None:
    """Audit 2026-12-08: `perfcast experiments ID` listed a busy run (left out of every fit, its time
    a bound above the truth) as plain "ok" beside the quiet ones: 400 ms for b2 above 548 ms for b1
    read as measurements."""
    from dataclasses import replace

    from engine.config import Config
    from engine.records import Measurement

    s = Store(tmp_path / "e.duckdb", seed=False)
    s.upsert_experiment("lab-run-abc", "lab", {"acquisition": {"name": "eig"}, "budget": {"runs": 2}}, "finished",
                        {"mode": "run", "steps": [], "prequential": []})
    c = Config("gpt2", "cpu-amd-epyc-2c", 2, 16, threads=2)
    quiet = s.save_measurement(replace(Measurement.from_samples(c, [10.0, 11.0]), foreign_cpu_cores=0.0),
                               "lab-run-abc")
    busy = s.save_measurement(replace(Measurement.from_samples(c.with_(batch_size=4), [90.0, 95.0]),
                                      foreign_cpu_cores=1.9), "lab-run-abc")
    js = json.loads(invoke("experiments", "lab-run-abc", "--db", str(s.path), "--json").stdout)
    assert {r["run_id"]: r["left_out_busy"] for r in js["runs"]} == {quiet: False, busy: True}
    out = invoke("experiments", "lab-run-abc", "--db", str(s.path)).output
    words = " ".join(out.split())
    assert words.count("ok, busy") == 1 and "left out of every fit" in words
