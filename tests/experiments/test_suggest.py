"""The old API and `perfcast suggest`: every JSON field filled, stored, run.sh shell-quoted."""
from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from _oracle_data import oracle_frame

from _cli_errors import invoke
from engine.active_learning import ActiveLearningSystem, benchmark_command, commands_script
import numpy as np
from engine.config import Config

OLD_ITEM_FIELDS = ("model_name", "model_type", "hardware", "batch_size", "expected_information_gain", "uncertainty",
                   "diversity", "recommended_hardware", "hardware_match", "hardware_score", "combined_score",
                   "alternatives")
OLD_TOP_FIELDS = ("total_candidates", "enhanced_candidates", "final_recommendations", "optimization_metric",
                  "strategy", "timestamp")

#: more foreign cores than any machine has: busy whatever its cores and the run's threads
BUSY_LOAD = 1000.0


def test_run_sh_values_are_shell_quoted() -> None:
    item = {"model_name": "gpt2; rm -rf ~ 'x'", "hardware": "cpu-amd $(whoami)", "batch_size": 4, "seq_len": 64,
            "precision": "fp32", "mode": "inference", "runtime": "torch", "threads": 2}
    line = benchmark_command(item)
    args = shlex.split(line)
    assert Path(args[0]).name == "perfcast" and args[1] == "benchmark"
    # the script calls the perfcast that wrote it (an unactivated .venv has none on PATH), unless told otherwise
    assert args[0] == "perfcast" or Path(args[0]).is_file()
    assert args[args.index("--model") + 1] == "gpt2; rm -rf ~ 'x'"
    assert args[args.index("--batch-sizes") + 1] == "4" and "--save" in args
    script = commands_script([item, item])
    assert script.startswith("#!/usr/bin/env bash") and script.count('"$PERFCAST" benchmark --model') == 2
    assert f'PERFCAST="${{PERFCAST:-{args[0]}}}"' in script
    import subprocess

    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def _store_of(tmp_path, configs, name: str = "s"):
    """A store holding the oracle's runs of ``configs`` (imported as a user would)."""
    from engine.store import Store
    from engine.store.transfer import import_measurements

    store = Store(tmp_path / f"{name}.duckdb", seed=False)
    path = tmp_path / f"{name}.csv"
    oracle_frame(list(configs)).drop(columns=["samples_ms"]).to_csv(path, index=False)
    import_measurements(store, path)
    return store


class _Recommender:
    """A stand-in hardware recommender with the HardwareRecommender interface."""

    def recommend_hardware(self, model_name, batch_size=1, optimization_metric="throughput", **kw):
        from types import SimpleNamespace

        opts = [SimpleNamespace(hardware="gpu-syn-a", prob_best=0.7, metric=SimpleNamespace(median=100.0)),
                SimpleNamespace(hardware="cpu-syn-16c", prob_best=0.3, metric=SimpleNamespace(median=10.0))]
        return SimpleNamespace(recommended="gpu-syn-a", prob_best={o.hardware: o.prob_best for o in opts}, options=opts,
                               warnings=["no cuda device has been measured (stand-in)"])


def test_integrated_recommendation_fills_every_field_and_is_stored(syn, fitted_gp, tmp_path) -> None:
    from engine.store import Store
    from engine.store.transfer import import_measurements

    gp, pool = fitted_gp
    fz, configs, _ = syn
    store = Store(tmp_path / "s.duckdb", seed=False)
    path = tmp_path / "runs.csv"
    df = oracle_frame(configs[:40]).drop(columns=["samples_ms"])
    df.to_csv(path, index=False)
    import_measurements(store, path)
    space = configs[:40] + pool[:60]  # the first 40 are measured: excluded
    als = ActiveLearningSystem(store, predictor=gp, space=space, acquisition="eig")
    payload = als.integrate_with_hardware_recommender(_Recommender(), test_budget=3, optimize_for="throughput")
    for k in OLD_TOP_FIELDS:
        assert k in payload
    assert payload["total_candidates"] == 100 and payload["enhanced_candidates"] <= 60
    assert payload["excluded"]["measured"] == 40
    items = payload["final_recommendations"]
    assert len(items) == 3
    for it in items:
        for k in OLD_ITEM_FIELDS:
            assert k in it and (it[k] is not None or k in ("hardware_score", "hardware_match")), k
        compared = {"gpu-syn-a": 0.7, "cpu-syn-16c": 0.3}
        if it["hardware"] in compared:
            assert it["hardware_score"] == pytest.approx(compared[it["hardware"]])
            assert it["hardware_match"] == (it["hardware"] == "gpu-syn-a")
        else:  # a device the recommender did not compare: no P(best), rather than 0
            assert it["hardware_score"] is None and it["hardware_match"] is None
        assert it["combined_score"] == pytest.approx(it["expected_information_gain"] / it["predicted_cost_s"])
    json.dumps(payload, default=str)
    # the recommender's cautions come along, once (audit: GPU picks without the usual caution)
    assert [n for n in payload["notes"] if "hardware recommender:" in n] == [
        "hardware recommender: no cuda device has been measured (stand-in)"]
    recs = als.recommend_configurations(budget=2)
    assert len(recs) == 2 and recs[0]["model_name"]
    rid = store.save_json_record("recommendations", "active_learning", payload)
    assert rid and store.count("recommendations") == 1


def test_suggest_needs_measurements_first(tmp_path) -> None:
    from engine.errors import NotAvailableError
    from engine.store import Store

    als = ActiveLearningSystem(Store(tmp_path / "e.duckdb", seed=False), space="cpu-quick")
    with pytest.raises(NotAvailableError, match="perfcast demo"):
        als.recommend_configurations(budget=2)


def test_configurations_measured_only_on_a_busy_machine_are_listed_for_rerun_first(syn, fitted_gp, tmp_path) -> None:
    import pandas as pd

    from engine.store import Store
    from engine.store.transfer import import_measurements

    gp, pool = fitted_gp
    fz, configs, _ = syn
    configs = [c for c in configs if c.hardware.startswith("cpu-")]  # only CPU runs are judged busy
    busy = BUSY_LOAD
    df = oracle_frame(configs[:6]).drop(columns=["samples_ms"])
    df["foreign_cpu_cores"] = [busy, busy, 0.0, None, 0.0, 0.0]
    again = df.iloc[[1]].copy()  # config 1 also has a quiet rerun: repaired, not listed
    again["foreign_cpu_cores"] = 0.0
    again["started_at"] = pd.Timestamp("2026-01-02")
    path = tmp_path / "runs.csv"
    pd.concat([df, again]).to_csv(path, index=False)
    store = Store(tmp_path / "b.duckdb", seed=False)
    import_measurements(store, path)
    als = ActiveLearningSystem(store, predictor=gp, space=configs[:6] + pool[:20], acquisition="random")
    payload = als.integrate_with_hardware_recommender(_Recommender(), test_budget=2)
    assert [r["config_key"] for r in payload["reruns"]] == [configs[0].key]
    assert payload["reruns"][0]["foreign_cpu_cores"] == busy and payload["reruns"][0]["runs"] == 1
    assert any("rerun" in n for n in payload["notes"])
    # the rerun command saves into this store, not the default one (audit: the Python API's had no --db)
    words = shlex.split(payload["reruns"][0]["command"])
    assert words[words.index("--db") + 1] == str((tmp_path / "b.duckdb").resolve())
    script = commands_script(payload["final_recommendations"], reruns=payload["reruns"])
    lines = [ln for ln in script.splitlines() if ln.startswith('"$PERFCAST" benchmark')]
    assert len(lines) == 3 and shlex.split(lines[0])[shlex.split(lines[0]).index("--model") + 1] == configs[0].model


def test_cost_exponent_reaches_the_selection(syn, fitted_gp, tmp_path) -> None:
    """α = 0 divides by cost⁰ = 1, so it must pick what the cost-unaware selection picks."""
    from engine.errors import InvalidValueError
    from engine.store import Store
    from engine.store.transfer import import_measurements

    gp, pool = fitted_gp
    fz, configs, _ = syn
    store = Store(tmp_path / "s.duckdb", seed=False)
    path = tmp_path / "runs.csv"
    oracle_frame(configs[:40]).drop(columns=["samples_ms"]).to_csv(path, index=False)
    import_measurements(store, path)
    space = configs[:40] + pool[:60]

    def picks(**kw):
        p = ActiveLearningSystem(store, predictor=gp, space=space, acquisition="eig", **kw).recommend_configurations(3)
        return [it["config_key"] for it in p]

    zero = ActiveLearningSystem(store, predictor=gp, space=space, cost_exponent=0.0)
    payload = zero.integrate_with_hardware_recommender(_Recommender(), test_budget=3)
    assert payload["cost_exponent"] == 0.0 and "^0" in payload["strategy"]
    assert [it["config_key"] for it in payload["final_recommendations"]] == picks(cost_aware=False)
    from engine.active_learning import SUGGEST_COST_EXPONENT

    assert SUGGEST_COST_EXPONENT == 0.0 and picks(cost_exponent=0.0) == picks()
    assert picks(cost_exponent=1.0) != picks()  # the cost matters on this pool, so α is really used
    with pytest.raises(InvalidValueError, match="cost_exponent"):
        ActiveLearningSystem(store, predictor=gp, space=space, cost_exponent=1.5)


def test_a_device_new_to_the_store_starts_with_random_picks_then_eig(syn, fitted_gp, tmp_path) -> None:
    """eig's first picks on a device the store has fewer than 5 configurations of are random (the
    loop's rule on a new device); eig fills the rest of the batch, conditioned on them."""
    from engine.active_learning import NEW_DEVICE_CONFIGS
    from engine.store import Store
    from engine.store.transfer import import_measurements

    gp, pool = fitted_gp
    fz, configs, _ = syn
    new_hw = "gpu-syn-a"
    known = [c for c in configs[:40] if c.hardware != new_hw]
    store = Store(tmp_path / "n.duckdb", seed=False)
    path = tmp_path / "runs.csv"
    oracle_frame(known).drop(columns=["samples_ms"]).to_csv(path, index=False)
    import_measurements(store, path)
    measured = store.measurements().groupby("hardware")["config_key"].nunique().to_dict()
    rich = max(measured, key=measured.get)
    assert new_hw not in measured and measured[rich] >= NEW_DEVICE_CONFIGS

    def suggest(space, budget=8, acquisition="eig", start=True, seed=0):
        als = ActiveLearningSystem(store, predictor=gp, space=space, acquisition=acquisition, new_device_start=start,
                                   seed=seed)
        return als.integrate_with_hardware_recommender(_Recommender(), test_budget=budget)

    new_space = [c for c in pool if c.hardware == new_hw][:30]
    rich_space = [c for c in pool if c.hardware == rich][:30]
    p = suggest(new_space + rich_space)
    by = [it["picked_by"] for it in p["final_recommendations"]]
    assert by == ["new-device start (random)"] * NEW_DEVICE_CONFIGS + ["eig"] * (8 - NEW_DEVICE_CONFIGS)
    start = p["final_recommendations"][:NEW_DEVICE_CONFIGS]
    assert {it["hardware"] for it in start} == {new_hw} and p["new_device_start"] == NEW_DEVICE_CONFIGS
    keys = [it["config_key"] for it in p["final_recommendations"]]
    assert len(set(keys)) == len(keys)  # eig did not re-pick a start configuration
    assert all(it["expected_information_gain"] is not None for it in start)
    assert p["strategy"].startswith(f"random start on {new_hw}") and "then eig" in p["strategy"]
    assert any(f"{new_hw} has 0 measured configuration(s): its first {NEW_DEVICE_CONFIGS} pick(s) are random" in n
               for n in p["notes"])
    script = commands_script(p["final_recommendations"])
    assert f"the first {NEW_DEVICE_CONFIGS} are a new device's random start" in script
    # eig alone would not have picked this batch on the new device (the start is not eig's own choice)
    eig_only = suggest(new_space + rich_space, start=False)
    assert [it["picked_by"] for it in eig_only["final_recommendations"]] == ["eig"] * 8
    eig_keys = [it["config_key"] for it in eig_only["final_recommendations"]]
    assert eig_keys[:NEW_DEVICE_CONFIGS] != keys[:NEW_DEVICE_CONFIGS]
    assert any("--no-new-device-start" in n and "random first picks" in n for n in eig_only["notes"])
    # another seed, other random picks; a budget the start fills entirely has no eig step
    assert [it["config_key"] for it in suggest(new_space, seed=1)["final_recommendations"]][:2] != keys[:2]
    small = suggest(new_space, budget=2)
    assert [it["picked_by"] for it in small["final_recommendations"]] == ["new-device start (random)"] * 2
    assert small["acquisition"] == "random" and "then" not in small["strategy"]
    # a device the store knows well, and the other acquisitions: no start
    assert suggest(rich_space)["new_device_start"] == 0
    assert suggest(new_space, acquisition="max-variance")["new_device_start"] == 0
    assert [n for n in suggest(new_space, acquisition="random")["notes"] if "hardware recommender" not in n] == []


def _fake_suggest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the fit: a system that recommends one configuration, and one busy rerun."""
    import engine.active_learning as al

    item = {"model_name": "gpt2", "hardware": "cpu", "batch_size": 2, "seq_len": 64, "precision": "fp32",
            "mode": "inference", "runtime": "torch", "threads": 1}

    class Fake:
        def __init__(self, *a: Any, **k: Any) -> None:
            pass

        def integrate_with_hardware_recommender(self, *a: Any, **k: Any) -> dict[str, Any]:
            return {"final_recommendations": [item], "strategy": "fake", "excluded": {}, "total_candidates": 1,
                    "enhanced_candidates": 1, "notes": [],
                    "reruns": [{**item, "command": al.benchmark_command(item)}]}

    monkeypatch.setattr(al, "ActiveLearningSystem", Fake)


def test_emit_commands_carry_quoted_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_suggest(monkeypatch)
    db, sh = tmp_path / "my store.duckdb", tmp_path / "run.sh"
    r = invoke("suggest", "--budget", "1", "--db", str(db), "--emit-commands", str(sh), "--json")
    assert r.exit_code == 0, r.output
    lines = [ln for ln in sh.read_text().splitlines() if ln.startswith('"$PERFCAST" benchmark')]
    assert len(lines) == 2  # the rerun and the recommendation
    for ln in lines:
        args = shlex.split(ln)
        assert args[args.index("--db") + 1] == str(db.resolve())
    assert "'" in lines[0]  # the space is quoted


def test_emit_commands_for_the_default_store_have_no_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.store.paths as paths

    _fake_suggest(monkeypatch)
    db, sh = tmp_path / "default.duckdb", tmp_path / "run.sh"
    monkeypatch.setattr(paths, "platform_db_path", lambda: db)
    r = invoke("suggest", "--budget", "1", "--db", str(db), "--emit-commands", str(sh), "--json")
    assert r.exit_code == 0, r.output
    assert "--db" not in sh.read_text()


def test_the_emitted_script_calls_the_perfcast_that_wrote_it() -> None:
    from engine.active_learning import commands_script, perfcast_executable

    item = {"model_name": "gpt2", "hardware": "cpu", "batch_size": 1, "seq_len": 32, "precision": "fp32",
            "mode": "inference", "runtime": "torch", "threads": 1}
    script = commands_script([item])
    exe = perfcast_executable()
    # the entry point beside this Python, absolute: a script written from an activated venv must not
    # depend on the PATH of the shell that runs it (session 22)
    assert Path(exe).is_absolute() and Path(exe).is_file() and Path(exe).parent == Path(sys.executable).parent.absolute()
    line = next(ln for ln in script.splitlines() if "benchmark --model" in ln)
    assert line.startswith('"$PERFCAST" benchmark') and f'PERFCAST="${{PERFCAST:-{exe}}}"' in script
    assert shlex.split(line)[0] == "$PERFCAST"  # expanded by bash, not quoted away


def test_an_explicit_space_names_devices_not_platforms(tmp_path) -> None:
    from engine.active_learning import ActiveLearningSystem
    from hardware.detect import local_cpu_id

    als = ActiveLearningSystem(tmp_path / "s.duckdb", space=[Config("gpt2", "cpu"), Config("gpt2", "t4")])
    assert [c.hardware for c in als.space()] == [local_cpu_id(), "t4"]


def test_suggested_commands_follow_the_spaces_benchmark_protocol() -> None:
    from engine.active_learning import ActiveLearningSystem, benchmark_command

    protocol = ActiveLearningSystem(space="cpu-quick").protocol()
    line = benchmark_command({"model_name": "gpt2", "hardware": "t4", "batch_size": 1}, protocol=protocol)
    assert f"--iterations {protocol['iterations']} " in line and f"--max-time {protocol['max_time_s']:g} " in line
    assert f"--decode-tokens {protocol['decode_tokens']} " in line
    assert "--iterations 20 " in benchmark_command({"model_name": "gpt2", "hardware": "t4", "batch_size": 1})


def test_busy_runs_do_not_end_a_new_devices_random_start(syn, fitted_gp, tmp_path) -> None:
    """Audit: after a demo on a loaded machine (5 of 6 configurations busy, left out of every fit)
    suggest picked everything with eig: the new-device rule counted the busy runs as measured."""
    from engine.active_learning import NEW_DEVICE_CONFIGS
    from engine.store import Store
    from engine.store.transfer import import_measurements

    gp, pool = fitted_gp
    fz, configs, _ = syn
    cpu = [c for c in configs if c.hardware == "cpu-syn-2c"][:6]
    df = oracle_frame(cpu).drop(columns=["samples_ms"])
    df["foreign_cpu_cores"] = [BUSY_LOAD] * 5 + [0.0]
    path = tmp_path / "runs.csv"
    df.to_csv(path, index=False)
    store = Store(tmp_path / "busy.duckdb", seed=False)
    import_measurements(store, path)
    als = ActiveLearningSystem(store, predictor=gp, space=pool[:10], acquisition="eig")
    assert als.new_devices(cpu) == {cpu[0].hardware: 1} and 1 < NEW_DEVICE_CONFIGS


def test_run_sh_names_the_recommended_device_and_goes_on_past_a_failed_benchmark(tmp_path) -> None:
    """Audit S: a recommendation for another CPU (or a t4) was emitted as ``--hardware cpu`` (or
    ``cuda``), which measured this machine instead, so the suggestion never went away; and with
    ``set -e`` the first stored failure ended the script, leaving the rest unmeasured."""
    import subprocess

    from hardware.detect import local_cpu_id

    here = {"model_name": "gpt2", "hardware": local_cpu_id(), "batch_size": 1, "seq_len": 32, "precision": "fp32",
            "mode": "inference", "runtime": "torch", "threads": 1}
    other = {**here, "hardware": "t4", "threads": 0}
    script = commands_script([here, other])
    lines = [ln for ln in script.splitlines() if "benchmark --model" in ln]
    assert shlex.split(lines[0])[shlex.split(lines[0]).index("--hardware") + 1] == "torch-cpu"  # the local adapter
    assert shlex.split(lines[1])[shlex.split(lines[1]).index("--hardware") + 1] == "t4"  # the device itself
    assert "# lines naming t4 run only on that device" in script
    log = tmp_path / "calls"
    fake = tmp_path / "perfcast"
    fake.write_text(f"#!/usr/bin/env bash\necho \"$@\" >> {shlex.quote(str(log))}\nexit 1\n")
    fake.chmod(0o755)
    r = subprocess.run(["bash", "-c", script], env={**os.environ, "PERFCAST": str(fake)}, capture_output=True, text=True)
    assert r.returncode == 1 and len(log.read_text().splitlines()) == 2  # both ran; the script says one failed


def test_benchmark_refuses_a_catalog_device_this_machine_does_not_have() -> None:
    from engine.errors import NotAvailableError
    from hardware.detect import local_cpu_id
    from hardware.registry import resolve

    assert resolve(local_cpu_id()).hardware_id() == local_cpu_id()
    with pytest.raises(NotAvailableError, match="'t4' is a catalog device .*does not have"):
        resolve("t4")
    other = "cpu-amd-epyc-avx2-2c" if local_cpu_id() != "cpu-amd-epyc-avx2-2c" else "cpu-intel-xeon-2c"
    with pytest.raises(NotAvailableError, match=f"this machine's CPU is {local_cpu_id()}"):
        resolve(other)


def test_a_configuration_that_timed_out_under_a_lower_limit_is_suggested_again(syn, fitted_gp, tmp_path) -> None:
    """Audit S: one timeout under ``--time-limit 0.2`` kept a configuration out of every later
    suggestion, though the protocol's limit is 600 s; the loop already retried it."""
    from engine.records import Measurement

    gp, pool = fitted_gp
    fz, configs, _ = syn
    store = _store_of(tmp_path, configs[:20], "t")
    low, hard = pool[0], pool[1]
    store.save_measurement(Measurement.failed(low, "timeout", "time limit exceeded: 0.2 s; child killed"))
    store.save_measurement(Measurement.failed(hard, "failed", "RuntimeError: no kernel"))
    als = ActiveLearningSystem(store, predictor=gp, space=pool[:10], acquisition="random")
    payload = als.integrate_with_hardware_recommender(None, test_budget=10)
    keys = {it["config_key"] for it in payload["final_recommendations"]}
    assert low.key in keys and hard.key not in keys and payload["excluded"]["failed"] == 1
    assert any("1 configuration(s) that failed only under a lower time" in n for n in payload["notes"])


def test_a_small_budget_is_shared_between_two_new_devices(syn, fitted_gp, tmp_path) -> None:
    """Audit S: with two devices new to the store and a budget of 4, the whole random start went to
    the first device in order and none to the second."""
    from collections import Counter


    gp, pool = fitted_gp
    fz, configs, _ = syn
    devices = sorted({c.hardware for c in pool})
    assert len(devices) >= 3
    known, new = devices[0], devices[1:3]
    store = _store_of(tmp_path, [c for c in configs if c.hardware == known][:20], "two")
    space = [c for c in pool if c.hardware in new]
    als = ActiveLearningSystem(store, predictor=gp, space=space, acquisition="eig")
    items = als.integrate_with_hardware_recommender(_Recommender(), test_budget=4)["final_recommendations"]
    assert Counter(it["hardware"] for it in items) == {new[0]: 2, new[1]: 2}
    assert all(it["picked_by"].startswith("new-device") for it in items)


def test_diversity_is_against_the_whole_batch_when_a_random_start_comes_first(syn, fitted_gp, tmp_path) -> None:
    """Audit S: a random-start item's diversity was computed before eig picked the rest of the batch."""
    from engine.acquisition.select import batch_diagnostics, _source
    from engine.acquisition.covariance import submatrix

    gp, pool = fitted_gp
    fz, configs, _ = syn
    new_hw = "gpu-syn-a"
    store = _store_of(tmp_path, [c for c in configs[:40] if c.hardware != new_hw], "d")
    space = [c for c in pool if c.hardware == new_hw][:30] + [c for c in pool if c.hardware != new_hw][:30]
    items = ActiveLearningSystem(store, predictor=gp, space=space, acquisition="eig").recommend_configurations(8)
    assert items[0]["picked_by"].startswith("new-device") and items[-1]["picked_by"] == "eig"
    batch = [Config(it["model_name"], it["hardware"], it["batch_size"], it["seq_len"], it["precision"], it["mode"],
                    it["runtime"], it["threads"]) for it in items]
    src = _source("eig", gp, batch, np.arange(len(batch)), "throughput", 0, 256)
    want = batch_diagnostics(submatrix(src, list(range(len(batch)))), src.noise_var, len(batch))[1]
    assert [it["diversity"] for it in items] == pytest.approx(want)


def test_api_arguments_and_conflicting_flags_are_one_line(tmp_path) -> None:
    """Audit S: seed=-1 was a NumPy ValueError, pending=['gpt2'] an AttributeError, and
    ``--no-cost --cost-exponent 1`` dropped the exponent without a word."""
    from engine.errors import InvalidValueError
    from engine.store import Store

    with pytest.raises(InvalidValueError, match="invalid seed -1"):
        ActiveLearningSystem(Store(tmp_path / "a.duckdb", seed=False), space="cpu-quick", seed=-1)
    als = ActiveLearningSystem(Store(tmp_path / "a.duckdb", seed=False), space="cpu-quick")
    with pytest.raises(InvalidValueError, match="invalid pending 'gpt2'"):
        als.recommend_configurations(2, pending=["gpt2"])
    r = invoke("suggest", "--no-cost", "--cost-exponent", "1", "--db", str(tmp_path / "b.duckdb"))
    assert r.exit_code == 2 and "--no-cost" in r.stderr and "Traceback" not in r.output


def test_a_device_whose_runs_were_all_busy_is_not_called_new_to_the_store(syn, fitted_gp, tmp_path) -> None:
    """Audit (session 32): a device whose stored runs were all timed on a busy machine (left out of
    every fit, so it gets the random start) was called "new to the store" in the strategy line."""
    from engine.store import Store
    from engine.store.transfer import import_measurements

    gp, pool = fitted_gp
    fz, configs, _ = syn
    cpu = [c for c in configs if c.hardware == "cpu-syn-2c"][:4]
    quiet = [c for c in configs if c.hardware == "gpu-syn-a"][:6]  # quiet runs elsewhere: the busy ones are left out
    df = oracle_frame([*cpu, *quiet]).drop(columns=["samples_ms"])
    df["foreign_cpu_cores"] = [BUSY_LOAD] * len(cpu) + [0.0] * len(quiet)
    path = tmp_path / "runs.csv"
    df.to_csv(path, index=False)
    store = Store(tmp_path / "busy.duckdb", seed=False)
    import_measurements(store, path)
    space = [c for c in pool if c.hardware == "cpu-syn-2c"][:8]
    als = ActiveLearningSystem(store, predictor=gp, space=space, acquisition="eig")
    payload = als.integrate_with_hardware_recommender(None, test_budget=2)
    assert payload["new_device_start"] == 2 and "new to the store" not in payload["strategy"]
    assert "cpu-syn-2c: 2 picks, its 4 runs all timed on a busy machine, none fitted on" in payload["strategy"]
    note = next(n for n in payload["notes"] if n.startswith("cpu-syn-2c"))
    assert note.startswith("cpu-syn-2c has 4 runs in the store, all timed on a busy machine, so none is fitted on: "
                           "its first 2 pick(s) are random"), note
    quiet_store = _store_of(tmp_path, quiet, "new")  # a device with no run at all is still new to the store
    fresh = ActiveLearningSystem(quiet_store, predictor=gp, space=space, acquisition="eig")
    assert "new to the store" in fresh.integrate_with_hardware_recommender(None, test_budget=2)["strategy"]
