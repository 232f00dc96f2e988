"""Imported once by the benchmark forkserver so that every child starts warm.

Each import is optional: a missing runtime only means its adapter reports itself unavailable.
"""
from __future__ import annotations

import importlib
import warnings

warnings.filterwarnings("ignore")

for _name in ("torch", "transformers", "onnxruntime", "openvino", "psutil", "engine.workloads",
              "hardware.registry", "hardware.torch_cpu"):
    try:
        importlib.import_module(_name)
    except Exception:  # noqa: BLE001 - absent optional runtimes are reported by their adapters
        pass

try:  # resolve transformers' lazy modules for the catalog's architectures once, here
    import transformers

    transformers.logging.set_verbosity_error()
    from engine.catalog import models

    for _entry in models().values():
        getattr(transformers, _entry.hf_config, None)
        getattr(transformers, _entry.hf_model, None)
except Exception:  # noqa: BLE001
    pass
