"""Data-parallel scaling over N devices, with its own uncertainty (a prior, not learned).

Throughput of data-parallel training on N devices (same per-device batch) is modelled as

    thr_N = N · thr_1 · e^(log2 N),     e ~ Beta(a, b) per device class,

``e`` being the efficiency kept per doubling of the device count (gradient all-reduce, stragglers,
input pipeline). One ``e`` is drawn per posterior draw and per hardware (interconnects differ),
independently of the single-device throughput draw, and multiplied in — so the interval of
``thr_N`` widens with N: the uncertainty of ``e`` is compounded once per doubling.

Where the prior comes from: published data-parallel scaling of transformer/CNN training on
NVLink/InfiniBand clusters reports 80–98% efficiency per doubling (Sergeev & Del Balso 2018,
Horovod: ~88% at 128 GPUs, i.e. ~0.98 per doubling for CNNs; BERT-sized models with large
gradients sit lower, ~0.85–0.95 per doubling on PCIe or Ethernet). ``Beta(23, 2)`` (mean 0.92,
90% interval ≈ 0.82–0.98) covers that range. It is a PRIOR: perfcast's store has no multi-device
measurements (a configuration has no device count), so nothing here is learned from data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta as beta_dist

from engine.config import count_arg


@dataclass(frozen=True)
class ScalingPrior:
    a: float = 23.0
    b: float = 2.0
    source: str = ("prior Beta(23, 2) on the efficiency kept per doubling of the device count (mean 0.92), "
                   "from published data-parallel scaling results; not learned from data")

    def doublings(self, n: int) -> float:
        return math.log2(count_arg("gpu count", n, 1, "an integer >= 1"))

    def sample_efficiency(self, n: int, size: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Draws of the total efficiency e^(log2 n) (1 for n = 1)."""
        k = self.doublings(n)
        if k == 0:
            return np.ones(size)
        return rng.beta(self.a, self.b, size=size) ** k

    def efficiency_interval(self, n: int, level: float = 0.9) -> tuple[float, float, float]:
        """(q_lo, median, q_hi) of the total efficiency at n devices (exact: monotone transform)."""
        k = self.doublings(n)
        lo, med, hi = beta_dist.ppf([(1 - level) / 2, 0.5, (1 + level) / 2], self.a, self.b)
        return float(lo**k), float(med**k), float(hi**k)
