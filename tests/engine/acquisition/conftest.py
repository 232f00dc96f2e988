"""Synthetic data and a small fitted GP for the acquisition tests (bench/synthetic.py's world)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HARDWARE = ["cpu-syn-2c", "cpu-syn-16c", "gpu-syn-a"]


@pytest.fixture(scope="module")
def syn():
    from bench.synthetic import random_configs, synthetic_featurizer, synthetic_measurements

    fz = synthetic_featurizer()
    configs = list(dict.fromkeys(random_configs(260, HARDWARE, seed=5)))
    return fz, configs, synthetic_measurements


@pytest.fixture(scope="module")
def fitted_gp(syn):
    from engine.models.gp import GPPredictor

    fz, configs, measure = syn
    train = configs[:40]
    return GPPredictor(featurizer=fz, maxiter=15, calibrate=False).fit(measure(train, seed=1)), configs[40:]
