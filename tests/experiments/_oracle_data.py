"""Synthetic oracle data for the loop tests (a dataset-export-shaped frame)."""
from __future__ import annotations


def oracle_frame(configs, seed: int = 0):
    """A dataset-export-shaped frame of synthetic runs (config_key, status, wall time, samples)."""
    import pandas as pd

    from bench.synthetic import synthetic_measurements

    df = synthetic_measurements(configs, seed=seed)
    df["config_key"] = [c.key for c in configs]
    df["wall_time_s"] = 2.0 + df["latency_median_ms"] * 12 / 1000.0
    df["warmup"] = 2
    df["started_at"] = pd.Timestamp("2026-01-01")
    return df
