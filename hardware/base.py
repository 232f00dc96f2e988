"""The adapter interface: what every runtime/device backend must provide.

An adapter turns a :class:`BenchmarkSpec` (a :class:`~engine.config.Config` plus how long and
how hard to measure it) into a :class:`~engine.records.Measurement`. Keeping the interface this
small is what lets the CLI, the grid and the active-learning loop treat torch, ONNX Runtime and
OpenVINO alike — and lets isolation run any adapter in a child process by name.
"""
from __future__ import annotations

import platform
import socket
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Protocol, runtime_checkable

from engine.catalog import HardwareEntry
from engine.config import Config
from engine.errors import InvalidValueError
from engine.records import Measurement


@dataclass(frozen=True)
class BenchmarkSpec:
    """A configuration and the measuring protocol for it.

    Timed iterations continue until BOTH ``iterations`` and ``min_time_s`` are reached (so fast
    configs get enough samples for a stable median) but stop at ``max_time_s`` or
    ``max_iterations`` (so slow configs cannot eat the budget). ``time_limit_s`` and
    ``memory_limit_mib`` are enforced by the parent process (see :mod:`hardware.isolation`).
    """

    config: Config
    iterations: int = 10
    warmup: int = 2
    min_time_s: float = 1.0
    max_time_s: float = 30.0
    max_iterations: int = 1000
    time_limit_s: float = 600.0
    memory_limit_mib: Optional[float] = None
    decode_tokens: int = 8  # text_generation only: new tokens generated to time decode; 0 = skip
    isolate: bool = True

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise InvalidValueError("iterations", self.iterations, "an integer >= 1")
        if self.warmup < 0:
            raise InvalidValueError("warmup", self.warmup, "an integer >= 0")
        if self.time_limit_s <= 0:
            raise InvalidValueError("time limit", self.time_limit_s, "a number of seconds > 0")
        if self.memory_limit_mib is not None and self.memory_limit_mib <= 0:
            raise InvalidValueError("memory limit", self.memory_limit_mib, "a number of MiB > 0")
        if self.decode_tokens < 0:
            raise InvalidValueError("decode tokens", self.decode_tokens, "an integer >= 0")

    def with_warmup(self, warmup: int) -> "BenchmarkSpec":
        """The same spec with another warm-up count (the first, load-time run counts as one)."""
        from dataclasses import replace

        return replace(self, warmup=warmup)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # recurses: the config becomes a plain mapping too

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BenchmarkSpec":
        d = dict(d)
        d["config"] = Config(**d["config"])
        return cls(**d)


@runtime_checkable
class Adapter(Protocol):
    """One runtime on one device kind."""

    name: str
    runtime: str  # the Config.runtime this adapter measures
    platform: str  # catalog platform: cpu, cuda, rocm, mps, qnn

    def available(self) -> tuple[bool, str]:
        """(True, "") or (False, one-line reason the user can act on)."""

    def detect(self) -> HardwareEntry:
        """The hardware this adapter would measure, as a catalog entry (``detected=True``)."""

    def hardware_id(self) -> str:
        """The id stored in ``Config.hardware`` for runs of this adapter."""

    def run(self, spec: BenchmarkSpec) -> Measurement:
        """Measure; never raises for failures of the benchmark itself (status tells)."""


@dataclass
class AdapterBase:
    """Shared plumbing: isolation, bookkeeping fields of a Measurement."""

    name: str = ""
    runtime: str = "torch"
    platform: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def available(self) -> tuple[bool, str]:  # pragma: no cover - overridden
        return True, ""

    def hardware_id(self) -> str:
        from hardware.detect import local_cpu_id

        return local_cpu_id()

    def detect(self) -> HardwareEntry:
        """This CPU (spec estimate, not measured: detection must not cost a benchmark's time)."""
        from hardware.detect import local_cpu_entry

        return local_cpu_entry(measure=False)

    def versions(self) -> dict[str, str]:
        import torch

        return {"python": platform.python_version(), "torch": torch.__version__}

    def device_name(self) -> str:
        from hardware.detect import cpu_model_name

        return cpu_model_name()

    def run(self, spec: BenchmarkSpec) -> Measurement:
        """Run in an isolated child process (default) or in this process."""
        ok, why = self.available()
        if not ok:
            return self.annotate(Measurement.failed(spec.config, "failed", f"{self.name} not available: {why}"))
        from hardware.isolation import run_inline_safely, run_isolated

        if spec.isolate:
            return run_isolated(self.name, spec)
        return run_inline_safely(self.name, spec)

    def run_inline(self, spec: BenchmarkSpec) -> Measurement:
        """Measure in this process (what the isolated child calls)."""
        raise NotImplementedError

    def refusal(self, config: Config) -> Optional[str]:
        """Why this adapter cannot run ``config`` at all (a mode or precision it has no kernels
        for: :func:`hardware.registry.refusal_reason`), or None. Known before any child starts, so a
        loop leaves such configurations out of its pool instead of spending a benchmark on a certain
        failure; ``run_inline`` raises it."""
        from hardware.registry import refusal_reason

        return refusal_reason(self.platform, self.runtime, config.precision, config.mode)

    def annotate(self, m: Measurement) -> Measurement:
        m.host = m.host or socket.gethostname()
        m.adapter = self.name
        if not m.device_name:
            try:
                m.device_name = self.device_name()
            except Exception:  # noqa: BLE001 - bookkeeping must not fail a run
                m.device_name = ""
        if not m.versions:
            try:
                m.versions = self.versions()
            except Exception:  # noqa: BLE001
                m.versions = {"python": platform.python_version()}
        return m
