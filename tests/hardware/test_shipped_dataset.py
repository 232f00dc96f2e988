"""The shipped dataset (real grid measurements) loads into a new database and covers the grid."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.store.seed import shipped_dataset_path

DATA = Path(__file__).resolve().parents[2] / "engine" / "data"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if shipped_dataset_path() is None:
        pytest.skip("engine/data/shipped_measurements.parquet does not exist yet (run experiments.grid + ship)")
    from engine.store import Store

    store = Store(tmp_path_factory.mktemp("shipped") / "s.duckdb", seed=True)
    return store.measurements(status="ok")


def test_counts(shipped) -> None:  # type: ignore[no-untyped-def]
    from engine.catalog import get_model

    df = shipped
    assert (df["source"] == "shipped").all()
    assert df["config_key"].nunique() >= 300
    assert df["model"].nunique() >= 8
    assert len({get_model(m).family for m in df["model"].unique()}) >= 3
    assert df["batch_size"].min() == 1 and df["batch_size"].max() == 64
    assert {"fp32", "bf16", "int8"} <= set(df["precision"])
    assert {1, 2} <= set(df["threads"])
    assert {"torch", "onnxruntime", "openvino"} <= set(df["runtime"])
    assert (df["latency_median_ms"] > 0).all() and (df["throughput_items_s"] > 0).all()


def test_provenance_describes_the_data(shipped) -> None:  # type: ignore[no-untyped-def]
    prov = json.loads((DATA / "shipped_provenance.json").read_text())
    assert prov["cpu_model"] and prov["logical_cores"] >= 1
    assert "torch" in prov["library_versions"] and "onnxruntime" in prov["library_versions"]
    assert prov["counts"]["runs"] >= len(shipped)
    assert prov["date_range_utc"][0] <= prov["date_range_utc"][1]
