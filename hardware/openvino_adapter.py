"""OpenVINO on the CPU device, from the same cached ONNX export as ONNX Runtime.

fp32 and bf16 are the same graph compiled with a different ``INFERENCE_PRECISION_HINT`` (bf16
runs on AVX512-BF16/AMX CPUs; elsewhere OpenVINO falls back and the run says so in its
``device_name``); int8 reads ONNX Runtime's dynamically quantized graph. The model is reshaped to
the static (batch, seq) of the config before compiling, as a deployment would.

fp16 is refused where the CPU plugin has no f16 inference (``OPTIMIZATION_CAPABILITIES`` without
``FP16``: every x86 CPU before AVX512-FP16/AMX-FP16): the plugin then runs the f16 hint at another
precision without a word. On an AMD EPYC with AVX512-BF16 (audit, 2026-12-08) ``--precision fp16``
compiled to bf16 and was stored as an ok fp16 run, which every fit prices at this CPU's fp16 GEMM
peak (3 GFLOP/s against 360 for bf16). Unlike bf16's fall-back to f32, which the features know
about (``engine.models.features.executed_precision``), nothing reads an fp16 run as anything else.
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional

from engine.config import Config

from engine.records import Measurement
from hardware.base import AdapterBase, BenchmarkSpec
from hardware.protocol import MemorySampler, time_iterations

HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}


@lru_cache(maxsize=1)
def cpu_capabilities() -> Optional[tuple[str, ...]]:
    """The CPU plugin's ``OPTIMIZATION_CAPABILITIES`` (``FP32``, ``BF16``, ``FP16``, ``INT8``, ...),
    or None where OpenVINO cannot say (then nothing is refused on its account)."""
    try:
        import openvino as ov

        return tuple(str(c).upper() for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # noqa: BLE001 - no OpenVINO or no CPU device: available() says why
        return None


def fp16_refusal(capabilities: Optional[tuple[str, ...]]) -> Optional[str]:
    """Why an fp16 run cannot be measured as fp16 on a CPU plugin with these capabilities, or None."""
    if capabilities is None or "FP16" in capabilities:
        return None
    return (f"openvino on this CPU has no fp16 inference (its CPU plugin offers {', '.join(capabilities)}) and "
            f"would run the fp16 hint at another precision, stored as fp16; valid precisions: fp32, bf16, int8")


def executed_mismatch(precision: str, executed: str) -> Optional[str]:
    """Why a compiled model's inference precision (``executed``: ``f16``, ``bf16``, ``f32``) cannot be
    stored as ``precision``, or None. Only fp16 is checked: bf16's fall-back to f32 is known to the
    features and documented (module docstring), fp32 and int8 compile at f32."""
    if precision == "fp16" and executed != "f16":
        return (f"openvino compiled the fp16 hint as {executed} on this CPU (no f16 inference here); "
                f"not stored as fp16; valid precisions: fp32, bf16, int8")
    return None


@dataclass
class OpenVINOAdapter(AdapterBase):
    name: str = "openvino"
    runtime: str = "openvino"
    platform: str = "cpu"

    def available(self) -> tuple[bool, str]:
        try:
            import openvino as ov
        except ImportError:
            return False, "openvino is not installed (pip install openvino)"
        try:
            devices = ov.Core().available_devices
        except Exception as e:  # noqa: BLE001
            return False, f"OpenVINO could not list devices: {e}"
        if "CPU" not in devices:
            return False, f"OpenVINO has no CPU device here (devices: {', '.join(devices) or 'none'})"
        return True, ""

    def versions(self) -> dict[str, str]:
        import openvino as ov
        import torch

        return {"python": platform.python_version(), "openvino": ov.__version__, "torch": torch.__version__}

    def refusal(self, config: Config) -> Optional[str]:
        """The adapters' table (:meth:`AdapterBase.refusal`), plus fp16 on a CPU plugin without f16
        inference (module docstring): known before any child starts, so ``benchmark`` refuses it in
        one line and a loop leaves it out of its pool."""
        why = super().refusal(config)
        if why or config.precision != "fp16":
            return why
        return fp16_refusal(cpu_capabilities())

    def run_inline(self, spec: BenchmarkSpec) -> Measurement:
        import openvino as ov

        from hardware.onnx_export import ensure_onnx, numpy_inputs

        c = spec.config
        why = self.refusal(c)
        if why:
            raise ValueError(why)
        t_start = time.perf_counter()
        with MemorySampler() as mem:
            path, _ = ensure_onnx(c.model, "int8" if c.precision == "int8" else "fp32")
            core = ov.Core()
            model = core.read_model(str(path))
            arrays = numpy_inputs(c.model, c.batch_size, c.seq_len)
            names = [inp.get_any_name() for inp in model.inputs]
            model.reshape({n: ov.PartialShape(list(arrays[n].shape)) for n in names})
            cfg: dict[str, Any] = {"INFERENCE_PRECISION_HINT": HINTS[c.precision], "PERFORMANCE_HINT": "LATENCY"}
            if c.threads > 0:
                cfg["INFERENCE_NUM_THREADS"] = c.threads
            compiled = core.compile_model(model, "CPU", cfg)
            executed = compiled.get_property("INFERENCE_PRECISION_HINT")
            wrong = executed_mismatch(c.precision, getattr(executed, "get_type_name", lambda: str(executed))())
            if wrong:  # the plugin chose another precision than asked: a failed run, not a mislabelled one
                raise ValueError(wrong)
            request = compiled.create_infer_request()
            feeds = {n: arrays[n] for n in names}

            def step() -> Any:
                return request.infer(feeds)

            step()
            load_s = time.perf_counter() - t_start
            samples = time_iterations(step, spec.with_warmup(max(spec.warmup - 1, 0)))
            actual = str(executed)
        return Measurement.from_samples(
            c, samples, memory_peak_mib=mem.peak_mib, memory_avg_mib=mem.avg_mib, load_time_s=load_s,
            warmup=spec.warmup, wall_time_s=time.perf_counter() - t_start,
            device_name=f"{self.device_name()} (OpenVINO CPU, precision {actual})", versions=self.versions())
