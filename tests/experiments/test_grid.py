"""The measurement grid's path filter (experiments/grid.py --exclude)."""
from __future__ import annotations

import pytest

from engine.config import Config
from experiments.grid import excluded, main


def test_excluded_matches_runtime_precision_and_optionally_mode() -> None:
    c = Config("gpt2", "cpu-x-2c", 1, 32, "bf16", "training", "torch", 1)
    assert excluded(c, ["torch/bf16"]) and excluded(c, ["onnxruntime/int8", "torch/bf16/training"])
    assert not excluded(c, ["torch/bf16/inference"]) and not excluded(c, ["openvino/bf16"]) and not excluded(c, [])


def test_a_bad_exclude_path_is_refused_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--exclude", "torch/fp64", "--plan-only"])
    assert e.value.code == 2 and "torch/fp64" in capsys.readouterr().err
