"""The loop refuses a search space nothing here can run (it used to store an empty "finished"
experiment) and names why part of a space is left out (session 21's audit)."""
from __future__ import annotations

from typing import Any

import pytest

from experiments.config import parse_config


# -- the loop: nothing runnable is an error, a partial space names why ------------------------------
def test_a_space_nothing_can_run_is_an_error_and_a_partial_one_says_why(syn: Any, tmp_path: Any) -> None:
    from _oracle_data import oracle_frame
    from engine.errors import NotAvailableError
    from engine.store import Store
    from experiments.executors import OracleExecutor
    from experiments.loop import ExperimentLoop

    fz, configs, _ = syn
    df = oracle_frame(configs[:20])
    cfg = parse_config({"name": "none-here", "search_space": {}, "budget": {"runs": 2},
                        "acquisition": {"name": "random"}})
    store = Store(tmp_path / "n.duckdb", seed=False)
    with pytest.raises(NotAvailableError, match="none of the 5 configurations .* not in the replay dataset"):
        ExperimentLoop(cfg, store, OracleExecutor(df), configs[30:35], mode="replay").run()
    assert store.experiments() == []  # no empty "finished" experiment left behind
    infos: list[str] = []
    loop = ExperimentLoop(cfg, store, OracleExecutor(df), configs[15:25], mode="replay",
                          on_event=lambda k, p: infos.append(str(p)) if k == "info" else None)
    loop.run()
    assert any("5 configurations of the search space cannot run" in i and "not in the replay dataset" in i
               for i in infos), infos
