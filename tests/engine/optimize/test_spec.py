"""Bad input is refused in one line, naming the bad value and what would be valid, before anything runs."""
from __future__ import annotations

import pytest

from engine.errors import InvalidValueError, PerfcastError, UnknownNameError
from engine.optimize.optimizer import optimize_deployment
from engine.optimize.spec import build_problem, parse_constraints, parse_objectives


class NeverRun:
    def __init__(self) -> None:
        self.calls = 0

    def run(self, config):  # pragma: no cover - must never be reached
        self.calls += 1
        raise AssertionError("a benchmark ran despite bad input")


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"space": {"hardware": ["t4"], "batchsize": [1, 2]}}, UnknownNameError, ["batchsize", "batch_size"]),
    ({"space": {}}, InvalidValueError, ["space"]),
    ({"space": {"hardware": ["t4"], "batch_size": []}}, InvalidValueError, ["batch_size", "non-empty"]),
    ({"space": {"hardware": ["t4"], "batch_size": [0, 2]}}, InvalidValueError, ["batch_size", ">= 1"]),
    ({"space": {"hardware": ["t4"], "precision": ["fp64"]}}, InvalidValueError, ["fp64", "fp32"]),
    ({"constraints": {"latency_p90_ms": -5}}, InvalidValueError, ["latency_p90_ms", "positive"]),
    ({"constraints": {"latency_p90_ms": float("nan")}}, InvalidValueError, ["latency_p90_ms"]),
    ({"constraints": {"power_w": 100}}, UnknownNameError, ["power_w", "constraint metric"]),
    ({"objective": "speed"}, UnknownNameError, ["speed", "objective"]),
    ({"budget": 0}, InvalidValueError, ["budget"]),
    ({"constraints": [100]}, InvalidValueError, ["constraints", "[100]", "latency_p90_ms"]),
    ({"space": ["cpu"]}, InvalidValueError, ["space", "['cpu']", "batch_size"]),
    ({"seed": -1}, InvalidValueError, ["invalid seed -1", ">= 0"]),
    ({"mc_samples": 0}, InvalidValueError, ["invalid mc_samples 0", ">= 1"]),
    ({"n_init": "2"}, InvalidValueError, ["invalid n_init '2'", ">= 1"]),
    ({"callback": 5}, InvalidValueError, ["invalid callback 5", "a function"]),
    ({"predictor": 5}, InvalidValueError, ["invalid predictor 5", "PerformancePredictor"]),
])
def test_bad_input_is_one_clear_line_and_nothing_runs(kwargs, exc, words):
    ex = NeverRun()
    args = {"space": {"hardware": ["t4"]}, **kwargs}
    with pytest.raises(exc) as info:
        optimize_deployment("bert-base-uncased", online=True, executor=ex, db=False, **args)
    msg = str(info.value)
    assert isinstance(info.value, PerfcastError) and info.value.exit_code == 2
    assert "\n" not in msg
    for w in words:
        assert w in msg
    assert ex.calls == 0


def test_unknown_space_key_lists_valid_keys():
    with pytest.raises(UnknownNameError) as info:
        build_problem("bert-base-uncased", space={"gpu": ["t4"]})
    assert "gpu" in str(info.value) and "hardware" in str(info.value)


def test_unknown_model_and_hardware_are_named():
    with pytest.raises(UnknownNameError, match="bert-base-uncase"):
        build_problem("bert-base-uncase", space={"hardware": ["t4"]})
    with pytest.raises(UnknownNameError, match="tpu-v9"):
        build_problem("bert-base-uncased", space={"hardware": ["tpu-v9"]})


def test_cost_needs_hourly_prices():
    with pytest.raises(InvalidValueError, match="hourly price"):
        build_problem("bert-base-uncased", "cost", space={"hardware": ["xeon-8480"], "runtime": ["openvino"]})


def test_aliases_and_directions():
    assert parse_objectives("latency,throughput") == ("latency_ms", "throughput")
    (c,) = parse_constraints({"throughput": 100})
    assert not c.upper and c.satisfied(150) and not c.satisfied(50)
    (c,) = parse_constraints({"p90": 20})
    assert c.metric == "latency_p90_ms" and c.upper and c.satisfied(10) and not c.satisfied(None)


def test_space_enumerates_product_with_defaults():
    p = build_problem("bert-base-uncased", space={"hardware": ["t4", "a100-80gb"], "batch_size": [1, 4],
                                                  "precision": ["fp32", "fp16"], "threads": [0], "runtime": ["torch"]})
    assert len(p.candidates) == 2 * 2 * 2
    assert {c.hardware for c in p.candidates} == {"t4", "a100-80gb"}


def test_torch_int8_is_not_enumerated_on_a_gpu() -> None:
    from engine.optimize.spec import adapter_refuses, enumerate_space, normalise_space

    assert adapter_refuses("cuda", "torch", "int8", "inference") and not adapter_refuses("cpu", "torch", "int8",
                                                                                          "inference")
    space = normalise_space({"precision": ["fp16", "int8"], "runtime": ["torch"], "threads": [0]})
    configs = enumerate_space("bert-base-uncased", space, ["a100-80gb"])
    assert configs and {c.precision for c in configs} == {"fp16"}


def test_offline_takes_a_performance_predictor(tmp_path) -> None:
    """Audit: predictor=PerformancePredictor(...) was called as a fitted model, predict(configs): a
    TypeError (missing 'hardware'); it ranks with that predictor's fit now."""
    from engine.predict import PerformancePredictor

    db = tmp_path / "s.duckdb"
    r = optimize_deployment("bert-base-uncased", db=db, predictor=PerformancePredictor(db, predictor="roofline"),
                            space={"hardware": ["cpu-amd-epyc-2c"], "batch_size": [1, 2], "precision": ["fp32"],
                                   "runtime": ["torch"], "threads": [1]})
    assert r.best is not None and len(r.alternatives) + 1 == 2
