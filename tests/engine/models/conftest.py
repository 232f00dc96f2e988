"""Synthetic roofline-shaped data for the model tests (the stand-ins live in bench/synthetic.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.synthetic import random_configs, synthetic_featurizer, synthetic_measurements  # noqa: E402

SEEN = ["cpu-syn-2c", "gpu-syn-a"]
NEW = "gpu-syn-b"


@pytest.fixture(scope="session")
def featurizer():
    return synthetic_featurizer()


@pytest.fixture(scope="session")
def train_df():
    return synthetic_measurements(random_configs(160, SEEN, seed=0), seed=0)


@pytest.fixture(scope="session")
def new_hw_df():
    """Measurements on a device absent from ``train_df``."""
    return synthetic_measurements(random_configs(60, [NEW], seed=1), seed=1)
