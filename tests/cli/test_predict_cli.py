"""perfcast train / predict / compare-hardware / matrix / evaluate on a small temporary store."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from synthetic_measurements import synthetic_store

from engine.catalog import reference_device
from engine.cli.main import main


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cli") / "s.duckdb"
    synthetic_store(path)
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:  # main() returns the exit code when a command fails inside the group, or raises SystemExit
        rv = main(list(argv))
        code = rv if isinstance(rv, int) else 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_predict_json_says_which_device_answered(capsys: pytest.CaptureFixture[str], db: str) -> None:
    d = run_json(capsys, "predict", "--model", "bert-base-uncased", "--hardware", "cuda", "--batch-size", "4",
                 "--precision", "fp16", "--predictor", "roofline", "--latency-slo-ms", "5", "--db", db)
    ref = reference_device("cuda")
    assert d["device"]["requested"] == "cuda" and d["device"]["id"] == ref.id and d["device"]["name"] == ref.name
    assert d["predictor"] == "roofline"
    assert d["config"]["precision"] == "fp16" and d["config"]["batch_size"] == 4
    for name in ("latency_ms", "throughput", "memory_mib"):
        m = d["metrics"][name]
        assert m["q05"] <= m["q25"] <= m["median"] <= m["q75"] <= m["q95"]
        assert m["interval_90"] == [m["q05"], m["q95"]]
    assert 0 <= d["latency_slo"]["prob_median_latency_below"] <= 1
    assert 0 <= d["prob_fits_memory"] <= 1
    assert d["n_nearby"] == 4  # the synthetic store measured bert on the reference GPU at 4 batch sizes


def test_predict_table_for_people(capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, out, _ = run(capsys, "predict", "--model", "gpt2", "--hardware", "t4", "--batch-size", "2",
                       "--predictor", "roofline", "--db", db)
    assert code == 0
    for text in ("throughput", "latency (median)", "latency (p90)", "memory (peak)", "90% credible interval",
                 "answered by: roofline", "t4", "measurements nearby"):
        assert text in out


@pytest.mark.parametrize("argv, needle", [
    (["--model", "bert-base-uncase", "--hardware", "t4"], "did you mean 'bert-base-uncased'"),
    (["--model", "gpt2", "--hardware", "a100"], "unknown hardware 'a100'"),
    (["--model", "gpt2", "--hardware", "t4", "--batch-size", "0"], "batch_size"),
])
def test_bad_names_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], db: str, argv: list[str],
                                        needle: str) -> None:
    code, out, err = run(capsys, "predict", *argv, "--predictor", "roofline", "--db", db)
    assert code == 2
    assert needle in err and err.strip().count("\n") == 0


def test_compare_hardware_with_plots(capsys: pytest.CaptureFixture[str], db: str, tmp_path: Path) -> None:
    bars = tmp_path / "bars.png"
    d = run_json(capsys, "compare-hardware", "--model", "gpt2", "--hardware", "t4,a100-80gb,cpu",
                 "--predictor", "roofline", "--plot", str(bars), "--db", db)
    assert [p["device"]["requested"] for p in d["predictions"]] == ["t4", "a100-80gb", "cpu"]
    assert bars.stat().st_size > 5000
    band = tmp_path / "scaling.png"
    d = run_json(capsys, "compare-hardware", "--model", "gpt2", "--hardware", "t4,cuda", "--batch-sizes", "1,2,4,8",
                 "--predictor", "roofline", "--plot", str(band), "--db", db)
    assert len(d["predictions"]) == 8 and band.stat().st_size > 5000


def test_compare_hardware_resolves_each_device_once_per_batch_sweep(capsys: pytest.CaptureFixture[str], db: str,
                                                                   resolve_calls) -> None:  # type: ignore[no-untyped-def]
    """Session 33: each (device, batch size) pair resolved its device again (a read of the store's
    hardware table each, 70-100 ms on a busy 2-core machine): 4 devices x 5 batch sizes made 24
    resolutions. Once per name in the request now, and once more per id in predict_many."""
    from collections import Counter

    calls = resolve_calls
    names = ["t4", "a100-80gb", "h100-sxm"]
    d = run_json(capsys, "compare-hardware", "--model", "gpt2", "--hardware", ",".join(names), "--batch-sizes",
                 "1,2,4,8,16", "--predictor", "roofline", "--db", db)
    assert len(d["predictions"]) == 15
    assert calls == Counter({n: 2 for n in names}), calls  # was 6 each (5 batch sizes + predict_many)


def test_a_device_or_batch_size_named_twice_is_one_row(capsys: pytest.CaptureFixture[str], db: str,
                                                        tmp_path: Path) -> None:
    """`--hardware cpu,cpu` or a platform and the id it resolves to, and `--batch-sizes 1,1`, printed
    (and in matrix wrote and counted) every prediction once per mention; two equal batch sizes
    also turned a device comparison into a batch-scaling table."""
    from engine.predict import resolve

    cpu = resolve("cpu").id
    d = run_json(capsys, "compare-hardware", "--model", "gpt2", "--hardware", f"t4,cpu,{cpu},t4",
                 "--batch-sizes", "1,1", "--predictor", "roofline", "--db", db)
    assert [(p["device"]["id"], p["config"]["batch_size"]) for p in d["predictions"]] == [("t4", 1), (cpu, 1)]
    out = tmp_path / "dup.csv"
    d = run_json(capsys, "matrix", "--models", "gpt2,gpt2", "--hardware", "t4,t4", "--batch-sizes", "1,1",
                 "--precision", "fp32,fp32", "--predictor", "roofline", "--output", str(out), "--db", db)
    assert d["n_predictions"] == 1 and len(out.read_text().strip().splitlines()) == 2  # header and one cell


def test_compare_hardware_leaves_out_a_device_no_adapter_runs_it_on(capsys: pytest.CaptureFixture[str], db: str) -> None:
    """torch's int8 runs on a CPU only: the GPUs are left out with the reason, and predict refuses."""
    code, out, err = run(capsys, "compare-hardware", "--model", "gpt2", "--hardware", "cpu,t4", "--precision", "int8",
                         "--predictor", "roofline", "--json", "--db", db)
    assert code == 0, err
    assert [p["device"]["requested"] for p in json.loads(out)["predictions"]] == ["cpu"]
    assert "left out gpt2 int8 inference with torch on t4: int8 with torch runs on CPU only" in err
    # the JSON names it too (only stderr did): a script need not diff what it asked for
    assert [r.split(":")[0] for r in json.loads(out)["refused"]] == ["gpt2 int8 inference with torch on t4"]
    code, out, err = run(capsys, "predict", "--model", "gpt2", "--hardware", "cpu", "--precision", "int8",
                         "--mode", "training", "--predictor", "roofline", "--db", db)
    assert code == 2 and "inference-only" in err and len(err.strip().splitlines()) == 1


def test_matrix_json_and_heatmap(capsys: pytest.CaptureFixture[str], db: str, tmp_path: Path) -> None:
    out, heat = tmp_path / "matrix.json", tmp_path / "heat.png"
    d = run_json(capsys, "matrix", "--models", "gpt2,resnet50", "--hardware", "t4,cuda", "--batch-sizes", "1,8",
                 "--precision", "fp32,fp16", "--predictor", "roofline", "--output", str(out), "--plot", str(heat),
                 "--db", db)
    assert d["n_predictions"] == 16 and heat.exists()
    on_disk = json.loads(out.read_text())
    m = on_disk["models"]["resnet50"]["predictions"]["cuda"]["8"]["fp16"]["throughput"]
    assert set(m) == {"median", "mean", "q05", "q25", "q75", "q95"}
    # the same matrix as one row per cell, for a spreadsheet: every cell agrees with the JSON
    import pandas as pd

    for suffix in ("csv", "parquet"):
        flat = tmp_path / f"matrix.{suffix}"
        run_json(capsys, "matrix", "--models", "gpt2,resnet50", "--hardware", "t4,cuda", "--batch-sizes", "1,8",
                 "--precision", "fp32,fp16", "--predictor", "roofline", "--output", str(flat), "--db", db)
        df = pd.read_csv(flat) if suffix == "csv" else pd.read_parquet(flat)
        assert len(df) == 16 and {"model", "hardware", "hardware_id", "batch_size", "precision"} <= set(df.columns)
        row = df[(df.model == "resnet50") & (df.hardware == "cuda") & (df.batch_size == 8) & (df.precision == "fp16")]
        assert row["throughput_q95"].iloc[0] == pytest.approx(m["q95"], rel=1e-9)
        assert row["seq_len"].iloc[0] == 0 and set(df[df.model == "gpt2"]["seq_len"]) == {128}  # as predicted
    code, _, err = run(capsys, "matrix", "--models", "gpt2", "--output", str(tmp_path / "m.xlsx"), "--db", db)
    assert code == 2 and "invalid --output file type '.xlsx'" in err


def test_matrix_leaves_cells_no_adapter_runs_as_na(capsys: pytest.CaptureFixture[str], db: str,
                                                    tmp_path: Path) -> None:
    """Audit: matrix answered torch int8 on a GPU (predict and compare-hardware refuse it). Such a
    cell is null with its reason, in every format; runnable cells are answered as before."""
    import pandas as pd

    base = ["matrix", "--models", "gpt2,resnet50", "--hardware", "cpu,t4", "--batch-sizes", "1,8",
            "--precision", "fp32,int8", "--predictor", "roofline", "--db", db]
    out, heat = tmp_path / "m.json", tmp_path / "m.png"
    d = run_json(capsys, *base, "--output", str(out), "--plot", str(heat))
    assert d["n_predictions"] == 12 and d["n_refused"] == 4 and heat.exists()
    assert len(d["refused"]) == 1 and d["refused"][0].startswith("t4 int8: int8 with torch runs on CPU only")
    on_disk = json.loads(out.read_text())
    cell = on_disk["models"]["resnet50"]["predictions"]["t4"]["8"]["int8"]
    assert cell["refused"].startswith("int8 with torch runs on CPU only")
    assert cell["latency_ms"] == dict.fromkeys(("median", "mean", "q05", "q25", "q75", "q95"))
    kept = on_disk["models"]["resnet50"]["predictions"]
    assert "refused" not in kept["t4"]["8"]["fp32"] and "refused" not in kept["cpu"]["8"]["int8"]
    assert kept["cpu"]["8"]["int8"]["latency_ms"]["median"] > 0
    assert not any("no perfcast adapter runs" in w for w in d["warnings"])  # the note says it, once
    # a runnable cell is answered as in a matrix without refused cells
    alone = run_json(capsys, "matrix", "--models", "resnet50", "--hardware", "cpu", "--batch-sizes", "8",
                     "--precision", "int8", "--predictor", "roofline", "--db", db, "--output", str(tmp_path / "a.json"))
    assert alone["n_refused"] == 0 and alone["refused"] == []
    one = json.loads((tmp_path / "a.json").read_text())["models"]["resnet50"]["predictions"]["cpu"]["8"]["int8"]
    assert one == kept["cpu"]["8"]["int8"]
    flat = tmp_path / "m.csv"
    code, text, err = run(capsys, *base, "--output", str(flat))
    assert code == 0, err
    assert "n/a: 4 cells no adapter runs, not predicted (t4 int8: int8 with torch runs on CPU only" in \
        " ".join(text.split())
    df = pd.read_csv(flat)
    na = df[(df.hardware == "t4") & (df.precision == "int8")]
    assert len(df) == 16 and len(na) == 4 and na["latency_ms_median"].isna().all()
    rest = df.loc[~df.index.isin(na.index)]
    assert na["refused"].str.startswith("int8 with torch").all() and rest["refused"].isna().all()
    assert rest["latency_ms_median"].notna().all()
    # every cell refused: predict's one line, exit 2
    code, _, err = run(capsys, "matrix", "--models", "gpt2", "--hardware", "t4,cuda", "--precision", "int8",
                       "--predictor", "roofline", "--db", db, "--output", str(tmp_path / "none.json"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "gpt2 int8 inference with torch on" in err and "int8 with torch runs on CPU only" in err
    assert not (tmp_path / "none.json").exists()


def test_train_json(capsys: pytest.CaptureFixture[str], db: str) -> None:
    d = run_json(capsys, "train", "--model", "roofline", "--db", db)
    assert d["predictor"] == "roofline" and d["n_measurements"] == 48
    # --predictor is predict's name for it; --model (an ML model everywhere else) is the older one
    assert run_json(capsys, "train", "--predictor", "roofline", "--db", db)["predictor"] == "roofline"


def test_evaluate_json_keyed_by_predictor_and_stored(capsys: pytest.CaptureFixture[str], db: str) -> None:
    from engine.store import Store

    before = Store(db).count("evaluations")
    d = run_json(capsys, "evaluate", "--holdout", "random", "--fraction", "0.25", "--seed", "1",
                 "--predictors", "roofline,baseline", "--db", db)
    assert {"roofline", "baseline"} <= set(d)
    roof, base = d["roofline"]["latency_ms"], d["baseline"]["latency_ms"]
    assert roof["n"] == base["n"] == 12  # 25% of 48 distinct configurations
    assert 0 <= roof["coverage_90"] <= 1 and roof["mean_rel_width_90"] > 0
    assert base["coverage_90"] is None and base["coverage_50"] is None  # point prediction: n/a
    assert base["crps_log"] >= 0 and "memory_mib" in d["baseline"]
    assert Store(db).count("evaluations") == before + 1
    code, _, err = run(capsys, "evaluate", "--holdout", "random", "--predictors", "roofline,forest", "--db", db)
    assert code == 2 and "forest" in err


def test_tables_read_in_80_columns(capsys: pytest.CaptureFixture[str], db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A person's terminal is often 80 wide: no line longer, and no number cut to '…'."""
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(capsys, "compare-hardware", "--model", "gpt2", "--hardware", "cpu,snapdragon-8g3-npu,cuda",
                         "--batch-sizes", "1,16", "--predictor", "roofline", "--db", db)
    assert code == 0, err
    lines = out.splitlines()
    assert lines and max(len(x) for x in lines) <= 80 and "…" not in out
    assert any(x.startswith(" snapdragon-8g3-npu ") for x in lines)  # the longest id is not folded
    for argv in (["evaluate", "--holdout", "random", "--predictors", "roofline,baseline"],
                 ["recommend-hardware", "--model", "gpt2", "--mode", "training", "--gpu-count", "8",
                  "--predictor", "roofline"],
                 ["optimize", "--model", "bert-base-uncased", "--objective", "throughput", "--max-latency-ms", "100",
                  "--max-memory-mib", "8000"]):
        code, out, err = run(capsys, *argv, "--db", db)
        assert code == 0, err
        assert max(len(x) for x in out.splitlines()) <= 80 and "…" not in out, argv[0]

