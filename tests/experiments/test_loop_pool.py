"""What a loop's pool leaves out of a shared store, and how it says so (audit, 2026-12-07): a
failure under a lower time or memory limit is tried again, an empty pool names its reasons, a
larger budget continues the experiment stored before, and a combination no adapter has kernels
for never reaches a child process."""
from __future__ import annotations

from typing import Any

from engine.records import Measurement
from engine.store import Store
from experiments.config import parse_config
from experiments.executors import OracleExecutor
from experiments.loop import ExperimentLoop

TIMEOUT_2S = "time limit exceeded: 2 s; child killed"


def _loop(store: Store, df: Any, space: list, events: list, **over: Any) -> ExperimentLoop:
    d = {"name": "pool", "search_space": {}, "acquisition": {"name": "random", "q": 1}, "budget": {"runs": 4},
         "initial_design": 5}
    d.update(over)
    return ExperimentLoop(parse_config(d), store, OracleExecutor(df), space, mode="run",
                          on_event=lambda k, p: events.append((k, p)))


def test_a_failure_under_a_lower_limit_is_tried_again_and_an_empty_pool_says_why(syn: Any, tmp_path: Any) -> None:
    from _oracle_data import oracle_frame

    _, configs, _ = syn
    space = configs[:2]
    df = oracle_frame(space)
    store = Store(tmp_path / "p.duckdb", seed=False)
    store.save_measurement(Measurement.failed(space[0], "timeout", TIMEOUT_2S), experiment_id="earlier")
    events: list = []
    r = _loop(store, df, space, events, benchmark={"time_limit_s": 1.0}).run()  # stricter: still out
    assert r.n_benchmarks == 1
    assert "the pool is empty: of the 2 configurations, 1 already measured, 1 failed" in r.stopped_because
    assert "perfcast db delete --experiment" in r.stopped_because
    events.clear()
    r = _loop(store, df, space, events, benchmark={"time_limit_s": 90.0}).run()  # more generous: again
    assert r.n_benchmarks == 1 and r.prequential[0]["config_key"] == space[0].key
    assert any(k == "info" and "failed only under a lower time or memory limit" in str(p) for k, p in events)
    # a failure under the experiment's own limit (or a crash) keeps it out for good
    store2 = Store(tmp_path / "q.duckdb", seed=False)
    store2.save_measurement(Measurement.failed(space[0], "failed", "RuntimeError: crashed"), experiment_id="x")
    store2.save_measurement(Measurement.failed(space[1], "timeout", "time limit exceeded: 600 s; child killed"),
                            experiment_id="x")
    r = _loop(store2, df, space, []).run()
    assert r.n_benchmarks == 0 and "0 already measured, 2 failed" in r.stopped_because


def test_a_larger_budget_resumes_the_experiment_stored_before_it_was_left_out_of_the_id(syn: Any, tmp_path: Any) -> None:
    from _oracle_data import oracle_frame

    _, configs, _ = syn
    space = configs[:6]
    df = oracle_frame(space)
    store = Store(tmp_path / "b.duckdb", seed=False)
    first = _loop(store, df, space, [], budget={"runs": 2})
    first.run()
    more = _loop(store, df, space, [], budget={"runs": 3})
    assert more.experiment_id == first.experiment_id
    r = more.run()
    assert r.resumed_runs == 2 and r.n_benchmarks == 3  # one more run, not three from zero
    # an experiment stored under the old id (every setting hashed, budget included) resumes too, with
    # a larger budget: the review found only an unchanged config found it
    cfg = parse_config({"name": "legacy", "search_space": {}, "acquisition": {"name": "random", "q": 1},
                        "budget": {"runs": 1}, "initial_design": 50})  # random picks only: no fit of the stand-ins
    old_id = f"legacy-run-{cfg.digest()}"
    ExperimentLoop(cfg, store, OracleExecutor(df), space, mode="run", experiment_id=old_id).run()
    bigger = cfg.model_copy(update={"budget": cfg.budget.model_copy(update={"runs": 2})})
    assert f"legacy-run-{bigger.digest()}" != old_id  # the old scheme's id moved with the budget
    again = ExperimentLoop(bigger, store, OracleExecutor(df), space, mode="run")
    assert again.experiment_id == old_id != bigger.experiment_id()
    r = again.run()
    assert r.resumed_runs == 1 and r.n_benchmarks == 2


def test_a_precision_the_adapter_has_no_kernels_for_is_left_out_before_any_benchmark() -> None:
    import pytest

    pytest.importorskip("onnxruntime")
    from engine.config import Config
    from experiments.executors import LocalExecutor
    from hardware.detect import local_cpu_id

    hw = local_cpu_id()
    ok = Config("distilbert-base-uncased", hw, 1, 32, "fp32", "inference", "onnxruntime", 1)
    bad = [ok.with_(precision="fp16"), ok.with_(mode="training"), ok.with_(runtime="torch", precision="int8",
                                                                          mode="training")]
    ex = LocalExecutor(runner=lambda adapter, spec: (_ for _ in ()).throw(AssertionError("must not run")))
    try:
        assert ex.check([ok, *bad]) == [ok]
        assert "no fp16 kernels" in ex.skipped[bad[0].key] and "inference only" in ex.skipped[bad[1].key]
        assert "int8 training is not supported" in ex.skipped[bad[2].key]
    finally:
        ex.close()


def test_a_loop_says_when_openvino_runs_bf16_at_f32(syn: Any, tmp_path: Any) -> None:
    """Audit: openvino bf16 on an AVX2 CPU ran f32 and was stored as bf16 without a word."""
    from _oracle_data import oracle_frame

    from engine.config import Config

    space = [Config("distilbert-base-uncased", hw, 1, 32, "bf16", "inference", "openvino", 1)
             for hw in ("cpu-amd-epyc-avx2-2c", "cpu-amd-epyc-2c")]
    df = oracle_frame(syn[1][:2])  # synthetic runs, relabelled as these two configurations
    for col in ("model", "hardware", "batch_size", "seq_len", "precision", "mode", "runtime", "threads"):
        df[col] = [getattr(c, col) for c in space]
    df["config_key"] = [c.key for c in space]
    events: list = []
    _loop(Store(tmp_path / "ov.duckdb", seed=False), df, space, events, budget={"runs": 1}).run()
    notes = [str(p) for k, p in events if k == "info" and "runs at f32" in str(p)]
    assert len(notes) == 1 and "cpu-amd-epyc-avx2-2c" in notes[0]  # the Zen 4 has bf16 kernels: no note


def test_thread_counts_above_the_cpus_cores_are_left_out_and_none_left_is_an_error(monkeypatch: Any) -> None:
    """threads: [512] on a 2-core machine was benchmarked as t512 (audit); the shipped configs' [1, 2]
    must still run on a 1-core machine (review)."""
    import pytest

    import engine.models.features as features
    from experiments.config import ExperimentConfigError, load_config
    from experiments.space import expand_space

    monkeypatch.setattr(features, "entry_cores", lambda entry: 1)
    with pytest.warns(UserWarning, match="threads 2 left out"):
        space = expand_space(load_config("cpu-quick").search_space)
    assert space and {c.threads for c in space} == {1}
    sp = parse_config({"name": "t", "search_space": {"models": ["gpt2"], "hardware": ["cpu"], "threads": [8]}})
    with pytest.raises(ExperimentConfigError, match="invalid search_space.threads 8 .* valid: 0 to 1"):
        expand_space(sp.search_space)
