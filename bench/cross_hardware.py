"""Cross-hardware generalisation on PUBLIC measurements: leave one GPU out, then a few shots.

    python bench/cross_hardware.py [--data ../shared/data/public] [--seeds 5] [--no-hierarchical]

About 5-10 minutes on 2 cores, most of it the hierarchical model's 12 NUTS fits.

perfcast's shipped dataset comes from one device (a 2-core CPU), so it cannot say how well the
predictors carry over to hardware they have never seen. This bench answers that on external
ground truth: Lambda's public PyTorch TRAINING throughput table (lambdal/deeplearning-benchmark,
``lambda_v1_tidy.csv``; see ``../shared/data/public/README.md``), single-GPU rows of the three
models perfcast's catalog has (bert_base_squad -> bert-base-uncased at seq 384, bert_large_squad
-> bert-large-uncased at seq 384, resnet50 -> resnet50 at 224x224), fp16 (AMP) and fp32, at the
largest batch that fits, on 13 GPU types. Vendor/cloud copies of one GPU (Dell, SMC, 1CC ... H100
SXM5) map to one catalog device and act as repeated runs (the noise floor).

The data are EXTERNAL and read at run time only (never copied into the package): from
``--data DIR`` or ``../shared/data/public/`` next to the repository. Without them the bench
prints one "skipped" line and exits 0.

Experiment 1 - leave one GPU out: ``engine.evaluate.evaluate(df, "hardware")``; each catalog
device is held out in turn, every predictor is fitted on the other devices and scored on the
held-out one (latency per batch = 1000 x batch / throughput). Prints median APE, MAPE, Spearman,
50%/90% coverage, mean relative 90% width and CRPS (log scale) per predictor, and the GP's median
APE per held-out GPU.

The hierarchical model runs with ``max_extensions=0`` (``--hier-extensions``) to bound the run
time; its NUTS diagnostics are printed whatever they are (``allow_bad_diagnostics``).

Sensitivity (``--no-tf32`` skips it): Lambda's "fp32" runs use TF32 tensor cores on Ampere and
later (NVIDIA containers enable it; the A100/H100 fp32 rows exceed the CUDA-core fp32 peak the
catalog lists by 2-3x), so roofline and GP are evaluated again with fp32 read as the TF32 peak.

Experiment 2 - few shots on a new device: for each held-out GPU and each seed, its
configurations are put in a random order; the GP is trained on the other GPUs plus ONE run of each
of the first k configurations (k = 0, 1, 2, 4) and scored on every run of the configurations after
position max(k), so the test set is the same for every k (a paired curve). Prints median APE and
90% coverage against k.

Last line (machine-readable)::

    loho_gp_median_ape=.. loho_gp_cov90=.. loho_roofline_median_ape=.. k_to_25pct=..

``k_to_25pct`` is the smallest k whose pooled median APE is under 25% (``>K`` if none).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TABLE = "lambda_v1_tidy.csv"

#: Lambda model name -> (perfcast catalog model, seq_len as perfcast records it: 0 for CNNs).
MODELS: dict[str, tuple[str, int]] = {
    "bert_base_squad": ("bert-base-uncased", 384),
    "bert_large_squad": ("bert-large-uncased", 384),
    "resnet50": ("resnet50", 0),
}

#: Lambda gpu_config -> configs/hardware.yaml id. Cloud/vendor copies are the same GPU.
GPUS: dict[str, str] = {
    "Quadro RTX 8000": "quadro-rtx-8000",
    "LambdaCloud V100 16GB": "v100-16gb",
    "RTX 3090": "rtx-3090",
    "LambdaCloud A10": "a10",
    "LambdaCloud A100 40GB PCIe": "a100-40gb-pcie",
    "A100 80GB PCIe": "a100-80gb-pcie",
    "A100 80GB SXM4": "a100-80gb",
    "RTX 6000 Ada": "rtx-6000-ada",
    "RTX A6000": "rtx-a6000",
    "RTX 4090": "rtx-4090",
    "H100 80GB PCIe Gen5": "h100-pcie",
    "LambdaCloud H100 80GB PCIe Gen5": "h100-pcie",
    "H100 80GB SXM5": "h100-sxm",
    "Dell H100 80GB SXM5": "h100-sxm",
    "DellTexas H100 80GB SXM5": "h100-sxm",
    "SMC H100 80GB SXM5": "h100-sxm",
    "1CC H100 80GB SXM5": "h100-sxm",
    "RAIDZ1 H100 80GB SXM5": "h100-sxm",
}


#: Dense TF32 tensor-core peaks (TFLOP/s) for the --tf32 sensitivity run, from the same spec sheets
#: as configs/hardware.yaml (sparse figures halved): A100 datasheet (156), H100 datasheet (SXM 989 /
#: PCIe 756 sparse), A10 datasheet (62.5), GA102 whitepaper (RTX A6000 77.4, RTX 3090 35.6), Ada
#: whitepaper (RTX 4090 82.6, RTX 6000 Ada 182.1). V100 and Quadro RTX 8000 have no TF32.
#: Why: Lambda ran fp32 in NVIDIA's containers, where PyTorch uses TF32 tensor cores by default;
#: the data show it (A100/H100 "fp32" runs reach 2-3x the CUDA-core fp32 peak the catalog lists).
TF32_TFLOPS: dict[str, float] = {
    "a100-40gb-pcie": 156.0, "a100-80gb": 156.0, "a100-80gb-pcie": 156.0, "h100-sxm": 494.7, "h100-pcie": 378.0,
    "a10": 62.5, "rtx-a6000": 77.4, "rtx-3090": 35.6, "rtx-4090": 82.6, "rtx-6000-ada": 182.1,
}


def tf32_featurizer() -> Any:
    """A featuriser that reads fp32 as the device's TF32 tensor-core peak (where it has one)."""
    from dataclasses import replace

    from engine.catalog import resolve_hardware
    from engine.models.features import Featurizer, HardwareFacts

    def resolve(hid: str) -> HardwareFacts:
        facts = HardwareFacts.from_entry(resolve_hardware(hid))
        if hid in TF32_TFLOPS:
            facts = replace(facts, peak_flops={**facts.peak_flops, "fp32": TF32_TFLOPS[hid] * 1e12})
        return facts

    return Featurizer(resolve_hardware=resolve)


def find_data(arg: Optional[str]) -> Optional[Path]:
    """The public-data directory holding the Lambda table, or None."""
    d = Path(arg) if arg else REPO.parent / "shared" / "data" / "public"
    return d if (d / TABLE).is_file() else None


def load_measurements(data_dir: Path) -> "Any":
    """Lambda's single-GPU training rows as a perfcast measurements frame (no samples, no memory)."""
    import pandas as pd

    from engine.config import Config

    raw = pd.read_csv(data_dir / TABLE)
    raw = raw[(raw["num_gpu"] == 1) & raw["model"].isin(list(MODELS)) & (raw["throughput"] > 0)]
    unknown = sorted(set(raw["gpu_config"]) - set(GPUS))
    if unknown:
        print(f"note: GPUs without a catalog mapping, dropped: {', '.join(unknown)}")
    raw = raw[raw["gpu_config"].isin(list(GPUS))].reset_index(drop=True)
    rows = []
    for i, r in enumerate(raw.itertuples(index=False)):
        model, seq = MODELS[r.model]
        cfg = Config(model, GPUS[r.gpu_config], int(r.batch_size), seq, str(r.precision), "training", "torch", 0)
        lat = 1000.0 * r.batch_size / r.throughput
        rows.append({"run_id": f"lambda-{i}", "config_key": cfg.key, **cfg.to_dict(), "status": "ok",
                     "source": f"lambda_v1:{r.gpu_config}", "latency_median_ms": lat, "latency_p90_ms": np.nan,
                     "latency_std_ms": np.nan, "iterations": np.nan, "throughput_items_s": float(r.throughput),
                     "memory_peak_mib": np.nan, "samples_ms": None})
    return pd.DataFrame(rows)


def _fmt(v: Optional[float], pct: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def print_loho(report: Any) -> None:
    print(f"\n== leave one GPU out: {report.n_measurements} runs, {len(report.folds)} folds, "
          f"{report.n_test} test rows ==")
    nf = report.noise.get("between_runs_median_ape")
    print(f"noise floor (repeated H100 runs across vendors): median APE {_fmt(nf, True)} over "
          f"{report.noise.get('n_repeated_configs')} repeated configurations")
    hdr = f"{'predictor':13s} {'medAPE':>7s} {'MAPE':>7s} {'spear':>6s} {'cov50':>6s} {'cov90':>6s} " \
          f"{'width90':>8s} {'CRPSlog':>8s} {'fit_s':>7s}"
    print(hdr)
    for name, res in report.results.items():
        if res.error:
            print(f"{name:13s} FAILED: {res.error}")
            continue
        s = res.scores["latency_ms"]
        print(f"{name:13s} {_fmt(s.median_ape, True):>7s} {_fmt(s.mape, True):>7s} {_fmt(s.spearman):>6s} "
              f"{_fmt(s.coverage_50, True):>6s} {_fmt(s.coverage_90, True):>6s} {_fmt(s.mean_rel_width_90):>8s} "
              f"{_fmt(s.crps_log):>8s} {res.fit_s:7.1f}")
    names = [n for n, r in report.results.items() if not r.error]
    print("\nper held-out GPU, median APE:")
    print(f"{'gpu':16s} " + " ".join(f"{n:>12s}" for n in names))
    for fold in report.folds:
        print(f"{fold:16s} " + " ".join(f"{_fmt(report.results[n].fold_median_ape.get(fold), True):>12s}"
                                         for n in names))


class Recording:
    """Wraps a predictor and keeps each fold's predicted medians, for the per-precision/per-model
    breakdown that the pooled evaluation report does not carry."""

    def __init__(self, inner: Any, log: dict[str, float]) -> None:
        self.inner, self.log = inner, log

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def fit(self, data: Any) -> "Recording":
        self.inner.fit(data)
        return self

    def predict(self, configs: Any) -> Any:
        pset = self.inner.predict(configs)
        med = pset.quantiles("latency_ms", [0.5])[0]
        self.log.update({c.key: float(m) for c, m in zip(pset.configs, med)})
        return pset


def print_breakdown(df: Any, medians: dict[str, dict[str, float]]) -> None:
    """Median APE of each predictor split by precision and by model (pooled over held-out GPUs)."""
    y = df["latency_median_ms"].to_numpy(dtype=float)
    groups = [("precision", p) for p in sorted(df["precision"].unique())] + \
             [("model", m) for m in sorted(df["model"].unique())]
    names = list(medians)
    print("\nmedian APE by precision / model (leave one GPU out):")
    print(f"{'rows':22s} " + " ".join(f"{n:>12s}" for n in names))
    for col, val in groups:
        mask = (df[col] == val).to_numpy()
        cells = []
        for n in names:
            pred = df["config_key"].map(medians[n]).to_numpy(dtype=float)
            ok = mask & np.isfinite(pred)
            cells.append(_fmt(float(np.median(np.abs(pred[ok] - y[ok]) / y[ok])) if ok.any() else None, True))
        print(f"{col + '=' + val:22s} " + " ".join(f"{c:>12s}" for c in cells))


def diagnostics_summary(models: list) -> str:
    """How the hierarchical model's NUTS runs went, one fold per model: failures are reported, not hidden."""
    if not models:
        return "no fits"
    diags = [getattr(m, "diagnostics", {}) or {} for m in models]
    ok = sum(bool(getattr(m, "diagnostics_ok", False)) for m in models)

    def worst(key: str, fn: Any) -> str:
        vals = [float(d[key]) for d in diags if d.get(key) is not None]
        return f"{fn(vals):.3g}" if vals else "n/a"

    return (f"{ok}/{len(models)} folds pass; worst r_hat {worst('rhat_max', max)}, lowest bulk ESS "
            f"{worst('ess_bulk_min', min)}, most divergences {worst('divergences', max)}, "
            f"NUTS time {worst('seconds', sum)} s in all")


def few_shot(df: "Any", ks: list[int], seeds: int, progress: bool = True) -> dict[int, dict[str, float]]:
    """Experiment 2 (see the module docstring): GP median APE / 90% coverage vs k per device."""
    from engine.config import Config
    from engine.predict import make_predictor
    from engine.scoring import RowScores, aggregate, row_scores

    kmax = max(ks)
    rows: dict[int, list[RowScores]] = {k: [] for k in ks}
    per_gpu: dict[int, dict[str, list[float]]] = {k: {} for k in ks}
    for gi, hw in enumerate(sorted(df["hardware"].unique())):
        t0 = time.perf_counter()
        other = df[df["hardware"] != hw]
        own = df[df["hardware"] == hw]
        keys = np.array(sorted(own["config_key"].unique()))
        if len(keys) <= kmax:
            print(f"  {hw}: only {len(keys)} configurations, skipped (need more than {kmax})")
            continue
        cache: dict[tuple, Any] = {}
        for seed in range(seeds):
            rng = np.random.default_rng(1000 * gi + seed)
            order = rng.permutation(keys)
            test = own[own["config_key"].isin(order[kmax:])]
            configs = [Config.from_mapping(r) for r in test.to_dict("records")]
            y = test["latency_median_ms"].to_numpy(dtype=float)
            for k in ks:
                picked = []
                for key in order[:k]:  # one run of each of the first k configurations
                    runs = own[own["config_key"] == key]
                    picked.append(runs.iloc[[int(rng.integers(len(runs)))]])
                train_key = tuple(sorted(p["run_id"].iat[0] for p in picked))
                model = cache.get(train_key)
                if model is None:
                    import pandas as pd

                    train = pd.concat([other, *picked], ignore_index=True)
                    model = make_predictor("gp").fit(train)
                    cache[train_key] = model
                ps = model.predict(configs)
                r = row_scores(y, mu_log=ps.mu_log["latency_ms"], sigma_log=ps.sigma_log["latency_ms"])
                rows[k].append(r)
                per_gpu[k].setdefault(hw, []).append(float(aggregate(r).median_ape))
        if progress:
            print(f"  {hw}: {len(cache)} GP fits, {time.perf_counter() - t0:.1f} s", flush=True)
    out: dict[int, dict[str, float]] = {}
    for k in ks:
        if not rows[k]:
            continue
        sc = aggregate(RowScores.concat(rows[k]))  # the scores engine.evaluate reports
        out[k] = {"median_ape": sc.median_ape, "mape": sc.mape, "cov90": sc.coverage_90,
                  "width90": sc.mean_rel_width_90, "n": sc.n,
                  "worst_gpu_median_ape": float(max(np.median(v) for v in per_gpu[k].values()))}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="Leave-one-GPU-out and few-shot evaluation on public Lambda "
                                             "training-throughput measurements (external data).")
    ap.add_argument("--data", default=None, help="directory holding lambda_v1_tidy.csv "
                                                 "(default: ../shared/data/public next to the repository)")
    ap.add_argument("--seeds", type=int, default=5, help="random orders per held-out GPU in the few-shot part")
    ap.add_argument("--ks", default="0,1,2,4", help="numbers of runs on the new GPU added to training")
    ap.add_argument("--no-hierarchical", action="store_true", help="skip the (slow) hierarchical model")
    ap.add_argument("--hier-extensions", type=int, default=0,
                    help="extra NUTS rounds the hierarchical model may add when r_hat is bad (its default is 3; "
                         "0 here bounds the run time)")
    ap.add_argument("--no-tf32", action="store_true", help="skip the fp32-as-TF32 sensitivity run")
    ap.add_argument("--no-few-shot", action="store_true", help="skip experiment 2")
    args = ap.parse_args()

    data_dir = find_data(args.data)
    if data_dir is None:
        where = args.data or str(REPO.parent / "shared" / "data" / "public")
        print(f"skipped: public measurement table {TABLE} not found in {where} (pass --data DIR)")
        return 0
    try:
        ks = sorted({int(k) for k in args.ks.split(",")})
    except ValueError:
        print(f"error: --ks {args.ks!r} is not a comma-separated list of integers (e.g. 0,1,2,4)")
        return 2
    if not ks or ks[0] < 0 or args.seeds < 1:
        print("error: --ks needs non-negative integers and --seeds a positive integer")
        return 2

    from engine.evaluate import default_factory, evaluate
    from engine.models.features import featurize

    t_start = time.perf_counter()
    df = load_measurements(data_dir)
    print(f"data: {data_dir / TABLE} (external, read at run time): {len(df)} single-GPU training runs, "
          f"{df['config_key'].nunique()} configurations, {df['hardware'].nunique()} GPUs, "
          f"models {', '.join(sorted(df['model'].unique()))}")
    predictors = ["roofline", "baseline", "gp"] + ([] if args.no_hierarchical else ["hierarchical"])
    hier_models: list = []
    medians: dict[str, dict[str, float]] = {p: {} for p in predictors}

    def factory(name: str) -> Any:  # the default predictors, recorded; hierarchical fits kept for diagnostics
        if name == "hierarchical":
            from engine.models.registry import get_predictor
            from engine.predict import predictor_kwargs

            model = get_predictor(name, **predictor_kwargs(name, allow_bad_diagnostics=True,
                                                           max_extensions=args.hier_extensions))
            hier_models.append(model)
        else:
            model = default_factory(name, allow_bad_diagnostics=True)
        return Recording(model, medians[name])

    featurize(df)  # descriptors once up front, so fit times are the predictors' own
    report = evaluate(df, "hardware", predictors=predictors, allow_bad_diagnostics=True, factory=factory)
    print_loho(report)
    print_breakdown(df, {n: m for n, m in medians.items() if not report.results[n].error})
    if hier_models:
        print(f"\nhierarchical NUTS (allow_bad_diagnostics, max_extensions={args.hier_extensions}): "
              f"{diagnostics_summary(hier_models)}")
    if not args.no_tf32:
        from engine.models.registry import get_predictor

        fz = tf32_featurizer()
        tf = evaluate(df, "hardware", predictors=["roofline", "gp"],
                      factory=lambda name: get_predictor(name, featurizer=fz))
        print("\nsensitivity: fp32 rows read with the TF32 tensor-core peak (see TF32_TFLOPS), leave one GPU out:")
        for name, res in tf.results.items():
            sc = res.scores.get("latency_ms")
            if res.error or sc is None:
                print(f"  {name:10s} FAILED: {res.error}")
                continue
            print(f"  {name:10s} median APE {_fmt(sc.median_ape, True)}, MAPE {_fmt(sc.mape, True)}, "
                  f"Spearman {_fmt(sc.spearman)}, cov90 {_fmt(sc.coverage_90, True)}, CRPSlog {_fmt(sc.crps_log)}")

    curve: dict[int, dict[str, float]] = {}
    if not args.no_few_shot:
        print(f"\n== few shots on a new GPU (GP; {args.seeds} seeds; test = configurations after position "
              f"{max(ks)} of a random order) ==")
        curve = few_shot(df, ks, args.seeds)
        print(f"{'k':>3s} {'medAPE':>7s} {'MAPE':>7s} {'cov90':>6s} {'width90':>8s} {'worstGPU':>9s} {'n':>5s}")
        for k, s in curve.items():
            print(f"{k:3d} {_fmt(s['median_ape'], True):>7s} {_fmt(s['mape'], True):>7s} "
                  f"{_fmt(s['cov90'], True):>6s} {_fmt(s['width90']):>8s} "
                  f"{_fmt(s['worst_gpu_median_ape'], True):>9s} {s['n']:5d}")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")

    gp = report.results["gp"].scores.get("latency_ms") if not report.results["gp"].error else None
    roof = report.results["roofline"].scores.get("latency_ms") if not report.results["roofline"].error else None
    k25 = next((str(k) for k, s in curve.items() if s["median_ape"] < 0.25), f">{max(ks)}" if curve else "n/a")
    print(f"loho_gp_median_ape={_fmt(gp.median_ape if gp else None)} loho_gp_cov90={_fmt(gp.coverage_90 if gp else None)} "
          f"loho_roofline_median_ape={_fmt(roof.median_ape if roof else None)} k_to_25pct={k25}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
