"""Cross-CPU generalisation on perfcast's own measurements: fit on one CPU, predict another.

    python bench/cross_cpu.py                                  # shipped (AMD EPYC) <-> the Intel Xeon runs
    python bench/cross_cpu.py --predictors roofline,gp --transfer 0,4,8,16,32 --seeds 5
    python bench/cross_cpu.py --other bench/data/cpu-amd-epyc-avx2-2c.parquet   # <-> an AVX2-only EPYC (Zen 3)

perfcast's promise is to predict a device it has not measured, or barely. bench/cross_hardware.py
checks it on public GPU tables (other people's measurements, training only); this bench on two
CPUs measured by perfcast's own adapters, every runtime and precision. The shipped dataset
was measured on one CPU (an AMD EPYC Zen 4 VM slice, ``cpu-amd-epyc-2c``);
``bench/data/cpu-intel-xeon-amx-2c.parquet`` holds the same grid (``python -m experiments.grid``, the
same plan and seed, so the same configurations) measured on another (an Intel Xeon with AVX-512
FP16 and AMX, ``cpu-intel-xeon-amx-2c``) by the same adapters. Its provenance is in
``bench/data/cpu-intel-xeon-amx-2c.json``. Both devices' peak figures are in configs/hardware.yaml,
as ``perfcast hardware detect`` measured them (the Xeon's int8 peak with a dynamically quantized
``Linear``, the EPYC's, measured before that change, with ``torch._int_mm``: see the README).

1. **Leave one device out.** Each predictor is fitted on all runs of one CPU and scored on every
   run of the other (latency): median APE of the posterior median, Spearman rank correlation,
   empirical coverage of the 50% and 90% intervals, CRPS on the log scale. Nothing of the held-out
   device is seen but its spec (measured peaks and bandwidth, through the roofline features).
2. **Transfer.** The GP fitted on the other device plus k random configurations of the held-out
   one (k = ``--transfer``), scored on the held-out device's remaining configurations, over
   ``--seeds`` draws: how fast a handful of runs on new hardware pays off.

``bench/data/cpu-amd-epyc-avx2-2c.parquet`` (session 18) is a third CPU: 230 tasks of the same plan
(no torch/bf16: that CPU has no bf16 kernel) on a Zen 3 EPYC that reports the same brand string as
the shipped Zen 4 but has AVX2 only (``hardware.detect.isa_tier``).

Printed last, one line: ``amd_to_intel_gp_ape=.. intel_to_amd_gp_ape=.. gp_cov90=.. roofline_ape=..
transfer8_ape=..`` (median APEs and the GP's 90% coverage pooled over both directions; with
another ``--other`` the names are the device ids', e.g. ``amd_to_amd_epyc_avx2_2c_gp_ape``).
This is an evaluation, not a timed test; it takes a few minutes here (GP fits of ~500 runs).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OTHER_CPU = ROOT / "bench" / "data" / "cpu-intel-xeon-amx-2c.parquet"


def load_both(other: Path = OTHER_CPU) -> "Any":
    """Successful runs of the shipped dataset plus ``other``, as one measurements frame."""
    from engine.errors import NotAvailableError
    from engine.store import Store
    from engine.store.transfer import import_measurements

    if not other.exists():
        raise NotAvailableError(f"{other} is missing: measure another device with `python -m experiments.grid "
                                "--db out/other.duckdb --export-every 0` and export it with `perfcast db export`")
    with tempfile.TemporaryDirectory(prefix="perfcast-xhw-") as tmp:
        store = Store(Path(tmp) / "both.duckdb", seed=True)
        import_measurements(store, other, source="measured")
        return store.measurements(status="ok").reset_index(drop=True)


def fit_and_score(name: str, train: "Any", test: "Any") -> dict[str, float]:
    """Fit predictor ``name`` on ``train``; latency scores on ``test`` with evaluate's own scoring
    (:func:`engine.evaluate.score_rows`, :func:`engine.scoring.aggregate`), plus the median
    log(measured / predicted), the bias a device change leaves."""
    from engine.evaluate import default_factory, distinct_configs, score_rows
    from engine.scoring import aggregate

    model = default_factory(name, allow_bad_diagnostics=True)
    model.fit(train)
    if getattr(model, "diagnostics", None) and hasattr(model, "diagnostics_ok") and not model.diagnostics_ok:
        # kept for the table, but said (audit H: the README's Intel -> AMD hierarchical row rested on a
        # fit with 42 divergent transitions, and nothing said so)
        d = model.diagnostics
        print(f"  {name}: NUTS diagnostics FAILED on {len(train)} runs (max R-hat {d.get('rhat_max', float('nan')):.4f}, "
              f"{d.get('divergences')} divergent); scored anyway", flush=True)
    uniq, positions = distinct_configs(test)
    rows = score_rows(model.predict(uniq), test, positions, "latency_ms", "latency_median_ms")
    assert rows is not None, "every successful run has a latency"
    sc = aggregate(rows, point=bool(getattr(model, "point_estimate", False)))
    nan = float("nan")
    return {"n": float(sc.n), "median_ape": float(sc.median_ape), "spearman": sc.spearman or nan,
            "cov50": nan if sc.coverage_50 is None else sc.coverage_50,
            "cov90": nan if sc.coverage_90 is None else sc.coverage_90,
            "log_ratio_median": float(np.median(np.log(rows.y / rows.q[2])))}


def leave_one_device_out(df: "Any", predictors: Sequence[str]) -> dict[tuple[str, str], dict[str, float]]:
    out = {}
    for held in sorted(df["hardware"].unique()):
        train, test = df[df["hardware"] != held], df[df["hardware"] == held]
        for name in predictors:
            t0 = time.perf_counter()
            s = fit_and_score(name, train, test)
            s["seconds"] = time.perf_counter() - t0
            out[(held, name)] = s
            print(f"  {name:>12} -> {held}: median APE {s['median_ape']:6.1%}  Spearman {s['spearman']:.3f}  "
                  f"cover 50% {s['cov50']:6.1%}  90% {s['cov90']:6.1%}  median log(measured/predicted) "
                  f"{s['log_ratio_median']:+.2f}  ({s['n']:.0f} runs, {s['seconds']:.0f} s)", flush=True)
    return out


def transfer(df: "Any", ks: Sequence[int], seeds: int) -> dict[tuple[str, int], list[dict[str, float]]]:
    """GP on the other device + k random configurations of the held-out one, scored on the rest."""
    import pandas as pd

    out: dict[tuple[str, int], list[dict[str, float]]] = {}
    for held in sorted(df["hardware"].unique()):
        other, target = df[df["hardware"] != held], df[df["hardware"] == held]
        keys = np.array(sorted(target["config_key"].unique()))
        for k in ks:
            for s in range(seeds if k else 1):
                rng = np.random.default_rng(s)
                pick = set(rng.choice(keys, size=k, replace=False)) if k else set()
                seen = target["config_key"].isin(pick)
                out.setdefault((held, k), []).append(fit_and_score("gp", pd.concat([other, target[seen]]),
                                                                   target[~seen]))
            r = out[(held, k)]
            print(f"  gp, {k:>3} runs of {held} added: median APE {np.mean([x['median_ape'] for x in r]):6.1%}  "
                  f"cover 50% {np.mean([x['cov50'] for x in r]):6.1%}  90% {np.mean([x['cov90'] for x in r]):6.1%}"
                  f"  ({len(r)} draw{'s' if len(r) > 1 else ''})", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--other", default=str(OTHER_CPU), help="measurements of the second device (Parquet export)")
    ap.add_argument("--predictors", default="roofline,baseline,gp", help="comma-separated predictors to score")
    ap.add_argument("--transfer", default="0,4,8,16,32", help="runs of the held-out device added to the GP")
    ap.add_argument("--seeds", type=int, default=5, help="random draws per transfer size")
    args = ap.parse_args()

    df = load_both(Path(args.other))
    devices = sorted(df["hardware"].unique())
    if len(devices) != 2:
        raise SystemExit(f"need runs on exactly two devices, got {devices}")
    counts = df.groupby("hardware").size().to_dict()
    common = set.intersection(*(set(df.loc[df["hardware"] == h, "config_key"].str.replace(h, "", regex=False))
                                for h in devices))
    print(f"{len(df)} successful runs: " + ", ".join(f"{h} {n}" for h, n in counts.items())
          + f"; {len(common)} configurations measured on both", flush=True)
    print("leave one device out (fit on the other, score every run of this one):", flush=True)
    lodo = leave_one_device_out(df, [p for p in args.predictors.split(",") if p])
    ks = [int(k) for k in args.transfer.split(",") if k != ""]
    print("transfer (GP on the other device plus k random configurations of this one):", flush=True)
    tr = transfer(df, ks, args.seeds) if ks else {}

    def ape(h: str, name: str) -> str:
        s = lodo.get((h, name))
        return f"{s['median_ape']:.3f}" if s else "n/a"

    def label(h: str) -> str:  # the default pair keeps the line's historical names
        short = {"cpu-amd-epyc-2c": "amd", "cpu-intel-xeon-amx-2c": "intel"}
        return short.get(h, h.removeprefix("cpu-").replace("-", "_"))

    a, b = devices
    gp = [lodo[(h, "gp")] for h in devices if (h, "gp") in lodo]
    cov90 = (sum(s["cov90"] * s["n"] for s in gp) / sum(s["n"] for s in gp)) if gp else float("nan")
    roof = [lodo[(h, "roofline")] for h in devices if (h, "roofline") in lodo]
    roof_ape = np.mean([s["median_ape"] for s in roof]) if roof else float("nan")
    k8 = [x["median_ape"] for h in devices for x in tr.get((h, 8), [])]
    print(f"{label(a)}_to_{label(b)}_gp_ape={ape(b, 'gp')} {label(b)}_to_{label(a)}_gp_ape={ape(a, 'gp')} "
          f"gp_cov90={cov90:.3f} "
          f"roofline_ape={roof_ape:.3f} transfer8_ape={np.mean(k8) if k8 else float('nan'):.3f}")


if __name__ == "__main__":
    main()
