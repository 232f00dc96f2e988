"""Adapter names and platform names -> adapters, with close-match errors for typos.

Adapters are imported lazily (``"module:Class"``) so that listing or validating names never
imports torch, ONNX Runtime or OpenVINO.
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

from engine.errors import UnknownNameError

ADAPTERS: dict[str, str] = {
    "torch-cpu": "hardware.torch_cpu:TorchCPUAdapter",
    "torch-cuda": "hardware.torch_cuda:TorchCUDAAdapter",
    "torch-mps": "hardware.torch_mps:TorchMPSAdapter",
    "onnxruntime": "hardware.onnxruntime_adapter:OnnxRuntimeAdapter",
    "openvino": "hardware.openvino_adapter:OpenVINOAdapter",
    "qnn": "hardware.qnn:QNNAdapter",
}

# platform (catalog kind) -> adapter used when a user says "--hardware cpu"
PLATFORMS: dict[str, str] = {
    "cpu": "torch-cpu",
    "cuda": "torch-cuda",
    "rocm": "torch-cuda",
    "gpu": "torch-cuda",
    "mps": "torch-mps",
    "openvino": "openvino",
    "qnn": "qnn",
}

# (platform, runtime) -> adapter: "--hardware cpu --runtime onnxruntime" means the ORT adapter
RUNTIME_ADAPTERS: dict[tuple[str, str], str] = {
    ("cpu", "torch"): "torch-cpu",
    ("cpu", "onnxruntime"): "onnxruntime",
    ("cpu", "openvino"): "openvino",
    ("cuda", "torch"): "torch-cuda",
    ("rocm", "torch"): "torch-cuda",
    ("gpu", "torch"): "torch-cuda",
    ("cuda", "onnxruntime"): "onnxruntime",
    ("mps", "torch"): "torch-mps",
    ("qnn", "qnn"): "qnn",
}


def adapter_names() -> list[str]:
    return list(ADAPTERS)


@lru_cache(maxsize=None)
def get_adapter(name: str) -> Any:
    """The adapter instance for an adapter name (``torch-cpu``) or a platform name (``cpu``)."""
    name = name.strip().lower()
    if name in PLATFORMS and name not in ADAPTERS:
        name = PLATFORMS[name]
    target = ADAPTERS.get(name)
    if target is None:
        raise UnknownNameError("hardware adapter", name, [*ADAPTERS, *PLATFORMS])
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)()


def resolve(hardware: str, runtime: str | None = None) -> Any:
    """The adapter for ``--hardware X [--runtime Y]``.

    An adapter name wins outright; a platform name picks the adapter for the runtime (``cpu`` +
    ``onnxruntime`` -> the ONNX Runtime adapter).
    """
    h = hardware.strip().lower()
    if h in ADAPTERS:
        return get_adapter(h)
    if h in PLATFORMS:
        if runtime:
            key = (h, runtime)
            if key not in RUNTIME_ADAPTERS:
                valid = sorted(r for (p, r) in RUNTIME_ADAPTERS if p == h)
                from engine.errors import InvalidValueError

                raise InvalidValueError(f"runtime for hardware '{h}'", runtime, ", ".join(valid))
            return get_adapter(RUNTIME_ADAPTERS[key])
        return get_adapter(PLATFORMS[h])
    from hardware.detect import local_cpu_id

    if h == local_cpu_id():  # this machine's own CPU, by the id `hardware list` marks with *
        return resolve("cpu", runtime)
    from engine.catalog import all_hardware

    entry = all_hardware(detect=False).get(h)
    if entry is not None:  # a catalog device: known, but benchmarks run on this machine's devices
        from engine.errors import NotAvailableError

        raise NotAvailableError(f"'{h}' is a catalog device ({entry.kind}); benchmark measures this machine, so "
                                f"name its platform or adapter ({', '.join(sorted(PLATFORMS))}; "
                                f"{', '.join(sorted(ADAPTERS))}) on a machine that has one, or predict {h}")
    raise UnknownNameError("hardware", h, [*ADAPTERS, *PLATFORMS])
