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


def test_the_gp_never_predicts_a_p90_below_the_median(tmp_path: Path) -> None:
    """Audit: predict --model llama-2-13b --hardware cpu-amd-epyc-2c --precision int8 answered a
    median of 10,982 ms and a p90 of 10,616 ms (8 of 180 cells of a matrix)."""
    import numpy as np

    from engine.config import Config
    from engine.predict import PerformancePredictor
    from engine.store import Store

    pp = PerformancePredictor(Store(tmp_path / "s.duckdb"))
    configs = [Config(m, hw, b, 128, p) for m in ("llama-2-13b", "bert-base-uncased", "gpt2")
               for hw in ("cpu-amd-epyc-2c", "t4") for b in (1, 8) for p in ("fp32", "int8")]
    ps = pp.fitted().predict(configs)
    assert np.all(np.asarray(ps.mu_log["latency_p90_ms"]) >= np.asarray(ps.mu_log["latency_ms"]))


class _StubAdapter:
    """An adapter stand-in (which configurations the command starts, and the exit status)."""

    def __init__(self, runtime: str, fail: bool = False) -> None:
        self.name, self.runtime, self.platform, self.fail, self.ran = f"stub-{runtime}", runtime, "cpu", fail, []

    def available(self) -> tuple[bool, str]:
        return True, ""

    def hardware_id(self) -> str:
        return "cpu-stub"

    def run(self, spec):  # type: ignore[no-untyped-def]
        from engine.records import Measurement

        self.ran.append(spec.config)
        if self.fail:
            return Measurement.failed(spec.config, "failed", "RuntimeError: boom")
        return Measurement.from_samples(spec.config, [1.0, 1.1], adapter=self.name)


def test_benchmark_refuses_known_refusals_up_front_and_fails_when_every_run_fails(monkeypatch) -> None:
    """Audit: `benchmark --hardware openvino --precision int8 --mode training` started a child that
    failed (openvino measures inference only) and exited 0."""
    import hardware.registry

    stubs: dict[str, _StubAdapter] = {}
    monkeypatch.setattr(hardware.registry, "resolve",
                        lambda h, r=None: stubs.setdefault(str(r), _StubAdapter(str(r), fail=bool(stubs.get("fail")))))
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "openvino", "--precision", "int8",
                                 "--mode", "training"])
    assert r.exit_code == 2 and "invalid configuration 'stub-openvino int8/training'" in r.output
    assert not stubs["openvino"].ran  # nothing was started
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "onnxruntime", "--precision",
                                 "fp32,fp16"])
    assert r.exit_code == 0 and "left out 1 configuration that the adapter refuses: stub-onnxruntime fp16" in \
        " ".join(r.output.split())
    assert [c.precision for c in stubs["onnxruntime"].ran] == ["fp32"]
    stubs.clear()
    stubs["torch"] = _StubAdapter("torch", fail=True)
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "torch"])
    assert r.exit_code == 1 and "boom" in r.output  # the table shows the failure; the status says it


def test_a_bad_option_value_is_one_line_naming_the_help_to_read(capsys) -> None:
    """Audit: click's own errors (a value outside a choice or range) were three lines (usage, try,
    error) where perfcast's are one."""
    import pytest

    from engine.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["predict", "--model", "bert-base-uncased", "--hardware", "cpu", "--precision", "fp8"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "\n" not in err
    assert err.startswith("error: Invalid value for '--precision': 'fp8'") and "(perfcast predict --help)" in err


def test_matrix_carries_predicts_cautions(tmp_path: Path) -> None:
    """Audit: matrix never warned, in any format, even for never-measured CUDA rows."""
    import json

    out = tmp_path / "m.json"
    r = CliRunner().invoke(cli, ["matrix", "--models", "bert-base-uncased", "--hardware", "cpu-amd-epyc-2c,t4",
                                 "--batch-sizes", "1", "--output", str(out), "--db", str(tmp_path / "s.duckdb"),
                                 "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    written = json.loads(out.read_text())
    assert any("no cuda device has been measured" in w for w in summary["warnings"])
    assert written["warnings"] == summary["warnings"]
    text = CliRunner().invoke(cli, ["matrix", "--models", "bert-base-uncased", "--hardware", "t4", "--output",
                                    str(tmp_path / "m.csv"), "--db", str(tmp_path / "s.duckdb")])
    assert "caution: no cuda device has been measured" in " ".join(text.output.split())


def test_benchmarking_a_catalog_device_says_it_is_known_but_not_here() -> None:
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--hardware", "h100-sxm"])
    assert r.exit_code == 2 and "'h100-sxm' is a catalog device (cuda)" in r.output and "unknown" not in r.output
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--hardware", "h100-sxmm"])
    assert r.exit_code == 2 and "unknown hardware 'h100-sxmm'" in r.output


def test_the_python_api_answer_carries_the_cautions_the_cli_prints(tmp_path: Path) -> None:
    from engine.predict import PerformancePredictor
    from engine.store import Store

    pp = PerformancePredictor(Store(tmp_path / "s.duckdb"))
    p = pp.predict(model_name="bert-base-uncased", hardware="h100-sxm", batch_size=8)
    assert any("no cuda device has been measured" in w for w in p.warnings)
    assert pp.predict(model_name="bert-base-uncased", hardware="cpu-amd-epyc-2c", batch_size=8).warnings == []


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


def test_import_names_the_row_of_a_bad_sample_and_a_fractional_warmup(tmp_path: Path) -> None:
    import pytest

    from engine.errors import ImportRejectedError
    from engine.store import Store
    from engine.store.transfer import import_measurements

    head = "model,hardware,batch_size,precision,latency_median_ms"
    store = Store(tmp_path / "s.duckdb", seed=False)
    f = tmp_path / "samples.csv"
    f.write_text(f"{head},samples_ms\ngpt2,cpu-x,1,fp32,3.0,\"[1,2]\"\ngpt2,cpu-x,2,fp32,3.0,\"[1,x]\"\n")
    with pytest.raises(ImportRejectedError, match=r"row 2, column 'samples_ms'"):
        import_measurements(store, f)
    g = tmp_path / "warmup.csv"
    g.write_text(f"{head},warmup,iterations\ngpt2,cpu-x,1,fp32,3.0,2.5,3\n")
    with pytest.raises(ImportRejectedError, match=r"row 1, column 'warmup'"):
        import_measurements(store, g)
    assert store.count("benchmark_runs") == 0


def test_benchmark_takes_this_machines_own_cpu_id() -> None:
    from hardware.detect import local_cpu_id
    from hardware.registry import resolve

    assert resolve(local_cpu_id()).name == resolve("cpu").name
