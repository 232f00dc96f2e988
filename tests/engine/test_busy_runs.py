"""Runs timed while other processes kept the cores busy: left out of fits, and named in answers
and reports (engine.models.targets.busy_runs)."""
from __future__ import annotations

from pathlib import Path


def test_runs_timed_on_a_busy_machine_leave_the_fit_and_predict_says_why(tmp_path: Path) -> None:
    """Audit: a demo on a busy machine stored 5 slowed runs of this CPU; kept in the fit they moved
    every later answer for it 6x with confident intervals and no caution. Busy runs without a quiet
    rerun are now left out (engine.models.targets.busy_runs), and predict names them."""
    from engine.config import Config
    from engine.models.targets import left_out_busy
    from engine.predict import PerformancePredictor, resolve
    from engine.records import Measurement
    from engine.store import Store

    store = Store(tmp_path / "s.duckdb")  # the shipped runs: another CPU
    xeon = "cpu-intel-xeon-amx-2c"
    for b in (1, 2, 4):
        store.save_measurement(Measurement.from_samples(Config("gpt2", xeon, b, 16, threads=1), [900.0 * b] * 5,
                                                        foreign_cpu_cores=1.6))
    df = store.measurements()
    assert int(left_out_busy(df).sum()) == 3
    pp = PerformancePredictor(store)
    caution = pp.extrapolation_warning(resolve(xeon, store))
    assert caution is not None and "3 runs were all timed while other processes kept its cores busy" in caution
    # one quiet run of the device: its runs count again, and the caution goes
    store.save_measurement(Measurement.from_samples(Config("gpt2", xeon, 8, 16, threads=1), [80.0] * 5,
                                                    foreign_cpu_cores=0.0))
    assert PerformancePredictor(store).extrapolation_warning(resolve(xeon, store)) is None


def test_the_run_report_names_configurations_measured_only_on_a_busy_machine(tmp_path: Path) -> None:
    from io import StringIO

    from rich.console import Console

    from engine.cli.run_cmd import _busy_caution
    from experiments.config import load_config

    out = StringIO()
    _busy_caution(Console(file=out, width=200), load_config("cpu-quick"),
                  ["gpt2|cpu-amd-epyc-avx2-2c|b4|s128|fp32|inference|torch|t1"])
    text = out.getvalue()
    assert "1 configuration was measured only while other processes kept" in text
    assert "benchmark --model gpt2 --hardware " in text and "--batch-sizes 4 --seq-lengths 128" in text
    assert "--iterations 5 " in text and "--save" in text  # cpu-quick's protocol


def test_a_gpu_run_on_a_host_with_background_load_is_not_a_busy_run() -> None:
    """Review: GPU runs (0 threads = "every core") were judged against the host's cores, so half a
    core of load elsewhere dropped them from every fit. Only CPU runs are judged."""
    import pandas as pd

    from engine.models.targets import busy_runs
    from hardware.protocol import run_was_busy

    df = pd.DataFrame({"hardware": ["h100-sxm", "cpu-amd-epyc-2c", "cpu-amd-epyc-2c"], "threads": [0, 2, 1],
                       "foreign_cpu_cores": [0.6, 0.6, 0.6], "config_key": ["a", "b", "c"]})
    assert busy_runs(df).tolist() == [False, True, False]  # t1 on 2 cores leaves one free
    assert not run_was_busy(1.9, 0, "cuda-some-gpu") and run_was_busy(1.9, 0, "cpu-x-2c")
    assert not run_was_busy(1.9, 0, "a100-80gb") and run_was_busy(1.9, 1, "cpu-test")  # this machine's cores
