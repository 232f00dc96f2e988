"""Replay: the same loop, with a recorded dataset as the oracle instead of real benchmarks.

Every replay runs in its own fresh database (nothing measured yet, or, with ``replay.prior:
shipped``, only the shipped runs, as a real loop's store), on the pool of configurations the
dataset has (filtered by the config's search space), starting with ``replay.initial_runs`` random
picks while fewer configurations of that pool have a run (the shipped runs of a ``prior: shipped``
store are another device's and do not count). The oracle answers each pick with the
recorded run — including its recorded benchmark cost (``wall_time_s``) — and knows the true value
of every configuration not yet acquired, which gives an exact held-out learning curve. Seeds make
it reproducible.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from engine.errors import NotAvailableError

if TYPE_CHECKING:
    import pandas as pd

    from experiments.config import ExperimentConfig
    from experiments.loop import LoopResult


def _scratch() -> Optional[str]:
    """RAM-backed scratch space for throw-away replay databases where there is one."""
    import os

    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


REPLAY_DIR = ("data", "replay")  # engine/data/replay/<name>.parquet: recorded grids shipped for replay only


def bundled_datasets() -> dict[str, Path]:
    """Name -> file of the recorded datasets shipped for replay only (never loaded into a store).

    The shipped dataset seeds every new store, so adding runs to it moves every figure the
    predictors are evaluated on. A loop's after-run baselines need something else: every
    configuration of the loop's own search space measured once (a dense grid), which the shipped
    dataset's random sample of a much larger grid does not hold. Those grids live here."""
    from importlib import resources

    folder = Path(str(resources.files("engine").joinpath(*REPLAY_DIR)))
    return {p.stem: p for p in sorted(folder.glob("*.parquet"))} if folder.is_dir() else {}


def dataset_names() -> list[str]:
    """Every name ``replay.dataset`` accepts besides a path."""
    return ["shipped", *bundled_datasets()]


def check_dataset(spec: str) -> None:
    """Refuse a ``replay.dataset`` that names nothing, in one line: ``perfcast run`` calls it before
    its first benchmark (it replays the baselines only after the loop, minutes later)."""
    from engine.errors import InvalidValueError

    if spec != "shipped" and spec not in bundled_datasets() and not Path(spec).exists():
        valid = f"one of {', '.join(dataset_names())}, or the path of an exported CSV, Parquet or JSON file"
        err = InvalidValueError("replay.dataset", spec, valid)
        if "/" in spec or "\\" in spec or Path(spec).suffix in (".csv", ".parquet", ".json"):
            err.args = (f"invalid replay.dataset {spec!r}: no such file; valid: {valid}",)  # a path: say it is missing
        raise err


def load_dataset(spec: str = "shipped") -> "pd.DataFrame":
    """Every run (ok and failed, with raw samples) of the shipped dataset, of a bundled replay grid
    (``bundled_datasets``) or of an export file."""
    from engine.store import Store

    check_dataset(spec)
    bundled = bundled_datasets()
    with tempfile.TemporaryDirectory(prefix="perfcast-replay-") as tmp:
        if spec == "shipped":
            from engine.store.seed import shipped_dataset_path

            if shipped_dataset_path() is None:
                raise NotAvailableError("the shipped dataset (engine/data/shipped_measurements.parquet) is not in this "
                                        "installation; pass replay.dataset: PATH to an exported file")
            store = Store(Path(tmp) / "oracle.duckdb", seed=True)
        else:
            from engine.store.transfer import import_measurements

            from engine.errors import ImportRejectedError

            store = Store(Path(tmp) / "oracle.duckdb", seed=False)
            try:
                import_measurements(store, bundled.get(spec, spec))
            except ImportRejectedError as e:  # the import's checks, said as a replay's: nothing is imported here
                what = str(e).replace("; nothing was imported", "")
                raise ImportRejectedError(f"{what}; not usable as replay data (replay.dataset / --dataset)") from None
        return store.measurements(status=None, with_samples=True)


def run_replay(cfg: "ExperimentConfig", data: "pd.DataFrame", *, acquisition: Optional[str] = None, seed: int = 0,
               db_path: Optional[str] = None, predictor_factory: Optional[Callable[[], Any]] = None,
               on_event: Optional[Callable[[str, Any], None]] = None, time_scale: float = 0.0,
               workers: int = 1, score_factory: Optional[Callable[[], Any]] = None) -> "LoopResult":
    """One replay of ``cfg`` (with ``acquisition`` instead of the config's, if given).

    ``score_factory``: score the held-out error with a predictor from it, fitted afresh at every
    step, instead of the loop's own (see ``ExperimentLoop``)."""
    from engine.store import Store
    from experiments.executors import OracleExecutor
    from experiments.loop import ExperimentLoop
    from experiments.space import space_from_dataset

    if acquisition:
        cfg = cfg.with_acquisition(acquisition)
    oracle = OracleExecutor(data, workers=workers, time_scale=time_scale)
    space = space_from_dataset(cfg.search_space, data)
    if not space:
        raise NotAvailableError(f"experiment '{cfg.name}': no configuration of the replay dataset matches its "
                                "search space")
    if predictor_factory is None:  # a fresh fit per replay: no model-cache entries for throw-away data
        from engine.models.registry import get_predictor

        from experiments.config import check_predictor_options

        check_predictor_options(cfg)
        kind, opts = cfg.predictor.kind, dict(cfg.predictor.options)
        predictor_factory = lambda: get_predictor(kind, **opts)  # noqa: E731
    exp_id = f"{cfg.name}-replay-{cfg.acquisition.name}-s{seed}-{cfg.digest()}"
    with tempfile.TemporaryDirectory(prefix="perfcast-replay-", dir=_scratch()) as tmp:
        # prior "shipped": the store starts as a real loop's does (seeded), on a grid of another device
        store = Store(db_path or Path(tmp) / "replay.duckdb", seed=cfg.replay.prior == "shipped")
        loop = ExperimentLoop(cfg, store, oracle, space, mode="replay", truth=oracle.truth, seed=cfg.seed + seed,
                              predictor_factory=predictor_factory, on_event=on_event, experiment_id=exp_id,
                              initial_design=cfg.replay.initial_runs, score_factory=score_factory)
        return loop.run()
