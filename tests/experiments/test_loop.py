"""The loop: replay end to end, failures recorded, budget respected, resume after SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _oracle_data import oracle_frame

from engine.store import Store
from experiments.config import parse_config
from experiments.executors import OracleExecutor
from experiments.loop import ExperimentLoop
from experiments.space import space_from_dataset

ROOT = Path(__file__).resolve().parents[2]

#: more foreign cores than any machine has: busy whatever its cores and the run's threads
BUSY_LOAD = 1000.0


def _cfg(**over):
    d = {"name": "syn", "search_space": {}, "acquisition": {"name": "eig", "q": 2, "mc_points": 64},
         "budget": {"runs": 10}, "predictor": {"refit_every": 3}, "initial_design": 3}
    d.update(over)
    return parse_config(d)


def _gp_factory(fz):
    from engine.models.gp import GPPredictor

    return lambda: GPPredictor(featurizer=fz, maxiter=10, calibrate=False)


def test_replay_loop_spends_the_budget_and_commits_every_run(syn, tmp_path) -> None:
    fz, configs, _ = syn
    df = oracle_frame(configs[:60])
    store = Store(tmp_path / "r.duckdb", seed=False)
    ex = OracleExecutor(df)
    cfg = _cfg()
    events = []
    loop = ExperimentLoop(cfg, store, ex, space_from_dataset(cfg.search_space, df), mode="replay", truth=ex.truth,
                          predictor_factory=_gp_factory(fz), on_event=lambda k, p: events.append(k))
    r = loop.run()
    assert r.n_benchmarks == 10 and "run budget" in r.stopped_because
    runs = store.measurements(status=None)
    assert len(runs) == 10 and set(runs["experiment_id"]) == {loop.experiment_id}
    assert runs["config_key"].is_unique
    acquired = [s for s in r.steps if s.chosen and s.fitted != "initial design"]
    assert acquired and all(s.heldout_median_ape is not None and s.mean_rel_width90 is not None for s in acquired)
    # every scored step says how often the held-out truths fell inside its 50% and 90% intervals
    assert all(0.0 <= s.heldout_cover50 <= s.heldout_cover90 <= 1.0 for s in acquired)
    assert all(c["information_gain"] is not None and c["cost_s"] > 0 for s in acquired for c in s.chosen)
    # EI-cool from the default start: information / cost**α, α = start × (1 − share of the 10-run budget spent)
    start = cfg.acquisition.cost_exponent
    alphas = [s.cost_exponent for s in acquired]
    assert alphas == sorted(alphas, reverse=True) and alphas[0] < start and alphas[-1] > 0.0
    assert all(a == pytest.approx(start * (1 - s.n_benchmarks / 10)) for a, s in zip(alphas, acquired))
    assert r.steps[-1].chosen == []  # the final evaluation after the last benchmark
    assert events.count("result") == 10
    exp = store.get_experiment(loop.experiment_id)
    assert exp["status"] == "finished" and len(exp["state"]["steps"]) == len(r.steps)


def test_the_initial_design_counts_only_runs_of_the_search_space(syn, tmp_path) -> None:
    """A store that already holds other configurations' runs (the shipped ones, another device's)
    can fit a GP, but the loop's first picks in its own space are still random: the design counts
    what the space has measured, not what the store holds."""
    from engine.store.transfer import import_measurements

    fz, configs, _ = syn
    space_df, other_df = oracle_frame(configs[:60]), oracle_frame(configs[60:120], seed=1)
    path = tmp_path / "other.csv"
    other_df.drop(columns=["samples_ms"]).to_csv(path, index=False)
    store = Store(tmp_path / "r.duckdb", seed=False)
    import_measurements(store, path)
    assert len(store.measurements()) == 60
    ex = OracleExecutor(space_df)
    cfg = _cfg(budget={"runs": 6}, initial_design=3)
    loop = ExperimentLoop(cfg, store, ex, space_from_dataset(cfg.search_space, space_df), mode="replay",
                          truth=ex.truth, predictor_factory=_gp_factory(fz))
    r = loop.run()
    kinds = [s.fitted for s in r.steps if s.chosen]
    # q = 2: two random batches reach 4 >= 3 configurations of the space, then eig takes over
    assert kinds[:2] == ["initial design", "initial design"] and kinds[2] != "initial design"
    assert all(c["reason"] == "initial design (random)" for s in r.steps[:2] for c in s.chosen)
    assert r.n_benchmarks == 6 and len(store.measurements()) == 66


def test_a_failed_benchmark_is_recorded_and_the_loop_carries_on(syn, tmp_path) -> None:
    fz, configs, _ = syn
    df = oracle_frame(configs[:8])
    df["status"] = df["status"].astype(object)
    df.loc[[0, 1, 2, 3], "status"] = "failed"
    df.loc[[0, 1, 2, 3], "error"] = "RuntimeError: kernel crashed (recorded)"
    store = Store(tmp_path / "f.duckdb", seed=False)
    ex = OracleExecutor(df)
    cfg = _cfg(acquisition={"name": "random", "q": 1}, budget={"runs": 8}, initial_design=2)
    r = ExperimentLoop(cfg, store, ex, space_from_dataset(cfg.search_space, df), mode="replay",
                       predictor_factory=_gp_factory(fz)).run()
    runs = store.measurements(status=None)
    assert r.n_benchmarks == 8 and r.n_failed == 4
    assert (runs["status"] == "failed").sum() == 4 and (runs["status"] == "ok").sum() == 4
    assert runs.loc[runs["status"] == "failed", "error"].str.contains("kernel crashed").all()


def test_the_stop_rule_on_the_reducible_width_stops_a_loop_and_an_unreachable_width_target_is_named(
        syn, tmp_path) -> None:
    """stop.max_reducible: the largest share of a pool interval that other benchmarks could still
    remove. Every scored step records it; a loose target stops the loop once min_runs have landed,
    a tight one lets the budget decide. A stop.max_rel_width90 below the pool's floor is said once."""
    fz, configs, _ = syn
    df = oracle_frame(configs[:60])

    def run(stop, name):
        cfg = _cfg(stop=stop, name=name)
        ex = OracleExecutor(df)
        store = Store(tmp_path / f"{name}.duckdb", seed=False)
        infos = []
        loop = ExperimentLoop(cfg, store, ex, space_from_dataset(cfg.search_space, df), mode="replay", truth=ex.truth,
                              predictor_factory=_gp_factory(fz),
                              on_event=lambda k, p: infos.append(p) if k == "info" else None)
        return loop.run(), infos

    loose, _ = run({"max_reducible": 0.99, "min_runs": 4}, "loose")
    assert "stop rule: no configuration's 90% interval can narrow" in loose.stopped_because
    # 0.99 was already met at the first fit: the message says the predictor's floor decided, not learning
    first = next(s.max_reducible90 for s in loose.steps if s.max_reducible90 is not None)
    assert first < 0.99 and f"already {first:.0%} at this run's first fit" in loose.stopped_because
    assert 4 <= loose.n_benchmarks < 10
    # the step that met the rule scored the data as they are: no second "final fit" of the same data
    assert [s.n_benchmarks for s in loose.steps if not s.chosen] == [loose.n_benchmarks]
    tight, infos = run({"max_reducible": 1e-6, "max_rel_width90": 1e-3}, "tight")
    assert "run budget" in tight.stopped_because and tight.n_benchmarks == 10
    scored = [s for s in tight.steps if s.max_rel_width90 is not None]
    assert scored and all(0.0 < s.max_reducible90 < 1.0 and s.max_floor_width90 > 0 for s in scored)
    assert all(s.max_rel_width90 > s.max_floor_width90 for s in scored)
    unreachable = [i for i in infos if "stop.max_rel_width90 0% cannot be met" in str(i)]
    assert len(unreachable) == 1 and "stop.max_reducible" in unreachable[0]


def test_a_predictor_without_a_floor_says_the_reducible_stop_rule_cannot_be_read(syn, tmp_path) -> None:
    fz, configs, _ = syn
    df = oracle_frame(configs[:40])

    class NoFloor:  # a predictor of another kind: predicts, has no floor_sd
        def __init__(self) -> None:
            self._gp = _gp_factory(fz)()

        def __getattr__(self, name):
            if name == "floor_sd":
                raise AttributeError(name)
            return getattr(self._gp, name)

    cfg = _cfg(stop={"max_reducible": 0.99}, budget={"runs": 6}, acquisition={"name": "random", "q": 2})
    ex = OracleExecutor(df)
    infos = []
    loop = ExperimentLoop(cfg, Store(tmp_path / "nf.duckdb", seed=False), ex, space_from_dataset(cfg.search_space, df),
                          mode="replay", truth=ex.truth, predictor_factory=NoFloor,
                          on_event=lambda k, p: infos.append(str(p)) if k == "info" else None)
    r = loop.run()
    assert "run budget" in r.stopped_because and r.n_benchmarks == 6
    assert sum("stop.max_reducible cannot be read" in i for i in infos) == 1


def test_stop_max_reducible_is_validated() -> None:
    from experiments.config import ExperimentConfigError

    assert _cfg(stop={"max_reducible": 0.3}, predictor={"kind": "hierarchical"}).stop.max_reducible == 0.3
    with pytest.raises(ExperimentConfigError, match=r"invalid stop.max_reducible 1.5"):
        _cfg(stop={"max_reducible": 1.5})
    # a config that does not set it keeps the experiment id it had before the key existed (b223521's
    # code gave this config 3ef147301f), so a loop stored then still resumes
    assert _cfg().digest() == _cfg(stop={"max_reducible": None}).digest() == "3ef147301f"
    assert _cfg(stop={"max_reducible": 0.3}).digest() != "3ef147301f"


def test_budget_in_benchmark_seconds_stops_the_loop(syn, tmp_path) -> None:
    fz, configs, _ = syn
    df = oracle_frame(configs[:30])
    store = Store(tmp_path / "s.duckdb", seed=False)
    ex = OracleExecutor(df)
    budget = float(df["wall_time_s"].median() * 4)
    cfg = _cfg(acquisition={"name": "random", "q": 1}, budget={"benchmark_seconds": budget})
    r = ExperimentLoop(cfg, store, ex, space_from_dataset(cfg.search_space, df), mode="replay",
                       predictor_factory=_gp_factory(fz)).run()
    assert "benchmark-seconds budget" in r.stopped_because
    assert r.benchmark_seconds >= budget
    spent_before_last = r.benchmark_seconds - r.prequential[-1]["wall_time_s"]
    assert spent_before_last < budget


SCRIPT = textwrap.dedent('''
    import sys
    sys.path.insert(0, {root!r}); sys.path.insert(0, {here!r})
    from _oracle_data import oracle_frame
    from bench.synthetic import random_configs, synthetic_featurizer
    from engine.models.roofline import RooflinePredictor
    from engine.store import Store
    from experiments.config import parse_config
    from experiments.executors import OracleExecutor
    from experiments.loop import ExperimentLoop
    from experiments.space import space_from_dataset

    configs = list(dict.fromkeys(random_configs(200, ["cpu-syn-2c", "gpu-syn-a"], seed=7)))[:40]
    df = oracle_frame(configs)
    cfg = parse_config({{"name": "kill", "search_space": {{}}, "acquisition": {{"name": "max-variance", "q": 1}},
                        "budget": {{"runs": 12}}, "initial_design": 2}})
    ex = OracleExecutor(df, time_scale=0.4 / float(df["wall_time_s"].max()))  # <= 0.4 s per "benchmark"
    fz = synthetic_featurizer()
    loop = ExperimentLoop(cfg, Store({db!r}, seed=False), ex, space_from_dataset(cfg.search_space, df),
                          mode="run", predictor_factory=lambda: RooflinePredictor(featurizer=fz),
                          on_event=lambda k, p: print(k, flush=True) if k == "result" else None)
    r = loop.run()
    print("DONE", r.n_benchmarks, r.resumed_runs, flush=True)
''')


def _committed(db: Path) -> list[tuple[str, str]]:
    import duckdb

    for _ in range(100):
        try:
            con = duckdb.connect(str(db), read_only=True)
        except duckdb.Error:
            time.sleep(0.05)
            continue
        try:
            return con.execute("SELECT run_id, config_key FROM benchmark_runs ORDER BY run_id").fetchall()
        except duckdb.Error:
            return []
        finally:
            con.close()
    raise AssertionError("database stayed locked")


def test_resume_after_sigkill_loses_nothing(tmp_path) -> None:
    db = tmp_path / "kill.duckdb"
    script = tmp_path / "loop.py"
    script.write_text(SCRIPT.format(root=str(ROOT), here=str(Path(__file__).parent), db=str(db)))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                         text=True)
    seen = 0
    assert p.stdout is not None
    for line in p.stdout:  # kill -9 after the 5th committed result, mid-run
        if line.startswith("result"):
            seen += 1
            if seen == 5:
                os.kill(p.pid, signal.SIGKILL)
                break
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL
    before = _committed(db)
    assert len(before) >= 5
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=240)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    done = [ln for ln in out.stdout.splitlines() if ln.startswith("DONE")]
    n, resumed = map(int, done[-1].split()[1:])
    after = _committed(db)
    assert n == 12 and resumed == len(before)
    assert set(before) <= set(after)  # every run committed before the kill is still there
    assert len(after) == 12 and len({k for _, k in after}) == 12  # nothing run twice, budget exact


def test_fresh_scoring_grades_heldout_error_with_a_predictor_fitted_at_every_step(syn, tmp_path) -> None:
    """``score_factory`` (replay's --fresh-scoring): the held-out error comes from a predictor fitted
    afresh on every step's data, not from the loop's own posterior. A stub that predicts 1.1 × the
    truth must give exactly 10% at every step and see the training data grow."""
    import numpy as np

    fz, configs, _ = syn
    df = oracle_frame(configs[:40])
    truth_of = dict(zip(df["config_key"], df["latency_median_ms"]))
    fitted_sizes: list[int] = []

    class TenPercentHigh:
        def fit(self, data):
            fitted_sizes.append(len(data))
            return self

        def predict(self, cand):
            values = np.array([1.1 * truth_of[c.key] for c in cand])

            class _Preds:
                def quantiles(self, metric, qs):
                    return np.tile(values, (len(qs), 1))

            return _Preds()

    store = Store(tmp_path / "fresh.duckdb", seed=False)
    ex = OracleExecutor(df)
    cfg = _cfg(acquisition={"name": "random", "q": 2}, budget={"runs": 8})
    r = ExperimentLoop(cfg, store, ex, space_from_dataset(cfg.search_space, df), mode="replay", truth=ex.truth,
                       predictor_factory=_gp_factory(fz), score_factory=TenPercentHigh).run()
    scored = [s.heldout_median_ape for s in r.steps if s.heldout_median_ape is not None]
    assert scored and all(v == pytest.approx(0.1) for v in scored)
    assert fitted_sizes == sorted(fitted_sizes) and fitted_sizes[0] < fitted_sizes[-1]


def _cpu_configs(configs):
    """30 CPU configurations: only runs on a CPU are judged busy (a GPU run's timing is the GPU's)."""
    return [c for c in configs if c.hardware.startswith("cpu-")][:30]


class _BusyFirstExecutor(OracleExecutor):
    """An oracle whose answers for ``busy_keys`` come back timed on a busy machine ``busy_times``
    times (more foreign CPU cores than the machine has), then quiet."""

    def __init__(self, data, busy_keys, busy_times: int = 1) -> None:
        super().__init__(data)
        self.busy_left = {k: busy_times for k in busy_keys}

    def wait(self, timeout=None):
        r = super().wait(timeout)
        if r is not None:
            k = r.measurement.config.key
            busy = self.busy_left.get(k, 0) > 0
            if busy:
                self.busy_left[k] -= 1
            r.measurement.foreign_cpu_cores = BUSY_LOAD if busy else 0.0
        return r


def _busy_loop(syn, tmp_path, busy_times: int, rerun_busy: int = 1):
    fz, configs, _ = syn
    df = oracle_frame(_cpu_configs(configs))
    keys = [c.key for c in _cpu_configs(configs)]
    ex = _BusyFirstExecutor(df, busy_keys=keys, busy_times=busy_times)
    cfg = _cfg(acquisition={"name": "random", "q": 1}, budget={"runs": 6}, initial_design=2,
               benchmark={"rerun_busy": rerun_busy})
    store = Store(tmp_path / f"busy{busy_times}{rerun_busy}.duckdb", seed=False)
    events = []
    loop = ExperimentLoop(cfg, store, ex, space_from_dataset(cfg.search_space, df), mode="run",
                          predictor_factory=_gp_factory(fz), on_event=lambda k, p: events.append((k, p)))
    return loop.run(), store.measurements(status=None), events


def test_a_run_timed_on_a_busy_machine_is_rerun_once_and_the_rerun_counts_against_the_budget(syn, tmp_path) -> None:
    r, runs, events = _busy_loop(syn, tmp_path, busy_times=1)
    assert r.n_benchmarks == 6 and len(runs) == 6
    per_key = runs.groupby("config_key")["foreign_cpu_cores"].apply(sorted)
    # every configuration was busy once: each one measured gets exactly one quiet rerun
    assert len(per_key) == 3 and all(v == [0.0, BUSY_LOAD] for v in per_key)
    reruns = [p for p in r.prequential if p["rerun"]]
    assert len(reruns) == 3 and all(p["predicted"] is None and p["ape"] is None for p in reruns)
    assert sum(1 for k, p in events if k == "info" and str(p).startswith("rerunning ")) == 3


def test_busy_reruns_stop_after_the_limit_and_can_be_switched_off(syn, tmp_path) -> None:
    r, runs, _ = _busy_loop(syn, tmp_path, busy_times=5)  # the machine stays busy
    assert runs.groupby("config_key").size().tolist() == [2, 2, 2]  # one rerun each, not more
    r0, runs0, events0 = _busy_loop(syn, tmp_path, busy_times=5, rerun_busy=0)
    assert runs0["config_key"].is_unique and len(runs0) == 6
    assert not any(p["rerun"] for p in r0.prequential)


def test_a_busy_rerun_waits_for_a_quiet_machine_on_the_local_executor(syn, tmp_path, monkeypatch) -> None:
    import hardware.protocol as protocol

    loads = iter([BUSY_LOAD] * 2)  # still busy at the first two looks, then quiet
    looks = []
    monkeypatch.setattr(protocol, "foreign_load", lambda seconds=1.0: looks.append(seconds) or next(loads, 0.0))
    fz, configs, _ = syn
    df = oracle_frame(_cpu_configs(configs))
    ex = _BusyFirstExecutor(df, busy_keys=[c.key for c in _cpu_configs(configs)])
    ex.name = "local"  # the loop only watches the load of the machine it runs benchmarks on
    cfg = _cfg(acquisition={"name": "random", "q": 1}, budget={"runs": 6}, initial_design=2)
    events = []
    loop = ExperimentLoop(cfg, Store(tmp_path / "wait.duckdb", seed=False), ex,
                          space_from_dataset(cfg.search_space, df), mode="run", predictor_factory=_gp_factory(fz),
                          on_event=lambda k, p: events.append((k, p)))
    r = loop.run()
    order = [(p["config_key"], p["rerun"]) for p in r.prequential]
    first_rerun = next(i for i, (_, again) in enumerate(order) if again)
    # the first busy run is followed by new configurations while the machine stays busy, then its rerun
    assert first_rerun == 3 and order[first_rerun][0] == order[0][0]
    assert [str(p) for k, p in events if k == "info" and "postponed" in str(p)] != []
    assert len(looks) >= 3


def test_local_busy_reruns_never_run_beside_the_loops_own_benchmarks(syn, tmp_path, monkeypatch) -> None:
    import hardware.protocol as protocol

    looks = []
    monkeypatch.setattr(protocol, "foreign_load", lambda seconds=1.0: looks.append(seconds) or 0.0)
    fz, configs, _ = syn
    df = oracle_frame(_cpu_configs(configs))
    ex = _BusyFirstExecutor(df, busy_keys=[c.key for c in _cpu_configs(configs)])
    ex.name = "local"
    ex.workers = 2  # two benchmarks always in flight: each one's load is the other's
    cfg = _cfg(acquisition={"name": "random", "q": 1}, budget={"runs": 8}, initial_design=2)
    r = ExperimentLoop(cfg, Store(tmp_path / "w2.duckdb", seed=False), ex, space_from_dataset(cfg.search_space, df),
                       mode="run", predictor_factory=_gp_factory(fz)).run()
    # every run was flagged, but a moment with nothing running never came before the budget was spent
    assert r.n_benchmarks == 8 and r.n_reruns == 0 and looks == []
    assert len({p["config_key"] for p in r.prequential}) == 8


class _BusyThenCrashExecutor(_BusyFirstExecutor):
    """The first answer per configuration is busy; any later one crashes."""

    def wait(self, timeout=None):
        r = super().wait(timeout)
        if r is not None:
            k = r.measurement.config.key
            self.answered = getattr(self, "answered", {})
            self.answered[k] = self.answered.get(k, 0) + 1
            if self.answered[k] > 1:
                from engine.records import Measurement

                r.measurement = Measurement(config=r.measurement.config, status="failed", error="RuntimeError: boom",
                                            wall_time_s=1.0)
        return r


def test_a_busy_rerun_that_fails_is_not_tried_again(syn, tmp_path) -> None:
    fz, configs, _ = syn
    df = oracle_frame(_cpu_configs(configs))
    ex = _BusyThenCrashExecutor(df, busy_keys=[c.key for c in _cpu_configs(configs)])
    cfg = _cfg(acquisition={"name": "random", "q": 1}, budget={"runs": 8}, initial_design=2)
    r = ExperimentLoop(cfg, Store(tmp_path / "crash.duckdb", seed=False), ex, space_from_dataset(cfg.search_space, df),
                       mode="run", predictor_factory=_gp_factory(fz)).run()
    per_key: dict = {}
    for p in r.prequential:
        per_key[p["config_key"]] = per_key.get(p["config_key"], 0) + 1
    assert r.n_benchmarks == 8 and r.n_failed == r.n_reruns >= 1
    assert max(per_key.values()) == 2  # one busy run and one failed rerun, never a third attempt


def test_the_plateau_stop_rule_reads_the_prequential_error() -> None:
    from experiments.config import ExperimentConfigError, parse_config
    from experiments.loop import ExperimentLoop

    loop = ExperimentLoop.__new__(ExperimentLoop)  # only the prequential record is read

    def with_apes(apes):
        loop.prequential = [{"ape": a} for a in apes] + [{"ape": None, "status": "oom"}]  # failures are skipped
        return loop

    falling = [0.3] * 10 + [0.2] * 10
    assert with_apes(falling)._plateau(10, 0.0) is None and with_apes(falling[:15])._plateau(10, 0.0) is None
    flat = [0.2] * 10 + [0.21] * 10
    why = with_apes(flat)._plateau(10, 0.0)
    assert why is not None and "21.0% over the last 10 runs, 20.0% over the 10 before" in why
    assert with_apes([0.3] * 10 + [0.295] * 10)._plateau(10, 0.01) is not None  # half a point < the 1-point gain
    assert with_apes(falling)._plateau(None, 0.0) is None
    cfg = parse_config({"name": "x", "search_space": {}, "stop": {"plateau_runs": 16, "plateau_min_gain": 0.01}})
    assert cfg.stop.plateau_runs == 16
    with pytest.raises(ExperimentConfigError, match="plateau_runs"):
        parse_config({"name": "x", "search_space": {}, "stop": {"plateau_runs": 1}})


def test_a_busy_run_is_not_scored_against_its_forecast(syn, tmp_path) -> None:
    """Audit: a demo on a loaded machine reported 68% prequential APE, measured against timings the
    fits themselves leave out; a busy run now keeps its error aside (``ape_busy``)."""
    r, _, _ = _busy_loop(syn, tmp_path, busy_times=1, rerun_busy=0)
    busy = [p for p in r.prequential if p.get("busy")]
    assert busy and all(p["ape"] is None for p in busy)
    forecast = [p for p in busy if p["predicted"] is not None]
    assert forecast and all(p["ape_busy"] is not None for p in forecast)


def test_a_step_whose_picks_never_landed_is_dropped_on_resume(syn, tmp_path) -> None:
    """A kill during a step's benchmark left that step's record in the resumed loop, beside the step
    acquired again from the same data: two steps at one benchmark count, one of them choosing a run
    that does not exist."""
    from engine.models.roofline import RooflinePredictor

    fz, configs, _ = syn
    df = oracle_frame(configs[:30])
    store = Store(tmp_path / "lost.duckdb", seed=False)
    cfg = _cfg(acquisition={"name": "max-variance", "q": 1}, budget={"runs": 4}, initial_design=2)

    def loop(c, events=None):
        return ExperimentLoop(c, store, OracleExecutor(df), space_from_dataset(c.search_space, df), mode="run",
                              predictor_factory=lambda: RooflinePredictor(featurizer=fz),
                              on_event=lambda k, p: events.append((k, p)) if events is not None else None)

    first = loop(cfg)
    r = first.run()
    exp = store.get_experiment(r.experiment_id)
    measured = set(store.measurements(status=None)["config_key"])
    ghost = next(c.key for c in first.space if c.key not in measured)
    steps = [s for s in exp["state"]["steps"] if s["chosen"]]  # the final evaluation chose nothing
    lost = {**steps[-1], "n_benchmarks": 4, "chosen": [{**steps[-1]["chosen"][0], "config_key": ghost}]}
    store.upsert_experiment(r.experiment_id, cfg.name, exp["config"], "interrupted",
                            {**exp["state"], "steps": [*steps, lost]})
    events: list = []
    again = loop(cfg.model_copy(update={"budget": cfg.budget.model_copy(update={"runs": 6})}), events)
    r2 = again.run()
    assert r2.experiment_id == r.experiment_id and r2.resumed_runs == 4
    assert any(k == "info" and ghost in p and "never landed" in p for k, p in events)
    counts = [s.n_benchmarks for s in r2.steps if s.chosen]
    assert len(counts) == len(set(counts))  # one acquisition per benchmark count
    assert all(c["config_key"] in set(store.measurements(status=None)["config_key"])
               for s in r2.steps for c in s.chosen)
