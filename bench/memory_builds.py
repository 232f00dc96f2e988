"""Memory of runs built as today, predicted from the shipped runs, on the CPU this runs on.

    python bench/memory_builds.py                       # measure a small grid here (~3 min), then score
    python bench/memory_builds.py --store runs.duckdb   # score the runs of a store measured before
    python bench/memory_builds.py --predictors hierarchical --models gpt2,resnet50 --batch-sizes 1
    python bench/memory_builds.py --large               # 7 runs of batch 16-128 (~5 min): activations dominate

Every shipped run (2026-11-22, an AMD EPYC) was built the old way: torch built each model in fp32
and converted it (bf16) or quantized a copy (int8), and the run's peak memory holds that build.
Since 2026-12-07 the torch adapters build half precision in its own dtype and quantize int8 in
place (``hardware.torch_common.BUILD_PROTOCOL``), and the memory models read each run's build as
it was made (``engine.models.targets.legacy_builds``). This bench checks what a user sees first:
fitted on the shipped runs alone, how well each predictor answers the memory of runs built as
today on a device the fit never saw. It measures with ``perfcast benchmark --save`` into a store
seeded with the shipped runs (or reads ``--store``), fits every predictor on the shipped device's
runs, and scores the other devices' runs: median APE of the posterior median, coverage of the 50%
and 90% intervals, and the median log bias, pooled and per precision.

Printed last, one line: ``n=.. gp_ape=.. gp_cov90=.. hierarchical_ape=.. hierarchical_cov90=..
roofline_ape=..``. Measured on an Intel Xeon (2026-12-07, beside other work), 102 runs of 9 models
(fp32/bf16/int8, batch 1 and 8, seq 32 and 128; ``--store``): gp 5.2% (coverage 83/97%),
hierarchical 4.9% (64/91%), roofline 6.9% (95/100%). Before the roofline's memory factors per
runtime and the counted working set (session 30): 11.0% (58/98%), 3.7% (71/93%) and 25.7%; before
the build change (session 29): 33%, 30% (17/38%) and 37%. ``--large`` (7 runs, batch 16-128, 5 min):
gp 8.9% (90% coverage 100%), hierarchical 3.6% (100%), roofline 6.6% (100%); measured again by
``--large`` itself (17:07 UTC): gp 11.1%, hierarchical 5.1%, roofline 6.3%, 7 of 7 covered each; with the per-runtime
factors but the old working set, and the GP's correction on the whole peak: 56% (29%), 18% (43%),
16% (57%) (docs/evaluation.md, "Session 30"). Session 32 (the GP fitted on every shipped run, ``--store``
of runs measured here): the default grid's 42 runs gp 6.4%, hierarchical 5.5%, roofline 6.5%; ``--large``'s 7
runs gp 11.9%, hierarchical 4.3%, roofline 5.3% (the GP read 9.3-16.9% over random 400-run subsets of the
shipped runs, docs/evaluation.md "Session 32"). This is an evaluation, not a timed test.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHIPPED_DEVICE = "cpu-amd-epyc-2c"
DEFAULT_MODELS = "distilbert-base-uncased,gpt2,resnet50,t5-small"


#: (model, batch, sequence length) runs whose peak is mostly activations: the regime of "does batch
#: 64 fit on this GPU", which the shipped runs (batch <= 16, small tensors) barely see.
LARGE_GRID: tuple[tuple[str, int, int], ...] = (
    ("gpt2", 16, 512), ("gpt2", 32, 256), ("distilbert-base-uncased", 64, 512), ("bert-base-uncased", 32, 512),
    ("t5-small", 64, 512), ("resnet50", 64, 0), ("resnet50", 128, 0))


def measure_large(store: Path) -> None:
    """One timed pass of each :data:`LARGE_GRID` run, fp32 (memory is what is scored)."""
    for model, b, s in LARGE_GRID:
        cmd = [sys.executable, "-m", "engine.cli.main", "benchmark", "--model", model, "--hardware", "cpu",
               "--batch-sizes", str(b), "--seq-lengths", str(s), "--precision", "fp32", "--threads", "2",
               "--iterations", "1", "--warmup", "1", "--min-time", "0", "--max-time", "1", "--time-limit", "900",
               "--save"]
        subprocess.run(cmd, check=False, env={**os.environ, "PERFCAST_DB": str(store)}, cwd=ROOT)


def measure(store: Path, models: str, batch_sizes: str, seq_lengths: str, precisions: str) -> None:
    """Run the grid with the real adapters into ``store`` (``perfcast benchmark --save``)."""
    cmd = [sys.executable, "-m", "engine.cli.main", "benchmark", "--model", models, "--hardware", "cpu",
           "--batch-sizes", batch_sizes, "--seq-lengths", seq_lengths, "--precision", precisions,
           "--threads", "2", "--iterations", "5", "--warmup", "2", "--min-time", "0.3", "--max-time", "10",
           "--save"]
    subprocess.run(cmd, check=False, env={**os.environ, "PERFCAST_DB": str(store)}, cwd=ROOT)


def score(store: Path, predictors: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Fit each predictor on the shipped device's runs; score memory on every other device's."""
    from engine.errors import NotAvailableError
    from engine.evaluate import distinct_configs
    from engine.models.registry import get_predictor
    from engine.models.targets import legacy_builds
    from engine.store import Store

    df = Store(store).measurements().reset_index(drop=True)
    train = df[df["hardware"] == SHIPPED_DEVICE]
    test = df[(df["hardware"] != SHIPPED_DEVICE) & df["memory_peak_mib"].notna()]
    test = test[~legacy_builds(test)].reset_index(drop=True)
    if not len(test):
        raise NotAvailableError(f"{store} holds no runs built as today outside {SHIPPED_DEVICE}: measure some first")
    y = test["memory_peak_mib"].to_numpy(dtype=float)
    uniq, pos = distinct_configs(test)
    out: dict[str, dict[str, Any]] = {}
    for name in predictors:
        model = get_predictor(name, **({"allow_bad_diagnostics": True} if name == "hierarchical" else {}))
        model.fit(train)
        q = model.predict(uniq).quantiles("memory_mib", (0.05, 0.25, 0.5, 0.75, 0.95))[:, pos]
        ape = np.abs(q[2] - y) / y
        c50, c90 = (q[1] <= y) & (y <= q[3]), (q[0] <= y) & (y <= q[4])
        bias = np.log(q[2] / y)
        per = {p: (float(np.median(ape[m])), float(c90[m].mean()), float(np.median(bias[m])), int(m.sum()))
               for p in sorted(set(test["precision"])) for m in [test["precision"].to_numpy() == p]}
        out[name] = {"ape": float(np.median(ape)), "cov50": float(c50.mean()), "cov90": float(c90.mean()),
                     "bias": float(np.median(bias)), "per_precision": per}
    out["_n"] = {"n": len(test), "devices": sorted(set(test["hardware"]))}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, help="score this store's runs instead of measuring new ones")
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--seq-lengths", default="32,128")
    ap.add_argument("--precisions", default="fp32,bf16,int8")
    ap.add_argument("--predictors", default="roofline,gp,hierarchical")
    ap.add_argument("--large", action="store_true", help="measure LARGE_GRID (batch 16-128) instead of the grid")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        if store is None:
            store = Path(tmp) / "memory_builds.duckdb"
            if args.large:
                measure_large(store)
            else:
                measure(store, args.models, args.batch_sizes, args.seq_lengths, args.precisions)
        res = score(store, args.predictors.split(","))
    n = res.pop("_n")
    print(f"{n['n']} runs built as today on {', '.join(n['devices'])}, predicted from the shipped {SHIPPED_DEVICE} runs")
    for name, r in res.items():
        print(f"{name:13s} memory median APE {r['ape']:6.1%}  cover 50/90 {r['cov50']:.0%}/{r['cov90']:.0%}  "
              f"bias {r['bias']:+.3f}")
        for p, (a, c, b, k) in r["per_precision"].items():
            print(f"    {p:5s} n={k:3d}  APE {a:6.1%}  cover 90 {c:.0%}  bias {b:+.3f}")
    print(f"n={n['n']} " + " ".join(f"{k}_ape={v['ape']:.3f} {k}_cov90={v['cov90']:.2f}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
