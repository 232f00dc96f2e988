"""bench/data/cpu-intel-xeon-amx-2c.parquet: the shipped grid re-measured on a second CPU
(bench/cross_cpu.py). It must import cleanly, name a device the catalog resolves, and hold the
same configurations as the shipped dataset, so every comparison between the two is paired."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "bench" / "data" / "cpu-intel-xeon-amx-2c.parquet"


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from engine.store import Store
    from engine.store.seed import shipped_dataset_path
    from engine.store.transfer import import_measurements

    if shipped_dataset_path() is None:
        pytest.skip("no shipped dataset in this installation")
    store = Store(tmp_path_factory.mktemp("xcpu") / "s.duckdb", seed=True)
    assert import_measurements(store, DATA, source="measured") == 491
    return store.measurements(status="ok")


def test_the_second_cpu_repeats_the_shipped_grid(both) -> None:  # type: ignore[no-untyped-def]
    intel = both[both["hardware"] == "cpu-intel-xeon-amx-2c"]
    amd = both[both["hardware"] == "cpu-amd-epyc-2c"]
    assert len(intel) == 491 and (intel["source"] == "measured").all()
    strip = lambda df, hw: set(df["config_key"].str.replace(hw, "", regex=False))  # noqa: E731
    assert strip(intel, "cpu-intel-xeon-amx-2c") == strip(amd, "cpu-amd-epyc-2c")
    assert (intel["latency_median_ms"] > 0).all()


def test_its_device_resolves_with_the_measured_peaks() -> None:
    from engine.catalog import resolve_hardware

    prov = json.loads(DATA.with_suffix(".json").read_text())
    e = resolve_hardware(prov["hardware_id"])
    assert e.kind == "cpu" and e.peak_flops("bf16") > 3 * e.peak_flops("fp32")  # AMX
    assert e.sources["peak"].startswith("measured")
    # the detected id is generic; the catalog entry must not be pinned onto every 2-vCPU Xeon
    assert prov["detected_id"] != prov["hardware_id"]
