"""Findings of session 23's audits, each with the behaviour that was wrong."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import cli
from engine.config import Config
from engine.errors import InvalidValueError


def test_predict_cautions_where_no_adapter_measures_the_device_at_all() -> None:
    """WebNN on a WebNN laptop and QNN on a Hexagon NPU are real deployments (ranked, predicted) that
    no perfcast adapter measures (qnn is detection-only): predict now says so."""
    from engine.optimize.spec import adapter_measures, runtime_runs_on
    from engine.predict import ResolvedHardware, unrunnable_caution

    webnn = ResolvedHardware("webnn-laptop", "webnn-laptop", "WebNN laptop", "webnn")
    assert runtime_runs_on("webnn", "webnn") and not adapter_measures("webnn", "webnn", "fp32", "inference")
    assert "no perfcast adapter runs webnn" in unrunnable_caution(Config("gpt2", "webnn-laptop", runtime="webnn"),
                                                                  webnn)
    assert not adapter_measures("qnn", "qnn", "int8", "inference")
    assert adapter_measures("cpu", "openvino", "int8", "inference") and adapter_measures("cuda", "torch", "fp16",
                                                                                        "inference")


def test_recommend_names_an_unknown_runtime_and_carries_predicts_cautions() -> None:
    from engine.recommend import HardwareRecommender
    from tests.engine.test_recommend import FakePredictor

    rec = HardwareRecommender(FakePredictor({"t4": 100.0, "a100-80gb": 600.0}), available_hardware=["t4", "a100-80gb"])
    with pytest.raises(InvalidValueError, match="invalid runtime 'trt'; valid: torch"):
        rec.recommend_hardware(model_name="bert-base-uncased", runtime="trt")
    r = rec.recommend_hardware(model_name="bert-base-uncased", precision="bf16")
    assert any("t4 lists no bf16 peak" in w for w in r.warnings) and r.to_dict()["warnings"] == r.warnings
    assert not any("a100-80gb lists" in w for w in r.warnings)  # it lists bf16


def test_two_platform_names_for_one_device_are_noted_not_dropped_silently() -> None:
    from engine.recommend import HardwareRecommender
    from hardware.detect import local_cpu_id
    from tests.engine.test_recommend import FakePredictor

    cpu = local_cpu_id()
    rec = HardwareRecommender(FakePredictor({cpu: 10.0}), available_hardware=["openvino", "cpu"])
    r = rec.recommend_hardware(model_name="bert-base-uncased")
    assert [o.hardware for o in r.options] == [cpu] and r.options[0].config.runtime == "openvino"
    assert any("openvino and cpu are the same device" in n for n in r.notes)
    assert r.options[0].requested == "openvino"


def test_compare_hardware_cautions_for_rows_no_adapter_runs_and_borrowed_peaks(tmp_path: Path) -> None:
    db = str(tmp_path / "c.duckdb")
    r = CliRunner().invoke(cli, ["compare-hardware", "--model", "bert-base-uncased", "--hardware", "t4,v100-16gb",
                                 "--precision", "bf16", "--predictor", "roofline", "--json", "--db", db])
    assert r.exit_code == 0, r.output
    warnings = {p["config"]["hardware"]: p["warnings"] for p in json.loads(r.stdout)["predictions"]}
    assert any("t4 lists no bf16 peak" in w for w in warnings["t4"])
    assert any("v100-16gb lists no bf16 peak" in w for w in warnings["v100-16gb"])
    r = CliRunner().invoke(cli, ["compare-hardware", "--model", "bert-base-uncased", "--hardware", "cpu,t4",
                                 "--runtime", "openvino", "--predictor", "roofline", "--db", db])
    assert r.exit_code == 0 and "no perfcast adapter runs openvino fp32 inference on t4" in r.output.replace("\n", " ")


def test_optimize_deployment_returns_predicts_cautions_in_the_python_api(tmp_path: Path) -> None:
    from engine.optimize.optimizer import optimize_deployment

    r = optimize_deployment("bert-base-uncased", "throughput", None, {"hardware": ["t4"], "batch_size": [1, 8],
                                                                       "precision": ["fp16", "bf16"]},
                            db=str(tmp_path / "o.duckdb"), predictor=_roofline(tmp_path))
    assert any("no cuda device has been measured" in w for w in r.warnings)
    assert any("t4 lists no bf16 peak" in w for w in r.warnings) == any(
        a.config.precision == "bf16" for a in (r.best, *r.alternatives))
    assert r.to_dict()["warnings"] == r.warnings


def _roofline(tmp_path: Path):
    from engine.models.roofline import RooflinePredictor
    from engine.store import Store

    return RooflinePredictor().fit(Store(tmp_path / "o.duckdb").measurements())


def test_a_config_naming_cuda_on_a_cpu_machine_or_an_unknown_device_is_one_line(tmp_path: Path) -> None:
    from experiments.config import ExperimentConfigError, parse_config
    from experiments.space import expand_space

    cfg = parse_config({"name": "x", "search_space": {"models": ["gpt2"], "hardware": ["cuda"]}})
    configs = expand_space(cfg.search_space)  # the catalog's cuda device when torch has no CUDA (was a traceback)
    assert configs and all(c.hardware for c in configs)
    bad = parse_config({"name": "x", "search_space": {"models": ["gpt2"], "hardware": ["foo"]}})
    with pytest.raises(ExperimentConfigError, match="unknown hardware 'foo'"):
        expand_space(bad.search_space)
    remote = parse_config({"name": "x", "search_space": {"models": ["gpt2"], "hardware": ["cpu-intel-xyz-64c"]}})
    assert {c.hardware for c in expand_space(remote.search_space)} == {"cpu-intel-xyz-64c"}  # a Ray worker's CPU


def test_db_delete_of_an_unknown_experiment_is_an_error(tmp_path: Path) -> None:
    from engine.store import Store

    db = tmp_path / "d.duckdb"
    assert Store(db, seed=False).experiments() == []  # an existing, empty store
    r = CliRunner().invoke(cli, ["db", "delete", "--experiment", "tiny-run", "--db", str(db)])
    assert r.exit_code == 2 and "unknown experiment in this store 'tiny-run'" in r.output


def test_suggested_commands_follow_the_spaces_benchmark_protocol() -> None:
    from engine.active_learning import ActiveLearningSystem, benchmark_command

    protocol = ActiveLearningSystem(space="cpu-quick").protocol()
    line = benchmark_command({"model_name": "gpt2", "hardware": "t4", "batch_size": 1}, protocol=protocol)
    assert f"--iterations {protocol['iterations']} " in line and f"--max-time {protocol['max_time_s']:g} " in line
    assert f"--decode-tokens {protocol['decode_tokens']} " in line
    assert "--iterations 20 " in benchmark_command({"model_name": "gpt2", "hardware": "t4", "batch_size": 1})


def test_hardware_list_shows_reference_markers_and_whole_numbers() -> None:
    r = CliRunner(env={"COLUMNS": "80"}).invoke(cli, ["hardware", "list"])
    assert r.exit_code == 0 and "a100-80gb ^" in r.output and "…" not in r.output
    from engine.catalog import all_hardware

    lines = r.output.splitlines()
    # every id whole on one line at 80 columns (the longest CPU ids folded until session 24)
    for hid in all_hardware(detect=False):
        assert any(line.lstrip().startswith(f"{hid} ") for line in lines), hid
    wide = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["hardware", "list"])
    assert "(ref: cuda)" in wide.output  # the marker rich once read as a style tag and dropped


def test_gpu_configs_of_a_space_carry_no_thread_counts() -> None:
    from experiments.config import parse_config
    from experiments.space import expand_space

    cfg = parse_config({"name": "x", "search_space": {"models": ["gpt2"], "hardware": ["t4", "cpu-amd-epyc-2c"],
                                                      "threads": [1, 2]}})
    configs = expand_space(cfg.search_space)
    assert {c.threads for c in configs if c.hardware == "t4"} == {0}
    assert {c.threads for c in configs if c.hardware == "cpu-amd-epyc-2c"} == {1, 2}


def test_one_runtime_for_all_names_needs_no_same_device_note() -> None:
    from engine.recommend import HardwareRecommender
    from hardware.detect import local_cpu_id
    from tests.engine.test_recommend import FakePredictor

    rec = HardwareRecommender(FakePredictor({local_cpu_id(): 10.0}), available_hardware=["openvino", "cpu"])
    r = rec.recommend_hardware(model_name="bert-base-uncased", runtime="torch")
    assert r.options[0].config.runtime == "torch" and not any("same device" in n for n in r.notes)


def test_compare_hardware_text_names_devices_without_runs(tmp_path: Path) -> None:
    r = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["compare-hardware", "--model", "gpt2", "--hardware",
                                                       "cpu-amd-epyc-2c,cpu-intel-xeon-amx-2c", "--predictor",
                                                       "roofline", "--db", str(tmp_path / "c.duckdb")])
    assert r.exit_code == 0 and "cpu-intel-xeon-amx-2c has no measurements in the store" in r.output


def test_the_plateau_stop_rule_reads_the_prequential_error() -> None:
    from experiments.config import ExperimentConfigError, parse_config
    from experiments.loop import ExperimentLoop

    loop = ExperimentLoop.__new__(ExperimentLoop)  # only the prequential record is read

    def with_apes(apes):
        loop.prequential = [{"ape": a} for a in apes] + [{"ape": None, "status": "oom"}]  # failures are skipped
        return loop

    falling = [0.3] * 10 + [0.2] * 10
    assert with_apes(falling)._plateau(10, 0.0) is None and with_apes(falling[:15])._plateau(10, 0.0) is None
    flat = [0.2] * 10 + [0.21] * 10
    why = with_apes(flat)._plateau(10, 0.0)
    assert why is not None and "21.0% over the last 10 runs, 20.0% over the 10 before" in why
    assert with_apes([0.3] * 10 + [0.295] * 10)._plateau(10, 0.01) is not None  # half a point < the 1-point gain
    assert with_apes(falling)._plateau(None, 0.0) is None
    cfg = parse_config({"name": "x", "search_space": {}, "stop": {"plateau_runs": 16, "plateau_min_gain": 0.01}})
    assert cfg.stop.plateau_runs == 16
    with pytest.raises(ExperimentConfigError, match="plateau_runs"):
        parse_config({"name": "x", "search_space": {}, "stop": {"plateau_runs": 1}})


def test_recommend_takes_hourly_prices_for_devices_the_catalog_has_none_for(tmp_path: Path) -> None:
    """The local CPU has no catalog price, so `--metric cost --available cpu` was a dead end."""
    from engine.recommend import HardwareRecommender
    from hardware.detect import local_cpu_id
    from tests.engine.test_recommend import FakePredictor

    cpu = local_cpu_id()
    rec = HardwareRecommender(FakePredictor({cpu: 50.0, "t4": 100.0}), available_hardware=["cpu", "t4"])
    with pytest.raises(InvalidValueError, match="hourly prices"):
        HardwareRecommender(FakePredictor({cpu: 50.0}), available_hardware=["cpu"]).recommend_hardware(
            model_name="bert-base-uncased", optimization_metric="cost")
    r = rec.recommend_hardware(model_name="bert-base-uncased", optimization_metric="cost", prices={"cpu": 0.01})
    cpu_row = next(o for o in r.options if o.hardware == cpu)
    assert cpu_row.price_per_hour_usd == 0.01 and r.recommended == cpu  # 0.01 $/h at 50/s beats 0.526 at 100/s
    with pytest.raises(InvalidValueError, match="positive"):
        rec.recommend_hardware(model_name="bert-base-uncased", prices={"cpu": -1})
    out = CliRunner().invoke(cli, ["recommend-hardware", "--model", "bert-base-uncased", "--price-per-hour", "0.05",
                                   "--db", str(tmp_path / "r.duckdb")])
    assert out.exit_code == 2 and "name the devices" in out.output
