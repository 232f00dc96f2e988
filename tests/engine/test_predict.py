"""The prediction facade: typed answers, platform resolution, vectorised calls, cache reuse."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic_measurements import synthetic_measurements, synthetic_store

import engine
from engine.catalog import catalog_hardware, reference_device
from engine.config import Config
from engine.errors import InvalidValueError, UnknownNameError
from engine.models.base import MetricPrediction, Prediction
from engine.predict import PerformancePredictor, prediction_record, resolve


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):  # -> Store
    return synthetic_store(tmp_path_factory.mktemp("predict") / "s.duckdb")


@pytest.fixture()
def pp(store) -> PerformancePredictor:
    return PerformancePredictor(store, predictor="roofline")


def test_lazy_public_api() -> None:
    assert engine.PerformancePredictor is PerformancePredictor
    assert engine.Prediction is Prediction
    with pytest.raises(AttributeError):
        engine.NoSuchThing  # noqa: B018


def test_predict_returns_a_typed_prediction_with_ordered_intervals(pp: PerformancePredictor) -> None:
    p = pp.predict(model_name="bert-base-uncased", hardware="t4", batch_size=4, precision="fp16", seq_len=64)
    assert isinstance(p, Prediction)
    assert p.predictor == "roofline"
    assert p.config == Config("bert-base-uncased", "t4", 4, 64, "fp16")
    for name in ("latency_ms", "throughput", "memory_mib"):
        mp = p.metrics[name]
        assert isinstance(mp, MetricPrediction)
        lo, hi = mp.interval(0.9)
        lo50, hi50 = mp.interval(0.5)
        assert 0 < lo <= lo50 <= mp.median <= hi50 <= hi
        assert mp.mean > 0
    assert p.latency_ms is p.metrics["latency_ms"]  # attribute access to metrics
    # throughput is batch / latency, so their medians agree
    assert p.throughput.median == pytest.approx(4 * 1000 / p.latency_ms.median, rel=1e-6)
    lo, hi = p.latency_ms.interval(0.9)
    assert p.prob_latency_below(hi) == pytest.approx(0.95, abs=0.01)
    assert p.prob_latency_below(lo) == pytest.approx(0.05, abs=0.01)
    fits = p.prob_fits_memory()
    assert fits is not None and 0.99 < fits <= 1.0  # a BERT on a 16 GiB T4
    assert p.memory_capacity_mib == pytest.approx(16 * 1024)


def test_platform_names_say_which_device_answered(pp: PerformancePredictor) -> None:
    ref = reference_device("cuda")
    assert ref is not None
    p = pp.predict(model_name="gpt2", hardware="cuda", batch_size=2)
    assert p.config.hardware == ref.id != "cuda"
    assert p.device_name == ref.name
    hw = resolve("cuda")
    assert hw.was_platform and hw.id == ref.id and "cuda -> " in hw.describe()
    record = prediction_record(p, hw)
    assert record["device"] == {"requested": "cuda", "id": ref.id, "name": ref.name, "kind": "cuda",
                                "memory_gib": ref.memory_gib}


def test_openvino_means_openvino_on_the_cpu(pp: PerformancePredictor) -> None:
    cfg, hw = pp.config("gpt2", "openvino", batch_size=1)
    assert hw.kind == "cpu" and cfg.runtime == "openvino" and cfg.hardware == hw.id == resolve("cpu").id
    cfg, _ = pp.config("gpt2", "openvino", runtime="torch")  # an explicit runtime wins
    assert cfg.runtime == "torch"


def test_vision_models_have_no_sequence_axis(pp: PerformancePredictor) -> None:
    cfg, _ = pp.config("resnet50", "t4", seq_len=512)
    assert cfg.seq_len == 0


def test_n_nearby_counts_measurements_of_the_same_model_and_hardware(pp: PerformancePredictor) -> None:
    assert pp.predict(model_name="gpt2", hardware="t4", batch_size=3).n_nearby == 4  # 4 batch sizes measured
    assert pp.predict(model_name="gpt2", hardware="h100-sxm").n_nearby == 0


def test_unknown_names_fail_with_close_matches(pp: PerformancePredictor) -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'bert-base-uncased'"):
        pp.predict(model_name="bert-base-uncase", hardware="t4")
    with pytest.raises(UnknownNameError, match="h100-sxm"):
        pp.predict(model_name="gpt2", hardware="h100-sx")
    with pytest.raises(InvalidValueError):
        pp.predict(model_name="gpt2", hardware="t4", precision="fp8")
    with pytest.raises(InvalidValueError):
        PerformancePredictor(predictor="forest")


def test_predict_many_is_one_vectorised_call(pp: PerformancePredictor, monkeypatch: pytest.MonkeyPatch) -> None:
    fitted = pp.fitted()
    calls = []
    real = fitted.predict

    def spy(configs):  # type: ignore[no-untyped-def]
        calls.append(len(configs))
        return real(configs)

    monkeypatch.setattr(fitted, "predict", spy)
    preds = pp.compare_hardware("gpt2", ["t4", "a100-80gb", "cpu", "cuda"], batch_size=2)
    assert calls == [4]
    assert [p.config.hardware for p in preds][:2] == ["t4", "a100-80gb"]
    scaling = pp.batch_scaling("gpt2", "t4", [1, 2, 4, 8, 16])
    assert calls == [4, 5]
    lat = [p.latency_ms.median for p in scaling]
    assert lat == sorted(lat)  # more work per call takes longer
    many = pp.predict_many([Config("gpt2", "t4", 2), {"model": "resnet50", "hardware": "cpu", "batch_size": 8}])
    assert [p.config.model for p in many] == ["gpt2", "resnet50"]


def test_fitted_predictor_is_reused_until_the_data_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.predict as mod

    store = synthetic_store(tmp_path / "s.duckdb", models=("gpt2",), hardware=("t4",), batches=(1, 2))
    real = mod._load_or_fit_fn()
    fits: list[str] = []

    def counting(name, store, **kw):  # type: ignore[no-untyped-def]
        fits.append(name)
        return real(name, store, **kw)

    monkeypatch.setattr(mod, "_load_or_fit_fn", lambda: counting)
    pp = PerformancePredictor(store, predictor="roofline")
    pp.predict(model_name="gpt2", hardware="t4")
    pp.predict(model_name="gpt2", hardware="t4", batch_size=4)
    assert fits == ["roofline"]
    store.save_measurements(synthetic_measurements(models=("gpt2",), hardware=("t4",), batches=(8,), seed=3))
    assert pp.predict(model_name="gpt2", hardware="t4").n_nearby == 3
    assert fits == ["roofline", "roofline"]


def test_matrix_is_nested_and_stored(pp: PerformancePredictor, store) -> None:  # type: ignore[no-untyped-def]
    from engine.matrix import build_matrix

    before = store.count("predictions")
    res = build_matrix(pp, ["gpt2", "resnet50"], ["t4", "cuda", "cpu"], [1, 8], ["fp32", "fp16"])
    assert res.n == 2 * 3 * 2 * 2
    cell = res.payload["models"]["gpt2"]["predictions"]["cuda"]["8"]["fp16"]
    lat = cell["latency_ms"]
    assert lat["q05"] <= lat["q25"] <= lat["median"] <= lat["q75"] <= lat["q95"]
    single = pp.predict(model_name="gpt2", hardware="cuda", batch_size=8, precision="fp16")
    assert lat["median"] == pytest.approx(single.latency_ms.median, rel=1e-9)
    assert res.payload["hardware"]["cuda"]["id"] == reference_device("cuda").id
    n_metrics = len(res.summaries)
    assert store.count("predictions") - before == res.n * n_metrics
    assert np.all(np.isfinite(res.summaries["latency_ms"]["mean"]))


def test_matrix_stores_only_the_cells_an_adapter_runs(pp: PerformancePredictor,
                                                     store) -> None:  # type: ignore[no-untyped-def]
    """A refused cell (torch int8 on a GPU) is NaN in the summaries, not in the store, and its
    neighbours keep the answers a matrix without it gives."""
    from engine.errors import RefusedConfigError
    from engine.matrix import build_matrix

    before = store.count("predictions")
    res = build_matrix(pp, ["gpt2"], ["cpu", "t4"], [1, 8], ["fp32", "int8"])
    assert res.n == 6 and res.n_refused == 2 and len(res.pset.configs) == 6
    assert store.count("predictions") - before == res.n * len(res.summaries)
    grid = res.summaries["latency_ms"]["median"].reshape(1, 2, 2, 2)
    assert np.isnan(grid[0, 1, :, 1]).all() and np.isfinite(grid[0, 0]).all() and np.isfinite(grid[0, 1, :, 0]).all()
    assert [r is not None for r in res.refused] == [False] * 5 + [True, False, True] and "CPU only" in res.refused[7]
    plain = build_matrix(pp, ["gpt2"], ["t4"], [1, 8], ["fp32"], save=False)
    assert plain.summaries["latency_ms"]["median"] == pytest.approx(grid[0, 1, :, 0], rel=1e-12)
    with pytest.raises(RefusedConfigError, match="gpt2 int8 training with torch on"):
        build_matrix(pp, ["gpt2"], ["cpu", "t4"], [1], ["int8"], mode="training", save=False)


def test_gp_answers_through_the_facade(store) -> None:  # type: ignore[no-untyped-def]
    pp = PerformancePredictor(store, predictor="gp")
    p = pp.predict(model_name="gpt2", hardware="t4", batch_size=4)
    assert p.predictor == "gp"
    lo, hi = p.latency_ms.interval(0.9)
    assert lo <= p.latency_ms.median <= hi
    # measured region: the GP's interval is narrower than the roofline's fixed spread
    roof = PerformancePredictor(store, predictor="roofline").predict(model_name="gpt2", hardware="t4", batch_size=4)
    rlo, rhi = roof.latency_ms.interval(0.9)
    assert hi / lo < rhi / rlo
    assert set(catalog_hardware())  # catalog loads alongside torch


def test_a_device_kind_never_measured_gets_a_caution(pp: PerformancePredictor) -> None:
    """The store holds GPU runs only: a CPU answer extrapolates across device kinds and says so;
    a GPU answer does not."""
    assert set(pp.measured_kinds()) == {"cuda"}
    _, gpu = pp.config("bert-base-uncased", "t4")
    assert pp.extrapolation_warning(gpu) is None
    _, cpu = pp.config("bert-base-uncased", "cpu")
    w = pp.extrapolation_warning(cpu)
    assert w is not None and "no cpu device has been measured" in w and "cuda (" in w
    rec = prediction_record(pp.predict_many([pp.config("bert-base-uncased", "cpu")[0]])[0], cpu, warnings=[w])
    assert rec["warnings"] == [w]
    # a GPU without runs of its own, beside measured GPUs: a milder, device-level caution
    _, h100 = pp.config("bert-base-uncased", "h100-sxm")
    w = pp.extrapolation_warning(h100)
    assert w is not None and "h100-sxm has no measurements" in w and "no cuda device" not in w


def test_the_gp_never_predicts_a_p90_below_the_median(tmp_path: Path) -> None:
    """Audit: predict --model llama-2-13b --hardware cpu-amd-epyc-2c --precision int8 answered a
    median of 10,982 ms and a p90 of 10,616 ms (8 of 180 cells of a matrix)."""
    import numpy as np

    from engine.config import Config
    from engine.predict import PerformancePredictor
    from engine.store import Store

    pp = PerformancePredictor(Store(tmp_path / "s.duckdb"))
    configs = [Config(m, hw, b, 128, p) for m in ("llama-2-13b", "bert-base-uncased", "gpt2")
               for hw in ("cpu-amd-epyc-2c", "t4") for b in (1, 8) for p in ("fp32", "int8")]
    ps = pp.fitted().predict(configs)
    assert np.all(np.asarray(ps.mu_log["latency_p90_ms"]) >= np.asarray(ps.mu_log["latency_ms"]))


def test_a_configuration_no_adapter_runs_is_refused_in_one_line(pp: PerformancePredictor) -> None:
    """int8 training was answered, with a caution that suggested a benchmark no adapter runs."""
    from engine.config import Config
    from engine.errors import RefusedConfigError

    with pytest.raises(RefusedConfigError, match="gpt2 int8 training with torch on .*inference-only"):
        pp.predict(model_name="gpt2", hardware="cpu-amd-epyc-2c", precision="int8", mode="training")
    with pytest.raises(RefusedConfigError, match="no fp16 kernels"):
        pp.predict_many([Config("gpt2", "cpu-amd-epyc-2c", 1, 16, "fp16", "inference", "onnxruntime")])
    with pytest.raises(RefusedConfigError, match="CPU only"):
        pp.predict(model_name="gpt2", hardware="t4", precision="int8")
    assert pp.predict(model_name="gpt2", hardware="cpu-amd-epyc-2c", precision="int8").metrics["latency_ms"].median > 0
