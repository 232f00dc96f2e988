"""The Python API names a bad argument, its value and what would be valid, instead of raising a
TypeError deep inside or coercing it silently."""
from __future__ import annotations

import re

import pytest

from engine.config import COUNT_MAX, Config
from engine.errors import InvalidValueError, PerfcastError


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
    # a mistyped config name or predictor is said when the system is made, not at its first pick
    with pytest.raises(PerfcastError, match="unknown experiment config 'cpu-quik'; did you mean 'cpu-quick'"):
        ActiveLearningSystem(tmp_path / "never.duckdb", space="cpu-quik")
    with pytest.raises(PerfcastError, match="unknown predictor 'gpp'; did you mean 'gp'"):
        ActiveLearningSystem(tmp_path / "never.duckdb", predictor="gpp")
    assert not (tmp_path / "never.duckdb").exists()
    # audit: a non-recommender was taken, and every item came back with empty hardware fields
    with pytest.raises(InvalidValueError, match="invalid hardware recommender 'x'; valid: an engine.HardwareRecommender"):
        ActiveLearningSystem(tmp_path / "none.duckdb").integrate_with_hardware_recommender("x", test_budget=2)


@pytest.mark.parametrize("model", ["resnet50", "gpt2", "clip-vit-base-patch32"])
def test_a_negative_sequence_length_is_refused_for_every_model(model: str) -> None:
    """Audit: a vision model's sequence length is 0 whatever was asked, so `--seq-length -1` passed
    in recommend-hardware, matrix and optimize for resnet50 (predict refused it)."""
    from engine.catalog import get_model
    from engine.workloads import effective_seq_len

    with pytest.raises(InvalidValueError, match="invalid seq_len -1"):
        effective_seq_len(get_model(model), -1)
    assert effective_seq_len(get_model("resnet50"), 512) == 0  # a real length is still ignored there
    assert effective_seq_len(get_model("gpt2"), 0) == 128


def test_more_threads_than_cores_is_refused_in_matrix_and_for_a_config(tmp_path) -> None:
    """Audit: predict and compare-hardware refused t64 on a 2-core CPU, but matrix (and predict_many
    given a Config) answered it as t2."""
    from engine.matrix import build_matrix
    from engine.predict import PerformancePredictor

    pp = PerformancePredictor(tmp_path / "s.duckdb", predictor="roofline")
    with pytest.raises(InvalidValueError, match="invalid threads 64; valid: 0 to 2 on cpu-intel-xeon-amx-2c"):
        build_matrix(pp, ["gpt2"], ["cpu-intel-xeon-amx-2c", "t4"], [1], ["fp32"], threads=64, save=False)
    with pytest.raises(InvalidValueError, match="invalid threads 64"):
        pp.predict_many([Config("gpt2", "cpu-intel-xeon-amx-2c", threads=64)])
    assert build_matrix(pp, ["gpt2"], ["t4"], [1], ["fp32"], threads=0, save=False).n == 1


def test_threads_on_a_gpu_are_refused_in_predict_matrix_and_for_a_config(tmp_path) -> None:
    """Audit: `predict --hardware a10 --threads 4` answered "4 threads" (matrix and compare-hardware
    alike), though threads are CPU intra-op threads that a GPU's runtime ignores."""
    from engine.matrix import build_matrix
    from engine.predict import PerformancePredictor

    pp = PerformancePredictor(tmp_path / "s.duckdb", predictor="roofline")
    gpu = "invalid threads 4; valid: 0 on t4, a cuda device .*CPU devices only"
    with pytest.raises(InvalidValueError, match=gpu):
        pp.config("gpt2", "t4", threads=4)
    with pytest.raises(InvalidValueError, match=gpu):
        pp.predict_many([Config("gpt2", "t4", threads=4)])
    with pytest.raises(InvalidValueError, match=gpu):
        build_matrix(pp, ["gpt2"], ["t4"], [1], ["fp32"], threads=4, save=False)
    assert pp.config("gpt2", "cpu-intel-xeon-amx-2c", threads=2)[0].threads == 2
    # naming several devices, threads go to those that take them: the CPU at t2, the GPU as it runs
    xeon = "cpu-intel-xeon-amx-2c"
    assert [p.config.threads for p in pp.compare_hardware("gpt2", [xeon, "t4"], threads=2)] == [2, 0]
    m = build_matrix(pp, ["gpt2"], [xeon, "t4"], [1], ["fp32"], threads=2, save=False)
    assert sorted(c.threads for c in m.pset.configs) == [0, 2]
    with pytest.raises(InvalidValueError, match=gpu.replace("t4", "a10")):  # on GPUs alone: nowhere to go
        pp.compare_hardware("gpt2", ["a10", "t4"], threads=4)


def test_compare_hardware_resolves_each_device_once(tmp_path, resolve_calls) -> None:  # type: ignore[no-untyped-def]
    """Session 33: compare_hardware resolved each name for the threads rule and again in predict_many
    (each a read of the store's hardware table); one memo for the call now serves both."""
    from collections import Counter

    import engine.predict as predict_module

    pp = predict_module.PerformancePredictor(tmp_path / "s.duckdb", predictor="roofline")
    pp.fitted()
    resolve_calls.clear()  # the fit's own resolutions are not the call's
    calls = resolve_calls
    names = ["cpu-intel-xeon-amx-2c", "t4", "cuda"]
    preds = pp.compare_hardware("gpt2", names, threads=2)
    assert calls == Counter(names), calls
    assert [(p.config.hardware, p.config.threads) for p in preds] == [
        ("cpu-intel-xeon-amx-2c", 2), ("t4", 0), (predict_module.resolve("cuda").id, 0)]


@pytest.mark.parametrize("configs, words", [
    ("gpt2", ["invalid configurations 'gpt2'", "iterable"]),
    ({"model_name": "gpt2", "hardware": "cpu"}, ["invalid configurations", "iterable"]),
    (["gpt2"], ["invalid configuration 'gpt2'", "mapping"]),
    ([{"model_name": "gpt2", "hardware": "cpu", "batch": 8}], ["configuration key 'batch'", "batch_size"]),
    ([{"model_name": "gpt2"}], ["invalid configuration", "model_name and hardware"]),
])
def test_predict_many_names_a_badly_shaped_request(tmp_path, configs, words) -> None:
    """Audit: predict_many(["gpt2"]) was dict()'s 'dictionary update sequence element #0 has length 1',
    and an unknown key a TypeError naming the private _config()."""
    from engine.errors import PerfcastError
    from engine.predict import PerformancePredictor

    with pytest.raises(PerfcastError) as info:
        PerformancePredictor(tmp_path / "none.duckdb").predict_many(configs)
    assert info.value.exit_code == 2
    for w in words:
        assert w in str(info.value)


def test_a_db_that_is_no_path_is_named() -> None:
    """Audit: db=123 was pathlib's 'expected str, bytes or os.PathLike object, not int' in every API."""
    from engine.optimize.optimizer import optimize_deployment
    from engine.predict import PerformancePredictor

    valid = re.escape("valid: a path (str or os.PathLike), an engine.Store, or None")
    with pytest.raises(InvalidValueError, match=f"invalid db 123; {valid}"):
        PerformancePredictor(123).predict(model_name="gpt2", hardware="cpu")
    with pytest.raises(InvalidValueError, match=f"invalid db 123; {valid}"):
        optimize_deployment("gpt2", db=123)
