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

#: What the adapters refuse outright, before measuring: ONNX Runtime runs fp32 and int8 only,
#: ONNX Runtime and OpenVINO measure inference only, torch's int8 is dynamic quantisation
#: (inference only, and CPU only: :func:`adapter_refuses`). One table for the adapters themselves
#: (:meth:`hardware.base.AdapterBase.refusal`), a loop's pool, ``benchmark`` and optimize's space.
ADAPTER_REFUSES: frozenset[tuple[str, str, str]] = frozenset(
    {("onnxruntime", p, m) for p in ("fp16", "bf16") for m in ("inference", "training")}
    | {("onnxruntime", p, "training") for p in ("fp32", "fp16", "bf16", "int8")}
    | {("openvino", p, "training") for p in ("fp32", "fp16", "bf16", "int8")}
    | {("torch", "int8", "training")})


def adapter_refuses(kind: str, runtime: str, precision: str, mode: str) -> bool:
    """Whether the adapter for (device kind, runtime) refuses this precision and mode: the
    runtime-wide table, plus torch's int8 (dynamic quantization), which runs on CPUs only. An
    optimisation over cuda once ranked torch/int8 on an A100 first, a configuration no adapter runs."""
    return (runtime, precision, mode) in ADAPTER_REFUSES or (runtime == "torch" and precision == "int8"
                                                              and kind != "cpu")


def refusal_reason(kind: str, runtime: str, precision: str, mode: str) -> str | None:
    """Why the adapter refuses (the line a refused run or a left-out configuration shows), or None."""
    if not adapter_refuses(kind, runtime, precision, mode):
        return None
    if runtime in ("onnxruntime", "openvino") and mode != "inference":
        return f"{runtime} measures inference only; valid modes: inference"
    if runtime == "onnxruntime":
        return f"onnxruntime on CPU has no {precision} kernels for most operators; valid precisions: fp32, int8"
    if mode == "training":
        return ("int8 training is not supported by the torch adapters (dynamic quantization is inference-only); "
                "valid precisions: fp32, fp16, bf16")
    return ("int8 with torch runs on CPU only (dynamic quantization); use --runtime onnxruntime or openvino "
            "for int8 elsewhere")


# (platform, runtime) -> adapter: "--hardware cpu --runtime onnxruntime" means the ORT adapter
RUNTIME_ADAPTERS: dict[tuple[str, str], str] = {
    ("cpu", "torch"): "torch-cpu",
    ("cpu", "onnxruntime"): "onnxruntime",
    ("cpu", "openvino"): "openvino",
    ("cuda", "torch"): "torch-cuda",
    ("rocm", "torch"): "torch-cuda",
    ("gpu", "torch"): "torch-cuda",
    ("mps", "torch"): "torch-mps",
    ("qnn", "qnn"): "qnn",
}


#: (device kind, runtime) deployments that no perfcast adapter measures, though the runtime runs there:
#: ONNX Runtime's CUDA execution provider. They are ranked and predicted
#: (:func:`engine.optimize.spec.runtime_runs_on`), and a prediction says it cannot be benchmarked.
#: ``("cuda", "onnxruntime")`` named the ONNX Runtime adapter, which measures this machine's CPU:
#: ``benchmark --hardware cuda --runtime onnxruntime`` timed the CPU and stored a CPU run, and an
#: experiment's ``hardware: [cuda]`` with ``runtimes: [onnxruntime]`` benchmarked the CPU (audit, 2026-12-08).
UNMEASURED_DEPLOYMENTS: frozenset[tuple[str, str]] = frozenset({("cuda", "onnxruntime")})


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
    if entry is not None and entry.kind in PLATFORMS and entry.kind != "cpu":
        # this machine's GPU by its catalog id (suggest's run.sh names the device it recommends)
        from engine.errors import InvalidValueError

        try:
            adapter = resolve(entry.kind, runtime)
            if adapter.available()[0] and adapter.hardware_id() == h:
                return adapter
        except InvalidValueError:  # a runtime the platform has no adapter for: that is the error to give
            raise
        except Exception:  # noqa: BLE001 - no such platform here: the error below says what to do
            pass
    if entry is not None:  # a catalog device: known, but benchmarks run on this machine's devices
        from engine.errors import NotAvailableError

        here = f" (this machine's CPU is {local_cpu_id()})" if entry.kind == "cpu" else ""  # read above already
        raise NotAvailableError(f"'{h}' is a catalog device ({entry.kind}) that this machine does not have{here}; "
                                f"benchmark measures this machine, so run it on a machine with {h}, name this "
                                f"machine's platform or adapter ({', '.join(sorted(PLATFORMS))}; "
                                f"{', '.join(sorted(ADAPTERS))}), or predict {h}")
    raise UnknownNameError("hardware", h, [*ADAPTERS, *PLATFORMS])
