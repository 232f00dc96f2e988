"""Active learning in replay: how many benchmarks (and benchmark-seconds) does eig save over random?

    python bench/active_learning.py                    # shipped dataset, 36 seeds (~15 min here, 2 cores)
    python bench/active_learning.py --first-seed 12 --seeds 24 --strategies random,eig
    python bench/active_learning.py --seeds 5 --max-runs 120
    python bench/active_learning.py --dataset synthetic  # bench/synthetic.py's world (no shipped data needed)
    python bench/active_learning.py --no-cost          # eig without the division by predicted cost
    python bench/active_learning.py --no-cooling       # information / cost with a fixed exponent 1
    python bench/active_learning.py --cost-exponent 1  # EI-cool from 1 (the default before session 6)
    python bench/active_learning.py --fresh-scoring    # held-out error from a GP refitted at every step
    python bench/active_learning.py --dataset bench/data/cpu-intel-xeon-amx-2c.parquet --prior shipped
                                                       # a new device: the shipped runs known, another CPU's grid
                                                       # the oracle (the initial design counts its runs only)

For each seed, the loop of ``configs/experiments/replay-shipped.yaml`` is replayed with ``random``,
``eig`` (cost-aware, cost exponent cooled from 0.25 as the budget is spent) and ``max-variance`` on the dataset's configurations: each run starts from
the same seeded random initial design, the oracle answers with the recorded measurement and its
recorded benchmark cost, and after every acquisition the posterior is scored on every
configuration not yet acquired (held-out median APE of the median latency). Curves are averaged
over seeds. Few seeds mislead, because random's curve is flat near the target and the crossing
point jumps: one variant scored ratio 1.88 on seeds 0-2 and 1.25 on seeds 0-5, and the same code
scored 1.25 on seeds 0-5 and 1.00 on seeds 6-11. Sessions 2-5 chose among variants on seeds 0-11,
and the variant kept scored 1.36 there but 0.76 on seeds 12-23 and 1.08 on seeds 24-35 (session 6):
a block of seeds used to choose is optimistic, hence 36 seeds by default, and ``--first-seed`` to
check a change on seeds it was not chosen on.

By default each step is scored with the loop's own posterior, whose hyperparameters are refitted
only every ``predictor.refit_every`` steps; that is what a ``perfcast run`` user sees. With
``--fresh-scoring`` every step is scored by a predictor fitted afresh on what the strategy has
measured so far, which grades the measured set itself (stale hyperparameters hurt random's
predictions more than eig's, so eig's ratio is smaller there; see docs/active-learning.md,
"Scoring with a freshly fitted GP").

Figures (printed last, one line):
  random_n      benchmarks random needs to reach its own APE at 60 benchmarks (the target)
  eig_n         benchmarks eig needs to reach the same target APE
  ratio         random_n / eig_n                           (goal >= 2)
  seconds_ratio benchmark-seconds random needs / eig needs  (goal >= 2)
  step_s        one acquisition step (predict the pool, predicted cost, eig with q=4 jointly) on a
                10,000-candidate pool, GP fitted on 200 runs (goal <= 5 s); the pool is from the
                synthetic world because the catalog x this CPU has fewer distinct configurations
                with cheap descriptors
The lines before it give 90% intervals of ratio and seconds_ratio from resampling the paired seeds
and the share of resamples with ratio >= 2 (how much of a ratio is seed luck), and the paired gap:
each strategy's held-out error minus random's, averaged seed by seed over 20-60 benchmarks (20% of
--max-runs to --target-n), with its standard error. The ratio reads where two flat curves cross and
jumps a batch at a time; the gap uses every seed's whole curve, so it is the figure to compare
variants by. Session 11:
refitting every 5 steps instead of 10 moved the ratio from 1.56 to 1.75 on seeds 0-35 and from 1.50
to 1.25 on seeds 36-47, while over all 48 seeds eig's own error moved by -0.07 points (s.e. 0.09)
and the gap to random from -2.38 to -2.17 (s.e. 0.25).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def synthetic_oracle(n: int = 400, seed: int = 11):
    """An oracle dataset from bench/synthetic.py (latencies + costs like a 2-core CPU and GPUs)."""
    import pandas as pd

    from bench.synthetic import random_configs, synthetic_featurizer, synthetic_measurements

    configs = list(dict.fromkeys(random_configs(n * 2, ["cpu-syn-2c", "cpu-syn-16c", "gpu-syn-a"], seed=seed)))[:n]
    df = synthetic_measurements(configs, seed=seed)
    df["config_key"] = [c.key for c in configs]
    # cost of a run: setup (bigger models build slower) + warm-up and timed iterations
    df["wall_time_s"] = 2.0 + df["latency_median_ms"] * 12 / 1000.0
    df["warmup"] = 2
    df["started_at"] = pd.Timestamp("2026-01-01")
    return df, synthetic_featurizer()


def fit_library_versions() -> dict[str, str]:
    """Versions of the libraries a replay's fits and scores depend on, and the host's CPU model.

    A replay repeats bit for bit in one environment (session 13: one seed, twice in a process, in a
    new process, with one thread and with an empty cache), but the same code gave eig_n 36 in
    session 12 and 40 in session 13, with a rebuilt environment and possibly another host CPU (whose
    BLAS kernels round differently) in between; printing both lets two figures be compared."""
    from importlib.metadata import PackageNotFoundError, version

    from hardware.detect import cpu_model_name

    out = {}
    for p in ("torch", "botorch", "gpytorch", "linear_operator", "scipy", "numpy", "scikit-learn"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "absent"
    out["cpu"] = cpu_model_name()
    return out


def step_time(reps: int = 3) -> float:
    """Median seconds of one acquisition step on a 10,000-candidate pool with q = 4."""
    from bench.synthetic import random_configs, synthetic_featurizer, synthetic_measurements
    from engine.acquisition.cost import CostModel
    from engine.acquisition.select import select
    from engine.models.gp import GPPredictor

    fz = synthetic_featurizer()
    hw = ["cpu-syn-2c", "cpu-syn-16c", "gpu-syn-a", "gpu-syn-b"]
    train = list(dict.fromkeys(random_configs(260, hw, seed=1)))[:200]
    gp = GPPredictor(featurizer=fz, maxiter=30).fit(synthetic_measurements(train, seed=1))
    seen = {c.key for c in train}
    pool = [c for c in dict.fromkeys(random_configs(40000, hw, seed=2)) if c.key not in seen][:10000]
    assert len(pool) == 10000, len(pool)
    cm = CostModel()
    times = []
    for r in range(reps):
        t0 = time.perf_counter()
        ps = gp.predict(pool)
        cost = cm.predict(pool, ps)
        sel = select("eig", gp, pool, 4, cost=cost, predictions=ps, mc_points=128, seed=r)
        times.append(time.perf_counter() - t0)
        assert len(sel) == 4
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="shipped", help="shipped | synthetic | path to an exported file")
    ap.add_argument("--config", default="replay-shipped", help="the experiment config replayed (a shipped name or a YAML path)")
    ap.add_argument("--prior", choices=("none", "shipped"), default=None,
                    help="start every replay from the shipped runs (a new device learnt on top of the shipped "
                         "one; needs another --dataset) instead of the config's replay.prior")
    ap.add_argument("--seeds", type=int, default=36, help="how many replay seeds")
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds first-seed .. first-seed+seeds-1; seeds 0-11 chose among the variants the README "
                         "lists, so a fresh block (e.g. --first-seed 12) is the unbiased check")
    ap.add_argument("--max-runs", type=int, default=100, help="benchmarks per replayed loop")
    ap.add_argument("--target-n", type=int, default=60, help="random's APE at this many benchmarks is the target")
    ap.add_argument("--q", type=int, default=None, help="batch size of the replayed loops (default: the config's)")
    ap.add_argument("--strategies", default="random,eig,max-variance", help="comma-separated acquisitions to replay")
    ap.add_argument("--no-cost", action="store_true", help="eig/bald without dividing by the predicted cost")
    ap.add_argument("--no-cooling", action="store_true", help="divide by cost**1 throughout (no EI-cool schedule)")
    ap.add_argument("--cost-exponent", type=float, default=None,
                    help="the cost exponent at the start of the budget "
                         "(default: the config's acquisition.cost_exponent, 0.25 in replay-shipped)")
    ap.add_argument("--fresh-scoring", action="store_true",
                    help="score held-out error with a predictor refitted at every step (slower)")
    ap.add_argument("--plot", default=None, help="write the learning curves to this PNG")
    ap.add_argument("--skip-step", action="store_true", help="skip timing one step on a 10,000-candidate pool")
    args = ap.parse_args()

    from experiments.config import load_config
    from experiments.replay import load_dataset
    from experiments.report import (benchmarks_to_reach, compare, curve_of, gap_range, paired_gap, plot_report,
                                    ratio_with_interval, ratios_to_reach, seconds_to_reach)

    factory = score_factory = None
    if args.dataset == "synthetic":
        data, fz = synthetic_oracle()
        from engine.models.gp import GPPredictor

        cfg0 = load_config(args.config)
        opts = dict(cfg0.predictor.options)
        factory = lambda: GPPredictor(featurizer=fz, **opts)  # noqa: E731
    else:
        data = load_dataset(args.dataset)
    cfg = load_config(args.config)
    if args.prior is not None:
        from experiments.config import prior_is_oracle

        if prior_is_oracle(args.dataset, args.prior) or (args.prior == "shipped" and args.dataset == "synthetic"):
            ap.error("--prior shipped needs a recorded --dataset of another device than the shipped one "
                     "(the prior cannot be the oracle, and the synthetic world has none of the shipped models)")
        cfg = cfg.model_copy(update={"replay": cfg.replay.model_copy(update={"prior": args.prior,
                                                                               "dataset": args.dataset})})
    if args.fresh_scoring:
        from engine.models.registry import get_predictor

        kind, kind_opts = cfg.predictor.kind, dict(cfg.predictor.options)
        score_factory = factory or (lambda: get_predictor(kind, **kind_opts))  # noqa: E731
    n_configs = data.drop_duplicates("config_key").shape[0]
    runs = min(args.max_runs, n_configs - 1)
    acq = cfg.acquisition.model_copy(update={"q": args.q or cfg.acquisition.q,
                                             "cost_aware": cfg.acquisition.cost_aware and not args.no_cost,
                                             "cost_cooling": cfg.acquisition.cost_cooling and not args.no_cooling,
                                             "cost_exponent": (args.cost_exponent if args.cost_exponent is not None
                                                               else 1.0 if args.no_cooling
                                                               else cfg.acquisition.cost_exponent)})
    cfg = cfg.model_copy(update={"budget": cfg.budget.model_copy(update={"runs": runs, "benchmark_seconds": None}),
                                 "acquisition": acq})
    strategies = args.strategies.split(",")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    seed_range = f"{seeds[0]}-{seeds[-1]}"
    print(f"dataset {args.dataset}: {len(data)} runs, {n_configs} configurations; {args.seeds} seeds ({seed_range}) x "
          f"{strategies}, {runs} benchmarks each, q={cfg.acquisition.q}, cost-aware={cfg.acquisition.cost_aware}, "
          f"cost-cooling={cfg.acquisition.cost_aware and cfg.acquisition.cost_cooling} from "
          f"{cfg.acquisition.cost_exponent:g}, "
          f"scoring={'fresh fit per step' if args.fresh_scoring else 'the loop posterior'}",
          flush=True)
    # a replay repeats bit for bit in one environment; between environments it may not (above)
    print("environment: " + ", ".join(f"{p} {v}" for p, v in fit_library_versions().items()), flush=True)
    t0 = time.perf_counter()
    results = {}
    for s in strategies:
        t1 = time.perf_counter()
        results.update(compare(cfg, data, [s], seeds, predictor_factory=factory, score_factory=score_factory))
        print(f"  {s}: {time.perf_counter() - t1:.0f} s", flush=True)
    curves = {k: curve_of(k, v, n_max=runs) for k, v in results.items()}
    target_n = min(args.target_n, runs)
    rnd = curves["random"]
    target = float(rnd.ape_by_n[target_n])
    print(f"replays took {time.perf_counter() - t0:.0f} s; target = random's held-out median APE at {target_n} "
          f"benchmarks = {target:.2%}")
    print(f"{'n':>4} " + " ".join(f"{k:>14}" for k in curves))
    for n in sorted({5, 10, 20, 30, 40, 60, 80, 100, runs} & set(range(runs + 1))):
        print(f"{n:>4} " + " ".join(f"{c.ape_by_n[n]:>14.2%}" if np.isfinite(c.ape_by_n[n]) else f"{'-':>14}"
                                    for c in curves.values()))
    print("held-out coverage of the 50% / 90% intervals (mean of seeds; the pool the strategy left out):")
    for n in sorted({10, 20, 30, 40, 60, 80, 100, runs} & set(range(runs + 1))):
        print(f"{n:>4} " + " ".join(f"{c.cover50_by_n[n]:>6.1%} /{c.cover90_by_n[n]:>6.1%}"
                                    if c.cover90_by_n is not None and np.isfinite(c.cover90_by_n[n]) else f"{'-':>14}"
                                    for c in curves.values()))
    for k, c in curves.items():
        print(f"  {k}: reaches target after {benchmarks_to_reach(c, target)} benchmarks / "
              f"{seconds_to_reach(c, target)} benchmark-s")
    if args.plot:
        plot_report(args.plot, list(curves.values()), title=f"replay on {args.dataset}")
    random_n = benchmarks_to_reach(rnd, target)
    if "eig" not in curves:
        eig_n = "n/a"  # not among --strategies (">runs" would read as "never reached")
    else:
        reached = benchmarks_to_reach(curves["eig"], target)
        eig_n = str(reached) if reached is not None else f">{runs}"
    # the same rule as the bootstrap line and `perfcast replay`: eig never reaching the target = 0
    ratio, seconds_ratio = (ratios_to_reach(results["random"], results["eig"], target_n, runs) if "eig" in results
                            else (float("nan"), float("nan")))
    if "eig" in results and len(results["eig"]) > 1:
        est = ratio_with_interval(results["random"], results["eig"], target_n, runs)
        print(f"seed bootstrap ({est.n_boot} resamples of the {len(results['eig'])} paired seeds): "
              f"ratio 90% interval {est.ratio_ci90[0]:.2f}-{est.ratio_ci90[1]:.2f}, seconds_ratio "
              f"{est.seconds_ratio_ci90[0]:.2f}-{est.seconds_ratio_ci90[1]:.2f}, P(ratio >= 2) = {est.p_ratio_ge_2:.2f}")
    for name in (k for k in results if k != "random"):
        if len(results[name]) > 1:
            lo, hi = gap_range(runs, target_n)  # 20-60 of the default 100, as in `perfcast replay`
            g = paired_gap(results["random"], results[name], lo=lo, hi=hi, n_max=runs)
            print(f"paired gap {name} - random, mean held-out APE over {g.lo}-{g.hi} benchmarks: "
                  f"{100 * g.mean_gap:+.2f} points (s.e. {100 * g.se:.2f}), {name} lower on {g.share_better:.0%} "
                  f"of {g.seeds} seeds")
    step = float("nan") if args.skip_step else step_time()
    print(f"random_n={random_n} eig_n={eig_n} ratio={ratio:.2f} "
          f"seconds_ratio={seconds_ratio:.2f} step_s={step:.2f}")


if __name__ == "__main__":
    main()
