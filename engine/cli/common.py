"""Options and output helpers shared by every subcommand."""
from __future__ import annotations

import functools
import json
import math
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

import click

F = Callable[..., Any]


def db_option(f: F) -> F:
    return click.option("--db", "db_path", type=click.Path(dir_okay=False), envvar="PERFCAST_DB",
                        default=None, help="DuckDB file (default: platform data dir; env PERFCAST_DB).")(f)


#: A seed numpy and torch both take (a negative or 2**64 one was a traceback from inside them).
SEED = click.IntRange(0, 2**32 - 1)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")(f)


def open_store(db_path: Optional[str], seed: bool = True, announce: bool = True) -> Any:
    """The store a command works on. A store this command creates is announced on stderr (once,
    when the file is made): a mistyped ``--db`` would otherwise answer from the shipped runs alone
    and look like the team's store."""
    from engine.store import Store

    return Store(db_path, seed=seed, on_create=_announce_new_store if announce else None, db_arg="--db")


def open_existing_store(db_path: Optional[str]) -> Any:
    """The store for a command that only reads or edits what is there (``db info``, ``export``,
    ``delete``): a missing file is an error instead of a new store seeded with the shipped runs."""
    from engine.store.paths import default_db_path

    path = default_db_path(db_path)
    if not path.exists():
        from engine.errors import NotADatabaseError

        how = ("'perfcast db init' creates one there (with the shipped runs), or " if path.parent.is_dir()
               else f"its folder {path.parent} does not exist; ")
        raise NotADatabaseError(f"no store at {path}; {how}pass --db with an existing file")
    return open_store(db_path)


def listing_db_path(db_path: Optional[str]) -> Path:
    """The store path of a command that reads what is there and creates nothing (``doctor``,
    ``experiments``, ``hardware list``): a missing file is simply not there yet, but a path in a
    folder that does not exist is refused (exit 2), as by every command that opens a store."""
    from engine.store.paths import check_db_folder, default_db_path

    path = default_db_path(db_path)
    if not path.exists():
        check_db_folder(path, "--db", db_path is not None)
    return path


def _announce_new_store(path: Path, seeded: int) -> None:
    what = f"with the {seeded:,} shipped runs" if seeded else "empty"
    click.echo(f"perfcast: created a new store {path} ({what})", err=True)


def check_writable(option: str, path: Optional[str]) -> None:
    """Fail in one line before any fitting when ``path`` cannot be written (its folder is missing
    or read-only), instead of a traceback after the expensive part. ``None`` (not asked) passes."""
    if not path:
        return
    p = Path(path).expanduser()
    folder = p.parent
    if not folder.is_dir():
        why = f"its folder {folder} does not exist"
    elif p.exists() and not os.access(p, os.W_OK):
        why = f"{p} exists and is not writable"
    elif not p.exists() and not os.access(folder, os.W_OK):
        why = f"its folder {folder} is not writable"
    else:
        return
    from engine.errors import InvalidValueError

    raise InvalidValueError(option, path, f"a file path you can write ({why})")


#: What matplotlib's savefig writes (its default backends), so a --plot path is checked before any work.
PLOT_FORMATS = ("png", "pdf", "svg", "svgz", "jpg", "jpeg", "eps", "ps", "pgf", "tif", "tiff", "webp", "raw", "rgba")


def check_plot(option: str, path: Optional[str]) -> None:
    """:func:`check_writable` plus the file format, named by the suffix: one line before a loop or a
    replay runs, instead of a matplotlib traceback after it (with its --json output lost)."""
    check_writable(option, path)
    if path and Path(path).suffix.lower().lstrip(".") not in PLOT_FORMATS:
        from engine.errors import InvalidValueError

        raise InvalidValueError(option, path, f"a figure file ending in .{', .'.join(PLOT_FORMATS[:4])} "
                                              f"(or .{', .'.join(PLOT_FORMATS[4:])})")


def _clean(o: Any) -> Any:
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return None
    if isinstance(o, datetime):  # pandas' Timestamp too; every time perfcast stores is UTC
        from engine.records import utc_iso

        return utc_iso(o)
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if hasattr(o, "item") and callable(o.item):  # numpy scalars
        try:
            return _clean(o.item())
        except (ValueError, TypeError):
            pass
    return o


def emit_json(obj: Any) -> None:
    """Print JSON (NaN -> null) to stdout."""
    click.echo(json.dumps(_clean(obj), indent=2, default=str))


def console(stderr: bool = False) -> Any:
    """perfcast's Rich console. A closed reader (``| head``) raises BrokenPipeError, as click.echo
    does, so the entry point ends both quietly the same way; Rich's own default exits 1."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True  # nothing more to write for anyone
            raise  # noqa: PLE0704 - the BrokenPipeError Rich is handling

    return _Console(stderr=stderr)


def split_csv(value: Optional[str], cast: Callable[[str], Any] = str, what: str = "value") -> list[Any]:
    """'1,2,4' -> [1, 2, 4]; a bad element raises a one-line error naming it. None (not given) is [];
    a value given but empty ('', ',') is an error: it used to select nothing and exit 0."""
    if value is None:
        return []
    if not any(part.strip() for part in str(value).split(",")):
        from engine.errors import InvalidValueError

        raise InvalidValueError(what, value, "a comma-separated list with at least one value (leave the option "
                                             "out for its default)")
    out = []
    for part in str(value).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(cast(part))
        except ValueError:
            from engine.errors import InvalidValueError

            raise InvalidValueError(what, part, f"a comma-separated list of {getattr(cast, '__name__', 'values')}") from None
    return out


def fmt_number(x: Optional[float], missing: str = "–") -> str:
    """Three significant figures for tables; thousands separators; ``missing`` for None and NaN
    (a NULL read back through pandas is NaN, which printed as "nan")."""
    if x is None or x != x:
        return missing
    if x == 0 or 0.01 <= abs(x) < 1e5:
        return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return f"{x:.3g}"


def median_over_interval(median: Optional[float], lo: Optional[float], hi: Optional[float],
                         fmt: Callable[[Optional[float]], str] = fmt_number) -> str:
    """A table cell: the median, and under it (dimmed) its interval. Two short lines instead of one
    long one, so a narrow table never wraps in the middle of a number."""
    return f"{fmt(median)}\n[dim]{fmt(lo)}–{fmt(hi)}[/dim]"


@functools.lru_cache(maxsize=1)
def _local_cpu() -> str:
    try:
        from hardware.detect import local_cpu_id

        return local_cpu_id()
    except Exception:  # noqa: BLE001 - a display helper: no local id means every id is shown in full
        return ""


def config_text(c: Any) -> str:
    """A configuration in one short phrase for narrow tables: ``cpu torch int8 b1 s128 t2``.

    Accepts a :class:`engine.config.Config` or a mapping with the same fields (the JSON items of
    ``perfcast suggest``); the model is left out because tables show it in its own column. This
    machine's CPU id becomes ``cpu``; other CPUs keep theirs (two rows of different CPUs both read
    "cpu" before); training runs say so."""
    get = c.get if isinstance(c, dict) else (lambda k: getattr(c, k, None))
    hw = str(get("hardware"))
    hw = "cpu" if hw == _local_cpu() else hw
    seq = f" s{get('seq_len')}" if get("seq_len") else ""
    thr = f" t{get('threads')}" if get("threads") else ""
    mode = " training" if get("mode") == "training" else ""
    return f"{hw} {get('runtime')} {get('precision')} b{get('batch_size')}{seq}{thr}{mode}"


def is_tty() -> bool:
    return sys.stdout.isatty()


def parse_prices(text: Optional[str], hardware: Optional[list[str]]) -> Optional[dict[str, float]]:
    """`--price-per-hour`: '0.05' -> that price for every entry of ``hardware`` (the command's device
    list; None: there is none, so a name is needed); 'cpu=0.05,t4=0.53' -> per device."""
    from engine.errors import InvalidValueError

    if not text:
        return None
    if "=" not in text:
        if hardware is None:
            raise InvalidValueError("--price-per-hour", text, "hw=price,... (name the devices, or list them "
                                    "with --available)")
        try:
            return {h: float(text) for h in hardware}
        except ValueError:
            raise InvalidValueError("--price-per-hour", text, "a number or hw=price,...") from None
    out: dict[str, float] = {}
    for part in split_csv(text, what="--price-per-hour"):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InvalidValueError("--price-per-hour", part, "hw=price with a number of USD per hour") from None
    return out
