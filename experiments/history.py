"""One line per stored experiment: what ``perfcast experiments`` lists.

A loop keeps its whole state in the ``experiments`` table (steps, prequential errors) so that it
can resume; this module reads that state back as a summary a person can scan: how far a loop got,
what it spent, how well its model forecast the runs it chose, and whether it is still running: a
``running`` row whose process is gone (``kill -9``, a reboot) is listed as ``killed``.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np


def summary(exp: dict[str, Any], runs: Optional[dict[str, tuple[int, int, float]]] = None) -> dict[str, Any]:
    """The row of ``perfcast experiments`` (and its ``--json``) for one stored experiment.

    ``runs``: experiment id -> (runs, failed runs, benchmark-seconds) as the store holds them now
    (:func:`stored_run_counts`). They are the counts shown: the experiment's own state is a
    snapshot that a ``db delete`` or a kill leaves stale, and optimize keeps none. A replay's
    summary row has no stored runs (the oracle answered): its counts are None."""
    st = exp.get("state") or {}
    preq = st.get("prequential") or []
    steps = st.get("steps") or []
    apes = [p["ape"] for p in preq if p.get("ape") is not None]
    last = steps[-1] if steps else {}
    cfg = exp.get("config") or {}
    acquisition = (cfg.get("acquisition") or {}).get("name")
    if st.get("mode") == "replay" and st.get("strategies"):  # a replay comparison's summary row
        acquisition = ",".join(st["strategies"])
    n, failed, seconds = (len(preq), sum(1 for p in preq if p.get("status") not in (None, "ok")),
                          _num(last.get("benchmark_seconds")))
    if st.get("mode") == "replay":
        n = failed = seconds = None  # type: ignore[assignment]
    elif runs is not None:
        n, failed, seconds = runs.get(exp["experiment_id"], (0, 0, None))
    status, pid = exp["status"], None
    if status == "running":  # still running only while the process that claimed it lives
        from engine.store.owner import owner_alive

        owner = st.get("owner") or {}
        if owner_alive(owner, exp.get("updated_at")):
            pid = owner.get("pid")
        else:
            status = "killed"
    budget = cfg.get("budget") or {}
    if not isinstance(budget, dict):  # an online optimisation stores its budget as a count of evaluations
        budget = {"runs": budget if isinstance(budget, int) else None}
    return {"experiment_id": exp["experiment_id"], "name": exp["name"], "status": status, "pid": pid,
            "mode": st.get("mode"), "acquisition": acquisition,
            "budget_runs": budget.get("runs"), "budget_benchmark_seconds": budget.get("benchmark_seconds"),
            "benchmarks": n, "failed": failed, "benchmark_seconds": seconds,
            "prequential_median_ape": float(np.median(apes)) if apes else None,
            "max_rel_width90": _num(last.get("max_rel_width90")),
            "max_reducible90": _num(last.get("max_reducible90")),
            "stopped_because": st.get("stopped_because"),
            "created_at": _iso(exp.get("created_at")), "updated_at": _iso(exp.get("updated_at"))}


def _iso(t: Any) -> Optional[str]:
    """A stored (naive UTC) time as ISO 8601 with its zone, as every ``--json`` prints times."""
    from datetime import datetime

    from engine.records import utc_iso

    return utc_iso(t) if isinstance(t, datetime) else (None if t is None else str(t))


def stored_run_counts(store: Any) -> dict[str, tuple[int, int, Optional[float]]]:
    """Experiment id -> (runs, failed runs, summed wall seconds) of the runs stored now."""
    with store.connect() as con:
        rows = con.execute("SELECT experiment_id, count(*), count(*) FILTER (WHERE status <> 'ok'), "
                           "sum(wall_time_s) FROM measurements WHERE experiment_id IS NOT NULL "
                           "GROUP BY experiment_id").fetchall()
    return {e: (int(n), int(f), None if s is None else float(s)) for e, n, f, s in rows}


def _num(v: Any) -> Optional[float]:
    return None if v is None else float(v)


def stop_word(reason: Optional[str]) -> str:
    """A few words for the listing's "stopped" column (the whole reason is in ``--json`` and in
    ``perfcast experiments ID``)."""
    if not reason:
        return "–"
    low = reason.lower()
    for needle, word in (("run budget", "run budget"), ("benchmark-seconds budget", "seconds budget"),
                         ("pool is empty", "pool empty"), ("nothing left", "nothing left")):
        if needle in low:
            return word
    return reason.split(":")[0].split(";")[0][:18]  # "stop rule: ...", an interruption's first words
