"""Which process is running an experiment, so that a second one does not run it too.

``perfcast run CONFIG`` derives the experiment's id from the config, and the same command resumes
it. Two processes running one config against one store would both count the same committed runs
against one budget and acquire from the same pool, so each would benchmark what the other is
about to, and each would overwrite the other's step records. A ``running`` row whose process is
gone (``kill -9``, a power cut) must still resume. The row therefore records its owner (host, pid
and the process's start time) and :func:`claim` takes it over in one write transaction, which
DuckDB's file lock makes atomic across processes: a live owner is refused, a dead one is replaced.
"""
from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping, Optional

from engine.errors import PerfcastError

if TYPE_CHECKING:
    from engine.store.store import Store

# a process on another host cannot be asked whether it lives: its row counts as abandoned once it
# has not been written for this long (a loop writes after every landed benchmark)
FOREIGN_STALE_S = 3600.0


class ExperimentBusyError(PerfcastError):
    """Another live process is running this experiment."""

    exit_code = 3


def owner_stamp() -> dict[str, Any]:
    """This process, as recorded in the experiment's state while it runs it."""
    import psutil

    return {"host": socket.gethostname(), "pid": os.getpid(), "started": psutil.Process().create_time()}


def owner_alive(owner: Optional[Mapping[str, Any]], updated_at: Any = None) -> bool:
    """Whether the process that ``owner`` names may still be running the experiment. A record
    without an owner predates owners (its process is gone), this process is never its own rival,
    and a reused pid is told apart by its start time."""
    if not owner or not owner.get("pid"):
        return False
    if owner.get("host") != socket.gethostname():
        return _age_s(updated_at) < FOREIGN_STALE_S
    pid = int(owner["pid"])
    if pid == os.getpid():
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped by its parent
            return False
        started = proc.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.Error:  # exists but cannot be inspected: assume it is the owner
        return True
    return abs(started - float(owner.get("started") or started)) < 2.0


def _age_s(updated_at: Any) -> float:
    if not isinstance(updated_at, datetime):
        return float("inf")
    stamp = updated_at if updated_at.tzinfo else updated_at.replace(tzinfo=timezone.utc)
    return time.time() - stamp.timestamp()


def claim(store: "Store", experiment_id: str, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Mark ``experiment_id`` as running by this process and return the owner stamp to keep in
    its state, or raise :class:`ExperimentBusyError` (one line: who runs it, since when) if a live
    process already does. The rest of a stored row's state is kept for the resume."""
    from engine.records import utcnow

    me = owner_stamp()
    now = utcnow()
    with store.transaction() as con:
        row = con.execute("SELECT status, updated_at, state FROM experiments WHERE experiment_id = ?",
                          [experiment_id]).fetchone()
        state = json.loads(row[2] or "{}") if row else {}
        other = state.get("owner")
        if row and row[0] == "running" and owner_alive(other, row[1]):
            where = "this machine" if other.get("host") == me["host"] else f"host {other.get('host')}"
            raise ExperimentBusyError(
                f"experiment {experiment_id} is already running in process {other.get('pid')} on {where} "
                f"(last update {_hhmm(row[1])} UTC); wait for it to finish, or stop it (Ctrl-C) and run this "
                "command again to resume it")
        state["owner"] = me
        if row:
            con.execute("UPDATE experiments SET status = 'running', updated_at = ?, state = ? WHERE experiment_id = ?",
                        [now, json.dumps(state, default=str), experiment_id])
        else:
            con.execute("INSERT INTO experiments VALUES (?, ?, ?, 'running', ?, ?, ?)",
                        [experiment_id, name, json.dumps(dict(config), default=str), now, now,
                         json.dumps(state, default=str)])
    return me


def _hhmm(updated_at: Any) -> str:
    return updated_at.strftime("%Y-%m-%d %H:%M") if isinstance(updated_at, datetime) else str(updated_at)
