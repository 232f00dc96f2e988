"""Model descriptors: FLOPs, parameters and bytes moved for a configuration.

Contract used by the models (roofline prior, GP features)::

    describe(config: Config) -> Descriptor

Implementation lives in the submodules (FlopCounterMode on the meta device, analytic fallback).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Descriptor:
    """Work and traffic of one forward (inference) or forward+backward+step (training) pass.

    ``flops`` counts multiply-adds as 2 FLOPs. ``bytes_moved`` is a lower bound on DRAM
    traffic: weights read once at the precision's width plus activations written and read.
    """

    model: str
    family: str
    params: int
    flops: float
    bytes_moved: float
    weight_bytes: float
    activation_bytes: float
    method: str  # "flop_counter" or "analytic"

    @property
    def arithmetic_intensity(self) -> float:
        return self.flops / max(self.bytes_moved, 1.0)
