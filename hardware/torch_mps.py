"""torch on Apple silicon (Metal Performance Shaders). Runs where present, explains elsewhere."""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass

from engine.catalog import HardwareEntry
from engine.records import Measurement
from hardware.base import AdapterBase, BenchmarkSpec
from hardware.protocol import MemorySampler, time_iterations


@dataclass
class TorchMPSAdapter(AdapterBase):
    name: str = "torch-mps"
    runtime: str = "torch"
    platform: str = "mps"

    def available(self) -> tuple[bool, str]:
        if platform.system() != "Darwin":
            return False, f"MPS needs macOS on Apple silicon; this machine runs {platform.system()} {platform.machine()}"
        try:
            import torch
        except ImportError:
            return False, "torch is not installed"
        if not torch.backends.mps.is_built():
            return False, f"torch {torch.__version__} was built without MPS support"
        if not torch.backends.mps.is_available():
            return False, "MPS is built into torch but not available (macOS < 12.3 or no Metal GPU)"
        return True, ""

    def hardware_id(self) -> str:
        from hardware.detect import _slug, cpu_model_name, match_catalog

        chip = cpu_model_name()
        return match_catalog(chip) or f"mps-{_slug(chip)}"

    def detect(self) -> "HardwareEntry":
        from engine.errors import NotAvailableError
        from hardware.detect import accelerator_entries

        ok, why = self.available()
        if not ok:
            raise NotAvailableError(why)
        return [e for e in accelerator_entries(measure=False) if e.kind == "mps"][0]

    def device_name(self) -> str:
        return f"Apple {platform.machine()} GPU (MPS)"

    def run_inline(self, spec: BenchmarkSpec) -> Measurement:
        import torch

        from hardware.torch_common import build_versions, make_step, prepare, time_generation

        c = spec.config
        t_start = time.perf_counter()
        with MemorySampler() as mem:
            model, inputs, entry = prepare(c, "mps")
            step = make_step(model, inputs, c.mode)

            def synced() -> object:
                out = step()
                torch.mps.synchronize()
                return out

            synced()
            load_s = time.perf_counter() - t_start
            samples = time_iterations(synced, spec.with_warmup(max(spec.warmup - 1, 0)))
            first = decode = None
            if c.mode == "inference" and spec.decode_tokens:
                first, decode = time_generation(model, entry, inputs, spec.decode_tokens, sync=torch.mps.synchronize)
        peak = torch.mps.driver_allocated_memory() / 2**20 if hasattr(torch.mps, "driver_allocated_memory") else mem.peak_mib
        return Measurement.from_samples(
            c, samples, memory_peak_mib=peak, memory_avg_mib=mem.avg_mib, first_token_ms=first,
            decode_token_ms=decode, load_time_s=load_s, warmup=spec.warmup,
            wall_time_s=time.perf_counter() - t_start, device_name=self.device_name(),
            versions={"python": platform.python_version(), "torch": torch.__version__, **build_versions()})
