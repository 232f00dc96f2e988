"""ONE real end-to-end loop on this CPU: two benchmarks of a small model, isolated, stored."""
from __future__ import annotations

import pytest

from engine.store import Store
from experiments.config import parse_config
from experiments.executors import LocalExecutor
from experiments.loop import ExperimentLoop
from experiments.space import expand_space


def test_real_cpu_loop_two_benchmarks(tmp_path) -> None:
    pytest.importorskip("torch")
    cfg = parse_config({
        "name": "real-tiny", "seed": 1,
        "search_space": {"models": ["distilbert-base-uncased"], "hardware": ["cpu"], "batch_sizes": [1, 2],
                         "seq_lengths": [16], "threads": [1]},
        "acquisition": {"name": "eig"}, "budget": {"runs": 2}, "initial_design": 2,
        "benchmark": {"iterations": 3, "warmup": 1, "min_time_s": 0.05, "max_time_s": 2, "time_limit_s": 120,
                      "decode_tokens": 0},
    })
    store = Store(tmp_path / "real.duckdb", seed=False)
    ex = LocalExecutor()
    try:
        r = ExperimentLoop(cfg, store, ex, expand_space(cfg.search_space)).run()
    finally:
        ex.close()
    runs = store.measurements(status=None, with_samples=True)
    assert r.n_benchmarks == 2 and len(runs) == 2
    assert (runs["status"] == "ok").all(), runs["error"].tolist()
    assert (runs["latency_median_ms"] > 0).all() and (runs["wall_time_s"] > 0).all()
    assert runs["adapter"].eq("torch-cpu").all() and runs["samples_ms"].map(len).ge(3).all()
    assert set(runs["batch_size"]) == {1, 2}
