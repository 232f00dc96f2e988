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
