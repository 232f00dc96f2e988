"""Print the measurement noise floor of a benchmark database.

Examples:
    python bench/noise_floor.py                   # the shipped dataset (repeats included)
    python bench/noise_floor.py --db out/grid.duckdb

The noise floor is the median, over configurations measured more than once, of the coefficient
of variation of the median latency between those runs. The last line is machine-readable:
``noise_floor_cv=<x> repeated_configs=<n>``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser(description="Measurement noise floor (median CV between repeats).")
    ap.add_argument("--db", default=None,
                    help="DuckDB file with repeated measurements (default: a temporary DB seeded with the shipped dataset)")
    ap.add_argument("--show", type=int, default=10, help="print the N noisiest repeated configs")
    args = ap.parse_args()

    from engine.store import Store
    from experiments.noise import noise_floor, repeat_table

    if args.db:
        store = Store(args.db, seed=False, read_only=True)
    else:
        import tempfile

        store = Store(Path(tempfile.mkdtemp(prefix="perfcast-noise-")) / "shipped.duckdb", seed=True)
    table = repeat_table(store)
    if args.show and len(table):
        print(f"noisiest {min(args.show, len(table))} of {len(table)} repeated configurations:")
        for r in table.head(args.show).itertuples():
            print(f"  cv={r.cv:6.3f}  runs={r.runs}  median={r.mean_median_ms:9.2f} ms  {r.config_key}")
    by_rt = {}
    for rt in ("torch", "onnxruntime", "openvino"):
        cv, n = noise_floor(store, where=f"runtime = '{rt}'")
        if n:
            by_rt[rt] = (cv, n)
            print(f"  {rt:12s} median cv={cv:.4f} over {n} configs")
    cv, n = noise_floor(store)
    print(f"noise_floor_cv={cv if cv is None else round(cv, 4)} repeated_configs={n}")
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
