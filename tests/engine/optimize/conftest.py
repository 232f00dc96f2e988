"""Fixtures for the optimiser tests: a tiny featuriser (no FLOP counting, no detection)."""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import pytest

from engine.config import Config
from engine.models.features import Featurizer, HardwareFacts

PARAMS = {"bert-base-uncased": 110e6, "distilbert-base-uncased": 66e6, "gpt2": 124e6}
WIDTH = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
GPUS = {"t4": ({"fp32": 8.1e12, "fp16": 65e12}, 320e9, 16.0),
        "a100-80gb": ({"fp32": 19.5e12, "fp16": 312e12}, 2039e9, 80.0)}


def fake_describe_many(configs: Sequence[Config]) -> pd.DataFrame:
    rows = []
    for c in configs:
        p = PARAMS.get(c.model, 100e6)
        tokens = c.batch_size * max(c.seq_len, 1)
        w = p * WIDTH[c.precision]
        a = tokens * 768 * 12 * 4 * WIDTH[c.precision]
        rows.append({"model": c.model, "family": "text_embedding", "params": p, "flops": 2 * p * tokens,
                     "bytes_moved": w + 2 * a, "weight_bytes": w, "activation_bytes": a})
    return pd.DataFrame(rows)


def fake_hardware(hid: str) -> HardwareFacts:
    peaks, bw, mem = GPUS[hid]
    return HardwareFacts(hid, "cuda", peaks, bw, mem * 1024, 1)


@pytest.fixture
def featurizer() -> Featurizer:
    return Featurizer(describe_many=fake_describe_many, resolve_hardware=fake_hardware)
