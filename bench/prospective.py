"""Prospective check of the intervals: predict configurations nobody has measured, then measure them.

Held-out splits of the shipped data (``perfcast evaluate``) test the GP on runs recorded in the
same sittings as its training runs. This bench is the stricter test a user's first benchmarks
are: it fits the GP on the whole shipped dataset, predicts N configurations of cpu-full's search
space that the dataset does not contain (drawn at random, seeded), writes every prediction down,
and only then benchmarks each one for real on this CPU (isolated child processes, cpu-full's
measuring plan). A run that other processes disturbed (``foreign_cpu_cores``, the busy-machine
rule) is reported but left out of the scores.

Examples:
    python bench/prospective.py                     # 30 configurations, seed 0 (about 6 min here)
    python bench/prospective.py --n 10 --seed 3 --out prospective.json

The last line is machine-readable:
``prospective_n=<scored> median_ape=<x> cov50=<x> cov90=<x> busy=<n> failed=<n>``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser(description="Predict unmeasured configurations, then measure them.")
    ap.add_argument("--n", type=int, default=30, help="configurations to predict and measure")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default="cpu-full", help="experiment config whose search space and plan are used")
    ap.add_argument("--out", default=None, help="write every prediction and measurement as JSON")
    args = ap.parse_args()

    import numpy as np

    from engine.cli.common import config_text, fmt_number as f
    from engine.models.gp import GPPredictor
    from engine.store import Store
    from experiments.config import load_config
    from experiments.space import expand_space
    from hardware.protocol import busy_note
    from hardware.registry import resolve

    cfg = load_config(args.config)
    store = Store(Path(tempfile.mkdtemp(prefix="perfcast-prospective-")) / "shipped.duckdb", seed=True)
    data = store.measurements(with_samples=True)
    measured = set(data["config_key"])
    fresh = [c for c in expand_space(cfg.search_space) if c.key not in measured]
    rng = np.random.default_rng(args.seed)
    picks = [fresh[i] for i in rng.choice(len(fresh), size=min(args.n, len(fresh)), replace=False)]
    print(f"{len(fresh)} of cpu-full's configurations are not in the shipped data; {len(picks)} drawn (seed "
          f"{args.seed})", flush=True)

    t0 = time.perf_counter()
    gp = GPPredictor().fit(data)
    q = gp.predict(picks).quantiles("latency_ms", [0.05, 0.25, 0.5, 0.75, 0.95])
    print(f"GP fitted on {len(data)} shipped runs in {time.perf_counter() - t0:.1f} s; predictions written "
          f"down before any run", flush=True)

    rows = []
    for i, c in enumerate(picks):
        m = resolve("cpu", c.runtime).run(cfg.benchmark.spec(c))
        y = m.latency.median_ms if m.ok else None
        busy = busy_note(m) if m.ok else None
        row = {"config_key": c.key, "status": m.status, "observed_ms": y, "busy": busy is not None,
               "q05": float(q[0, i]), "q25": float(q[1, i]), "median": float(q[2, i]), "q75": float(q[3, i]),
               "q95": float(q[4, i])}
        rows.append(row)
        if y is None:
            print(f"  {c.model} {config_text(c)}: {m.status}", flush=True)
            continue
        inside = "in 50%" if row["q25"] <= y <= row["q75"] else "in 90%" if row["q05"] <= y <= row["q95"] else "OUT"
        print(f"  {c.model} {config_text(c)}: measured {f(y)} ms, predicted {f(row['median'])} "
              f"[{f(row['q05'])}–{f(row['q95'])}] {inside}{' (busy machine)' if busy else ''}", flush=True)

    scored = [r for r in rows if r["observed_ms"] is not None and not r["busy"]]
    y = np.array([r["observed_ms"] for r in scored])
    ape = np.abs(np.array([r["median"] for r in scored]) - y) / y if scored else np.array([])
    cov50 = np.mean([r["q25"] <= r["observed_ms"] <= r["q75"] for r in scored]) if scored else float("nan")
    cov90 = np.mean([r["q05"] <= r["observed_ms"] <= r["q95"] for r in scored]) if scored else float("nan")
    if args.out:
        Path(args.out).write_text(json.dumps({"seed": args.seed, "config": args.config, "rows": rows}, indent=2))
    n_busy = sum(r["busy"] for r in rows)
    n_failed = sum(r["observed_ms"] is None for r in rows)
    print(f"prospective_n={len(scored)} median_ape={float(np.median(ape)) if len(ape) else float('nan'):.3f} "
          f"cov50={cov50:.2f} cov90={cov90:.2f} busy={n_busy} failed={n_failed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
