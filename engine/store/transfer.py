"""`perfcast db import/export`: DuckDB reads and writes CSV, Parquet and JSON itself.

Import validates the whole file before writing anything: the file is read into a temporary
table, every rule is checked with SQL, and only a file without a single bad value is inserted —
in one transaction. The first bad value is reported with file, row (1-based, data rows) and
column. A row without a ``run_id`` gets one derived from its values, so importing the same
hand-written file twice is refused (or skipped with ``--skip-existing``) instead of storing every
run twice. A column perfcast does not know is refused when it looks like a misspelt one (its
data would be lost silently) and otherwise ignored with a warning.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import duckdb

from engine.config import MODES, PRECISIONS, RUNTIMES, name_rule
from engine.errors import ImportRejectedError, InvalidValueError
from engine.records import RUN_STATUSES
from engine.store.store import Store

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json", ".jsonl": "json",
           ".ndjson": "json"}

#: JSON suffixes that name newline-delimited JSON: an export writes one run per line there (it wrote
#: one JSON array, which ``jq -c``, ``pandas.read_json(lines=True)`` and warehouse loaders refuse)
LINE_DELIMITED = (".jsonl", ".ndjson")

REQUIRED = ("model", "hardware", "batch_size", "precision", "latency_median_ms")
POSITIVE = ("latency_mean_ms", "latency_median_ms", "latency_min_ms", "latency_max_ms", "latency_p90_ms",
            "latency_p99_ms", "throughput_items_s")
RESULT_COLS = ("latency_mean_ms", "latency_median_ms", "latency_min_ms", "latency_max_ms", "latency_p90_ms",
               "latency_p99_ms", "latency_std_ms", "throughput_items_s", "memory_peak_mib", "memory_avg_mib",
               "first_token_ms", "decode_token_ms", "load_time_s", "power_w", "iterations", "warmup")
#: Values that may be 0 but never negative (a memory of -1 MiB is a broken file, not a measurement).
NON_NEGATIVE = ("latency_std_ms", "memory_peak_mib", "memory_avg_mib", "first_token_ms", "decode_token_ms",
                "load_time_s", "power_w", "wall_time_s", "foreign_cpu_cores")
#: Counts, with their least valid value (a cast to INTEGER would round 2.5 instead of refusing it).
COUNTS = {"iterations": 1, "warmup": 0}
#: The type each typed column is cast to on insert: a value that does not cast is reported by row.
TYPED: dict[str, str] = {"started_at": "TIMESTAMP", "samples_ms": "DOUBLE[]", "versions": "JSON",
                         "iterations": "INTEGER", "warmup": "INTEGER",
                         **{c: "DOUBLE" for c in ("wall_time_s", "foreign_cpu_cores", "latency_mean_ms",
                                                  "latency_median_ms", "latency_min_ms", "latency_max_ms",
                                                  "latency_p90_ms", "latency_p99_ms", "latency_std_ms",
                                                  "throughput_items_s", "memory_peak_mib", "memory_avg_mib",
                                                  "first_token_ms", "decode_token_ms", "load_time_s", "power_w")}}
DEFAULTS: dict[str, str] = {
    "seq_len": "0", "mode": "'inference'", "runtime": "'torch'", "threads": "0", "status": "'ok'",
    "source": "'imported'", "host": "NULL", "adapter": "NULL", "device_name": "NULL", "versions": "'{}'",
    "error": "NULL", "wall_time_s": "NULL", "experiment_id": "NULL", "started_at": "now()::TIMESTAMP",
}


#: Every column of an export (the ``measurements`` view), so a round trip warns about nothing.
KNOWN_COLUMNS: frozenset[str] = frozenset(
    {"run_id", "config_key", "model", "hardware", "batch_size", "seq_len", "precision", "mode", "runtime", "threads",
     "samples_ms", *RESULT_COLS, *DEFAULTS, "foreign_cpu_cores"})


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if not fmt:
        raise InvalidValueError("file extension", path.suffix or path.name, ", ".join(sorted(FORMATS)))
    return fmt


def _reader(fmt: str) -> str:
    return {"csv": "read_csv_auto(?, header=true)", "parquet": "read_parquet(?)",
            "json": "read_json_auto(?)"}[fmt]


def export_measurements(store: Store, path: str | Path, *, status: Optional[str] = None) -> int:
    """Write every run (with raw samples as a list column) to CSV/Parquet/JSON."""
    path = Path(path)
    fmt = file_format(path)
    where = "WHERE status = ?" if status else ""
    args = [status] if status else []
    opts = {"csv": "(FORMAT csv, HEADER true)", "parquet": "(FORMAT parquet)",
            "json": "(FORMAT json, ARRAY true)"}[fmt]
    if path.suffix.lower() in LINE_DELIMITED:  # one object per line, as the name promises (not one array)
        opts = "(FORMAT json)"
    path.parent.mkdir(parents=True, exist_ok=True)
    with store.connect() as con:
        n = con.execute(f"SELECT count(*) FROM measurements {where}", args).fetchone()[0]
        # versions as text: a JSON reader would otherwise unify the objects into one struct type
        con.execute(f"COPY (SELECT * REPLACE (CAST(versions AS VARCHAR) AS versions) FROM measurements {where} "
                    f"ORDER BY started_at, run_id) "
                    f"TO '{_sql_str(path)}' {opts}", args)
    return int(n)


def _sql_str(p: Path) -> str:
    return str(p).replace("'", "''")


def _validate(con: duckdb.DuckDBPyConnection, path: Path, cols: set[str]) -> None:
    def reject(row: Any, col: str, msg: str) -> None:
        raise ImportRejectedError(f"{path}: row {row}, column '{col}': {msg}; nothing was imported")

    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise ImportRejectedError(
            f"{path}: missing required column '{missing[0]}' (required: {', '.join(REQUIRED)}); nothing was imported")
    status_expr = "coalesce(status, 'ok')" if "status" in cols else "'ok'"
    checks: list[tuple[str, str, str]] = []
    for c in ("model", "hardware", "batch_size", "precision"):
        checks.append((c, f"{c} IS NULL", "missing value"))
    checks.append(("batch_size", "TRY_CAST(batch_size AS DOUBLE) IS NULL OR TRY_CAST(batch_size AS DOUBLE) < 1 "
                   "OR TRY_CAST(batch_size AS DOUBLE) <> floor(TRY_CAST(batch_size AS DOUBLE))",
                   "batch size must be an integer >= 1"))
    checks.append(("precision", f"precision NOT IN ({_in(PRECISIONS)})", f"unknown precision (valid: {', '.join(PRECISIONS)})"))
    if "mode" in cols:
        checks.append(("mode", f"mode IS NOT NULL AND mode NOT IN ({_in(MODES)})", f"unknown mode (valid: {', '.join(MODES)})"))
    if "runtime" in cols:
        checks.append(("runtime", f"runtime IS NOT NULL AND runtime NOT IN ({_in(RUNTIMES)})",
                       f"unknown runtime (valid: {', '.join(RUNTIMES)})"))
    if "status" in cols:
        checks.append(("status", f"status IS NOT NULL AND status NOT IN ({_in(RUN_STATUSES)})",
                       f"unknown status (valid: {', '.join(RUN_STATUSES)})"))
    for c in ("model", "hardware"):  # engine.config.NAME_FORBIDDEN: a key separator, a list comma, markup
        checks.append((c, f"regexp_matches(CAST({c} AS VARCHAR), '[|,\\[\\]\\x00-\\x1f\\x7f]')",
                       name_rule()))
    from hardware.registry import PLATFORMS

    # a platform is no device: stored as "cpu" it meant whichever CPU ran the fit (audit S)
    checks.append(("hardware", f"lower(trim(CAST(hardware AS VARCHAR))) IN ({_in(sorted(PLATFORMS))})",
                   "a platform, not a device: name the device the run was measured on (a catalog or "
                   "user-catalog id, e.g. cpu-intel-xeon-2c or t4; `perfcast hardware list`)"))
    for c in ("seq_len", "threads"):
        if c in cols:
            v = f"TRY_CAST({c} AS DOUBLE)"
            checks.append((c, f"{c} IS NOT NULL AND ({v} IS NULL OR {v} < 0 OR {v} <> floor({v}))",
                           "must be an integer >= 0"))
    checks.append(("latency_median_ms", f"{status_expr} = 'ok' AND latency_median_ms IS NULL",
                   "missing latency for a successful run"))
    for c in POSITIVE:
        if c in cols:
            v = f"TRY_CAST({c} AS DOUBLE)"
            checks.append((c, f"{c} IS NOT NULL AND ({v} IS NULL OR isnan({v}) OR isinf({v}) OR {v} <= 0)",
                           "latency/throughput must be a finite number > 0"))
    for c in NON_NEGATIVE:
        if c in cols:
            v = f"TRY_CAST({c} AS DOUBLE)"
            checks.append((c, f"{c} IS NOT NULL AND ({v} IS NULL OR isnan({v}) OR isinf({v}) OR {v} < 0)",
                           "must be a finite number >= 0"))
    for c, least in COUNTS.items():
        if c in cols:
            v = f"TRY_CAST({c} AS DOUBLE)"
            checks.append((c, f"{c} IS NOT NULL AND ({v} IS NULL OR {v} < {least} OR {v} <> floor({v}))",
                           f"must be an integer >= {least}"))
    for c, typ in TYPED.items():
        if c in cols:
            bad = f"TRY_CAST({c} AS {typ}) IS NULL"
            if typ.endswith("[]"):  # '[1,x]' casts to [1.0, NULL], not to NULL
                bad += f" OR len(TRY_CAST({c} AS {typ})) <> list_count(TRY_CAST({c} AS {typ}))"
            checks.append((c, f"{c} IS NOT NULL AND ({bad})", f"not a {typ.lower()} value"))
    for col, cond, msg in checks:
        bad = con.execute(f"SELECT __row, CAST({col} AS VARCHAR) FROM __import WHERE {cond} ORDER BY __row LIMIT 1").fetchone()
        if bad:
            reject(bad[0], col, f"{msg}, got {bad[1]!r}")


def _check_columns(path: Path, cols: set[str]) -> None:
    """Refuse a column that looks like a misspelt perfcast column (``latency_p90`` for
    ``latency_p90_ms``: its values would be dropped without a word); warn about the others."""
    import difflib
    import warnings

    unknown = sorted(c for c in cols - KNOWN_COLUMNS if c != "__row")
    for c in unknown:
        close = difflib.get_close_matches(c, sorted(KNOWN_COLUMNS), n=1, cutoff=0.8)
        if close:
            raise ImportRejectedError(f"{path}: unknown column '{c}' (did you mean '{close[0]}'?); nothing was "
                                      "imported")
    if unknown:
        warnings.warn(f"{path}: ignored {len(unknown)} column{'s' if len(unknown) > 1 else ''} perfcast does not "
                      f"store: {', '.join(unknown[:6])}{' …' if len(unknown) > 6 else ''}", stacklevel=3)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


@dataclass(frozen=True)
class ImportSummary:
    """What an import did: runs stored, and runs left out because the store had them already."""

    imported: int
    skipped: int = 0


def _head(path: Path, n: int = 4096) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def import_measurements(store: Store, path: str | Path, *, source: Optional[str] = None,
                        skip_existing: bool = False) -> int:
    """Validate then insert every row of a file; returns the number of runs imported
    (:func:`import_file` also says how many ``skip_existing`` left out)."""
    return import_file(store, path, source=source, skip_existing=skip_existing).imported


def import_file(store: Store, path: str | Path, *, source: Optional[str] = None,
                skip_existing: bool = False) -> ImportSummary:
    """Validate then insert every row of a file.

    A run_id already in the store rejects the whole file, because the same id with other numbers
    means two files disagree; ``skip_existing`` instead leaves the stored run untouched and imports
    the rest — the way to merge a teammate's export that overlaps your own (every export carries
    its run_ids, so re-importing one is then a no-op)."""
    path = Path(path)
    if not path.exists():
        raise InvalidValueError("file", str(path), "an existing CSV, Parquet or JSON file")
    fmt = file_format(path)
    if path.is_file() and not _head(path).strip():
        # DuckDB reads an empty CSV as one column "column0": the warning about it came before the error
        raise ImportRejectedError(f"{path}: the file is empty; nothing was imported")
    with store.transaction() as con:
        try:
            con.execute(f"CREATE TEMP TABLE __import AS SELECT row_number() OVER () AS __row, * "
                        f"FROM {_reader(fmt)}", [str(path)])
        except duckdb.Error as e:
            raise ImportRejectedError(f"{path}: cannot be read as {fmt}: {str(e).splitlines()[0]}; nothing was imported") from None
        cols = {r[0] for r in con.execute("DESCRIBE __import").fetchall()}
        _check_columns(path, cols)
        _validate(con, path, cols)
        _canonical_names(con)
        _derive_run_ids(con, cols & KNOWN_COLUMNS)  # ignored columns do not make a row another run
        # ids before 2026-12-07 hashed the ignored columns too: a file imported then is still recognised
        if cols - KNOWN_COLUMNS - {"__row"}:
            _derive_run_ids(con, cols, "__legacy_id")

        def col(name: str, cast: str = "") -> str:
            if name in cols:
                expr = name
            elif name in DEFAULTS:
                expr = DEFAULTS[name]
            else:
                expr = "NULL"
            return f"CAST({expr} AS {cast})" if cast else expr

        if source:
            src = f"'{source}'"
        else:
            src = col("source")
        run_id = "coalesce(CAST(run_id AS VARCHAR), __derived_id)" if "run_id" in cols else "__derived_id"
        rows = int(con.execute("SELECT count(*) FROM __import").fetchone()[0])
        try:
            n, names = _insert_rows(con, path, cols, col, src, run_id, skip_existing)
        except duckdb.Error as e:  # a value no column type takes (a timestamp, a sample list): one line
            raise ImportRejectedError(f"{path}: {str(e).splitlines()[0]}; nothing was imported") from None
    _warn_unknown_names(path, names)
    return ImportSummary(imported=n, skipped=rows - n)


def _warn_unknown_names(path: Path, names: list[tuple[str, str, int]]) -> None:
    """One warning per column naming the imported models and devices no catalog here defines, with
    the closest names. Such runs are stored (a teammate's CPU, an own model whose file is not set in
    this shell) but every fit leaves them out; a typo ('bert-base', 'a100') was reported only at the
    next fit, as "left N stored runs out of the fit", while the import said "imported N runs"."""
    import warnings

    from engine.catalog import USER_CATALOG_ENV, models, resolve_hardware
    from engine.errors import PerfcastError, UnknownNameError

    known_models = models()
    by_column: dict[str, dict[str, int]] = {"model": {}, "hardware": {}}
    hints: dict[str, str] = {}
    for model, hardware, count in names:
        if model not in known_models:
            by_column["model"][model] = by_column["model"].get(model, 0) + count
            hints.setdefault(model, _hint(UnknownNameError("model", model, known_models).suggestions))
        try:
            resolve_hardware(hardware)  # as the fits resolve a run's device
        except UnknownNameError as e:
            by_column["hardware"][hardware] = by_column["hardware"].get(hardware, 0) + count
            hints.setdefault(hardware, _hint(e.suggestions))
        except PerfcastError:
            by_column["hardware"][hardware] = by_column["hardware"].get(hardware, 0) + count
    for column, unknown in by_column.items():
        if not unknown:
            continue
        n = sum(unknown.values())
        what = "a model" if column == "model" else "a hardware id"
        shown = "; ".join(f"{name}{hints.get(name, '')}" for name in sorted(unknown)[:3])
        more = "; ..." if len(unknown) > 3 else ""
        warnings.warn(f"{path}: {n} run{'s' if n != 1 else ''} stored with {what} no catalog here defines "
                      f"({shown}{more}): left out of every fit until "
                      f"{USER_CATALOG_ENV['models' if column == 'model' else 'hardware']} defines it",
                      stacklevel=4)


def _hint(suggestions: list[str]) -> str:
    return f": did you mean {' or '.join(repr(s) for s in suggestions[:2])}?" if suggestions else ""


def _canonical_names(con: Any) -> None:
    """Store a catalog model or device as the catalog spells it. Every fit resolves a device id
    case-insensitively ('T4', ' t4' answer as t4), but each run is grouped by the id as stored, so
    'T4' runs beside t4 ones were a second device to the GP (its own fold in ``evaluate --holdout
    hardware``, its own group term) and no run of t4 to ``predict`` (audit 2026-12-08); a model
    spelt 'GPT2' was left out of every fit. Only the letter case and surrounding spaces change: a
    name that matches nothing stays as written (:func:`_warn_unknown_names` names it)."""
    from engine.catalog import models, resolve_hardware
    from engine.errors import PerfcastError

    model_ids = {m.lower(): m for m in models()}
    for column in ("model", "hardware"):
        for (value,) in con.execute(f"SELECT DISTINCT CAST({column} AS VARCHAR) FROM __import").fetchall():
            spelt = str(value).strip().lower()
            if column == "model":
                canon = model_ids.get(spelt)
            else:
                try:
                    canon = resolve_hardware(str(value)).id
                except PerfcastError:
                    canon = None
            if canon is not None and canon != value and canon.lower() == spelt:
                con.execute(f"UPDATE __import SET {column} = ? WHERE CAST({column} AS VARCHAR) = ?", [canon, value])


def _derive_run_ids(con: Any, cols: set[str], column: str = "__derived_id") -> None:
    """``__import.__derived_id``: a run id from the row's values (md5 of every column the store
    keeps, ``cols``, and the count of identical rows before it), for rows without a ``run_id``. The
    same rows imported again derive the same ids, so the store sees they were imported before; an
    extra column the import ignores does not make them new (an audit imported the same two rows
    twice, once with a column ``foo``)."""
    names = sorted(c for c in cols if c not in ("__row", "__derived_id", "__legacy_id"))
    content = "concat_ws(chr(31), " + ", ".join(f"coalesce(CAST(\"{c}\" AS VARCHAR), chr(0))" for c in names) + ")"
    con.execute(f"ALTER TABLE __import ADD COLUMN {column} VARCHAR")
    con.execute(f"""UPDATE __import SET {column} = d.id FROM (
        SELECT __row, md5(h || '#' || row_number() OVER (PARTITION BY h ORDER BY __row)) AS id
        FROM (SELECT __row, md5({content}) AS h FROM __import)) d WHERE __import.__row = d.__row""")


def _insert_rows(con: Any, path: Path, cols: set[str], col: Any, src: str, run_id: str,
                 skip_existing: bool) -> tuple[int, list[tuple[str, str, int]]]:
    """The typed copy of ``__import`` and the inserts, inside :func:`import_measurements`'s transaction."""
    # a row whose id as derived before 2026-12-07 (ignored columns hashed too) is stored counts as stored
    has_legacy = "__legacy_id" in {r[0] for r in con.execute("DESCRIBE __import").fetchall()}
    legacy_id = (f"CASE WHEN {run_id} = __derived_id THEN __legacy_id END" if has_legacy else "CAST(NULL AS VARCHAR)")
    con.execute(f"""CREATE TEMP TABLE __rows AS SELECT {run_id} AS run_id,
        CAST(model AS VARCHAR) AS model, CAST(hardware AS VARCHAR) AS hardware,
        CAST(batch_size AS INTEGER) AS batch_size, {col('seq_len', 'INTEGER')} AS seq_len,
        CAST(precision AS VARCHAR) AS precision, {col('mode', 'VARCHAR')} AS mode,
        {col('runtime', 'VARCHAR')} AS runtime, {col('threads', 'INTEGER')} AS threads,
        {col('started_at', 'TIMESTAMP')} AS started_at, {col('host', 'VARCHAR')} AS host,
        {col('adapter', 'VARCHAR')} AS adapter, {col('device_name', 'VARCHAR')} AS device_name,
        {col('versions', 'JSON')} AS versions, {col('status', 'VARCHAR')} AS status,
        {col('error', 'VARCHAR')} AS error, {col('wall_time_s', 'DOUBLE')} AS wall_time_s,
        CAST({src} AS VARCHAR) AS source, {col('experiment_id', 'VARCHAR')} AS experiment_id,
        {col('foreign_cpu_cores', 'DOUBLE')} AS foreign_cpu_cores,
        {', '.join(f"{col(c, 'INTEGER' if c in ('iterations', 'warmup') else 'DOUBLE')} AS {c}" for c in RESULT_COLS)},
        {col('samples_ms', 'DOUBLE[]')} AS samples_ms, __row, {legacy_id} AS __legacy_id
        FROM __import ORDER BY __row""")
    con.execute("""UPDATE __rows SET mode = coalesce(mode, 'inference'), runtime = coalesce(runtime, 'torch'),
                   seq_len = coalesce(seq_len, 0), threads = coalesce(threads, 0),
                   status = coalesce(status, 'ok'), source = coalesce(source, 'imported'),
                   started_at = coalesce(started_at, now()::TIMESTAMP), versions = coalesce(versions, '{}')""")
    key = ("model || '|' || hardware || '|b' || batch_size || '|s' || seq_len || '|' || precision || '|' "
           "|| mode || '|' || runtime || '|t' || threads")
    twice = con.execute("SELECT run_id FROM __rows GROUP BY run_id HAVING count(*) > 1 LIMIT 1").fetchone()
    if twice:
        raise ImportRejectedError(f"{path}: run_id {twice[0]} appears more than once in the file; nothing was "
                                  "imported")
    if skip_existing:
        con.execute("DELETE FROM __rows WHERE run_id IN (SELECT run_id FROM benchmark_runs) "
                    "OR __legacy_id IN (SELECT run_id FROM benchmark_runs)")
    dup = con.execute("SELECT r.run_id, r.__row FROM __rows r JOIN benchmark_runs b "
                      "ON b.run_id = r.run_id OR b.run_id = r.__legacy_id ORDER BY r.__row LIMIT 1").fetchone()
    if dup and "run_id" not in cols:
        raise ImportRejectedError(f"{path}: row {dup[1]} is already in the database (a row with the same values was "
                                  "imported before); nothing was imported (--skip-existing imports only the new rows)")
    if dup:
        raise ImportRejectedError(f"{path}: run_id {dup[0]} is already in the database; nothing was imported "
                                 f"(--skip-existing imports only the new runs)")
    con.execute(f"""INSERT INTO benchmark_runs SELECT run_id, {key}, model, hardware, batch_size, seq_len,
        precision, mode, runtime, threads, started_at, host, adapter, device_name, versions, status, error,
        wall_time_s, source, experiment_id, foreign_cpu_cores FROM __rows""")
    con.execute(f"""INSERT INTO benchmark_results SELECT run_id, {key}, model, hardware, batch_size, seq_len,
        precision, mode, runtime, threads, {', '.join(RESULT_COLS)} FROM __rows WHERE status = 'ok'""")
    con.execute("""INSERT INTO raw_samples SELECT run_id, CAST(u.i - 1 AS INTEGER), u.v FROM
        (SELECT run_id, unnest(samples_ms) AS v, generate_subscripts(samples_ms, 1) AS i FROM __rows
         WHERE samples_ms IS NOT NULL) u""")
    n = con.execute("SELECT count(*) FROM __rows").fetchone()[0]
    names = [(str(m), str(h), int(k)) for m, h, k in
             con.execute("SELECT model, hardware, count(*) FROM __rows GROUP BY model, hardware").fetchall()]
    con.execute("DROP TABLE __rows")
    con.execute("DROP TABLE __import")
    return int(n), names
