"""Speed and calibration of the predictors on synthetic but roofline-shaped data.

    python bench/fit_predict.py [--n-train 1000] [--n-predict 100000]

Prints an accuracy/calibration table on held-out synthetic runs (measured devices and one device
never measured), then, last, exactly one line::

    gp_fit_1000_s=.. gp_refit_1000_s=.. predict_100k_s=.. nuts_1000_s=.. rhat_max=..

Goals on the 2-core machine: GP fit ≤ 5 s, warm refit ≤ 2 s, 100k GP predictions ≤ 3 s, NUTS on
1,000 runs ≤ 15 s with r_hat ≤ 1.01. ``predict_100k_s`` is the GP's (featurisation included,
descriptors already cached); ``nuts_1000_s`` is the whole hierarchical fit (2 chains × 500 warm-up
+ 500 draws, JAX compilation served from the persistent cache when a previous run filled it).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synthetic import SYN_HARDWARE, random_configs, synthetic_featurizer, synthetic_measurements  # noqa: E402
from engine.models.features import configs_from_frame  # noqa: E402

SEEN = ["cpu-syn-2c", "cpu-syn-16c", "gpu-syn-a", "gpu-syn-b"]
NEW = "gpu-syn-new"


def _scores(ps, df: pd.DataFrame) -> dict[str, float]:
    y = df["latency_median_ms"].to_numpy()
    q = ps.quantiles("latency_ms", [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"median_ape": float(np.median(np.abs(q[2] - y) / y)),
            "cov50": float(np.mean((y >= q[1]) & (y <= q[3]))),
            "cov90": float(np.mean((y >= q[0]) & (y <= q[4]))),
            "width90": float(np.median(q[4] / q[0]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=1000, help="training runs of the synthetic world")
    ap.add_argument("--n-predict", type=int, default=100_000)
    ap.add_argument("--skip-nuts", action="store_true")
    args = ap.parse_args()

    from engine.models.gp import GPPredictor
    from engine.models.roofline import RooflinePredictor

    fz = synthetic_featurizer()
    train = synthetic_measurements(random_configs(args.n_train, SEEN, seed=0), seed=0)
    extra = synthetic_measurements(random_configs(25, SEEN, seed=7), seed=7)
    held_seen = synthetic_measurements(random_configs(300, SEEN, seed=1), seed=11)
    held_new = synthetic_measurements(random_configs(300, [NEW], seed=2), seed=12)
    big = random_configs(args.n_predict, list(SYN_HARDWARE), seed=3)
    fz(big)  # descriptor/hardware caches filled, as in a long-running process

    gp = GPPredictor(featurizer=fz)
    t = time.perf_counter()
    gp.fit(train)
    gp_fit = time.perf_counter() - t
    t = time.perf_counter()
    gp.fit(pd.concat([train.iloc[25:], extra], ignore_index=True))  # same size, data changed
    gp_refit = time.perf_counter() - t
    t = time.perf_counter()
    ps_big = gp.predict(big)
    predict_s = time.perf_counter() - t
    assert len(ps_big) == args.n_predict

    predictors = {"roofline": RooflinePredictor(featurizer=fz).fit(train), "gp": gp}
    nuts_s, rhat = float("nan"), float("nan")
    if not args.skip_nuts:
        from engine.models.hierarchical import HierarchicalPredictor

        h = HierarchicalPredictor(featurizer=fz, allow_bad_diagnostics=True)
        t = time.perf_counter()
        h.fit(train)
        nuts_s = time.perf_counter() - t
        rhat = h.diagnostics["rhat_max"]
        print(f"hierarchical diagnostics: {h.diagnostics}")
        predictors["hierarchical"] = h

    print(f"\nheld-out synthetic runs (latency): {len(held_seen)} on measured devices, "
          f"{len(held_new)} on a device never measured ({NEW})")
    print(f"{'predictor':<13}{'set':<10}{'median_APE':>11}{'cov50':>7}{'cov90':>7}{'width90(x)':>11}")
    for name, p in predictors.items():
        for label, df in (("measured", held_seen), ("new-hw", held_new)):
            s = _scores(p.predict(configs_from_frame(df)), df)
            print(f"{name:<13}{label:<10}{s['median_ape']:>11.3f}{s['cov50']:>7.2f}{s['cov90']:>7.2f}{s['width90']:>11.2f}")
    print(f"gp calibration (LOO on training data): {gp.calibration}")
    print(f"gp_fit_1000_s={gp_fit:.2f} gp_refit_1000_s={gp_refit:.2f} predict_100k_s={predict_s:.2f} "
          f"nuts_1000_s={nuts_s:.2f} rhat_max={rhat:.3f}")


if __name__ == "__main__":
    main()
