"""torch on an NVIDIA (CUDA) or AMD (ROCm, via ``torch.version.hip``) GPU.

GPU kernels are asynchronous, so wall-clock timing of a Python call measures the launch, not the
work: each iteration is timed with CUDA events recorded around it and synchronised. Peak memory
is ``torch.cuda.max_memory_allocated`` (the caching allocator's view: what the model needed,
not what the allocator happened to reserve).
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from typing import Any, Callable

from engine.catalog import HardwareEntry
from engine.records import Measurement
from hardware.base import AdapterBase, BenchmarkSpec
from hardware.protocol import time_iterations


@dataclass
class TorchCUDAAdapter(AdapterBase):
    name: str = "torch-cuda"
    runtime: str = "torch"
    platform: str = "cuda"

    def available(self) -> tuple[bool, str]:
        try:
            import torch
        except ImportError:
            return False, "torch is not installed"
        backend = "ROCm" if getattr(torch.version, "hip", None) else "CUDA"
        if torch.version.cuda is None and not getattr(torch.version, "hip", None):
            return False, f"torch {torch.__version__} was built without CUDA or ROCm support (CPU-only build)"
        if not torch.cuda.is_available():
            return False, f"torch {torch.__version__} has {backend} support but no GPU is visible (driver or device missing)"
        return True, ""

    def _is_rocm(self) -> bool:
        import torch

        return bool(getattr(torch.version, "hip", None))

    def hardware_id(self) -> str:
        """The catalog id when the GPU is in the catalog (so predictions use its spec sheet)."""
        from hardware.detect import _slug, match_catalog

        name = self.device_name()
        return match_catalog(name) or f"{'rocm' if self._is_rocm() else 'cuda'}-{_slug(name)}"

    def device_name(self) -> str:
        import torch

        return torch.cuda.get_device_name(0)

    def detect(self) -> HardwareEntry:
        from engine.errors import NotAvailableError
        from hardware.detect import accelerator_entries

        ok, why = self.available()
        if not ok:
            raise NotAvailableError(why)
        gpus = [e for e in accelerator_entries(measure=False) if e.kind in ("cuda", "rocm")]
        return gpus[0]

    def versions(self) -> dict[str, str]:
        import torch

        from hardware.torch_common import build_versions

        v = {"python": platform.python_version(), "torch": torch.__version__, **build_versions()}
        if torch.version.cuda:
            v["cuda"] = torch.version.cuda
        if getattr(torch.version, "hip", None):
            v["hip"] = torch.version.hip
        try:
            import transformers

            v["transformers"] = transformers.__version__
        except ImportError:  # pragma: no cover
            pass
        return v

    def run_inline(self, spec: BenchmarkSpec) -> Measurement:
        import torch

        from hardware.torch_common import make_step, prepare, time_generation

        c = spec.config
        torch.cuda.reset_peak_memory_stats()
        strict_fp32()
        t_start = time.perf_counter()
        model, inputs, entry = prepare(c, "cuda")
        step = make_step(model, inputs, c.mode)
        step()
        torch.cuda.synchronize()
        load_s = time.perf_counter() - t_start
        samples = time_iterations(step, spec.with_warmup(max(spec.warmup - 1, 0)), timer=_cuda_timer)
        first = decode = None
        if c.mode == "inference" and spec.decode_tokens:
            first, decode = time_generation(model, entry, inputs, spec.decode_tokens, sync=torch.cuda.synchronize)
        peak = torch.cuda.max_memory_allocated() / 2**20
        return Measurement.from_samples(
            c, samples, memory_peak_mib=peak, memory_avg_mib=torch.cuda.memory_allocated() / 2**20,
            first_token_ms=first, decode_token_ms=decode, load_time_s=load_s, warmup=spec.warmup,
            wall_time_s=time.perf_counter() - t_start, device_name=self.device_name(), versions=self.versions())


def strict_fp32() -> None:
    """fp32 means fp32: no TF32 tensor cores in matmuls nor in cuDNN convolutions.

    torch turns TF32 off for matmuls by default but leaves it on for cuDNN (``cudnn.allow_tf32`` is
    True), and this adapter only turned the matmul flag off: on an Ampere or later GPU an "fp32"
    resnet50, ViT or whisper run timed its convolutions in TF32 (NVIDIA rates TF32 at up to 8x
    the CUDA cores' fp32 on an A100) and its linear layers in fp32, stored as fp32."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def _cuda_timer(step: Callable[[], Any]) -> float:
    import torch

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    step()
    end.record()
    end.synchronize()
    return float(start.elapsed_time(end))
