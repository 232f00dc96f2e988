"""Synthetic but roofline-shaped measurements for tests that need a small store.

Latency grows with the model's size and the batch and shrinks with the device's speed, with
log-normal run-to-run noise; every run carries raw samples so the store's views are exercised.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from engine.config import Config
from engine.records import Measurement

MODEL_SCALE = {"bert-base-uncased": 1.0, "distilbert-base-uncased": 0.5, "gpt2": 1.1, "roberta-base": 1.05}
HW_SPEED = {"t4": 1.0, "a100-80gb": 4.0, "l4": 1.6}


def synthetic_measurements(models: Sequence[str] = tuple(MODEL_SCALE), hardware: Sequence[str] = tuple(HW_SPEED),
                           batches: Sequence[int] = (1, 2, 4, 8), seed: int = 0, repeats: int = 1) -> list[Measurement]:
    rng = np.random.default_rng(seed)
    out = []
    for m in models:
        for h in hardware:
            for b in batches:
                true_ms = 2.0 * MODEL_SCALE[m] * b**0.8 / HW_SPEED[h] + 0.3
                for _ in range(repeats):
                    run_ms = true_ms * float(np.exp(rng.normal(0, 0.05)))
                    samples = run_ms * np.exp(rng.normal(0, 0.02, size=12))
                    c = Config(m, h, b, 128, "fp32")
                    out.append(Measurement.from_samples(c, samples.tolist(), adapter="synthetic",
                                                        memory_peak_mib=400 * MODEL_SCALE[m] + 20 * b,
                                                        source="measured"))
    return out


def synthetic_store(path: Path, **kw):  # -> Store
    from engine.store import Store

    store = Store(path, seed=False)
    store.save_measurements(synthetic_measurements(**kw))
    return store
