from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import cli


def test_benchmark_json_and_save(tmp_path: Path) -> None:
    db = tmp_path / "b.duckdb"
    r = CliRunner().invoke(cli, ["benchmark", "--model", "distilbert-base-uncased", "--hardware", "cpu",
                                 "--batch-sizes", "1,2", "--seq-lengths", "8", "--iterations", "2", "--warmup", "1",
                                 "--min-time", "0", "--threads", "1", "--save", "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [row["config"]["batch_size"] for row in rows] == [1, 2]
    assert all(row["status"] == "ok" and row["saved"] for row in rows)
    from engine.store import Store

    df = Store(db).measurements(where="source = 'measured'")
    assert len(df) == 2 and (df["latency_median_ms"] > 0).all()


def _exit_code(argv: list[str]) -> int:
    from engine.cli.main import main

    try:
        return int(main(argv) or 0)
    except SystemExit as e:
        return int(e.code or 0)


def test_unavailable_hardware_is_one_line_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert _exit_code(["benchmark", "--model", "gpt2", "--hardware", "qnn"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not available on this machine" in err


def test_unknown_model_suggests(capsys) -> None:  # type: ignore[no-untyped-def]
    assert _exit_code(["benchmark", "--model", "gtp2"]) == 2
    assert "did you mean 'gpt2'" in capsys.readouterr().err


def test_several_runtimes_in_one_command(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """`--runtime onnxruntime,openvino` benchmarks every configuration on each runtime's adapter
    (the adapters are stand-ins here: what is checked is which adapters the command asks for)."""
    import hardware.registry
    from engine.records import Measurement

    asked: list[tuple[str, object]] = []

    class Stub:
        def __init__(self, runtime: str) -> None:
            self.name, self.runtime = f"stub-{runtime}", runtime

        def available(self) -> tuple[bool, str]:
            return True, ""

        def hardware_id(self) -> str:
            return "cpu-stub"

        def run(self, spec):  # type: ignore[no-untyped-def]
            return Measurement.from_samples(spec.config, [1.0, 1.1], adapter=self.name)

    def resolve(h: str, runtime: object = None) -> Stub:
        asked.append((h, runtime))
        return Stub(str(runtime))

    monkeypatch.setattr(hardware.registry, "resolve", resolve)
    r = CliRunner().invoke(cli, ["benchmark", "--model", "distilbert-base-uncased", "--hardware", "cpu",
                                 "--runtime", "onnxruntime,openvino", "--precision", "fp32,int8", "--json"])
    assert r.exit_code == 0, r.output
    assert asked == [("cpu", "onnxruntime"), ("cpu", "openvino")]
    rows = json.loads(r.stdout)
    assert sorted((row["config"]["runtime"], row["config"]["precision"]) for row in rows) == [
        ("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "int8")]
    assert _exit_code(["benchmark", "--model", "gpt2", "--runtime", "torch,onnx"]) == 2
    assert "invalid runtime 'onnx'" in capsys.readouterr().err
