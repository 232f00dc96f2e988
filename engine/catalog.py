"""Model and hardware catalogs (``configs/*.yaml``), with close-match errors on unknown names.

The YAML files ship inside the installed package (``configs`` is a package with data files), so
a non-editable ``pip install .`` finds them through :mod:`importlib.resources`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Optional

import yaml

from engine.errors import UnknownNameError

FAMILIES: tuple[str, ...] = ("text_embedding", "text_generation", "vision", "audio", "multimodal")
PLATFORMS: tuple[str, ...] = ("cpu", "cuda", "rocm", "mps", "openvino", "qnn", "webgpu", "webnn")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    hf_config: str
    hf_model: str
    arch: dict[str, Any]
    published_params: Optional[int] = None
    params_source: str = ""
    image_size: Optional[int] = None
    audio_frames: Optional[int] = None
    max_seq_len: Optional[int] = None

    @property
    def has_sequence(self) -> bool:
        """CNNs and ViTs have no user-chosen sequence length (seq_len is 0 for them)."""
        return self.family not in ("vision",)


@dataclass(frozen=True)
class HardwareEntry:
    """Spec-sheet figures for one device. Peaks in TFLOP/s (TOPS for int8)."""

    id: str
    name: str
    kind: str  # platform: cpu, cuda, rocm, mps, openvino, qnn, webgpu, webnn
    vendor: str = ""
    peak_tflops: dict[str, Optional[float]] = field(default_factory=dict)
    memory_bandwidth_gbs: Optional[float] = None
    memory_gib: Optional[float] = None
    tdp_w: Optional[float] = None
    price_per_hour_usd: Optional[float] = None
    reference_for: Optional[str] = None
    sources: dict[str, str] = field(default_factory=dict)
    detected: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def peak_flops(self, precision: str) -> float:
        """Peak FLOP/s at a precision, falling back to the nearest supported one (fp16<->bf16, fp32)."""
        order = {"fp32": ["fp32"], "fp16": ["fp16", "bf16", "fp32"], "bf16": ["bf16", "fp16", "fp32"],
                 "int8": ["int8", "fp16", "bf16", "fp32"]}[precision]
        for p in order:
            v = self.peak_tflops.get(p)
            if v:
                return float(v) * 1e12
        raise ValueError(f"hardware {self.id} has no peak throughput figure")

    def to_row(self) -> dict[str, Any]:
        pk = self.peak_tflops
        return {"hardware_id": self.id, "name": self.name, "kind": self.kind, "vendor": self.vendor,
                "peak_fp32_tflops": pk.get("fp32"), "peak_fp16_tflops": pk.get("fp16"),
                "peak_bf16_tflops": pk.get("bf16"), "peak_int8_tops": pk.get("int8"),
                "memory_bandwidth_gbs": self.memory_bandwidth_gbs, "memory_gib": self.memory_gib,
                "tdp_w": self.tdp_w, "price_per_hour_usd": self.price_per_hour_usd,
                "source": "; ".join(f"{k}: {v}" for k, v in self.sources.items()), "detected": self.detected,
                "details": {**self.details, "reference_for": self.reference_for}}


def _load_yaml(name: str) -> dict[str, Any]:
    text = (resources.files("configs") / name).read_text()
    return yaml.safe_load(text) or {}


@lru_cache(maxsize=1)
def models() -> dict[str, ModelEntry]:
    raw = _load_yaml("models.yaml").get("models", {})
    return {name: ModelEntry(name=name, **spec) for name, spec in raw.items()}


@lru_cache(maxsize=1)
def catalog_hardware() -> dict[str, HardwareEntry]:
    raw = _load_yaml("hardware.yaml").get("hardware", {})
    return {hid: HardwareEntry(id=hid, **spec) for hid, spec in raw.items()}


def get_model(name: str) -> ModelEntry:
    try:
        return models()[name]
    except KeyError:
        raise UnknownNameError("model", name, models().keys()) from None
