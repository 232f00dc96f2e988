"""The demo's replay grid: every configuration of cpu-quick's space measured once, shipped for
replay only, so the after-run report can show baselines on the same pool."""
from __future__ import annotations

import types

import pytest
from rich.console import Console

from engine.catalog import catalog_hardware
from engine.errors import InvalidValueError
from experiments.config import load_config
from experiments.replay import bundled_datasets, dataset_names, load_dataset
from experiments.space import expand_space, space_from_dataset


@pytest.fixture(scope="module")
def grid():
    return load_dataset("cpu-quick-grid")


def test_the_grid_holds_every_configuration_of_the_demo_space_once(grid) -> None:
    cfg = load_config("cpu-quick")
    assert cfg.replay.dataset == "cpu-quick-grid" and "cpu-quick-grid" in bundled_datasets()
    (device,) = grid["hardware"].unique()
    assert device in catalog_hardware()  # resolvable on any machine, not only the one that measured it
    here = cfg.search_space.model_copy(update={"hardware": [device]})
    wanted = {c.key for c in expand_space(here)}
    assert len(wanted) == 48
    assert {c.key for c in space_from_dataset(here, grid)} == wanted
    assert (grid["status"] == "ok").all() and grid["config_key"].is_unique
    assert (grid["latency_median_ms"] > 0).all() and (grid["wall_time_s"] > 0).all()
    assert grid["source"].ne("shipped").all()


def test_an_unknown_dataset_name_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(InvalidValueError, match=r"replay.dataset 'cpu-quik-grid'.*shipped, cpu-quick-grid"):
        load_dataset("cpu-quik-grid")
    assert dataset_names()[0] == "shipped"


def test_replay_points_a_real_loops_cpu_at_the_device_the_data_hold(grid) -> None:
    from engine.cli.run_cmd import _space_in_dataset

    cfg = load_config("cpu-quick")
    moved, line = _space_in_dataset(cfg, grid)
    (device,) = grid["hardware"].unique()
    assert moved.search_space.hardware == [device] and moved.search_space.models == cfg.search_space.models
    assert f"48 configurations of this search space as measured on {device}" in line
    same, nothing = _space_in_dataset(moved, grid)
    assert same is moved and nothing == ""


def test_the_demos_report_replays_its_baselines_on_the_grid(grid) -> None:
    from engine.cli.run_cmd import _compare_after_run

    cfg = load_config("cpu-quick")
    cfg = cfg.model_copy(update={"replay": cfg.replay.model_copy(update={"seeds": [0]})})
    curves, note = _compare_after_run(cfg, types.SimpleNamespace(n_benchmarks=4), Console(quiet=True), True)
    assert [c.strategy for c in curves] == ["eig", "random", "max-variance"]
    assert all(c.seeds == 1 and c.source == "replay" for c in curves)
    assert all(c.ape_by_n[3] > 0 for c in curves)  # each scored on the grid's held-out configurations
    assert note.startswith("baselines replayed on the 48 configurations of this search space in the replay "
                           "dataset 'cpu-quick-grid'")


def test_perfcast_replay_cpu_quick_runs_on_the_grid_and_says_where() -> None:
    import json

    from click.testing import CliRunner

    from engine.cli.main import cli

    r = CliRunner().invoke(cli, ["replay", "cpu-quick", "--strategies", "random", "--seeds", "0", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    # None only on the grid's own machine; anywhere else the output says where the values come from
    assert out["replayed_on"] is None or \
        "48 configurations of this search space as measured on cpu-intel-xeon-amx-2c" in out["replayed_on"]
    (run,) = out["runs"]["random"]
    assert run["n_benchmarks"] == 7


def test_a_replay_with_the_shipped_prior_starts_where_the_real_run_starts(grid) -> None:
    """prior: shipped seeds each replay's store as a real loop's is: the random initial design
    counts the search space's own runs only (the shipped runs are another device's), and the first
    model-chosen pick comes from a model fitted on the shipped runs too; the shipped runs cannot
    also be the oracle."""
    from engine.cli.run_cmd import _space_in_dataset
    from experiments.config import ExperimentConfigError, ReplaySettings, parse_config
    from experiments.replay import run_replay

    cfg = load_config("cpu-quick")
    assert cfg.replay.prior == "shipped"
    cfg, _ = _space_in_dataset(cfg, grid)
    k = cfg.replay.initial_runs
    cfg = cfg.model_copy(update={"budget": cfg.budget.model_copy(update={"runs": k + 1, "benchmark_seconds": None})})
    steps = run_replay(cfg, grid, acquisition="eig", seed=0).steps
    assert [s.fitted for s in steps[:k]] == ["initial design"] * k
    first = steps[k]
    assert first.fitted == "fit" and first.n_train >= 400 + k and first.heldout_median_ape is not None
    bare = cfg.model_copy(update={"replay": ReplaySettings(dataset="cpu-quick-grid", initial_runs=k)})
    bare_steps = run_replay(bare, grid, acquisition="eig", seed=0).steps
    assert bare_steps[0].fitted == "initial design" and bare_steps[k].n_train == k
    with pytest.raises(ExperimentConfigError, match=r"replay.prior 'shipped'.*both the oracle and the prior"):
        parse_config({"name": "x", "search_space": {"models": ["gpt2"]},
                      "replay": {"dataset": "shipped", "prior": "shipped"}}, "x.yaml")


def test_replay_refuses_the_shipped_runs_as_oracle_of_a_loop_whose_prior_they_are() -> None:
    """`--dataset shipped` bypasses the config's validation; the same rule
    (experiments.config.prior_is_oracle) refuses it there, in one line naming the value."""
    from click.testing import CliRunner

    from engine.cli.main import cli

    r = CliRunner().invoke(cli, ["replay", "cpu-quick", "--dataset", "shipped", "--seeds", "0"])
    assert r.exit_code != 0
    assert "--dataset 'shipped'" in r.output and "cannot be the oracle too" in r.output


def test_a_replay_refuses_a_misspelt_device_and_names_another_missing_one(grid) -> None:
    """Audit: ``hardware: [cpuu]`` in a replay config was replayed on the grid's device with the line
    "this machine's device is not in the replay data"; a typo is refused, and a real device the data
    lack is named as itself, not as this machine's."""
    from engine.cli.run_cmd import _space_in_dataset
    from experiments.config import ExperimentConfigError

    cfg = load_config("cpu-quick")

    def on(hw: str):  # type: ignore[no-untyped-def]
        return cfg.model_copy(update={"search_space": cfg.search_space.model_copy(update={"hardware": [hw]})})

    with pytest.raises(ExperimentConfigError, match=r"^typo\.yaml: search_space\.hardware: unknown hardware 'cpuu'; "
                                                    r"did you mean 'cpu'"):
        _space_in_dataset(on("cpuu"), grid, "typo.yaml")
    _, line = _space_in_dataset(on("t4"), grid)
    assert line.startswith("t4 is not in the replay data: replaying the 48 configurations")


def test_a_bad_replay_file_is_refused_as_replay_data_not_as_an_import(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Audit: `replay --dataset junk.csv` said "nothing was imported", about a command that imports
    nothing; the import's own check is kept, the ending names what the file was for."""
    from engine.errors import ImportRejectedError

    f = tmp_path / "junk.csv"
    f.write_text("model,hardware,batch_size,precision\ngpt2,cpu-x,1,fp32\n")
    with pytest.raises(ImportRejectedError) as e:
        load_dataset(str(f))
    msg = str(e.value)
    assert "missing required column 'latency_median_ms'" in msg and "not usable as replay data" in msg
    assert "imported" not in msg
