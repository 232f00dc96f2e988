"""The Python API as a notebook uses it: NumPy numbers, readable answers, one habit for intervals,
a flag for an infeasible optimum, stores and catalogs that follow the notebook's state, figures
that leave the notebook's backend alone, and benchmark children started from `python -`."""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.config import Config
from engine.errors import InvalidValueError
from tests.engine.test_user_catalog import MODELS  # the README's my-bert-6l


@pytest.fixture
def roofline_pp(tmp_path: Path):
    from engine.predict import PerformancePredictor

    return PerformancePredictor(tmp_path / "s.duckdb", predictor="roofline")


def test_numpy_and_pandas_integers_are_counts_and_bools_are_not(roofline_pp) -> None:
    c = Config("gpt2", "cpu", batch_size=np.int64(4), seq_len=np.int32(64), threads=np.uint8(1))
    assert (c.batch_size, c.seq_len, c.threads) == (4, 64, 1) and type(c.batch_size) is int
    assert c.key == Config("gpt2", "cpu", 4, 64, threads=1).key
    for bad in (True, np.float64(2.0), 2.5):
        with pytest.raises(InvalidValueError, match="invalid batch_size"):
            Config("gpt2", "cpu", batch_size=bad)
    assert roofline_pp.predict("gpt2", "cpu-amd-epyc-2c", np.int64(8)).config.batch_size == 8
    for sizes in (np.array([1, 2, 4]), pd.Series([1, 8]), range(1, 3)):
        got = [p.config.batch_size for p in roofline_pp.batch_scaling("gpt2", "cpu-amd-epyc-2c", sizes)]
        assert got == [int(b) for b in sizes]
    assert [p.config.batch_size for p in roofline_pp.batch_scaling("gpt2", "cpu-amd-epyc-2c", np.int64(4))] == [4]
    with pytest.raises(InvalidValueError, match="batch sizes"):
        roofline_pp.batch_scaling("gpt2", "cpu-amd-epyc-2c", np.array([], dtype=int))


def test_a_sweep_reads_the_store_once_per_device_not_once_per_configuration(roofline_pp, monkeypatch) -> None:
    """A notebook's predict_many over 200 configurations took 10-18 s, 95% of it opening the store
    to resolve the same device again for each configuration."""
    import engine.catalog as catalog

    reads = []
    real = catalog.all_hardware
    monkeypatch.setattr(catalog, "all_hardware", lambda *a, **k: reads.append(1) or real(*a, **k))
    def sweep(n: int) -> int:
        configs = [dict(model_name="gpt2", hardware=h, batch_size=b, threads=1 if h == "cpu-amd-epyc-2c" else 0)
                   for h in ("cpu-amd-epyc-2c", "t4") for b in range(1, n + 1)]
        reads.clear()
        preds = roofline_pp.predict_many(configs)
        assert len(preds) == 2 * n
        assert all(any("no cuda device" in w for w in p.warnings) for p in preds if p.config.hardware == "t4")
        return len(reads)

    sweep(1)  # the first call also reads what later calls keep (the devices' facts, the kinds measured)
    assert sweep(20) == sweep(2)  # was 2-3 more per configuration


def test_a_prediction_reads_well_in_a_notebook(roofline_pp) -> None:
    p = roofline_pp.predict("bert-base-uncased", "cpu-amd-epyc-2c", 8)
    text = repr(p)
    assert text.startswith("Prediction(bert-base-uncased|cpu-amd-epyc-2c|b8") and "predictor='roofline'" in text
    assert "<latency_ms: median" in text and "items/s" in text and "MiB" in text and "mu_log" not in text
    assert {"latency_ms", "throughput", "memory_mib"} <= set(dir(p))
    with pytest.raises(AttributeError, match="no attribute 'latency'; its metrics are latency_ms"):
        p.latency  # noqa: B018
    assert not hasattr(p, "__array_interface__")
    for bad in (1.5, 0, [0.5, 2.0], True):
        with pytest.raises(ValueError, match="invalid quantile"):
            p.latency_ms.quantile(bad)
    assert p.latency_ms.unit == "ms" and p.throughput.unit == "items/s"
    assert p.latency_ms.quantile(0.05) == pytest.approx(p.latency_ms.interval(0.9)[0])


def test_every_answer_gives_its_interval_by_the_same_call(tmp_path: Path) -> None:
    """``.interval(0.9)`` is a method on predictions; on optimise and recommend answers it was a
    property, so the same call raised "'tuple' object is not callable"."""
    from engine.optimize.result import MetricInterval
    from engine.recommend.recommender import Quantiles

    for m in (MetricInterval("latency_ms", 10.0, 5.0, 20.0, 11.0, "ms"), Quantiles(10.0, 5.0, 20.0)):
        assert m.interval() == m.interval(0.9) == (5.0, 20.0)
        with pytest.raises(InvalidValueError, match="interval level 0.5"):
            m.interval(0.5)


def test_an_optimum_that_breaks_the_constraints_says_so_in_a_field(tmp_path: Path) -> None:
    from engine.optimize.optimizer import optimize_deployment

    space = {"hardware": ["cpu-amd-epyc-2c"], "batch_size": np.array([1, 8])}
    r = optimize_deployment("gpt2", "throughput", {"latency_p90_ms": 1.0}, space, db=tmp_path / "o.duckdb",
                            predictor="roofline", budget=np.int64(2))
    assert r.best is not None and r.best.prob_feasible < 0.5
    assert r.feasible is False and r.to_dict()["feasible"] is False
    ok = optimize_deployment("gpt2", "throughput", {"latency_p90_ms": 1e7}, space, db=tmp_path / "o.duckdb",
                             predictor="roofline")
    assert ok.feasible is True and ok.to_dict()["feasible"] is True


def test_a_store_the_api_creates_is_announced_once_and_a_path_object_is_that_store(tmp_path: Path) -> None:
    from engine.optimize.optimizer import optimize_deployment
    from engine.predict import PerformancePredictor

    db = tmp_path / "team.duckdb"  # a new file (a new folder is refused: engine.store.paths.check_db_folder)
    with pytest.warns(UserWarning, match=f"created a new perfcast store {db} .with the .* shipped runs"):
        PerformancePredictor(str(db), predictor="roofline").predict("gpt2", "cpu-amd-epyc-2c")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        PerformancePredictor(str(db), predictor="roofline").predict("gpt2", "cpu-amd-epyc-2c")  # exists: silent
    path = tmp_path / "as-path.duckdb"
    optimize_deployment("gpt2", db=path, predictor="roofline")  # a Path was read as "the default store"
    assert path.exists()


def test_a_user_catalog_set_after_the_first_prediction_is_read(tmp_path: Path, monkeypatch, roofline_pp) -> None:
    from engine import catalog
    from engine.errors import UnknownNameError

    catalog.refresh_catalogs()
    monkeypatch.delenv("PERFCAST_MODELS", raising=False)
    assert roofline_pp.predict("gpt2", "cpu-amd-epyc-2c").config.model == "gpt2"
    with pytest.raises(UnknownNameError):
        catalog.get_model("my-bert-6l")
    f = tmp_path / "models.yaml"
    f.write_text(MODELS)
    monkeypatch.setenv("PERFCAST_MODELS", str(f))
    assert catalog.get_model("my-bert-6l").arch["num_hidden_layers"] == 6  # no refresh_catalogs() needed
    f.write_text(MODELS.replace("my-bert-6l", "my-bert-4l").replace("num_hidden_layers: 6", "num_hidden_layers: 4"))
    import os

    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))  # an edit within the same tick
    assert "my-bert-4l" in catalog.models() and "my-bert-6l" not in catalog.models()
    monkeypatch.delenv("PERFCAST_MODELS")
    assert "my-bert-4l" not in catalog.models()


def test_active_learning_names_a_space_of_strings(tmp_path: Path) -> None:
    from engine.active_learning import ActiveLearningSystem

    with pytest.raises(InvalidValueError, match="invalid space 'gpt2'.*Config objects"):
        ActiveLearningSystem(tmp_path / "s.duckdb", space=["gpt2"])


def test_figures_leave_the_notebooks_backend_alone(tmp_path: Path, roofline_pp) -> None:
    import matplotlib

    from engine.plots import hardware_bars

    before = matplotlib.get_backend()
    preds = roofline_pp.compare_hardware("gpt2", ["cpu-amd-epyc-2c", "t4"])
    out = hardware_bars(preds, "latency_ms", tmp_path / "bars.png")
    assert out.stat().st_size > 1000 and matplotlib.get_backend() == before
    assert "matplotlib.pyplot" not in sys.modules or not __import__("matplotlib.pyplot").pyplot.get_fignums()


def test_the_main_module_of_python_stdin_is_hidden_from_benchmark_children(monkeypatch) -> None:
    from hardware.isolation import _main_module_importable

    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "__spec__", None, raising=False)
    monkeypatch.setattr(main, "__file__", "<stdin>", raising=False)
    with _main_module_importable():
        assert not hasattr(main, "__file__")
    assert main.__file__ == "<stdin>"
    monkeypatch.setattr(main, "__file__", __file__)  # a real script: left alone
    with _main_module_importable():
        assert main.__file__ == __file__


@pytest.mark.slow
def test_online_benchmarks_run_from_a_heredoc(tmp_path: Path) -> None:
    """`python - <<EOF` (a heredoc): every child died re-running "<stdin>" and was stored as failed."""
    code = ("from engine.config import Config\nfrom hardware.base import BenchmarkSpec\n"
            "from hardware.isolation import run_isolated\nfrom hardware.registry import resolve\n"
            "a = resolve('cpu')\n"
            "m = run_isolated(a.name, BenchmarkSpec(config=Config('distilbert-base-uncased', a.hardware_id(), 1, 8, "
            "threads=1), iterations=2, warmup=1, min_time_s=0))\nprint('STATUS', m.status, m.error)\n")
    r = subprocess.run([sys.executable, "-"], input=code, text=True, capture_output=True, cwd=tmp_path, timeout=600)
    assert "STATUS ok None" in r.stdout, (r.stdout, r.stderr[-2000:])


def test_an_entry_edited_in_a_running_process_is_counted_again(tmp_path: Path, monkeypatch) -> None:
    """Audit: an entry already used kept its counted FLOPs until Python restarted (the featuriser and
    the counts were cached by name); now an edit of the user catalog empties those caches."""
    import os

    from engine import catalog
    from engine.config import Config
    from engine.models.features import default_featurizer

    f = tmp_path / "models.yaml"
    f.write_text(MODELS)
    monkeypatch.setenv("PERFCAST_MODELS", str(f))
    cfg = Config("my-bert-6l", "cpu-amd-epyc-2c", 4, 128)
    before = default_featurizer()([cfg]).phys["flops"][0]
    f.write_text(MODELS.replace("num_hidden_layers: 6", "num_hidden_layers: 12"))
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))  # an edit within the same tick
    after = default_featurizer()([cfg]).phys["flops"][0]
    assert catalog.get_model("my-bert-6l").arch["num_hidden_layers"] == 12
    assert 1.8 < after / before < 2.1  # twelve layers of the same width, not the six counted first
    monkeypatch.delenv("PERFCAST_MODELS")
    catalog.refresh_catalogs()
