"""Session 22's audit of the Python API and predict/optimize/recommend: each case gave a traceback,
a silent coercion or an answer no adapter could run."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from engine.config import COUNT_MAX, Config
from engine.errors import InvalidValueError


@pytest.mark.parametrize("kw, name", [({"batch_size": 10**20}, "batch_size"), ({"seq_len": True}, "seq_len"),
                                      ({"threads": True}, "threads"), ({"seq_len": COUNT_MAX + 1}, "seq_len")])
def test_counts_out_of_range_or_bool_are_named(kw, name) -> None:
    with pytest.raises(InvalidValueError, match=f"invalid {name}"):
        Config("gpt2", "cpu", **kw)


def test_more_threads_than_cores_is_refused_in_predict_and_skipped_or_refused_in_optimize() -> None:
    from engine.catalog import resolve_hardware
    from engine.models.features import entry_cores
    from engine.optimize.spec import enumerate_space, normalise_space
    from engine.predict import PerformancePredictor

    xeon = resolve_hardware("cpu-intel-xeon-amx-2c")
    assert entry_cores(xeon) == 2
    with pytest.raises(InvalidValueError, match="0 to 2 on cpu-intel-xeon-amx-2c"):
        PerformancePredictor(None).config("gpt2", "cpu-intel-xeon-amx-2c", threads=3)
    with pytest.raises(InvalidValueError, match="invalid threads 64"):
        enumerate_space("gpt2", normalise_space({"threads": [64]}), ["cpu-intel-xeon-amx-2c"])
    ok = enumerate_space("gpt2", normalise_space({"threads": [1, 2]}), ["cpu-intel-xeon-amx-2c"])
    assert {c.threads for c in ok} == {1, 2}


def test_torch_int8_is_not_enumerated_on_a_gpu() -> None:
    from engine.optimize.spec import adapter_refuses, enumerate_space, normalise_space

    assert adapter_refuses("cuda", "torch", "int8", "inference") and not adapter_refuses("cpu", "torch", "int8",
                                                                                          "inference")
    space = normalise_space({"precision": ["fp16", "int8"], "runtime": ["torch"], "threads": [0]})
    configs = enumerate_space("bert-base-uncased", space, ["a100-80gb"])
    assert configs and {c.precision for c in configs} == {"fp16"}


@pytest.mark.parametrize("argv", [["evaluate", "--seed", "-1", "--predictors", "roofline"],
                                  ["recommend-hardware", "--model", "gpt2", "--seed", "99999999999999999999"],
                                  ["recommend-hardware", "--model", "gpt2", "--available", ""]])
def test_bad_seeds_and_an_empty_available_list_exit_2_before_any_work(argv, tmp_path) -> None:
    from engine.cli.main import cli

    r = CliRunner().invoke(cli, [*argv, "--db", str(tmp_path / "x.duckdb")])
    assert r.exit_code == 2, (r.output, r.exception)
    assert "Traceback" not in r.output and not (tmp_path / "x.duckdb").exists()


def test_the_python_api_names_bad_values_instead_of_raising_type_errors(tmp_path) -> None:
    from engine.active_learning import ActiveLearningSystem
    from engine.errors import UnknownNameError
    from engine.models.base import MetricPrediction
    from engine.optimize.optimizer import optimize_deployment
    from engine.predict import PerformancePredictor

    pp = PerformancePredictor(tmp_path / "none.duckdb")
    with pytest.raises(UnknownNameError, match="unknown model 'None'"):
        pp.config(None, "cpu")
    with pytest.raises(InvalidValueError, match="invalid hardware"):
        pp.config("gpt2", ["cpu"])
    with pytest.raises(InvalidValueError, match="invalid seq_len '128'"):
        pp.config("gpt2", "cpu", seq_len="128")
    # a Config object's seq_len 0 is made effective as the keyword path does (s0 here, s128 there)
    assert pp._configs([Config("bert-base-uncased", "t4", seq_len=0)])[0][0].seq_len == 128
    m = MetricPrediction("latency_ms", mu_log=3.0, sigma_log=0.2)
    for bad in (-1, float("nan"), "50"):
        with pytest.raises(ValueError, match="invalid bound"):
            m.prob_below(bad)
    with pytest.raises(ValueError, match="invalid interval level"):
        m.interval("0.9")
    for kw, name in (({"online": "no"}, "online"), ({"top_k": -1}, "top_k"), ({"iterations": 0}, "iterations")):
        with pytest.raises(InvalidValueError, match=f"invalid {name}"):
            optimize_deployment("gpt2", db=False, **kw)
    with pytest.raises(InvalidValueError, match="memory_limit_mib"):
        ActiveLearningSystem(tmp_path / "none.duckdb", memory_limit_mib=-1)
    with pytest.raises(InvalidValueError, match="invalid space"):
        ActiveLearningSystem(tmp_path / "none.duckdb", space=[])


def test_a_comma_separated_string_of_devices_is_split_not_read_letter_by_letter() -> None:
    from engine.recommend import HardwareRecommender

    rec = HardwareRecommender(predictor=object(), available_hardware="cpu, t4")
    assert rec.available_hardware == ["cpu", "t4"]


def test_a_prediction_for_a_configuration_no_adapter_runs_says_so() -> None:
    from engine.predict import ResolvedHardware, unrunnable_caution

    h100 = ResolvedHardware("h100-sxm", "h100-sxm", "H100", "cuda")
    cpu = ResolvedHardware("cpu", "cpu-amd-epyc-2c", "EPYC", "cpu")
    assert "no perfcast adapter runs openvino" in unrunnable_caution(Config("gpt2", "h100-sxm", runtime="openvino"),
                                                                     h100)
    assert "torch int8" in unrunnable_caution(Config("gpt2", "h100-sxm", precision="int8"), h100)
    assert unrunnable_caution(Config("gpt2", "cpu-amd-epyc-2c", precision="int8"), cpu) is None
    assert unrunnable_caution(Config("gpt2", "h100-sxm", precision="fp16"), h100) is None


def test_an_explicit_space_names_devices_not_platforms(tmp_path) -> None:
    from engine.active_learning import ActiveLearningSystem
    from hardware.detect import local_cpu_id

    als = ActiveLearningSystem(tmp_path / "s.duckdb", space=[Config("gpt2", "cpu"), Config("gpt2", "t4")])
    assert [c.hardware for c in als.space()] == [local_cpu_id(), "t4"]


def test_optimize_cautions_for_devices_the_store_cannot_vouch_for(tmp_path) -> None:
    import json

    from engine.cli.main import cli

    db = str(tmp_path / "o.duckdb")
    cuda = CliRunner().invoke(cli, ["optimize", "--model", "bert-base-uncased", "--hardware", "cuda", "--json",
                                    "--db", db])
    assert cuda.exit_code == 0, cuda.output
    assert any("no cuda device has been measured" in w for w in json.loads(cuda.stdout)["warnings"])
    shipped = CliRunner().invoke(cli, ["optimize", "--model", "bert-base-uncased", "--hardware", "cpu-amd-epyc-2c",
                                       "--json", "--db", db])
    assert shipped.exit_code == 0 and json.loads(shipped.stdout)["warnings"] == []  # measured: nothing to say


def test_a_precision_the_accelerator_lists_no_peak_for_is_flagged() -> None:
    from engine.predict import borrowed_peak_caution

    assert "t4 lists no bf16 peak" in borrowed_peak_caution(Config("gpt2", "t4", precision="bf16"))
    assert "its fp32 peak" in borrowed_peak_caution(Config("gpt2", "t4", precision="bf16"))
    assert borrowed_peak_caution(Config("gpt2", "t4", precision="fp16")) is None
    assert borrowed_peak_caution(Config("gpt2", "cpu-amd-epyc-2c", precision="fp16")) is None  # CPUs: by design


def test_bf16_without_bf16_units_runs_at_the_fp32_peak_not_the_fp16_tensor_cores() -> None:
    """A T4 lists fp16 at 65 TFLOP/s and fp32 at 8.1; bf16 borrowed the 65 (8x optimistic)."""
    from engine.catalog import resolve_hardware
    from engine.models.features import HardwareFacts

    t4 = resolve_hardware("t4")
    assert t4.peak_flops("bf16") == t4.peak_flops("fp32") < t4.peak_flops("fp16")
    facts = HardwareFacts.from_entry(t4)
    assert facts.peak("bf16") == facts.peak("fp32")
    a100 = resolve_hardware("a100-80gb")  # lists bf16: unchanged
    assert a100.peak_flops("bf16") == a100.peak_tflops["bf16"] * 1e12
