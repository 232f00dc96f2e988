"""A loop has one runner: a second process running the same experiment is refused while the first
lives, and a killed runner's experiment is taken over by the same command (engine.store.owner)."""
from __future__ import annotations

import psutil
import pytest

from _oracle_data import oracle_frame
from engine.models.gp import GPPredictor
from engine.store import Store
from engine.store.owner import ExperimentBusyError
from experiments.config import parse_config
from experiments.executors import OracleExecutor
from experiments.loop import ExperimentLoop
from experiments.space import space_from_dataset


def test_a_second_run_of_a_running_loop_is_refused_and_nothing_is_lost(syn, tmp_path, other_process) -> None:
    fz, configs, _ = syn
    df = oracle_frame(configs[:20])
    store = Store(tmp_path / "s.duckdb", seed=False)
    cfg = parse_config({"name": "syn", "search_space": {}, "acquisition": {"name": "random", "q": 2},
                        "budget": {"runs": 4}, "initial_design": 2, "seed": 3})

    def loop():
        ex = OracleExecutor(df)
        return ExperimentLoop(cfg, store, ex, space_from_dataset(cfg.search_space, df), mode="run",
                              predictor_factory=lambda: GPPredictor(featurizer=fz, maxiter=10, calibrate=False))

    first = loop()
    store.upsert_experiment(first.experiment_id, cfg.name, {}, "running", {"owner": other_process})
    with pytest.raises(ExperimentBusyError, match=str(other_process["pid"])):
        first.run()
    assert len(store.measurements(status=None)) == 0
    psutil.Process(other_process["pid"]).kill()
    psutil.Process(other_process["pid"]).wait()
    r = loop().run()  # its runner is gone (a kill -9): the same command takes the experiment over
    assert r.n_benchmarks == 4 and store.get_experiment(first.experiment_id)["status"] == "finished"
