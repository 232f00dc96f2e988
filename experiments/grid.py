"""The measurement grid behind the shipped dataset: plan, run (resumable), repeat for noise.

Run it with ``python -m experiments.grid --db out/grid.duckdb`` (again after an interruption:
configurations already in the database are skipped). Each measurement is stored as it lands, so
a cut-off grid still leaves a usable dataset; every ``--export-every`` runs the shipped Parquet
file is refreshed.

Why the grid looks like this:
- the CPU has 2 cores (~100-200 GFLOP/s), so each configuration's work per iteration is capped
  by an estimated iteration time (FLOPs counted exactly on the meta device); big batches appear
  only with short sequences;
- the order is a seeded shuffle, so an interrupted grid still covers every model, runtime,
  precision and thread count rather than the first few models completely;
- ``--repeats`` configurations are measured a second time, placed well after their first run,
  so the spread between repeats (the noise floor) includes drift over time, not just jitter.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Optional

from engine.config import Config

MODELS: dict[str, tuple[int, ...]] = {
    # model -> sequence lengths measured (0 = no sequence axis)
    "bert-base-uncased": (16, 32, 64, 128, 256, 512),
    "distilbert-base-uncased": (16, 32, 64, 128, 256, 512),
    "roberta-base": (16, 32, 64, 128, 256, 512),
    "bert-large-uncased": (16, 32, 64, 128, 256),
    "gpt2": (16, 32, 64, 128, 256, 512),
    "gpt2-medium": (16, 32, 64, 128, 256),
    "t5-small": (16, 32, 64, 128, 256, 512),
    "vit-base-patch16-224": (0,),
    "resnet50": (0,),
    "whisper-tiny": (16, 32, 64),
    "clip-vit-base-patch32": (16, 32, 77),
}
BATCHES = (1, 2, 4, 8, 16, 32, 64)
# runtime -> precisions it measures here (see the adapters for why ORT has no bf16)
RUNTIME_PRECISIONS = {"torch": ("fp32", "bf16", "int8"), "onnxruntime": ("fp32", "int8"),
                      "openvino": ("fp32", "bf16", "int8")}
ADAPTER_FOR = {"torch": "torch-cpu", "onnxruntime": "onnxruntime", "openvino": "openvino"}
# rough sustained GFLOP/s per thread, only used to keep iterations short (not a model!)
RATE_PER_THREAD = {"fp32": 60.0, "bf16": 100.0, "int8": 80.0}
MAX_ITER_S = {"inference": 0.8, "training": 1.6}
TRAIN_MAX_PARAMS_M = 130.0  # larger models' optimizer step alone takes seconds per iteration here
LARGE_BATCH_QUOTA = {16: 16, 32: 14, 64: 12}
# sampling weights per (runtime, mode) group: the share of the grid each gets
GROUP_WEIGHTS = {("torch", "inference"): 0.37, ("torch", "training"): 0.09,
                 ("onnxruntime", "inference"): 0.26, ("openvino", "inference"): 0.28}


@dataclass(frozen=True)
class Task:
    config: Config
    repeat: int = 0  # 0 = first measurement, 1 = the noise-floor repeat


@lru_cache(maxsize=None)
def forward_gflop(model: str, seq: int) -> float:
    """Forward FLOPs at batch 1, counted on the meta device (no memory, no compute)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from engine.workloads import build_model, make_inputs

    m = build_model(model, "meta")
    inputs = make_inputs(model, 1, seq, "meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        m(**inputs)
    return counter.get_total_flops() / 1e9


@lru_cache(maxsize=None)
def params_m(model: str) -> float:
    """Parameters in millions (meta device)."""
    from engine.workloads import build_model

    return sum(p.numel() for p in build_model(model, "meta").parameters()) / 1e6


def est_iter_s(c: Config) -> float:
    work = forward_gflop(c.model, c.seq_len) * c.batch_size * (3.0 if c.mode == "training" else 1.0)
    speed = RATE_PER_THREAD[c.precision] * (1.7 if c.threads == 2 else 1.0)
    t = work / speed
    if c.mode == "training":  # the AdamW step streams ~16 bytes x 4 arrays per parameter
        t += params_m(c.model) * 6e-3
    return t


def candidates(hardware: str) -> dict[tuple[str, str], list[Config]]:
    groups: dict[tuple[str, str], list[Config]] = {g: [] for g in GROUP_WEIGHTS}
    for model, seqs in MODELS.items():
        for seq in seqs:
            for b in BATCHES:
                for threads in (1, 2):
                    for runtime, precs in RUNTIME_PRECISIONS.items():
                        for p in precs:
                            modes = ["inference"] + (["training"] if runtime == "torch" and p != "int8" else [])
                            for mode in modes:
                                c = Config(model, hardware, b, seq, p, mode, runtime, threads)
                                if mode == "training" and params_m(model) > TRAIN_MAX_PARAMS_M:
                                    continue
                                if est_iter_s(c) <= MAX_ITER_S[mode]:
                                    groups[(runtime, mode)].append(c)
    return groups


def plan(hardware: str, n: int = 345, repeats: int = 40, seed: int = 20261122) -> list[Task]:
    """Seeded plan: ``n`` distinct configs (stratified by runtime/mode and model), then repeats.

    Within each group configurations are drawn round-robin over models so that every model is
    covered, then the whole list is shuffled. The cheapest-to-repeat configs among the first
    half are measured again at a position about a third of the grid later.
    """
    rng = random.Random(seed)
    groups = candidates(hardware)
    chosen: list[Config] = []
    # large batches pass the per-iteration cap only with small models/short sequences, so they
    # would be rare in a uniform draw: reserve a few of each first
    everything = [c for g in groups.values() for c in g]
    for b, k in LARGE_BATCH_QUOTA.items():
        pool = [c for c in everything if c.batch_size == b]
        chosen.extend(rng.sample(pool, min(k, len(pool))))
    taken = set(chosen)
    for g in groups:
        groups[g] = [c for c in groups[g] if c not in taken]
    n_rest = n - len(chosen)
    for g, w in GROUP_WEIGHTS.items():
        pool = groups[g]
        k = min(len(pool), round(n_rest * w))
        by_model: dict[str, list[Config]] = {}
        for c in pool:
            by_model.setdefault(c.model, []).append(c)
        for lst in by_model.values():
            rng.shuffle(lst)
        picked: list[Config] = []
        while len(picked) < k and any(by_model.values()):
            for m in sorted(by_model):
                if by_model[m] and len(picked) < k:
                    picked.append(by_model[m].pop())
        chosen.extend(picked)
    rng.shuffle(chosen)
    tasks = [Task(c) for c in chosen]
    half = chosen[: len(chosen) // 2]
    cheap = sorted(half, key=est_iter_s)[: max(repeats * 2, repeats)]
    rep = rng.sample(cheap, min(repeats, len(cheap)))
    gap = max(1, len(chosen) // 3)
    for c in rep:
        pos = min(len(tasks), chosen.index(c) + gap + rng.randint(0, gap // 2))
        tasks.insert(pos, Task(c, repeat=1))
    return tasks


def pending(tasks: list[Task], run_counts: dict[str, int]) -> Iterator[Task]:
    """Tasks not yet measured: repeat r of a config is done when it has more than r runs."""
    for t in tasks:
        if run_counts.get(t.config.key, 0) <= t.repeat:
            yield t


def run_counts(store: object) -> dict[str, int]:
    with store.connect() as con:  # type: ignore[attr-defined]
        rows = con.execute("SELECT config_key, count(*) FROM benchmark_runs GROUP BY config_key").fetchall()
    return {k: int(v) for k, v in rows}


def spec_for(c: Config, decode_tokens: int = 8, time_limit_s: float = 420.0) -> "object":
    from hardware.base import BenchmarkSpec

    from engine.catalog import get_model

    gen = get_model(c.model).family == "text_generation" and c.runtime == "torch" and c.mode == "inference"
    return BenchmarkSpec(c, iterations=5, warmup=2, min_time_s=0.5, max_time_s=8.0, time_limit_s=time_limit_s,
                         memory_limit_mib=10240.0, decode_tokens=decode_tokens if gen else 0)


def excluded(c: Config, paths: list[str]) -> bool:
    """Whether ``c`` is on one of ``paths`` (``runtime/precision`` or ``runtime/precision/mode``).

    Why: on a CPU without a bf16 kernel (an AVX2-only EPYC, session 18) a torch/bf16 pass runs 4-190x
    slower than fp32 (a bf16 Linear to a bare GEMM), so most of the grid's torch/bf16 runs would each
    spend the whole time limit; such a grid is run without them, and its provenance says so."""
    for p in paths:
        parts = p.split("/")
        if parts == [c.runtime, c.precision, c.mode][: len(parts)]:
            return True
    return False


def prepare_exports(tasks: list[Task]) -> None:
    """Export every ONNX file the grid needs before timing anything.

    Exports take up to minutes of CPU; done up front they cannot disturb a timed run, and each
    ORT/OpenVINO run's wall time is then the cost of a run with a warm export cache (the
    adapters' documented behaviour). A failed export is logged; its runs then fail with the
    reason and are stored as failed.
    """
    from hardware.onnx_export import ensure_onnx

    need = sorted({(t.config.model, "int8" if t.config.precision == "int8" else "fp32")
                   for t in tasks if t.config.runtime in ("onnxruntime", "openvino")})
    for model, prec in need:
        t0 = time.monotonic()
        try:
            path, fresh = ensure_onnx(model, prec)
        except Exception as e:  # noqa: BLE001
            print(f"export {model} {prec}: FAILED {str(e)[:200]}", flush=True)
            continue
        if fresh:
            print(f"export {model} {prec}: {time.monotonic() - t0:.0f}s -> {path.name}", flush=True)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default="out/grid.duckdb")
    ap.add_argument("--n", type=int, default=345, help="distinct configurations")
    ap.add_argument("--repeats", type=int, default=40, help="configurations measured twice (noise floor)")
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--export-every", type=int, default=50, help="refresh engine/data every N runs (0 = never)")
    ap.add_argument("--plan-only", action="store_true", help="print the plan's summary and exit")
    ap.add_argument("--limit", type=int, default=0, help="stop after N runs (0 = all)")
    ap.add_argument("--exclude", default="", help="comma-separated runtime/precision[/mode] paths to leave out "
                                                  "(e.g. torch/bf16 on a CPU without a bf16 kernel)")
    ap.add_argument("--time-limit", type=float, default=420.0, help="seconds one run may take (then: a failed run)")
    args = ap.parse_args(argv)
    paths = [p.strip() for p in args.exclude.split(",") if p.strip()]
    for p in paths:
        parts = p.split("/")
        if (not 2 <= len(parts) <= 3 or parts[0] not in RUNTIME_PRECISIONS
                or parts[1] not in RUNTIME_PRECISIONS[parts[0]]):
            ap.error(f"--exclude {p!r}: expected runtime/precision[/mode], e.g. torch/bf16 or torch/fp32/training")

    from engine.store import Store
    from hardware.detect import local_cpu_id
    from hardware.registry import get_adapter

    hw = local_cpu_id()
    tasks = [t for t in plan(hw, args.n, args.repeats, args.seed) if not excluded(t.config, paths)]
    est = sum(2.5 + 7 * est_iter_s(t.config) for t in tasks)
    print(f"plan: {len(tasks)} tasks ({sum(t.repeat == 0 for t in tasks)} configs, "
          f"{sum(t.repeat > 0 for t in tasks)} repeats), rough estimate {est / 60:.0f} min", flush=True)
    if args.plan_only:
        from collections import Counter

        cs = [t.config for t in tasks if t.repeat == 0]
        for field in ("model", "runtime", "precision", "threads", "batch_size", "mode"):
            print(field, dict(sorted(Counter(getattr(c, field) for c in cs).items())))
        return 0
    if args.db == ap.get_default("db"):  # its own default's folder; a --db given must be in an existing one
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    store = Store(args.db, seed=False)
    todo = list(pending(tasks, run_counts(store)))
    print(f"resuming: {len(tasks) - len(todo)} done, {len(todo)} to go", flush=True)
    prepare_exports(todo)
    t_grid = time.monotonic()
    for i, t in enumerate(todo, 1):
        adapter = get_adapter(ADAPTER_FOR[t.config.runtime])
        m = adapter.run(spec_for(t.config, time_limit_s=args.time_limit))
        m.source = "measured"
        store.patiently(lambda: store.save_measurement(m), lambda why: print(f"waiting: {why}", flush=True))
        med = f"{m.latency.median_ms:9.1f} ms" if m.latency else f"{m.status:>12}"
        err = "" if m.ok else f"  {(m.error or '').splitlines()[0][:160]}"
        print(f"[{i}/{len(todo)} {time.monotonic() - t_grid:7.0f}s] {t.config.key}{' (repeat)' if t.repeat else ''}"
              f"  {med}  wall {m.wall_time_s or 0:.1f}s{err}", flush=True)
        if args.export_every and i % args.export_every == 0:
            _export(args.db)
        if args.limit and i >= args.limit:
            break
    if args.export_every:
        _export(args.db)
    print(f"grid done in {(time.monotonic() - t_grid) / 60:.1f} min", flush=True)
    return 0


def _export(db: str) -> None:
    try:
        from experiments.ship import ship

        info = ship(db, command=" ".join(sys.argv))
        print(f"exported {info['counts']['runs']} runs -> {info['file']} ({info['size_mb']:.1f} MB)", flush=True)
    except Exception as e:  # noqa: BLE001 - an export hiccup must not stop the measuring
        print(f"export failed: {e}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
