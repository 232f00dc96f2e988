"""DuckDB schema for the benchmark store and its forward migrations.

Table names are a contract: users query them directly with SQL, and other parts of perfcast
(models, loops, the recommender) read them. A migration is a list of statements applied in one
transaction; ``schema_version`` records which ones ran, so an old database file is upgraded in
place and never rebuilt.
"""
from __future__ import annotations

CONFIG_COLS = """
    config_key VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    hardware VARCHAR NOT NULL,
    batch_size INTEGER NOT NULL,
    seq_len INTEGER NOT NULL,
    precision VARCHAR NOT NULL,
    mode VARCHAR NOT NULL,
    runtime VARCHAR NOT NULL,
    threads INTEGER NOT NULL
"""


def measurements_view(run_extra: str = "") -> str:
    """The flat ``measurements`` view (one row per run: what `db export` writes and `db import`
    reads); ``run_extra``: columns of ``benchmark_runs`` added by later migrations."""
    return f"""CREATE OR REPLACE VIEW measurements AS
            SELECT r.run_id, r.config_key, r.model, r.hardware, r.batch_size, r.seq_len,
                   r.precision, r.mode, r.runtime, r.threads, r.started_at, r.host, r.adapter,
                   r.device_name, r.versions, r.status, r.error, r.wall_time_s, r.source,
                   r.experiment_id{run_extra},
                   b.latency_mean_ms, b.latency_median_ms, b.latency_min_ms, b.latency_max_ms,
                   b.latency_p90_ms, b.latency_p99_ms, b.latency_std_ms, b.throughput_items_s,
                   b.memory_peak_mib, b.memory_avg_mib, b.first_token_ms, b.decode_token_ms,
                   b.load_time_s, b.power_w, b.iterations, b.warmup,
                   (SELECT list(s.latency_ms ORDER BY s.iteration) FROM raw_samples s
                     WHERE s.run_id = r.run_id) AS samples_ms
            FROM benchmark_runs r LEFT JOIN benchmark_results b USING (run_id)"""


MIGRATIONS: list[list[str]] = [
    # v1: the initial schema
    [
        """CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS hardware (
            hardware_id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            vendor VARCHAR,
            peak_fp32_tflops DOUBLE, peak_fp16_tflops DOUBLE, peak_bf16_tflops DOUBLE,
            peak_int8_tops DOUBLE, memory_bandwidth_gbs DOUBLE, memory_gib DOUBLE,
            tdp_w DOUBLE, price_per_hour_usd DOUBLE,
            source VARCHAR, detected BOOLEAN DEFAULT FALSE, details JSON,
            updated_at TIMESTAMP NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS models (
            model_name VARCHAR PRIMARY KEY,
            family VARCHAR NOT NULL,
            params BIGINT,
            details JSON,
            updated_at TIMESTAMP NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS benchmark_runs (
            run_id VARCHAR PRIMARY KEY,
            {CONFIG_COLS},
            started_at TIMESTAMP NOT NULL,
            host VARCHAR, adapter VARCHAR, device_name VARCHAR, versions JSON,
            status VARCHAR NOT NULL CHECK (status IN ('ok', 'failed', 'timeout', 'oom')),
            error VARCHAR, wall_time_s DOUBLE,
            source VARCHAR NOT NULL DEFAULT 'measured',
            experiment_id VARCHAR)""",
        f"""CREATE TABLE IF NOT EXISTS benchmark_results (
            run_id VARCHAR PRIMARY KEY,
            {CONFIG_COLS},
            latency_mean_ms DOUBLE, latency_median_ms DOUBLE NOT NULL CHECK (latency_median_ms > 0),
            latency_min_ms DOUBLE, latency_max_ms DOUBLE, latency_p90_ms DOUBLE,
            latency_p99_ms DOUBLE, latency_std_ms DOUBLE,
            throughput_items_s DOUBLE CHECK (throughput_items_s > 0),
            memory_peak_mib DOUBLE, memory_avg_mib DOUBLE,
            first_token_ms DOUBLE, decode_token_ms DOUBLE, load_time_s DOUBLE, power_w DOUBLE,
            iterations INTEGER, warmup INTEGER)""",
        """CREATE TABLE IF NOT EXISTS raw_samples (
            run_id VARCHAR NOT NULL, iteration INTEGER NOT NULL, latency_ms DOUBLE NOT NULL,
            PRIMARY KEY (run_id, iteration))""",
        f"""CREATE TABLE IF NOT EXISTS predictions (
            prediction_id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
            predictor VARCHAR NOT NULL, data_hash VARCHAR,
            {CONFIG_COLS},
            metric VARCHAR NOT NULL, median DOUBLE, mean DOUBLE,
            q05 DOUBLE, q25 DOUBLE, q75 DOUBLE, q95 DOUBLE)""",
        """CREATE TABLE IF NOT EXISTS recommendations (
            recommendation_id VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL,
            kind VARCHAR NOT NULL, payload JSON NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS experiments (
            experiment_id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, config JSON NOT NULL,
            status VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL,
            state JSON)""",
        """CREATE TABLE IF NOT EXISTS evaluations (
            evaluation_id VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL,
            holdout VARCHAR NOT NULL, payload JSON NOT NULL)""",
        # One flat row per run: what `db export` writes and `db import` reads.
        measurements_view(),
    ],
    # v2: how many CPU cores other processes kept busy while a run's timed iterations ran
    # (hardware.protocol.time_iterations): a benchmark taken on a busy machine is slow for reasons
    # that are not the configuration's, and a reader of the store must be able to tell
    [
        "ALTER TABLE benchmark_runs ADD COLUMN IF NOT EXISTS foreign_cpu_cores DOUBLE",
        measurements_view(", r.foreign_cpu_cores"),
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)
