"""The measurement noise floor: how much the same configuration's median moves between repeats.

No predictor can be more accurate than the data it is scored against; this number is the floor
that later accuracy figures are compared with.
"""
from __future__ import annotations

from typing import Any


def noise_floor(store: Any, where: str = "") -> tuple[float | None, int]:
    """(median coefficient of variation of the median latency across repeats, number of configs).

    Per configuration with at least two successful runs: CV = sample std / mean of the runs'
    median latencies. The median over configurations is robust to one disturbed repeat.
    """
    extra = f"AND ({where})" if where else ""
    sql = f"""
        WITH per AS (
            SELECT config_key, stddev_samp(latency_median_ms) / avg(latency_median_ms) AS cv
            FROM measurements WHERE status = 'ok' {extra}
            GROUP BY config_key HAVING count(*) >= 2)
        SELECT median(cv), count(*) FROM per"""
    if hasattr(store, "connect"):
        with store.connect() as con:
            cv, n = con.execute(sql).fetchone()
    else:  # a DuckDB connection with a ``measurements`` table or view
        cv, n = store.execute(sql).fetchone()
    return (float(cv) if cv is not None else None), int(n)


def repeat_table(store: Any) -> Any:
    """Per repeated configuration: runs, mean median latency and CV (a DataFrame)."""
    sql = """SELECT config_key, count(*) AS runs, avg(latency_median_ms) AS mean_median_ms,
                    stddev_samp(latency_median_ms) / avg(latency_median_ms) AS cv,
                    min(started_at) AS first, max(started_at) AS last
             FROM measurements WHERE status = 'ok' GROUP BY config_key HAVING count(*) >= 2
             ORDER BY cv DESC"""
    with store.connect() as con:
        return con.execute(sql).df()
