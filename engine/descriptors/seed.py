"""A packaged seed for the descriptor cache, so a fresh install does not recount what it ships.

Counting one (model, sequence length, pass) on the meta device takes about 0.35 s here, and a new
user's first fit on the shipped measurements needs about 60 of them: ~20 s of the first
``perfcast predict`` or ``perfcast demo`` went to recounting numbers that are the same on every
machine. ``engine/data/descriptor_counts.json`` holds those counts under the disk cache's own keys
(:func:`engine.descriptors.counting.cache_key`), which name the model's architecture hash and, for
FLOP-counter counts, the transformers and torch versions that produced them. A different
library version or an edited catalog entry therefore simply misses, and is counted as before; a
test recounts seed entries and compares them.

Regenerate after changing what is counted (``COUNT_VERSION``), the catalog, the shipped data or the
pinned torch:

    python -m engine.descriptors.seed            # writes engine/data/descriptor_counts.json
"""
from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

SEED_FILE = "descriptor_counts.json"
_RECOUNTING = False  # write_seed must count afresh, not read the seed it is replacing


def _seed_path() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / SEED_FILE


@lru_cache(maxsize=1)
def seed_counts() -> dict[str, dict[str, Any]]:
    """Key -> counts from the packaged seed; empty when the file is absent, unreadable or from
    another ``COUNT_VERSION`` (its entries would describe something else)."""
    from engine.descriptors.counting import COUNT_VERSION

    if _RECOUNTING:
        return {}
    try:
        with open(_seed_path()) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if data.get("count_version") != COUNT_VERSION:
        return {}
    return dict(data.get("counts", {}))


def _first_run_configs() -> list[Any]:
    """What a new user's first commands describe: the shipped measurements, the shipped experiment
    spaces, and every catalog model at batch 1, sequence 128, inference and training."""
    from engine.catalog import models
    from engine.config import Config
    from experiments.config import load_config
    from experiments.replay import load_dataset
    from experiments.space import expand_space

    configs = [Config.from_key(k) for k in load_dataset("shipped")["config_key"].unique()]
    for name in ("cpu-quick", "cpu-full"):
        configs += expand_space(load_config(name).search_space)
    for m in models():
        configs += [Config(model=m, hardware="cpu", batch_size=1, seq_len=128, mode=mode)
                    for mode in ("inference", "training")]
    return configs


def write_seed(path: Optional[str] = None) -> Path:
    """Count everything :func:`_first_run_configs` needs in an empty cache and write the seed."""
    import engine.descriptors.counting as counting
    from engine.catalog import get_model, models
    from engine.descriptors import describe_decode, describe_many
    from engine.config import Config

    global _RECOUNTING
    out = Path(path) if path else _seed_path()
    with tempfile.TemporaryDirectory() as tmp:
        saved = os.environ.get("PERFCAST_CACHE")
        os.environ["PERFCAST_CACHE"] = tmp
        counting._DISK = None
        counting.pass_counts.cache_clear()
        seed_counts.cache_clear()
        _RECOUNTING = True
        try:
            describe_many(_first_run_configs())
            for m in models():
                if get_model(m).family == "text_generation":
                    describe_decode(Config(model=m, hardware="cpu", batch_size=1, seq_len=128))
            counts = dict(counting._disk())
        finally:
            if saved is None:
                os.environ.pop("PERFCAST_CACHE", None)
            else:
                os.environ["PERFCAST_CACHE"] = saved
            _RECOUNTING = False
            counting._DISK = None
            counting.pass_counts.cache_clear()
            seed_counts.cache_clear()
    out.write_text(json.dumps({"count_version": counting.COUNT_VERSION, "counts": dict(sorted(counts.items()))},
                              indent=0) + "\n")
    return out


if __name__ == "__main__":
    import argparse

    # an argument parser so that --help explains instead of rewriting the packaged file (audit)
    argparse.ArgumentParser(prog="python -m engine.descriptors.seed",
                            description="Recount every catalog model's descriptors on the meta device and rewrite "
                                        "the packaged seed (engine/data/descriptor_counts.json); a maintainer's "
                                        "step after counting.py, the catalog or the library versions change. "
                                        "Takes a minute or two.").parse_args()
    # through the imported module, not this __main__ copy: counting.py consults *that* module's flag
    from engine.descriptors import seed as _seed

    p = _seed.write_seed()
    print(f"wrote {len(json.loads(p.read_text())['counts'])} descriptor counts to {p}")
