"""Training targets: which runs a fit sees."""
from __future__ import annotations

import pytest


def test_a_quiet_rerun_supersedes_a_run_timed_on_a_busy_machine() -> None:
    """Only the run of a configuration whose load exceeds its quietest run's by > 0.5 cores goes."""
    import numpy as np
    import pandas as pd

    from engine.models.targets import superseded_busy_runs, targets_from_measurements

    base = dict(model="gpt2", hardware="cpu-test", seq_len=16, precision="fp32", mode="inference", runtime="torch",
                threads=2, status="ok", latency_std_ms=0.1, iterations=10)
    rows = [dict(base, batch_size=1, config_key="a", latency_median_ms=20.0, foreign_cpu_cores=0.9),  # busy
            dict(base, batch_size=1, config_key="a", latency_median_ms=10.0, foreign_cpu_cores=0.05),  # its rerun
            dict(base, batch_size=2, config_key="b", latency_median_ms=30.0, foreign_cpu_cores=1.1),  # only run
            dict(base, batch_size=4, config_key="c", latency_median_ms=40.0, foreign_cpu_cores=np.nan),
            dict(base, batch_size=4, config_key="c", latency_median_ms=41.0, foreign_cpu_cores=0.0)]
    df = pd.DataFrame(rows)
    assert superseded_busy_runs(df).tolist() == [True, False, False, False, False]
    # b's only run was timed under 1.1 foreign cores on 2 threads of a machine of unknown size:
    # since session 24 a busy run without a quiet rerun is left out too, with a warning naming it
    import pytest

    with pytest.warns(RuntimeWarning, match=r"left 1 run timed on a busy machine out of the fit \(b\)"):
        tg = targets_from_measurements(df)
    assert sorted(np.exp(tg.log_latency).round(1).tolist()) == [10.0, 40.0, 41.0]
    assert not superseded_busy_runs(df.drop(columns="foreign_cpu_cores")).any()  # older stores
    # a store whose only runs are busy keeps them: nothing could be fitted otherwise
    only_busy = df[df["config_key"] == "b"]
    assert np.exp(targets_from_measurements(only_busy).log_latency).round(1).tolist() == [30.0]


def test_runs_on_hardware_the_catalog_lacks_are_left_out_of_a_fit_with_a_warning() -> None:
    import pandas as pd

    from engine.models.targets import targets_from_measurements
    from engine.store.seed import shipped_dataset_path

    df = pd.read_parquet(shipped_dataset_path()).head(12).copy()
    df.loc[df.index[:3], "hardware"] = "cpu-intel-xeon-platinum-8c"  # a teammate's CPU, imported
    with pytest.warns(RuntimeWarning, match="left 3 stored runs out of the fit: their hardware is not in the "
                                            "catalog \\(cpu-intel-xeon-platinum-8c\\); set PERFCAST_HARDWARE"):
        tg = targets_from_measurements(df, catalog_models_only=True)
    assert len(tg.frame) == 9 and "cpu-intel-xeon-platinum-8c" not in set(tg.frame["hardware"])


def test_legacy_builds_are_torch_half_and_int8_runs_without_the_build_protocol() -> None:
    import json

    import pandas as pd

    from engine.models.targets import legacy_builds
    from hardware.torch_common import build_versions

    now = json.dumps({"torch": "2.13.0", **build_versions()})
    before = json.dumps({"torch": "2.13.0"})
    df = pd.DataFrame({"runtime": ["torch", "torch", "torch", "torch", "onnxruntime", "torch"],
                       "precision": ["bf16", "int8", "bf16", "fp32", "int8", "fp16"],
                       "versions": [before, before, now, before, before, None]})
    assert legacy_builds(df).tolist() == [True, True, False, False, False, True]
    assert legacy_builds(df.drop(columns="versions")).tolist() == [True, True, True, False, False, True]


def test_every_shipped_half_and_int8_torch_run_is_a_legacy_build(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The shipped runs (2026-11-22) were built in fp32 and converted: their memory is read that way."""
    from engine.models.targets import legacy_builds
    from engine.store import Store

    df = Store(tmp_path / "s.duckdb").measurements()
    converted = (df["runtime"] == "torch") & (df["precision"] != "fp32")
    assert converted.sum() > 100
    assert (legacy_builds(df) == converted.to_numpy()).all()
