"""Synthetic but roofline-shaped measurements, for the model tests and ``bench/fit_predict.py``.

NOT product code: the descriptor and hardware stand-ins below exist only so model tests and the
speed benchmark do not depend on the real descriptor/catalog modules and can invent devices that
were never measured. Ground truth follows the roofline with efficiencies that depend on hardware,
precision, runtime, family and batch size (efficiency rises with batch), a per-runtime overhead,
and measurement noise made of per-iteration jitter plus a run-to-run drift, like a real machine.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from engine.config import Config
from engine.models.features import Featurizer, HardwareFacts

# name -> (family, params, hidden, layers)
SYN_MODELS: dict[str, tuple[str, float, int, int]] = {
    "syn-bert-s": ("text_embedding", 30e6, 512, 6),
    "syn-bert-m": ("text_embedding", 110e6, 768, 12),
    "syn-bert-l": ("text_embedding", 340e6, 1024, 24),
    "syn-gpt-s": ("text_generation", 125e6, 768, 12),
    "syn-gpt-m": ("text_generation", 350e6, 1024, 24),
    "syn-gpt-l": ("text_generation", 1.3e9, 2048, 24),
    "syn-vit": ("vision", 86e6, 768, 12),
    "syn-cnn": ("vision", 25e6, 512, 50),
    "syn-audio": ("audio", 40e6, 384, 8),
}

# id -> (kind, peak TFLOP/s by precision, bandwidth GB/s, memory GiB, cores)
SYN_HARDWARE: dict[str, tuple[str, dict[str, float], float, float, int]] = {
    "cpu-syn-2c": ("cpu", {"fp32": 0.15, "bf16": 0.15, "int8": 0.6}, 20.0, 24.0, 2),
    "cpu-syn-16c": ("cpu", {"fp32": 1.2, "bf16": 2.4, "int8": 4.8}, 80.0, 128.0, 16),
    "gpu-syn-a": ("cuda", {"fp32": 20.0, "fp16": 120.0, "bf16": 120.0, "int8": 240.0}, 900.0, 24.0, 1),
    "gpu-syn-b": ("cuda", {"fp32": 60.0, "fp16": 400.0, "bf16": 400.0, "int8": 800.0}, 2000.0, 80.0, 1),
    "gpu-syn-new": ("cuda", {"fp32": 30.0, "fp16": 200.0, "bf16": 200.0, "int8": 400.0}, 1200.0, 48.0, 1),
}
BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}


def synthetic_describe_many(configs: Sequence[Config]) -> pd.DataFrame:
    rows = []
    for c in configs:
        fam, params, hidden, layers = SYN_MODELS[c.model]
        tokens = c.batch_size * max(c.seq_len, 1 if fam != "vision" else 197)
        flops = 2.0 * params * tokens * (3.0 if c.mode == "training" else 1.0)
        wb = params * BYTES[c.precision]
        ab = tokens * hidden * layers * 4 * BYTES[c.precision]
        rows.append({"model": c.model, "family": fam, "params": params, "flops": flops,
                     "bytes_moved": wb + 2 * ab, "weight_bytes": wb, "activation_bytes": ab, "method": "synthetic"})
    return pd.DataFrame(rows)


def synthetic_hardware(hardware_id: str) -> HardwareFacts:
    kind, peaks, bw, mem, cores = SYN_HARDWARE[hardware_id]
    return HardwareFacts(hardware_id, kind, {k: v * 1e12 for k, v in peaks.items()}, bw * 1e9, mem * 1024, cores)


def synthetic_matmul_precision(runtime: str, precision: str) -> str:
    """This world's rule: weight matmuls run at the configuration's precision on every runtime."""
    return precision


def synthetic_featurizer() -> Featurizer:
    """The featuriser of this world: its descriptors, its devices, and its physics, where every
    runtime runs int8 at the int8 peak (``_truth``), OpenVINO included (unlike the real adapter)."""
    return Featurizer(describe_many=synthetic_describe_many, resolve_hardware=synthetic_hardware,
                      matmul_precision=synthetic_matmul_precision)


def _truth(c: Config, rng_effects: dict[str, float]) -> tuple[float, float]:
    """True median latency (ms) and memory (MiB) of a config."""
    fam, params, hidden, layers = SYN_MODELS[c.model]
    kind, peaks, bw, mem, cores = SYN_HARDWARE[c.hardware]
    d = synthetic_describe_many([c]).iloc[0]
    thr = cores if (c.threads == 0 or kind != "cpu") else min(c.threads, cores)
    peak = {**{"fp16": peaks.get("bf16", peaks["fp32"])}, **peaks}.get(c.precision, peaks["fp32"]) * 1e12
    peak *= thr / cores if kind == "cpu" else 1.0
    eff_c = 0.45 * np.exp(rng_effects[f"hw:{c.hardware}"] + rng_effects[f"prec:{c.precision}"]
                          + rng_effects[f"rt:{c.runtime}"] + rng_effects[f"fam:{fam}"])
    eff_c *= c.batch_size / (c.batch_size + 2.0)  # small batches under-use the machine
    eff_m = 0.6 * np.exp(0.5 * rng_effects[f"hw:{c.hardware}"])
    overhead = (0.03 if kind == "cuda" else 0.2) * layers * np.exp(rng_effects[f"rt:{c.runtime}"])
    t = overhead + max(d.flops / (eff_c * peak), d.bytes_moved / (eff_m * bw * 1e9)) * 1e3
    memory = 250.0 + (4.0 if c.mode == "training" else 1.0) * d.weight_bytes / 2**20 + 1.5 * d.activation_bytes / 2**20
    return float(t), float(memory)


def random_configs(n: int, hardware: Sequence[str], seed: int = 0) -> list[Config]:
    rng = np.random.default_rng(seed)
    models = list(SYN_MODELS)
    out = []
    for _ in range(n):
        m = models[rng.integers(len(models))]
        hw = hardware[rng.integers(len(hardware))]
        kind = SYN_HARDWARE[hw][0]
        fam = SYN_MODELS[m][0]
        precs = ["fp32", "bf16", "int8"] if kind == "cpu" else ["fp32", "fp16", "bf16"]
        rts = ["torch", "onnxruntime", "openvino"] if kind == "cpu" else ["torch", "onnxruntime"]
        out.append(Config(m, hw, int(2 ** rng.integers(0, 7)), 0 if fam == "vision" else int(2 ** rng.integers(5, 10)),
                          precs[rng.integers(len(precs))], "training" if rng.random() < 0.1 else "inference",
                          rts[rng.integers(len(rts))], int(rng.integers(1, 3)) if kind == "cpu" else 0))
    return out


def effects(seed: int = 1234) -> dict[str, float]:
    """Fixed "true" log-efficiency effects (the same world for every data set of a seed)."""
    rng = np.random.default_rng(seed)
    keys = ([f"hw:{h}" for h in SYN_HARDWARE] + [f"prec:{p}" for p in ("fp32", "fp16", "bf16", "int8")]
            + [f"rt:{r}" for r in ("torch", "onnxruntime", "openvino", "qnn", "webgpu", "webnn")]
            + [f"fam:{f}" for f in ("text_embedding", "text_generation", "vision", "audio", "multimodal")])
    return {k: float(rng.normal(0.0, 0.3)) for k in keys}


def synthetic_measurements(configs: Sequence[Config], seed: int = 0, n_samples: int = 20,
                           drift_sd: float = 0.04, jitter_sd: float = 0.05, world_seed: int = 1234) -> pd.DataFrame:
    """A ``Store.measurements(with_samples=True)``-shaped frame of synthetic runs."""
    rng = np.random.default_rng(seed)
    eff = effects(world_seed)
    rows = []
    for c in configs:
        t, mem = _truth(c, eff)
        run_median = t * np.exp(rng.normal(0.0, drift_sd))  # run-to-run drift
        samples = run_median * np.exp(np.abs(rng.standard_t(4, n_samples)) * jitter_sd * 0.5
                                      + rng.normal(0.0, jitter_sd * 0.5, n_samples))
        samples = np.sort(samples)
        rows.append({"model": c.model, "hardware": c.hardware, "batch_size": c.batch_size, "seq_len": c.seq_len,
                     "precision": c.precision, "mode": c.mode, "runtime": c.runtime, "threads": c.threads,
                     "status": "ok", "latency_median_ms": float(np.median(samples)),
                     "latency_p90_ms": float(np.quantile(samples, 0.9)),
                     "latency_std_ms": float(np.std(samples, ddof=1)), "iterations": n_samples,
                     "throughput_items_s": c.batch_size / float(np.median(samples)) * 1e3,
                     "memory_peak_mib": mem * float(np.exp(rng.normal(0.0, 0.03))),
                     "samples_ms": samples.tolist()})
    return pd.DataFrame(rows)


if __name__ == "__main__":  # a helper module, not a benchmark: say so instead of exiting silently
    raise SystemExit("bench/synthetic.py is the synthetic world the model tests and bench/fit_predict.py import; "
                     "it measures nothing by itself (run python bench/fit_predict.py)")
