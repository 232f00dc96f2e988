"""``perfcast db``: create, inspect, import into and export from the benchmark store."""
from __future__ import annotations

import click

from engine.cli.common import db_option, emit_json, json_option, open_store


@click.group()
def db() -> None:
    """Initialise, import into and export the benchmark store (a DuckDB file).

    \b
    Examples:
      perfcast db init                       # create the default DB, load the shipped dataset
      perfcast db export runs.parquet        # CSV, Parquet or JSON by extension
      perfcast db import my_runs.csv --db team.duckdb
    """


@db.command()
@db_option
@click.option("--no-seed", is_flag=True, help="Do not load the shipped dataset into a new database.")
@json_option
def init(db_path: str | None, no_seed: bool, as_json: bool) -> None:
    """Create (or migrate) the database; a new one gets the shipped measurements.

    Example: perfcast db init --db ./perf.duckdb
    """
    store = open_store(db_path, seed=not no_seed)
    fresh = store.ensure_schema()
    info = _info(store)
    info["created"] = fresh
    if as_json:
        emit_json(info)
    else:
        verb = "created" if fresh else "already up to date"
        click.echo(f"{store.path}: {verb} (schema v{info['schema_version']}, {info['runs']} runs, "
                   f"{info['ok_runs']} ok)")


def _info(store) -> dict:  # type: ignore[no-untyped-def]
    from engine.models.targets import superseded_busy_runs
    from engine.store.schema import SCHEMA_VERSION

    with store.connect() as con:
        runs, ok = con.execute("SELECT count(*), count(*) FILTER (status = 'ok') FROM benchmark_runs").fetchone()
        by_source = dict(con.execute("SELECT source, count(*) FROM benchmark_runs GROUP BY 1 ORDER BY 1").fetchall())
        n_cfg = con.execute("SELECT count(DISTINCT config_key) FROM benchmark_results").fetchone()[0]
    superseded = int(superseded_busy_runs(store.measurements()).sum())  # the fits' own rule
    return {"path": str(store.path), "schema_version": store.schema_version(), "latest_schema": SCHEMA_VERSION,
            "runs": runs, "ok_runs": ok, "distinct_configs": n_cfg, "runs_by_source": by_source,
            "busy_runs_superseded": superseded}


@db.command()
@db_option
@json_option
def info(db_path: str | None, as_json: bool) -> None:
    """Where the database is and what it holds.

    Example: perfcast db info --json
    """
    data = _info(open_store(db_path))
    if as_json:
        emit_json(data)
        return
    from rich.table import Table

    from engine.cli.common import console

    t = Table(title="perfcast store", show_header=False)
    for k, v in data.items():
        t.add_row(k, str(v))
    console().print(t)


@db.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--skip-existing", is_flag=True,
              help="Leave runs whose run_id is already stored untouched and import the rest (merging an overlapping "
                   "export); without it such a file is rejected whole.")
@db_option
@json_option
def import_(file: str, skip_existing: bool, db_path: str | None, as_json: bool) -> None:
    """Import measurements from CSV, Parquet or JSON (validated first; all or nothing).

    Required columns: model, hardware, batch_size, precision, latency_median_ms. A NaN, infinite,
    zero or negative latency/throughput, a batch size < 1 or an unknown precision rejects the
    whole file with the row and column named.

    Example: perfcast db import runs.csv · perfcast db import team.parquet --skip-existing
    """
    from engine.store.transfer import import_measurements

    n = import_measurements(open_store(db_path), file, skip_existing=skip_existing)
    if as_json:
        emit_json({"imported": n, "file": file, "skip_existing": skip_existing})
    else:
        click.echo(f"imported {n} runs from {file}" + (" (runs already stored were skipped)" if skip_existing else ""))


@db.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
@db_option
@click.option("--status", type=click.Choice(["ok", "failed", "timeout", "oom"]), default=None,
              help="Only runs with this status (default: all).")
@json_option
def export(file: str, db_path: str | None, status: str | None, as_json: bool) -> None:
    """Export every run (raw samples as a list column) to CSV, Parquet or JSON.

    Example: perfcast db export runs.parquet
    """
    from engine.store.transfer import export_measurements

    n = export_measurements(open_store(db_path), file, status=status)
    if as_json:
        emit_json({"exported": n, "file": file})
    else:
        click.echo(f"exported {n} runs to {file}")
