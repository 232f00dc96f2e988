"""``perfcast doctor``: what perfcast sees on this machine, in one screen (or ``--json``).

The first thing to run when something behaves oddly, and the thing to paste into a bug report:
library versions (read from package metadata, nothing imported for them), which adapters can
benchmark here and why the others cannot, where the store and caches are, whether the packaged
descriptor counts match this install, and whether the user's own catalogs load.
"""
from __future__ import annotations

import platform
import sys
from typing import Any, Optional

import click

from engine.cli.common import console, db_option, emit_json, json_option

#: Distributions whose versions matter for measurements and fits (missing ones are optional extras).
PACKAGES = ("torch", "transformers", "onnxruntime", "openvino", "botorch", "gpytorch", "numpyro", "jax", "arviz",
            "duckdb", "ray")


def _version(dist: str) -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _adapters() -> dict[str, dict[str, Any]]:
    from hardware.registry import adapter_names, get_adapter

    out = {}
    for name in adapter_names():
        try:
            ok, why = get_adapter(name).available()
        except Exception as e:  # noqa: BLE001 - a broken optional runtime is a finding, not a crash
            ok, why = False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        out[name] = {"available": bool(ok), "why": why or None}
    return out


def _store(db_path: Optional[str]) -> dict[str, Any]:
    from engine.cli.common import listing_db_path, open_store
    from engine.errors import NotADatabaseError
    from engine.store.paths import default_db_path

    try:
        path = listing_db_path(db_path)
    except NotADatabaseError as e:  # a folder that does not exist: every command refuses it (doctor said "db init creates it")
        return {"path": str(default_db_path(db_path)), "exists": False, "error": str(e), "refused": True}
    info: dict[str, Any] = {"path": str(path), "exists": path.exists()}
    if path.exists():
        try:
            store = open_store(str(path))
            info.update(schema_version=store.schema_version(), runs=store.count("benchmark_runs"),
                        size_mib=round(path.stat().st_size / 2**20, 2))
        except Exception as e:  # noqa: BLE001 - a locked or damaged file is reported, not raised
            info["error"] = str(e).splitlines()[0]
            if isinstance(e, NotADatabaseError):  # a CSV or a directory: every command refuses it, exit 2
                info["refused"] = True
    return info


def _descriptor_seed() -> dict[str, Any]:
    from engine.descriptors.counting import library_tag
    from engine.descriptors.seed import seed_counts

    counts = seed_counts()
    tag = library_tag()
    matching = sum(1 for k in counts if k.endswith(tag))
    return {"entries": len(counts), "matching_this_install": matching, "library_tag": tag}


def _user_catalogs() -> dict[str, Any]:
    from engine import catalog

    out: dict[str, Any] = {}
    for section, env in catalog.USER_CATALOG_ENV.items():
        path = catalog.user_catalog_file(section)
        if path is None:
            out[env] = None
            continue
        try:
            entries = catalog.models() if section == "models" else catalog.catalog_hardware()
            own = [n for n, e in entries.items() if e.origin != "shipped"]
            out[env] = {"file": str(path), "entries": own}
        except Exception as e:  # noqa: BLE001 - the validation error is the finding
            out[env] = {"file": str(path), "error": str(e)}
    return out


def collect(db_path: Optional[str] = None) -> dict[str, Any]:
    """Everything ``perfcast doctor`` reports, as one JSON-ready dict."""
    from engine.store.paths import cache_dir

    return {"perfcast": _version("perfcast"), "python": sys.version.split()[0], "platform": platform.platform(),
            "packages": {p: _version(p) for p in PACKAGES}, "adapters": _adapters(), "store": _store(db_path),
            "cache_dir": str(cache_dir()), "descriptor_seed": _descriptor_seed(), "user_catalogs": _user_catalogs()}


@click.command()
@db_option
@json_option
def doctor(db_path: Optional[str], as_json: bool) -> None:
    """What perfcast sees here: versions, usable adapters, store, caches, your catalogs.

    Exits 2 after the report when a user catalog (PERFCAST_MODELS, PERFCAST_HARDWARE) is invalid, or
    the store path is one no command takes (not a DuckDB file, or in a folder that does not exist),
    as every command that reads them does.

    Example: perfcast doctor --json > doctor.json   # attach to a bug report
    """
    r = collect(db_path)
    # an invalid catalog or store path fails every other command with exit 2: the report says why,
    # the status says so
    unusable = any(u is not None and "error" in u for u in r["user_catalogs"].values()) or \
        bool(r["store"].get("refused"))
    if as_json:
        emit_json(r)
        if unusable:
            raise click.exceptions.Exit(2)
        return
    from rich.markup import escape

    out = console()
    out.print(f"[bold]perfcast {r['perfcast']}[/] · Python {r['python']} · {r['platform']}", highlight=False)
    out.print("packages: " + ", ".join(f"{k} {v}" for k, v in r["packages"].items() if v), highlight=False)
    missing = [k for k, v in r["packages"].items() if not v]
    if missing:
        out.print(f"[dim]not installed (optional): {', '.join(missing)}[/]", highlight=False)
    for name, a in r["adapters"].items():
        mark = "[green]✓[/]" if a["available"] else "[dim]✗[/]"
        out.print(f"  {mark} {name}" + ("" if a["available"] else f" [dim]— {a['why']}[/]"), highlight=False)
    s = r["store"]
    state = (f"schema v{s['schema_version']}, {s['runs']} runs, {s['size_mib']} MiB" if "runs" in s
             else s.get("error") or "not created yet: perfcast db init creates it")
    out.print(escape(f"store: {s['path']} ({state})"), highlight=False)  # paths as written: "[v2]" is text
    out.print(escape(f"cache: {r['cache_dir']}"), highlight=False)
    d = r["descriptor_seed"]
    if d["library_tag"] == "unknown":  # no transformers/torch to count with: the seed cannot apply either
        out.print(f"descriptor seed: {d['entries']} counts shipped; transformers or torch is not installed here, so "
                  "descriptors are analytic (no operator counting)", highlight=False)
    else:
        note = "" if d["matching_this_install"] else " — none match this install: first uses recount (slower)"
        out.print(f"descriptor seed: {d['matching_this_install']} of {d['entries']} counts match "
                  f"{d['library_tag']}{note}", highlight=False)
    for env, u in r["user_catalogs"].items():
        if u is None:
            out.print(f"{env}: not set", highlight=False)
        elif "error" in u:  # the error quotes the user's text, where "[/x]" would be a Rich closing tag
            out.print(f"[red]{env}: {escape(u['error'])}[/]", highlight=False)
        else:
            out.print(escape(f"{env}: {u['file']} ({len(u['entries'])} entries: {', '.join(u['entries'])})"),
                      highlight=False)
    if unusable:
        raise click.exceptions.Exit(2)
