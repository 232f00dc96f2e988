"""Local hardware detection. ``local_cpu_id()`` names this machine class in stored measurements."""
from __future__ import annotations

import os
import re
from functools import lru_cache


def _slug(text: str) -> str:
    text = re.sub(r"\(r\)|\(tm\)|cpu|processor|@.*$|\d+-core", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


@lru_cache(maxsize=1)
def cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown-cpu"


def local_cpu_id() -> str:
    """Stable id for this CPU class, e.g. ``cpu-amd-epyc-2c`` (model + logical core count)."""
    return f"cpu-{_slug(cpu_model_name())}-{os.cpu_count() or 1}c"
