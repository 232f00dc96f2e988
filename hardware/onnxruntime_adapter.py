"""ONNX Runtime: the exported graph on the CPU execution provider.

Only the CPU: this adapter's runs carry this machine's CPU id, and its memory is the process's
resident set. ONNX Runtime on CUDA is a deployment perfcast ranks and predicts but does not
measure (``hardware.registry.UNMEASURED_DEPLOYMENTS``); before, the CUDA provider was picked for a
configuration whose hardware was not this CPU, a path no command reached.

Precisions: fp32 (the export) and int8 (ONNX Runtime's own dynamic quantization of it). bf16 is
refused with a reason: the CPU execution provider has no bf16 kernels for most operators, so a
"bf16" run would silently fall back and be mislabelled.
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from typing import Any

from engine.records import Measurement
from hardware.base import AdapterBase, BenchmarkSpec
from hardware.protocol import MemorySampler, time_iterations


@dataclass
class OnnxRuntimeAdapter(AdapterBase):
    name: str = "onnxruntime"
    runtime: str = "onnxruntime"
    platform: str = "cpu"

    def available(self) -> tuple[bool, str]:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return False, "onnxruntime is not installed (pip install onnxruntime)"
        try:
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError:
            return False, "exporting models needs onnx and onnxscript (pip install onnx onnxscript)"
        return True, ""

    def versions(self) -> dict[str, str]:
        import onnxruntime
        import torch

        v = {"python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
             "torch": torch.__version__}
        try:
            import onnx

            v["onnx"] = onnx.__version__
        except ImportError:  # pragma: no cover
            pass
        return v

    def providers(self, config_hardware: str) -> list[str]:
        """The execution providers a run uses: the CPU's (module docstring)."""
        return ["CPUExecutionProvider"]

    def run_inline(self, spec: BenchmarkSpec) -> Measurement:
        import onnxruntime as ort

        from hardware.onnx_export import ensure_onnx, numpy_inputs

        c = spec.config
        why = self.refusal(c)
        if why:
            raise ValueError(why)
        t_start = time.perf_counter()
        with MemorySampler() as mem:
            path, _ = ensure_onnx(c.model, c.precision)
            so = ort.SessionOptions()
            so.intra_op_num_threads = c.threads  # 0 = ORT default (all cores)
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.log_severity_level = 3
            sess = ort.InferenceSession(str(path), so, providers=self.providers(c.hardware))
            feeds = _feeds(sess, numpy_inputs(c.model, c.batch_size, c.seq_len))

            def step() -> Any:
                return sess.run(None, feeds)

            step()
            load_s = time.perf_counter() - t_start
            samples = time_iterations(step, spec.with_warmup(max(spec.warmup - 1, 0)))
        return Measurement.from_samples(
            c, samples, memory_peak_mib=mem.peak_mib, memory_avg_mib=mem.avg_mib, load_time_s=load_s,
            warmup=spec.warmup, wall_time_s=time.perf_counter() - t_start, device_name=self.device_name(),
            versions=self.versions())


def _feeds(sess: Any, arrays: dict[str, Any]) -> dict[str, Any]:
    names = [i.name for i in sess.get_inputs()]
    missing = [n for n in names if n not in arrays]
    if missing:
        raise ValueError(f"ONNX graph expects inputs {missing} that the workload does not provide")
    return {n: arrays[n] for n in names}
