"""``perfcast db``: create, inspect, import into and export from the benchmark store."""
from __future__ import annotations

import click

from engine.cli.common import db_option, emit_json, json_option, open_existing_store, open_store
from engine.records import RUN_STATUSES


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
    store = open_store(db_path, seed=not no_seed, announce=False)
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
    from engine.models.targets import legacy_builds, left_out_busy, superseded_busy_runs
    from engine.store.schema import SCHEMA_VERSION

    with store.connect() as con:
        runs, ok = con.execute("SELECT count(*), count(*) FILTER (status = 'ok') FROM benchmark_runs").fetchone()
        by_source = dict(con.execute("SELECT source, count(*) FROM benchmark_runs GROUP BY 1 ORDER BY 1").fetchall())
        n_cfg = con.execute("SELECT count(DISTINCT config_key) FROM benchmark_results").fetchone()[0]
    ok_runs = store.measurements()
    superseded = superseded_busy_runs(ok_runs)  # the fits' own rules
    left_out = left_out_busy(ok_runs)
    return {"path": str(store.path), "schema_version": store.schema_version(), "latest_schema": SCHEMA_VERSION,
            "runs": runs, "ok_runs": ok, "distinct_configs": n_cfg, "runs_by_source": by_source,
            "busy_runs_superseded": int(superseded.sum()), "busy_runs_not_rerun": int((left_out & ~superseded).sum()),
            # torch fp16/bf16/int8 runs from before 2026-12-07, whose peak memory holds an fp32 build:
            # the models read it as built, evaluate scores no memory on them
            "runs_built_the_old_way": int(legacy_builds(ok_runs).sum())}


@db.command()
@db_option
@json_option
def info(db_path: str | None, as_json: bool) -> None:
    """Where the database is and what it holds.

    Example: perfcast db info --json
    """
    data = _info(open_existing_store(db_path))
    if as_json:
        emit_json(data)
        return
    from rich.markup import escape
    from rich.table import Table

    from engine.cli.common import console

    t = Table(title="perfcast store", show_header=False)
    for k, v in data.items():  # a mapping reads as "shipped 491, measured 7", not as a Python dict
        # a cell is markup: the path is the user's ("lab[v2].duckdb" showed as "lab.duckdb")
        t.add_row(k, escape(", ".join(f"{a} {b}" for a, b in v.items()) if isinstance(v, dict) else str(v)))
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
    from engine.store.transfer import import_file

    done = import_file(open_store(db_path), file, skip_existing=skip_existing)
    n = done.imported
    if as_json:
        emit_json({"imported": n, "skipped": done.skipped, "file": file, "skip_existing": skip_existing})
    else:
        click.echo(f"imported {n} run{'' if n == 1 else 's'} from {file}"
                   + (f" ({done.skipped} already stored, skipped)" if skip_existing else ""))


@db.command("delete")
@click.argument("run_ids", nargs=-1)
@click.option("--model", default=None, help="Only runs of this model.")
@click.option("--hardware", default=None, help="Only runs on this hardware id.")
@click.option("--status", type=click.Choice(RUN_STATUSES), default=None,
              help="Only runs with this status.")
@click.option("--source", type=click.Choice(["measured", "imported", "shipped"]), default=None,
              help="Only runs from this source.")
@click.option("--experiment", "experiment_id", default=None, help="Only runs of this experiment id.")
@click.option("--yes", is_flag=True, help="Really delete; without it the command only lists what it would delete.")
@db_option
@json_option
def delete(run_ids: tuple[str, ...], model: str | None, hardware: str | None, status: str | None,
           source: str | None, experiment_id: str | None, yes: bool, db_path: str | None, as_json: bool) -> None:
    """Delete runs (a bad measurement, a mistaken grid): lists them first, deletes with --yes.

    RUN_IDS are full ids or prefixes of at least 6 characters (perfcast db export lists them);
    the filters narrow the selection, and at least one id or filter is required. Results and raw
    samples go with their runs, in one transaction; fitted models refit on the next prediction.

    \b
    Examples:
      perfcast db delete 3f9c1a27                          # show the run
      perfcast db delete 3f9c1a27 --yes                    # delete it
      perfcast db delete --model gpt2 --status failed --yes
    """
    from engine.errors import InvalidValueError

    filters = {"model": model, "hardware": hardware, "status": status, "source": source,
               "experiment_id": experiment_id}
    if not run_ids and all(v is None for v in filters.values()):
        raise InvalidValueError("selection", "nothing", "one or more run ids, or --model/--hardware/--status/"
                                "--source/--experiment (deleting every run is not offered: use a new --db)")
    store = open_existing_store(db_path)
    if hardware is not None:
        from engine.catalog import PLATFORMS, resolve_hardware

        if hardware.strip().lower() in PLATFORMS:  # "cpu" means this machine's CPU, as everywhere else
            filters["hardware"] = hardware = resolve_hardware(hardware, store).id
    runs = store.find_runs(list(run_ids), **filters)
    if not len(runs):
        _unknown_filter_names(store, model=model, hardware=hardware, experiment_id=experiment_id)
    deleted = store.delete_runs(runs["run_id"].tolist()) if yes else 0
    if as_json:
        emit_json({"selected": len(runs), "deleted": deleted, "run_ids": runs["run_id"].tolist()})
        return
    from engine.cli.common import config_text, console

    out = console()
    for r in runs.itertuples(index=False):
        out.print(f"{r.run_id[:12]}  {r.model} {config_text(r._asdict())}  {r.status}  {r.source}  "
                  f"{str(r.started_at)[:16]}", highlight=False)
    if not len(runs):
        out.print("no run matches", highlight=False)
    elif yes:
        from rich.markup import escape

        out.print(f"deleted {deleted} run{'s' if deleted != 1 else ''} from {escape(str(store.path))}", highlight=False)
    else:
        out.print(f"{len(runs)} run{'s' if len(runs) != 1 else ''} would be deleted: add --yes "
                  "(perfcast db export keeps a copy first)", highlight=False)


def _unknown_filter_names(store, **names: str | None) -> None:  # type: ignore[no-untyped-def]
    """A --model/--hardware/--experiment that no stored run has is a typo until shown otherwise: name
    the closest stored values (exit 2) instead of "no run matches" and exit 0. An experiment the
    store lists whose runs are gone is not a typo."""
    from engine.errors import UnknownNameError

    for column, value in names.items():
        if value is None:
            continue
        query = f"SELECT DISTINCT {column} FROM benchmark_runs"
        if column == "experiment_id":
            query += " UNION SELECT experiment_id FROM experiments"
        with store.connect() as con:
            stored = [r[0] for r in con.execute(query).fetchall() if r[0] is not None]
        if value not in stored:
            raise UnknownNameError(f"{column.replace('_id', '')} in this store", value, stored)


@db.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
@db_option
@click.option("--status", type=click.Choice(RUN_STATUSES), default=None,
              help="Only runs with this status (default: all).")
@json_option
def export(file: str, db_path: str | None, status: str | None, as_json: bool) -> None:
    """Export every run (raw samples as a list column) to CSV, Parquet or JSON.

    Example: perfcast db export runs.parquet
    """
    from engine.cli.common import check_writable
    from engine.store.transfer import export_measurements

    check_writable("FILE", file)  # one line now, not a traceback after reading every run
    n = export_measurements(open_existing_store(db_path), file, status=status)
    if as_json:
        emit_json({"exported": n, "file": file})
    else:
        click.echo(f"exported {n} runs to {file}")
