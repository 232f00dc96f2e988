"""Predicted benchmark cost: the measuring protocol's timed part plus learned setup time."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.acquisition.cost import DEFAULT_SETUP_S, CostModel, MeasuringPlan, SetupModel
from engine.config import Config
from engine.models.base import PredictionSet


def test_timed_seconds_follow_the_protocol() -> None:
    plan = MeasuringPlan(iterations=10, warmup=2, min_time_s=1.0, max_time_s=5.0, max_iterations=1000)
    t = plan.timed_seconds(np.array([0.001, 0.5, 10.0]))
    # fast: 1000 iterations (min time 1 s) capped by max_iterations -> 1 s; +2 warm-up
    assert t[0] == pytest.approx(2 * 0.001 + 1.0)
    # 0.5 s: 10 iterations would be 5 s = max_time_s
    assert t[1] == pytest.approx(2 * 0.5 + 5.0)
    # 10 s per iteration: one iteration at least
    assert t[2] == pytest.approx(2 * 10.0 + 10.0)


def test_setup_time_comes_from_the_most_specific_group() -> None:
    runs = pd.DataFrame({"model": ["gpt2", "gpt2", "bert"], "runtime": ["torch", "onnxruntime", "torch"],
                         "precision": ["fp32"] * 3, "mode": ["inference"] * 3,
                         "wall_time_s": [12.0, 40.0, 6.0], "latency_median_ms": [100.0, 100.0, 100.0],
                         "iterations": [10, 10, 10], "warmup": [0, 0, 0]})
    sm = SetupModel.from_runs(runs)
    got = sm.predict([Config("gpt2", "h", runtime="onnxruntime"), Config("gpt2", "h", precision="int8"),
                      Config("roberta-base", "h", runtime="openvino")])
    assert got[0] == pytest.approx(39.0)  # model+runtime+precision+mode
    assert got[1] == pytest.approx(11.0)  # model+runtime (torch)
    assert got[2] == pytest.approx(11.0)  # median over everything ((11 + 39 + 5) / ... median = 11)
    assert SetupModel.from_runs(None).predict([Config("gpt2", "h")])[0] == DEFAULT_SETUP_S
    # the device's own runs first (audit S: another CPU's shipped runs predicted a third of a new one's)
    runs["hardware"] = ["fast", "fast", "slow"]
    sm = SetupModel.from_runs(runs)
    got = sm.predict([Config("gpt2", "slow"), Config("gpt2", "fast", runtime="onnxruntime"),
                      Config("gpt2", "new")])
    assert got[0] == pytest.approx(5.0)  # slow's own torch runs (bert), before fast's gpt2 torch run (11)
    assert got[1] == pytest.approx(39.0)
    assert got[2] == pytest.approx(11.0)  # a device with no runs: gpt2/torch across devices


def test_cost_uses_the_posterior_mean_latency() -> None:
    cfgs = [Config("gpt2", "h", 1), Config("gpt2", "h", 2)]
    ps = PredictionSet(configs=cfgs, predictor="t")
    ps.mu_log["latency_ms"] = np.log([10.0, 1000.0])
    ps.sigma_log["latency_ms"] = np.zeros(2)
    cm = CostModel(MeasuringPlan(iterations=10, warmup=0, min_time_s=0.0, max_time_s=100.0), SetupModel(default_s=1.0))
    np.testing.assert_allclose(cm.predict(cfgs, ps), [1.0 + 0.1, 1.0 + 10.0])
