from __future__ import annotations

import pytest

from engine.errors import InvalidValueError, UnknownNameError
from hardware.base import Adapter
from hardware.registry import adapter_names, get_adapter, resolve


def test_every_adapter_follows_the_protocol() -> None:
    for name in adapter_names():
        a = get_adapter(name)
        assert isinstance(a, Adapter)
        ok, why = a.available()
        assert isinstance(ok, bool)
        assert ok or why, f"{name} unavailable without a reason"


def test_platform_names_map_to_adapters() -> None:
    assert get_adapter("cpu").name == "torch-cpu"
    assert get_adapter("cuda").name == "torch-cuda"
    assert get_adapter("rocm").name == "torch-cuda"
    assert resolve("cpu", "onnxruntime").name == "onnxruntime"
    assert resolve("cpu", "openvino").name == "openvino"
    assert resolve("openvino").name == "openvino"


def test_unknown_names_suggest_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'torch-cpu'"):
        get_adapter("torch-cpuu")
    with pytest.raises(UnknownNameError, match="'cpu'"):
        resolve("cpux")
    with pytest.raises(InvalidValueError, match="valid: onnxruntime, openvino, torch"):
        resolve("cpu", "qnn")


def test_cpu_adapters_share_the_local_hardware_id(cpu_id: str) -> None:
    assert {get_adapter(n).hardware_id() for n in ("torch-cpu", "onnxruntime", "openvino")} == {cpu_id}
    assert get_adapter("torch-cpu").detect().id == cpu_id


def test_onnxruntime_on_cuda_is_refused_not_measured_on_the_cpu() -> None:
    """Audit (2026-12-08): `benchmark --hardware cuda --runtime onnxruntime` ran ONNX Runtime on this
    machine's CPU and showed (with --save, stored) a CPU run; an experiment's `hardware: [cuda]` with
    `runtimes: [onnxruntime]` did the same. It stays a deployment that is ranked and predicted, with
    predict's caution that no adapter measures it."""
    from engine.optimize.spec import adapter_measures, runtime_runs_on

    with pytest.raises(InvalidValueError, match="invalid runtime for hardware 'cuda' 'onnxruntime'; valid: torch"):
        resolve("cuda", "onnxruntime")
    assert runtime_runs_on("cuda", "onnxruntime")  # optimize and recommend still rank it
    assert not adapter_measures("cuda", "onnxruntime", "fp32", "inference")
    assert adapter_measures("cpu", "onnxruntime", "fp32", "inference") and adapter_measures("cuda", "torch", "fp16",
                                                                                           "inference")
    assert get_adapter("onnxruntime").providers("a100-80gb") == ["CPUExecutionProvider"]


def test_an_experiment_asking_for_onnxruntime_on_cuda_is_refused() -> None:
    from experiments.config import ExperimentConfigError, SearchSpace
    from experiments.space import hardware_runtime_pairs

    with pytest.raises(ExperimentConfigError, match="runtimes 'onnxruntime' for hardware 'cuda'; valid: torch"):
        hardware_runtime_pairs(SearchSpace(models=["gpt2"], hardware=["cuda"], runtimes=["onnxruntime"]))
