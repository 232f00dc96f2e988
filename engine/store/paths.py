"""Where the default database lives: ``--db`` > ``PERFCAST_DB`` > the platform's data dir."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


def default_db_path(explicit: Optional[str | os.PathLike] = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("PERFCAST_DB")
    if env:
        return Path(env).expanduser()
    return platform_db_path()


def db_argument(db: str | os.PathLike) -> Optional[str]:
    """What ``--db`` a printed or emitted ``perfcast benchmark`` line needs to save into ``db``: its
    absolute path, so the line feeds the store that was analysed even when run from another shell
    or folder; None for the platform default, which needs none. Shared by ``suggest``'s script, the
    reruns the Python API lists and a loop's rerun commands (a loop on ``--db lab.duckdb`` printed
    lines that saved into the default store, which the loop never reads)."""
    path = Path(db).expanduser().resolve()
    return None if path == platform_db_path().resolve() else str(path)


def platform_db_path() -> Path:
    """The store a command uses with neither ``--db`` nor ``PERFCAST_DB``."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("perfcast", appauthor=False)) / "perfcast.duckdb"


def cache_dir() -> Path:
    """Fitted models and JAX's compilation cache; override with ``PERFCAST_CACHE``."""
    env = os.environ.get("PERFCAST_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("perfcast", appauthor=False))
