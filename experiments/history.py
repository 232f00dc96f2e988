"""One line per stored experiment: what ``perfcast experiments`` lists.

A loop keeps its whole state in the ``experiments`` table (steps, prequential errors) so that it
can resume; this module reads that state back as a summary a person can scan: how far a loop got,
what it spent, how well its model forecast the runs it chose, and whether it is still running.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np


def summary(exp: dict[str, Any]) -> dict[str, Any]:
    """The row of ``perfcast experiments`` (and its ``--json``) for one stored experiment."""
    st = exp.get("state") or {}
    preq = st.get("prequential") or []
    steps = st.get("steps") or []
    apes = [p["ape"] for p in preq if p.get("ape") is not None]
    last = steps[-1] if steps else {}
    cfg = exp.get("config") or {}
    acquisition = (cfg.get("acquisition") or {}).get("name")
    if st.get("mode") == "replay" and st.get("strategies"):  # a replay comparison's summary row
        acquisition = ",".join(st["strategies"])
    return {"experiment_id": exp["experiment_id"], "name": exp["name"], "status": exp["status"],
            "mode": st.get("mode"), "acquisition": acquisition,
            "benchmarks": len(preq), "failed": sum(1 for p in preq if p.get("status") not in (None, "ok")),
            "benchmark_seconds": _num(last.get("benchmark_seconds")),
            "prequential_median_ape": float(np.median(apes)) if apes else None,
            "max_rel_width90": _num(last.get("max_rel_width90")),
            "max_reducible90": _num(last.get("max_reducible90")),
            "stopped_because": st.get("stopped_because"),
            "created_at": str(exp.get("created_at")), "updated_at": str(exp.get("updated_at"))}


def _num(v: Any) -> Optional[float]:
    return None if v is None else float(v)
