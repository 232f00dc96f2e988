"""Where the default database lives: ``--db`` > ``PERFCAST_DB`` > the platform's data dir.

Only the platform default's folders are made when missing (``perfcast demo`` on a new machine);
a path the user gave, by ``--db`` or ``PERFCAST_DB``, must be in an existing folder
(:func:`check_db_folder`): a typo in it made a new store in a new folder without a word.
"""
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


def db_named(path: str | os.PathLike, arg: str = "path", given: bool = True) -> tuple[str, str]:
    """How an error names the store at ``path``, and what to do instead, in the words its reader
    typed: ``(label, another)``. ``arg`` is the argument the caller's user named it with: ``--db``
    on the command line (a flag, written ``--db PATH`` / "pick another --db"), ``db`` in the
    Python API's functions, ``path`` for :class:`engine.Store` itself (``db='PATH'`` / "pass another
    file as db="); ``given``: whether a path was passed at all. A path from ``PERFCAST_DB`` is named
    so, and none at all is "the default store". Every error said ``--db`` before session 33, also
    to a notebook's ``PerformancePredictor("notes.txt")``, which has no such flag."""
    p = Path(path).expanduser()
    flag = arg.startswith("-")
    another = f"pick another {arg}" if flag else f"pass another file as {arg}="
    env = os.environ.get("PERFCAST_DB")
    # click fills --db from PERFCAST_DB, so on the command line a path equal to it came from there
    if env and Path(env).expanduser() == p and (flag or not given):
        return f"PERFCAST_DB {p}", "set PERFCAST_DB to another file"
    if not given:
        return f"the default store {p}", another
    return (f"{arg} {p}" if flag else f"{arg}={str(p)!r}"), another


def check_db_folder(path: str | os.PathLike, arg: str = "path", given: bool = True) -> None:
    """Refuse a store path whose folder does not exist (or is not a folder), unless it is the
    platform default, whose folders :func:`make_db_folder` creates. One rule for every command and
    the Python API, checked when a store is opened, before any work: ``--db lab/x.duckdb`` with no
    ``lab`` folder made one, and a new store in it, so a mistyped folder answered from the shipped
    runs alone. The file itself may be new (announced when it is made). ``arg``, ``given``: how the
    caller named the path (:func:`db_named`)."""
    p = Path(path).expanduser()
    folder = p.parent
    if folder.is_dir() or _is_platform_default(p):
        return
    from engine.errors import NotADatabaseError

    named, other = db_named(p, arg, given)
    if named.startswith("PERFCAST_DB "):
        other = "set PERFCAST_DB to a file in an existing folder"
    why = f"{folder} is not a folder; {other}" if folder.exists() else \
        f"folder {folder} does not exist; create it or {other}"
    raise NotADatabaseError(f"{named} cannot be created: {why}")


def make_db_folder(path: str | os.PathLike, arg: str = "path", given: bool = True) -> None:
    """Create the store's folder when it is the platform default's (its data dir may not exist
    yet); any other path must already have one (:func:`check_db_folder`)."""
    check_db_folder(path, arg, given)
    Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _is_platform_default(path: Path) -> bool:
    return path.expanduser().resolve() == platform_db_path().resolve()


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
