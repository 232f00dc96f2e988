"""The after-run report replays its baselines on the shipped device when this machine's is absent."""
from __future__ import annotations

import pandas as pd

from engine.config import Config
from experiments.config import SearchSpace
from experiments.space import replay_space_elsewhere, space_from_dataset


def _data() -> pd.DataFrame:
    rows = []
    for hw, models in (("cpu-amd-epyc-2c", ("gpt2", "distilbert-base-uncased")), ("cpu-other-4c", ("gpt2",))):
        for m in models:
            for b in (1, 2, 4, 8):
                c = Config(m, hw, b, 64, "fp32", "inference", "torch", 2)
                rows.append({"config_key": c.key, "model": m, "hardware": hw, "batch_size": b, "seq_len": 64,
                             "precision": "fp32", "mode": "inference", "runtime": "torch", "threads": 2})
    return pd.DataFrame(rows)


def test_the_device_with_most_of_the_space_answers_and_only_the_device_changes() -> None:
    data = _data()
    sp = SearchSpace(models=["gpt2", "distilbert-base-uncased"], hardware=["cpu-this-machine-2c"], batch_sizes=[1, 2, 4])
    assert space_from_dataset(sp, data) == []  # this machine is not in the data
    device, alt, pool = replay_space_elsewhere(sp, data, need=4)
    assert device == "cpu-amd-epyc-2c"  # 6 configurations there against 3 on the other
    assert alt.models == sp.models and alt.batch_sizes == sp.batch_sizes and alt.hardware == [device]
    assert pool == space_from_dataset(alt, data)
    assert len(pool) == 6 and {c.hardware for c in pool} == {device} and {c.batch_size for c in pool} == {1, 2, 4}


def test_none_when_no_device_holds_enough_or_the_space_names_no_device() -> None:
    data = _data()
    sp = SearchSpace(models=["gpt2"], hardware=["cpu-this-machine-2c"], batch_sizes=[1])
    assert replay_space_elsewhere(sp, data, need=2) is None
    assert replay_space_elsewhere(SearchSpace(models=["gpt2"]), data, need=1) is None


def test_replay_pool_prefers_the_space_as_given_then_another_device() -> None:
    """One rule for `perfcast replay` and the after-run baselines: the space as given when the data
    hold at least ``need`` of it, else the device holding most of it, else None."""
    from experiments.space import replay_pool

    data = _data()
    here = SearchSpace(models=["gpt2"], hardware=["cpu-other-4c"], batch_sizes=[1, 2, 4])
    found = replay_pool(here, data, need=3)
    assert found is not None and found.device is None and found.space == here and len(found.configs) == 3
    # the same space but more needed than this device holds: pointed at the device that has more
    wide = here.model_copy(update={"models": ["gpt2", "distilbert-base-uncased"]})
    found = replay_pool(wide, data, need=4)
    assert found is not None and found.device == "cpu-amd-epyc-2c" and found.space.hardware == ["cpu-amd-epyc-2c"]
    assert replay_pool(wide, data, need=7) is None
