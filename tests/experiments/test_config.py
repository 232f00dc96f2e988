"""Experiment configs: shipped files load; errors are one line naming the key and valid values."""
from __future__ import annotations

import pytest

from experiments.config import ExperimentConfigError, load_config, parse_config, shipped_configs

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
    assert same.experiment_id() == "ids-run-b9067421a8"  # what the code before session 10 computed
    assert parse_config(base).acquisition.cost_exponent == 0.25
    assert parse_config(base).experiment_id() != same.experiment_id()
    assert parse_config({**base, "acquisition": {"cost_exponent": 1.0}}).experiment_id() != same.experiment_id()
    # replay.prior (session 14) at its default keeps the id; the shipped prior is another loop
    prior = {**base, "acquisition": {"cost_exponent": 0.5}, "replay": {"dataset": "cpu-quick-grid"}}
    other = parse_config({**prior, "replay": {"dataset": "cpu-quick-grid", "prior": "shipped"}})
    assert parse_config(prior).experiment_id() != other.experiment_id()
