"""Experiment configs: shipped files load; errors are one line naming the key and valid values."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from _cli_errors import invoke, one_error_line
from experiments.config import (
    ExperimentConfigError,
    check_predictor_options,
    load_config,
    parse_config,
    shipped_configs,
)

BASE = {"name": "t", "search_space": {"models": ["gpt2"], "hardware": ["cpu"]}}


def _with(**over):
    d = {**BASE}
    for k, v in over.items():
        d[k] = v
    return d


def test_shipped_configs_load_by_bare_name_and_by_path() -> None:
    names = shipped_configs()
    assert {"cpu-quick", "cpu-full", "replay-shipped"} <= set(names)
    for n in ("cpu-quick", "cpu-full", "replay-shipped"):
        assert load_config(n).name == n
    assert load_config("configs/experiments/cpu-quick.yaml").name == "cpu-quick"


@pytest.mark.parametrize("data, fragments", [
    (_with(acquisition={"name": "eigg"}), ["acquisition.name", "'eigg'", "eig", "bald", "max-variance", "random"]),
    (_with(predictor={"kind": "forest"}), ["predictor.kind", "gp", "hierarchical"]),
    (_with(acquisition={"q": 0}), ["acquisition.q", "0"]),
    (_with(search_space={"models": ["gpt2"], "precisions": ["fp64"]}), ["search_space.precisions", "fp32", "int8"]),
    (_with(search_space={"models": ["gpt2"], "batchsizes": [1]}), ["unknown key", "search_space.batchsizes",
                                                                    "batch_sizes"]),
    (_with(budgett={"runs": 3}), ["unknown key", "budgett", "budget"]),
    ({"search_space": {}}, ["missing", "name"]),
    (_with(search_space={"models": ["bert-base-uncase"]}), ["search_space.models", "bert-base-uncased"]),
    (_with(benchmark={"iterations": -1}), ["benchmark.iterations"]),
])
def test_errors_name_the_key_and_the_valid_values(data, fragments) -> None:
    with pytest.raises(ExperimentConfigError) as ei:
        parse_config(data, "x.yaml")
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith("x.yaml")
    for f in fragments:
        assert f in msg, (f, msg)


def test_invalid_yaml_and_unknown_config_names() -> None:
    from engine.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="cpu-quick"):
        load_config("cpu-quik")


def test_experiment_id_is_stable_and_depends_on_the_settings() -> None:
    a = parse_config(BASE)
    b = parse_config(BASE)
    c = parse_config(_with(seed=3))
    assert a.experiment_id() == b.experiment_id() != c.experiment_id()
    assert a.with_acquisition("random").acquisition.name == "random"


def test_settings_added_later_keep_experiment_ids_unless_changed() -> None:
    """A loop stored before cost_exponent / rerun_busy existed, or at cost_exponent 0.5 (the default
    until session 10), must still resume under its id; the new default 0.25 is a different loop."""
    base = {"name": "ids", "search_space": {}}
    same = parse_config({**base, "acquisition": {"cost_exponent": 0.5}, "benchmark": {"rerun_busy": 3}})
    assert f"ids-run-{same.digest()}" == "ids-run-b9067421a8"  # what the code before session 10 computed
    assert parse_config(base).acquisition.cost_exponent == 0.25
    assert parse_config(base).experiment_id() != same.experiment_id()
    assert parse_config({**base, "acquisition": {"cost_exponent": 1.0}}).experiment_id() != same.experiment_id()
    # replay.prior (session 14) at its default keeps the id; the shipped prior is another loop
    prior = {**base, "acquisition": {"cost_exponent": 0.5}, "replay": {"dataset": "cpu-quick-grid"}}
    other = parse_config({**prior, "replay": {"dataset": "cpu-quick-grid", "prior": "shipped"}})
    assert parse_config(prior).experiment_id("replay") != other.experiment_id("replay")


def test_a_missing_config_path_is_named_not_replaced_by_the_shipped_one(tmp_path: Path) -> None:
    from engine.errors import InvalidValueError

    for path in (tmp_path / "nowhere" / "cpu-quick.yaml", tmp_path / "cpu-full.yml"):
        with pytest.raises(InvalidValueError, match="no such file") as ei:
            load_config(str(path))
        assert str(path) in str(ei.value) and "cpu-quick" in str(ei.value)
    # the README's repo-relative path and bare names still find the shipped files anywhere; a file
    # name in this folder is a path (session 22: "./cpu-quick.yaml" ran the shipped loop)
    assert load_config("configs/experiments/cpu-full.yaml").name == "cpu-full"
    assert load_config("cpu-full").name == "cpu-full"
    for name in ("cpu-full.yaml", "./cpu-full.yaml"):
        with pytest.raises(InvalidValueError, match="no such file"):
            load_config(name)
    one_error_line(invoke("suggest", "--space", str(tmp_path / "typo" / "cpu-quick.yaml")), "no such file")


BASE: dict[str, Any] = {"name": "x", "search_space": {"models": ["gpt2"]}}


@pytest.mark.parametrize("data, fragments", [
    ({**BASE, "seed": -5}, ["seed", "-5", "greater than or equal to 0"]),
    ({**BASE, "replay": {"seeds": []}}, ["replay.seeds", "at least 1"]),
    ({**BASE, "replay": {"seeds": [0, -1]}}, ["replay.seeds", ">= 0"]),
    ({**BASE, "name": " "}, ["name", "blank"]),
    ({**BASE, "search_space": {"models": []}}, ["search_space.models", "empty list"]),
    ({**BASE, "search_space": {"models": ["gpt2"], "batch_sizes": [True]}}, ["search_space.batch_sizes", "integer"]),
    ({**BASE, "benchmark": {"min_time_s": 5, "max_time_s": 1}}, ["benchmark", "min_time_s 5 is above max_time_s 1"]),
    ({"name": "x", "search_spce": {"models": ["gpt2"]}}, ["unknown key 'search_spce'", "did you mean 'search_space'"]),
    # YAML's .inf passed every gt=0 (an unbounded budget or cap); .nan was refused as "less than 1"
    ({**BASE, "budget": {"benchmark_seconds": float("inf")}}, ["budget.benchmark_seconds inf", "finite number > 0"]),
    ({**BASE, "benchmark": {"memory_limit_mib": float("inf")}}, ["benchmark.memory_limit_mib", "finite number > 0"]),
    ({**BASE, "stop": {"max_rel_width90": float("inf")}}, ["stop.max_rel_width90", "valid: a finite number > 0"]),
    ({**BASE, "stop": {"max_reducible": float("nan")}}, ["stop.max_reducible nan", "finite number > 0 and < 1"]),
    ({**BASE, "budget": {"benchmark_seconds": 0.0}}, ["budget.benchmark_seconds 0.0", "greater than 0"]),
    ({**BASE, "benchmark": {"time_limit_s": -1.0}}, ["benchmark.time_limit_s -1.0", "greater than 0"]),
])
def test_config_values_are_one_line_errors(data: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ExperimentConfigError) as ei:
        parse_config(data, "x.yaml")
    msg = str(ei.value)
    assert "\n" not in msg and "Value error" not in msg
    for f in fragments:
        assert f in msg, (f, msg)


def test_predictor_options_are_checked_against_the_predictor() -> None:
    check_predictor_options(parse_config({**BASE, "predictor": {"options": {"maxiter": 3}}}))
    with pytest.raises(ExperimentConfigError, match="unknown predictor.options key 'maxiterr' for predictor gp; "
                                                    "did you mean 'maxiter'"):
        check_predictor_options(parse_config({**BASE, "predictor": {"options": {"maxiterr": 3}}}))


def test_a_config_naming_cuda_on_a_cpu_machine_or_an_unknown_device_is_one_line(tmp_path: Path) -> None:
    from experiments.config import ExperimentConfigError, parse_config
    from experiments.space import expand_space

    cfg = parse_config({"name": "x", "search_space": {"models": ["gpt2"], "hardware": ["cuda"]}})
    configs = expand_space(cfg.search_space)  # the catalog's cuda device when torch has no CUDA (was a traceback)
    assert configs and all(c.hardware for c in configs)
    bad = parse_config({"name": "x", "search_space": {"models": ["gpt2"], "hardware": ["foo"]}})
    with pytest.raises(ExperimentConfigError, match="unknown hardware 'foo'"):
        expand_space(bad.search_space)
    remote = parse_config({"name": "x", "search_space": {"models": ["gpt2"], "hardware": ["cpu-intel-xyz-64c"]}})
    assert {c.hardware for c in expand_space(remote.search_space)} == {"cpu-intel-xyz-64c"}  # a Ray worker's CPU


def test_gpu_configs_of_a_space_carry_no_thread_counts() -> None:
    from experiments.config import parse_config
    from experiments.space import expand_space

    cfg = parse_config({"name": "x", "search_space": {"models": ["gpt2"], "hardware": ["t4", "cpu-amd-epyc-2c"],
                                                      "threads": [1, 2]}})
    configs = expand_space(cfg.search_space)
    assert {c.threads for c in configs if c.hardware == "t4"} == {0}
    assert {c.threads for c in configs if c.hardware == "cpu-amd-epyc-2c"} == {1, 2}


def test_threads_listed_for_gpus_alone_are_said_to_be_left_out() -> None:
    """Audit: `threads: [1, 2]` with only GPUs ran t0 without a word (threads are CPU threads)."""
    import warnings

    from experiments.config import parse_config
    from experiments.space import expand_space

    gpus = parse_config({"name": "x", "search_space": {"models": ["gpt2"], "hardware": ["t4", "a10"],
                                                       "threads": [1, 2]}})
    with pytest.warns(UserWarning, match=r"search_space.threads 1, 2 left out: threads apply to CPU devices only "
                                         r"and search_space.hardware has none \(t4, a10\)"):
        configs = expand_space(gpus.search_space)
    assert {c.threads for c in configs} == {0}
    mixed = parse_config({"name": "x", "search_space": {"models": ["gpt2"], "hardware": ["t4", "cpu-amd-epyc-2c"],
                                                        "threads": [1, 2]}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expand_space(mixed.search_space)


def test_a_larger_budget_or_another_stop_rule_continues_the_same_experiment() -> None:
    """Audit: raising budget.runs from 5 to 6 started a new experiment from zero (every setting was
    hashed); when to stop, the description and the after-run replay are not what is measured."""
    a = parse_config({**BASE, "budget": {"runs": 5}})
    for other in ({"budget": {"runs": 6}}, {"budget": {"benchmark_seconds": 100}}, {"stop": {"min_runs": 4}},
                  {"description": "more"}, {"replay": {"seeds": [0, 1, 2]}}):
        assert parse_config({**BASE, **other}).experiment_id() == a.experiment_id(), other
    for other in ({"seed": 4}, {"acquisition": {"name": "random"}}, {"benchmark": {"iterations": 20}}):
        assert parse_config({**BASE, **other}).experiment_id() != a.experiment_id(), other
    # a replay's id still covers everything: its budget and seeds define the comparison
    assert parse_config({**BASE, "budget": {"runs": 6}}).experiment_id("replay") != a.experiment_id("replay")


def test_yaml_keys_are_checked_once_each_and_merge_keys_still_work(tmp_path: Path) -> None:
    """A key given twice in one mapping was silently the last one (audit); a merged default may be
    overridden; a list as a key is one line, not a TypeError."""
    from experiments.config import ExperimentConfigError

    head = "name: y\nsearch_space: {models: [gpt2], hardware: [cpu]}\n"
    cases = {"dup": "budget: {runs: 99}\nbudget: {runs: 3}\n", "nested": "benchmark: {iterations: 3, iterations: 4}\n",
             "listkey": "predictor: {options: {[1, 2]: a}}\n"}
    for name, body in cases.items():
        f = tmp_path / f"{name}.yaml"
        f.write_text(head + body)
        with pytest.raises(ExperimentConfigError) as e:
            load_config(str(f))
        assert "\n" not in str(e.value) and str(f) in str(e.value)
        assert ("duplicate key" in str(e.value)) == (name != "listkey"), str(e.value)
    merged = tmp_path / "merge.yaml"
    merged.write_text(head + "benchmark:\n  <<: {iterations: 5, warmup: 1}\n  warmup: 2\n")
    cfg = load_config(str(merged))
    assert (cfg.benchmark.iterations, cfg.benchmark.warmup) == (5, 2)


@pytest.mark.parametrize("options, needle", [({"num_warmup": "abc"}, "invalid num_warmup 'abc'"),
                                             ({"num_chains": 0}, "invalid num_chains 0"),
                                             ({"target_accept": 1.5}, "invalid target_accept 1.5")])
def test_bad_hierarchical_option_values_are_one_line_before_any_fit(options, needle) -> None:
    """Audit H: num_warmup "abc" was a numpyro traceback, num_chains 0 a JAX one, and target_accept
    1.5 ran a whole fit to report an R-hat of 7e15."""
    cfg = parse_config({**BASE, "predictor": {"kind": "hierarchical", "options": options}})
    with pytest.raises(ExperimentConfigError, match=f"predictor.options: {needle}"):
        check_predictor_options(cfg)
    check_predictor_options(parse_config({**BASE, "predictor": {"kind": "hierarchical",
                                                                "options": {"target_accept": 0.95}}}))


def test_an_infinite_budget_in_a_yaml_file_is_refused_before_the_run(tmp_path: Path) -> None:
    """Audit (session 32): ``budget.benchmark_seconds: .inf`` was accepted, an unbounded budget."""
    path = tmp_path / "inf.yaml"
    path.write_text("name: inf\nsearch_space: {models: [gpt2], hardware: [cpu]}\nbudget: {benchmark_seconds: .inf}\n")
    db = tmp_path / "inf.duckdb"
    one_error_line(invoke("run", str(path), "--db", str(db)), "invalid budget.benchmark_seconds inf",
                   "valid: a finite number > 0")
    assert not db.exists()
