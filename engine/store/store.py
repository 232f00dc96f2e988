"""The benchmark store: one DuckDB file, typed records in and out, one transaction per write.

Connections are short-lived on purpose: a loop that benchmarks for an hour must not hold the
file's write lock between measurements, or every ``perfcast predict`` in another terminal would
fail. Each operation opens, works in one transaction, and closes; a lock held by another
process is waited for briefly and then reported in one line.
"""
from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Sequence, TypeVar

import duckdb

from engine.config import Config
from engine.errors import DatabaseLockedError, InvalidValueError, NotADatabaseError
from engine.records import Measurement, utcnow
from engine.store.paths import check_db_folder, default_db_path, make_db_folder
from engine.store.schema import MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:  # pandas is imported lazily at call time
    import pandas as pd

PREDICTION_STATS: tuple[str, ...] = ("median", "mean", "q05", "q25", "q75", "q95")
T = TypeVar("T")
_LOCK_PATTERNS = ("Could not set lock", "Conflicting lock", "database is locked")
_DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _config_values(c: Config) -> list[Any]:
    return [c.key, c.model, c.hardware, c.batch_size, c.seq_len, c.precision, c.mode, c.runtime, c.threads]


class Store:
    """Benchmark store on a DuckDB file.

    ``seed=True`` loads the shipped dataset into a database the first time it is created, so the
    embedded default knows something before the user has benchmarked anything.

    ``on_create(path, seeded_runs)`` is called once when this object creates the file. The CLI
    prints it, so a mistyped ``--db`` shows up as "new store" instead of silently answering
    from the shipped runs alone.

    ``db_arg``: how the caller's user named the path, for the errors about it
    (:func:`engine.store.paths.db_named`): ``"--db"`` (the CLI), ``"db"`` (the Python API's
    functions, :func:`api_store`), ``"path"`` (this class used directly).
    """

    def __init__(self, path: Optional[str | Path] = None, *, seed: bool = True, lock_wait_s: Optional[float] = None,
                 read_only: bool = False, on_create: Optional[Callable[[Path, int], None]] = None,
                 db_arg: str = "path") -> None:
        self.path = default_db_path(path)
        self._named_by = (db_arg, path is not None)
        if not self.path.exists():  # a mistyped folder is refused now, before any work (engine.store.paths)
            check_db_folder(self.path, *self._named_by)
        self.on_create = on_create
        # how long to wait for another process's write lock before explaining it in one line
        self.lock_wait_s = float(os.environ.get("PERFCAST_LOCK_WAIT_S", 10.0)) if lock_wait_s is None else lock_wait_s
        self.read_only = read_only
        self._seed = seed
        self._ready = False
        self._patient: Optional[Callable[[str], None]] = None  # set by patience(): wait out locks, say so once
        self._told = False

    # -- connections --------------------------------------------------------------------------
    @contextmanager
    def connect(self, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one unit of work. Read-only where possible so readers can share."""
        if not self._ready:
            self._ready = True
            self.ensure_schema()
        con = self._open(write=write)
        try:
            yield con
        finally:
            con.close()

    def _check_is_duckdb(self) -> None:
        """Refuse an existing path that is not a DuckDB file before duckdb sees it: duckdb would
        otherwise raise a traceback-worthy error, or open a CSV as an in-memory database and
        silently lose everything written to it."""
        if not self.path.exists():
            return
        named = self._named()[0]
        if self.path.is_dir():
            raise NotADatabaseError(f"{named} is not a DuckDB database (it is a directory)")
        try:
            with open(self.path, "rb") as f:
                head = f.read(12)
        except OSError as e:
            raise NotADatabaseError(f"{named} cannot be read ({e.strerror or e})") from None
        if head[8:12] != _DUCKDB_MAGIC:
            hint = "; import it with 'perfcast db import'" if self.path.suffix.lower() in (
                ".csv", ".parquet", ".json", ".jsonl") else ""
            what = "it is empty" if not head else "no DuckDB header"
            raise NotADatabaseError(f"{named} is not a DuckDB database ({what}){hint}")

    def _named(self) -> tuple[str, str]:
        """How errors name this store's path and what to pass instead, in the caller's words:
        ``--db PATH`` on the command line, ``db='PATH'`` in the Python API (``db_arg``)."""
        from engine.store.paths import db_named

        return db_named(self.path, *self._named_by)

    def _open(self, write: bool) -> duckdb.DuckDBPyConnection:
        self._check_is_duckdb()
        try:
            return self._open_waiting(write)
        except (duckdb.Error, OSError) as e:
            # anything left (lock timeouts are already DatabaseLockedError) is about the path itself
            verb = "cannot be opened" if self.path.exists() else "cannot be created"
            raise NotADatabaseError(f"{self._named()[0]} {verb} as a DuckDB database ({_first_line(e)})") from None

    def _open_waiting(self, write: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_wait_s
        delay = 0.05
        while True:
            try:
                if not write and self.path.exists():
                    try:
                        return duckdb.connect(str(self.path), read_only=True)
                    except duckdb.Error as e:  # a read-write connection in another process
                        if not any(p in str(e) for p in _LOCK_PATTERNS):
                            raise
                        raise
                if self.read_only and write:
                    raise DatabaseLockedError(f"database {self.path} was opened read-only; this command writes")
                make_db_folder(self.path, *self._named_by)
                return duckdb.connect(str(self.path))
            except duckdb.Error as e:
                msg = str(e)
                if not any(p in msg for p in _LOCK_PATTERNS):
                    raise
                if time.monotonic() > deadline:
                    pid = re.search(r"PID (\d+)", msg)
                    who = f"process {pid.group(1)}" if pid else "another process"
                    err = DatabaseLockedError(
                        f"database {self.path} is locked by {who} (a running loop, or a notebook or "
                        f"DuckDB shell holding it open); wait for it to finish or {self._named()[1]}")
                    if self._patient is None:
                        raise err from None
                    if not self._told:  # patience(): wait as long as the lock is held, saying so once
                        self._told = True
                        self._patient(str(err))
                    deadline = float("inf")
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction: everything inside lands, or nothing does."""
        with self.connect(write=True) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            else:
                con.execute("COMMIT")

    # -- schema -------------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self.connect() as con:
            return int(con.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)

    def ensure_schema(self) -> bool:
        """Create or migrate the schema. Returns True when the database was new."""
        fresh = not self.path.exists()
        if fresh and self.read_only:
            raise DatabaseLockedError(f"database {self.path} does not exist (opened read-only)")
        if not fresh:
            # cheap check without taking the write lock
            try:
                con = self._open(write=False)
                try:
                    v = con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
                    if v is not None and int(v) >= SCHEMA_VERSION:
                        return False
                except duckdb.CatalogException:
                    pass
                finally:
                    con.close()
            except (duckdb.IOException, NotADatabaseError):  # the write open below says why
                pass
        con = self._open(write=True)
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute(MIGRATIONS[0][0])
            current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            # new = no schema yet, read under the write lock: two processes creating the same store
            # both saw no file, and both seeded it; the second failed on the shipped runs' ids (audit S)
            fresh = int(current) == 0
            for version in range(int(current) + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS[version - 1]:
                    con.execute(stmt)
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, utcnow()])
            con.execute("COMMIT")
        finally:
            con.close()
        seeded = 0
        if fresh and self._seed:
            from engine.store.seed import seed_shipped

            seeded = seed_shipped(self)
        if fresh and self.on_create is not None:
            self.on_create(self.path, seeded)
        return fresh

    # -- writes -------------------------------------------------------------------------------
    @contextmanager
    def patience(self, on_wait: Callable[[str], None]) -> Iterator[None]:
        """Within the block, every read and write of this store waits out another process's lock
        for as long as it is held, instead of giving up after ``lock_wait_s``; ``on_wait`` is told
        once, with the lock's one-line explanation. Ctrl-C still ends the wait.

        For the work that must not be lost to a notebook or a DuckDB shell holding the file open:
        a loop, an online optimisation, ``benchmark --save``. A loop that gave up after
        ``lock_wait_s`` crashed, dropped the run it had just measured and left its experiment
        ``running`` (session 24's audits: at a write, and again at the reads of its next step)."""
        before = (self._patient, self._told)
        self._patient, self._told = on_wait, False
        try:
            yield
        finally:
            self._patient, self._told = before

    def patiently(self, write: Callable[[], T], on_wait: Optional[Callable[[str], None]] = None) -> T:
        """``write()`` under :meth:`patience` (one operation)."""
        with self.patience(on_wait or (lambda why: None)):
            return write()

    def save_measurement(self, m: Measurement, experiment_id: Optional[str] = None) -> str:
        """Persist one run (and its results and raw samples) in one transaction."""
        return self.save_measurements([m], experiment_id=experiment_id)[0]

    def save_measurements(self, ms: Sequence[Measurement], experiment_id: Optional[str] = None) -> list[str]:
        ids: list[str] = []
        with self.transaction() as con:
            for m in ms:
                ids.append(self._insert(con, m, experiment_id))
        return ids

    @staticmethod
    def _insert(con: duckdb.DuckDBPyConnection, m: Measurement, experiment_id: Optional[str],
                run_id: Optional[str] = None) -> str:
        run_id = run_id or uuid.uuid4().hex
        c = m.config
        con.execute(
            "INSERT INTO benchmark_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, *_config_values(c), m.started_at, m.host or socket.gethostname(), m.adapter or None,
             m.device_name or None, json.dumps(m.versions, sort_keys=True), m.status, m.error, m.wall_time_s,
             m.source, experiment_id, m.foreign_cpu_cores],
        )
        if m.ok:
            lat = m.latency
            assert lat is not None, "an ok measurement needs latency stats"
            con.execute(
                "INSERT INTO benchmark_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, *_config_values(c), lat.mean_ms, lat.median_ms, lat.min_ms, lat.max_ms, lat.p90_ms,
                 lat.p99_ms, lat.std_ms, m.throughput, m.memory_peak_mib, m.memory_avg_mib, m.first_token_ms,
                 m.decode_token_ms, m.load_time_s, m.power_w, m.iterations, m.warmup],
            )
            if m.samples_ms:
                con.executemany(
                    "INSERT INTO raw_samples VALUES (?, ?, ?)",
                    [[run_id, i, float(x)] for i, x in enumerate(m.samples_ms)],
                )
        return run_id

    def upsert_hardware(self, rows: Iterable[dict[str, Any]]) -> int:
        cols = ["hardware_id", "name", "kind", "vendor", "peak_fp32_tflops", "peak_fp16_tflops",
                "peak_bf16_tflops", "peak_int8_tops", "memory_bandwidth_gbs", "memory_gib", "tdp_w",
                "price_per_hour_usd", "source", "detected", "details"]
        n = 0
        with self.transaction() as con:
            for r in rows:
                vals = [r.get(k) for k in cols]
                vals[cols.index("details")] = json.dumps(r.get("details") or {}, sort_keys=True, default=str)
                vals[cols.index("detected")] = bool(r.get("detected", False))
                con.execute(
                    f"INSERT OR REPLACE INTO hardware ({', '.join(cols)}, updated_at) "
                    f"VALUES ({', '.join('?' * len(cols))}, ?)", [*vals, utcnow()])
                n += 1
        return n

    def upsert_models(self, rows: Iterable[dict[str, Any]]) -> int:
        n = 0
        with self.transaction() as con:
            for r in rows:
                con.execute(
                    "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?)",
                    [r["model_name"], r["family"], r.get("params"),
                     json.dumps(r.get("details") or {}, sort_keys=True, default=str), utcnow()])
                n += 1
        return n

    def save_json_record(self, table: str, kind_or_holdout: str, payload: dict[str, Any]) -> str:
        """Store a recommendation or evaluation payload (JSON) and return its id."""
        if table not in ("recommendations", "evaluations"):
            raise ValueError(f"invalid table {table!r}; valid: recommendations, evaluations")
        rid = uuid.uuid4().hex
        with self.transaction() as con:
            con.execute(f"INSERT INTO {table} VALUES (?, ?, ?, ?)",
                        [rid, utcnow(), kind_or_holdout, json.dumps(payload, default=str)])
        return rid

    def save_predictions(self, predictor: str, data_hash: str, rows: Sequence[tuple[Config, str, dict[str, float]]]) -> str:
        """Rows of (config, metric, {median, mean, q05, q25, q75, q95})."""
        by_metric: dict[str, tuple[list[Config], dict[str, list[float]]]] = {}
        for c, metric, stats in rows:
            cfgs, cols = by_metric.setdefault(metric, ([], {k: [] for k in PREDICTION_STATS}))
            cfgs.append(c)
            for k in PREDICTION_STATS:
                cols[k].append(stats.get(k))
        pid = uuid.uuid4().hex
        for metric, (cfgs, cols) in by_metric.items():
            self.save_prediction_arrays(predictor, data_hash, cfgs, {metric: cols}, prediction_id=pid)
        return pid

    def save_prediction_arrays(self, predictor: str, data_hash: str, configs: Sequence[Config],
                               summaries: dict[str, dict[str, Any]], prediction_id: Optional[str] = None) -> str:
        """Vectorised insert: ``summaries`` maps metric -> {median, mean, q05, ...: array over configs}.

        A prediction matrix has tens of thousands of cells: DuckDB ingests one DataFrame in one
        statement, where row-by-row inserts managed ~1,400 rows/s.
        """
        import pandas as pd

        pid = prediction_id or uuid.uuid4().hex
        base = pd.DataFrame([_config_values(c) for c in configs],
                            columns=["config_key", "model", "hardware", "batch_size", "seq_len", "precision",
                                     "mode", "runtime", "threads"])
        parts = []
        for metric, stats in summaries.items():
            part = base.copy()
            part["metric"] = metric
            for k in PREDICTION_STATS:
                part[k] = stats.get(k)
            parts.append(part)
        frame = pd.concat(parts, ignore_index=True)
        frame.insert(0, "data_hash", data_hash)
        frame.insert(0, "predictor", predictor)
        frame.insert(0, "created_at", utcnow())
        frame.insert(0, "prediction_id", pid)
        with self.transaction() as con:
            con.register("__prediction_frame", frame)
            try:
                con.execute("INSERT INTO predictions SELECT * FROM __prediction_frame")
            finally:
                con.unregister("__prediction_frame")
        return pid

    # -- experiments ----------------------------------------------------------------------------
    def upsert_experiment(self, experiment_id: str, name: str, config: dict[str, Any], status: str,
                          state: Optional[dict[str, Any]] = None) -> None:
        now = utcnow()
        with self.transaction() as con:
            row = con.execute("SELECT created_at FROM experiments WHERE experiment_id = ?", [experiment_id]).fetchone()
            created = row[0] if row else now
            con.execute("INSERT OR REPLACE INTO experiments VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [experiment_id, name, json.dumps(config, default=str), status, created, now,
                         json.dumps(state or {}, default=str)])

    _EXPERIMENT_COLUMNS = "experiment_id, name, config, status, created_at, updated_at, state"

    @staticmethod
    def _experiment(row: Sequence[Any]) -> dict[str, Any]:
        """One ``experiments`` row (in ``_EXPERIMENT_COLUMNS`` order) with its JSON columns parsed."""
        return {"experiment_id": row[0], "name": row[1], "config": json.loads(row[2]), "status": row[3],
                "created_at": row[4], "updated_at": row[5], "state": json.loads(row[6] or "{}")}

    def get_experiment(self, experiment_id: str) -> Optional[dict[str, Any]]:
        with self.connect() as con:
            row = con.execute(f"SELECT {self._EXPERIMENT_COLUMNS} FROM experiments WHERE experiment_id = ?",
                              [experiment_id]).fetchone()
        return self._experiment(row) if row else None

    def experiments(self) -> list[dict[str, Any]]:
        """Every stored experiment (loops run against this store), most recently updated first."""
        with self.connect() as con:
            rows = con.execute(f"SELECT {self._EXPERIMENT_COLUMNS} FROM experiments ORDER BY updated_at DESC").fetchall()
        return [self._experiment(r) for r in rows]

    # -- reads --------------------------------------------------------------------------------
    def measurements(self, *, status: Optional[str] = "ok", where: str = "", params: Sequence[Any] = (),
                     with_samples: bool = False) -> "pd.DataFrame":
        """Flat measurements (one row per run) as a DataFrame, oldest first."""
        cols = "*" if with_samples else "* EXCLUDE (samples_ms)"
        clauses = []
        args: list[Any] = []
        if status:
            clauses.append("status = ?")
            args.append(status)
        if where:
            clauses.append(f"({where})")
            args.extend(params)
        sql = f"SELECT {cols} FROM measurements" + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        sql += " ORDER BY started_at, run_id"
        with self.connect() as con:
            return con.execute(sql, args).df()

    def find_runs(self, run_ids: Sequence[str] = (), **equal: Optional[str]) -> "pd.DataFrame":
        """Runs selected for deletion or inspection: each of ``run_ids`` is a full id or an
        unambiguous prefix (at least 6 characters, as a user copies them), AND-ed with column
        equalities (``model``, ``hardware``, ``status``, ``source``, ``experiment_id``; None = any).
        An id that matches no run, or several, raises InvalidValueError naming it."""
        from engine.errors import InvalidValueError

        allowed = ("model", "hardware", "status", "source", "experiment_id")
        clauses, args = [], []
        for col, value in equal.items():
            if col not in allowed:
                raise ValueError(f"invalid run filter {col!r}; valid: {', '.join(allowed)}")
            if value is not None:
                clauses.append(f"{col} = ?")
                args.append(value)
        with self.connect() as con:
            if run_ids:
                full = []
                for rid in run_ids:
                    if len(rid) < 6:
                        raise InvalidValueError("run id", rid, "a run id or a prefix of at least 6 characters")
                    hits = [r[0] for r in con.execute(
                        "SELECT run_id FROM benchmark_runs WHERE starts_with(run_id, ?) LIMIT 2", [rid]).fetchall()]
                    if len(hits) != 1:
                        raise InvalidValueError("run id", rid, "the id of a stored run (perfcast db export lists them)"
                                                if not hits else "a longer prefix: it matches several runs")
                    full.append(hits[0])
                clauses.append(f"run_id IN ({', '.join('?' * len(full))})")
                args.extend(full)
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            return con.execute("SELECT run_id, model, hardware, batch_size, seq_len, precision, mode, runtime, "
                               f"threads, status, source, started_at FROM benchmark_runs{where} "
                               "ORDER BY started_at, run_id", args).df()

    def delete_runs(self, run_ids: Sequence[str]) -> int:
        """Delete runs with their results and raw samples, in one transaction; returns how many."""
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return 0
        q = ", ".join("?" * len(ids))
        with self.transaction() as con:
            for table in ("raw_samples", "benchmark_results", "benchmark_runs"):
                con.execute(f"DELETE FROM {table} WHERE run_id IN ({q})", ids)
        return len(ids)

    def configs_with_status(self, statuses: Sequence[str]) -> set[str]:
        """Canonical keys of configurations that have at least one run with one of ``statuses``."""
        q = ", ".join("?" * len(statuses))
        with self.connect() as con:
            rows = con.execute(f"SELECT DISTINCT config_key FROM benchmark_runs WHERE status IN ({q})",
                               list(statuses)).fetchall()
        return {r[0] for r in rows}

    def failures(self, statuses: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Canonical key -> [(status, error), ...] of every run with one of ``statuses`` (failed
        runs): the pool reads the errors to tell a limit the next loop raises from a certain failure."""
        q = ", ".join("?" * len(statuses))
        with self.connect() as con:
            rows = con.execute(f"SELECT config_key, status, coalesce(error, '') FROM benchmark_runs "
                               f"WHERE status IN ({q})", list(statuses)).fetchall()
        out: dict[str, list[tuple[str, str]]] = {}
        for key, status, error in rows:
            out.setdefault(key, []).append((status, error))
        return out

    def count(self, table: str) -> int:
        if not re.fullmatch(r"[a-z_]+", table):
            raise ValueError(f"invalid table name {table!r}")
        with self.connect() as con:
            return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def hardware_rows(self) -> list[dict[str, Any]]:
        with self.connect() as con:
            df = con.execute("SELECT * FROM hardware ORDER BY hardware_id").df()
        return df.to_dict("records")

    def data_hash(self, where: str = "", params: Sequence[Any] = ()) -> str:
        """A hash of the successful measurements, so fitted models are reused until data change.

        Every figure a fit reads of a run is in it, not only its id and median: two stores holding
        the same runs (an export imported without its memory column, a run id kept across stores)
        shared a cached fit, and one without memory answered memory from the other's (audit,
        session 31). A run's raw samples are not: they are stored with it and never change."""
        figures = " || ':' || ".join(f"coalesce(CAST({c} AS VARCHAR), '')" for c in _HASHED_FIGURES)
        sql = (f"SELECT coalesce(hash(string_agg(run_id || ':' || {figures}, ',' "
               "ORDER BY run_id)), 0) FROM measurements WHERE status = 'ok'")
        if where:
            sql += f" AND ({where})"
        with self.connect() as con:
            return format(int(con.execute(sql, list(params)).fetchone()[0]), "x")


#: The figures of a run that the fits read (:mod:`engine.models.targets`), hashed by ``data_hash``.
_HASHED_FIGURES = ("latency_median_ms", "latency_p90_ms", "latency_std_ms", "iterations", "memory_peak_mib",
                   "started_at")


def _warn_new_store(path: Path, seeded: int) -> None:
    import warnings

    what = f"with the {seeded:,} shipped runs" if seeded else "empty"
    warnings.warn(f"created a new perfcast store {path} ({what}); if you meant an existing store, check the path",
                  UserWarning, stacklevel=2)


def api_store(db: "None | str | os.PathLike[str] | Store", arg: str = "db") -> Store:
    """The store a Python API call works on: a :class:`Store`, a path, or None (``PERFCAST_DB``,
    else the platform default). A store the call creates is announced with a ``UserWarning``
    naming the file, as the CLI announces it on stderr: a mistyped path in a notebook otherwise
    answered from the shipped runs alone, looking like the team's store. ``arg``: the argument the
    user passed it as, which errors about the path name (``db='notes.txt' is not a DuckDB database``)."""
    if isinstance(db, Store):
        return db
    if db is not None and not isinstance(db, (str, os.PathLike)):
        # db=123 was pathlib's "expected str, bytes or os.PathLike object, not int" at the first answer
        raise InvalidValueError(arg, db, "a path (str or os.PathLike), an engine.Store, or None for the default store")
    return Store(db, on_create=_warn_new_store, db_arg=arg)
