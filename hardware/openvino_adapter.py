"""OpenVINO on the CPU device, from the same cached ONNX export as ONNX Runtime.

fp32 and bf16 are the same graph compiled with a different ``INFERENCE_PRECISION_HINT`` (bf16
runs on AVX512-BF16/AMX CPUs; elsewhere OpenVINO falls back and the run says so in its
``device_name``); int8 reads ONNX Runtime's dynamically quantized graph. The model is reshaped to
the static (batch, seq) of the config before compiling, as a deployment would.
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from typing import Any

from engine.records import Measurement
from hardware.base import AdapterBase, BenchmarkSpec
from hardware.protocol import MemorySampler, time_iterations

HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}


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
            request = compiled.create_infer_request()
            feeds = {n: arrays[n] for n in names}

            def step() -> Any:
                return request.infer(feeds)

            step()
            load_s = time.perf_counter() - t_start
            samples = time_iterations(step, spec.with_warmup(max(spec.warmup - 1, 0)))
            actual = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        return Measurement.from_samples(
            c, samples, memory_peak_mib=mem.peak_mib, memory_avg_mib=mem.avg_mib, load_time_s=load_s,
            warmup=spec.warmup, wall_time_s=time.perf_counter() - t_start,
            device_name=f"{self.device_name()} (OpenVINO CPU, precision {actual})", versions=self.versions())
