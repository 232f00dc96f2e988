"""torch on the CPU: fp32, bf16, fp16, int8 (dynamic quantization), inference and training."""
from __future__ import annotations

import time
from dataclasses import dataclass

from engine.records import Measurement
from hardware.base import AdapterBase, BenchmarkSpec
from hardware.protocol import MemorySampler, time_iterations


def torch_versions() -> dict[str, str]:
    import platform

    import torch

    from hardware.torch_common import build_versions

    v = {"python": platform.python_version(), "torch": torch.__version__, **build_versions()}
    try:
        import transformers

        v["transformers"] = transformers.__version__
    except ImportError:  # pragma: no cover
        pass
    return v


@dataclass
class TorchCPUAdapter(AdapterBase):
    name: str = "torch-cpu"
    runtime: str = "torch"
    platform: str = "cpu"

    def available(self) -> tuple[bool, str]:
        try:
            import torch  # noqa: F401
        except ImportError:
            return False, "torch is not installed (pip install torch)"
        return True, ""

    def versions(self) -> dict[str, str]:
        return torch_versions()

    def run_inline(self, spec: BenchmarkSpec) -> Measurement:
        import torch

        from hardware.torch_common import make_step, prepare, time_generation

        c = spec.config
        if c.threads > 0:
            torch.set_num_threads(c.threads)
        t_start = time.perf_counter()
        with MemorySampler() as mem:
            model, inputs, entry = prepare(c, "cpu")
            step = make_step(model, inputs, c.mode)
            step()  # first run: part of load time (lazy init, kernel selection)
            load_s = time.perf_counter() - t_start
            samples = time_iterations(step, spec.with_warmup(max(spec.warmup - 1, 0)))
            first = decode = None
            if c.mode == "inference" and spec.decode_tokens:
                first, decode = time_generation(model, entry, inputs, spec.decode_tokens)
        return Measurement.from_samples(
            c, samples, memory_peak_mib=mem.peak_mib, memory_avg_mib=mem.avg_mib, first_token_ms=first,
            decode_token_ms=decode, load_time_s=load_s, warmup=spec.warmup,
            wall_time_s=time.perf_counter() - t_start, device_name=self.device_name(),
            versions=self.versions())
