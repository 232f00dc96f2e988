from __future__ import annotations

import numpy as np
import pytest

from engine.errors import UnknownNameError
from engine.models.base import Predictor
from engine.models.features import configs_from_frame
from engine.models.registry import get_predictor
from engine.models.roofline import SIGMA_LATENCY, RooflineParams, RooflinePredictor


def test_fit_recovers_global_efficiency(featurizer, train_df):
    truth = RooflineParams(eff_compute=0.2, eff_memory=0.5, overhead_ms=0.3)
    ff = featurizer(train_df)
    exact = train_df.copy()
    lat = RooflinePredictor(truth, featurizer).latency_ms(ff)
    exact["latency_median_ms"] = exact["latency_p90_ms"] = lat
    fitted = RooflinePredictor(featurizer=featurizer).fit(exact)
    assert fitted.params.eff_compute == pytest.approx(0.2, rel=0.05)
    assert fitted.params.overhead_ms == pytest.approx(0.3, rel=0.1)


def test_predict_has_all_metrics_and_fixed_spread(featurizer, train_df):
    p = RooflinePredictor(featurizer=featurizer).fit(train_df)
    assert isinstance(p, Predictor)
    configs = configs_from_frame(train_df)[:5]
    ps = p.predict(configs)
    assert set(ps.metric_names()) == {"latency_ms", "latency_p90_ms", "throughput", "memory_mib"}
    np.testing.assert_allclose(ps.sigma_log["latency_ms"], SIGMA_LATENCY)
    pred = ps[0]
    # throughput is derived from latency: items/s = batch / latency
    assert pred.throughput.median == pytest.approx(1000 * configs[0].batch_size / pred.latency_ms.median)
    assert p.sample(configs, 50).shape == (50, 5)


def test_registry_names(featurizer):
    assert get_predictor("roofline", featurizer=featurizer).name == "roofline"
    with pytest.raises(UnknownNameError, match="did you mean 'roofline'"):
        get_predictor("roofline2")


def test_memory_is_the_larger_of_the_build_and_the_run():
    """int8 is quantized from the fp32 model: at a small batch the build sets the peak, at a large
    one the run's activations do; a legacy run's build is read as it was (with_legacy_builds)."""
    from engine.models.features import FeatureFrame, with_legacy_builds
    from engine.models.roofline import roofline_memory_mib

    mib = 2.0**20
    ff = FeatureFrame(X=np.zeros((2, 0)), names=(), cats={"mode": np.array(["inference"] * 2, dtype=object),
                                                          "precision": np.array(["int8"] * 2, dtype=object),
                                                          "runtime": np.array(["torch"] * 2, dtype=object)},
                      phys={"params": np.array([100.0, 100.0]) * mib, "weight_bytes": np.array([130.0, 130.0]) * mib,
                            "live_bytes": np.array([10.0, 900.0]) * mib, "build_bytes": np.array([400.0, 400.0]) * mib,
                            "legacy_build_bytes": np.array([800.0, 800.0]) * mib})
    p = RooflineParams(weight_factor=1.0, activation_factor=1.0, mem_overhead_mib=300.0)
    assert roofline_memory_mib(ff, p).tolist() == [700.0, 1330.0]
    legacy = with_legacy_builds(ff, np.array([True, False]))
    assert roofline_memory_mib(legacy, p).tolist() == [1100.0, 1330.0]  # the legacy row's 800
    assert ff.phys["build_bytes"][0] == 400.0 * mib  # the frame it came from is unchanged


def test_memory_scales_per_runtime_and_recovers_each_runtimes_factors():
    """Two runtimes that hold their weights differently: the fit finds each one's weight factor and
    overhead (the prior shrinks them only a little at 120 runs each), and a runtime it never saw
    gets the global scalars."""
    from engine.models.features import FeatureFrame
    from engine.models.roofline import roofline_memory_mib

    rng = np.random.default_rng(0)
    n = 240
    mib = 2.0**20
    weights = np.exp(rng.uniform(np.log(20), np.log(3000), n)) * mib  # model sizes spread as in a catalog
    live = rng.uniform(5, 500, n) * mib
    runtime = np.array(["torch", "openvino"] * (n // 2), dtype=object)
    ff = FeatureFrame(X=np.zeros((n, 0)), names=(), cats={"mode": np.array(["inference"] * n, dtype=object),
                                                          "runtime": runtime},
                      phys={"weight_bytes": weights, "live_bytes": live, "build_bytes": weights})
    truth = RooflineParams(weight_factor=1.0, activation_factor=1.0, mem_overhead_mib=300.0,
                           runtime_weight={"torch": 1.0, "openvino": 1.8}, runtime_overhead={"torch": 1.0, "openvino": 0.6})
    y = np.log(roofline_memory_mib(ff, truth)) + rng.normal(0, 0.02, n)
    fitted = RooflinePredictor(RooflineParams(weight_factor=1.0, activation_factor=1.0, mem_overhead_mib=300.0))
    fitted._fit_runtimes(runtime, weights / mib, live / mib, weights / mib, y)
    p = fitted.params
    assert p.runtime_weight["openvino"] == pytest.approx(1.8, rel=0.1)
    assert p.runtime_overhead["openvino"] == pytest.approx(0.6, rel=0.15)
    assert p.runtime_weight["torch"] == pytest.approx(1.0, rel=0.1)
    unseen = FeatureFrame(X=np.zeros((1, 0)), names=(), cats={"mode": np.array(["inference"], dtype=object),
                                                             "runtime": np.array(["onnxruntime"], dtype=object)},
                          phys={"weight_bytes": np.array([100.0 * mib]), "live_bytes": np.array([0.0]),
                                "build_bytes": np.array([100.0 * mib])})
    assert roofline_memory_mib(unseen, p).tolist() == [400.0]  # 300 + 1.0 × 100: the global scalars


def test_memory_base_share_is_the_part_that_is_not_activations():
    """What the GP's memory correction scales: all of a small batch's peak, little of a large one's."""
    from engine.models.features import FeatureFrame
    from engine.models.roofline import memory_base_share

    mib = 2.0**20
    ff = FeatureFrame(X=np.zeros((3, 0)), names=(), cats={"mode": np.array(["inference"] * 3, dtype=object),
                                                          "runtime": np.array(["torch"] * 3, dtype=object)},
                      phys={"weight_bytes": np.array([100.0, 100.0, 100.0]) * mib,
                            "live_bytes": np.array([0.0, 400.0, 1e6]) * mib,
                            "build_bytes": np.array([100.0, 100.0, 100.0]) * mib})
    p = RooflineParams(weight_factor=1.0, activation_factor=1.0, mem_overhead_mib=300.0)
    share = memory_base_share(ff, p)
    assert share[0] == 1.0 and share[1] == pytest.approx(0.5) and share[2] == 0.1  # the floor
