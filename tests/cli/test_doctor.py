"""perfcast doctor: a whole report, never a traceback, also when a user catalog is broken (then exit 2
after the report, as every command reading that catalog exits)."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import cli


def test_doctor_reports_adapters_store_and_a_broken_user_catalog(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import catalog

    db = tmp_path / "d.duckdb"
    assert CliRunner().invoke(cli, ["db", "init", "--db", str(db), "--no-seed"]).exit_code == 0
    bad = tmp_path / "m.yaml"
    bad.write_text("models:\n  x: {family: text, hf_config: BertConfig, hf_model: BertModel, arch: {}}\n")
    monkeypatch.setenv("PERFCAST_MODELS", str(bad))
    catalog.refresh_catalogs()
    try:
        r = CliRunner().invoke(cli, ["doctor", "--db", str(db), "--json"])
    finally:
        catalog.refresh_catalogs()
    assert r.exit_code == 2, r.output
    d = json.loads(r.stdout)
    assert d["adapters"]["torch-cpu"]["available"] is True
    assert d["packages"]["torch"] and d["store"] == {**d["store"], "exists": True, "runs": 0, "schema_version": 2}
    assert "invalid family 'text'" in d["user_catalogs"]["PERFCAST_MODELS"]["error"]
    assert d["user_catalogs"]["PERFCAST_HARDWARE"] is None
    assert d["descriptor_seed"]["entries"] > 0


def test_doctor_prints_a_catalog_error_quoting_markup_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog's error quotes the bad name: 'my-bert[/x]' was a Rich closing tag, and doctor, the
    command that is meant to explain a broken setup, ended in a MarkupError traceback."""
    from engine import catalog

    bad = tmp_path / "m.yaml"
    bad.write_text("models:\n  my-bert[/x]: {family: text_embedding, hf_config: BertConfig, hf_model: BertModel, "
                   "arch: {}}\n")
    monkeypatch.setenv("PERFCAST_MODELS", str(bad))
    catalog.refresh_catalogs()
    try:
        r = CliRunner().invoke(cli, ["doctor", "--db", str(tmp_path / "d.duckdb")])
    finally:
        catalog.refresh_catalogs()
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), (r.output, r.exception)  # not MarkupError
    assert "my-bert[/x]" in " ".join(r.output.split()) and "PERFCAST_HARDWARE: not set" in r.output


def test_doctor_says_plainly_when_nothing_can_count_descriptors(monkeypatch) -> None:
    import engine.descriptors.counting as counting

    monkeypatch.setattr(counting, "library_tag", lambda: "unknown")
    r = CliRunner().invoke(cli, ["doctor"])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("descriptor seed"))
    assert "match unknown" not in line and "transformers or torch is not installed" in line
