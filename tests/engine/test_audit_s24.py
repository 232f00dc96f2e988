"""Findings of session 24's audits, each with the behaviour that was wrong."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import cli


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


def test_doctor_says_plainly_when_nothing_can_count_descriptors(monkeypatch) -> None:
    import engine.descriptors.counting as counting

    monkeypatch.setattr(counting, "library_tag", lambda: "unknown")
    r = CliRunner().invoke(cli, ["doctor"])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("descriptor seed"))
    assert "match unknown" not in line and "transformers or torch is not installed" in line


def test_db_import_counts_one_run_in_the_singular(tmp_path: Path) -> None:
    f = tmp_path / "one.csv"
    f.write_text("model,hardware,batch_size,precision,latency_median_ms\ngpt2,cpu-x,1,fp32,3.0\n")
    r = CliRunner().invoke(cli, ["db", "import", str(f), "--db", str(tmp_path / "s.duckdb")])
    assert r.exit_code == 0 and "imported 1 run from" in r.output
