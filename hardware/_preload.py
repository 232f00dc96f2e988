"""Imported once by the benchmark forkserver so that every child starts warm.

Each import is optional: a missing runtime only means its adapter reports itself unavailable.
"""
from __future__ import annotations

import importlib
import signal
import warnings

warnings.filterwarnings("ignore")

# A Ctrl-C in the terminal reaches the whole process group, this forkserver too. It is the parent's
# to handle (CPython's forkserver ignores SIGINT once preloading is done); caught in the middle of
# these imports it printed a KeyboardInterrupt traceback under perfcast's "Aborted." The handler
# is put back afterwards so that benchmark children, which inherit it, still stop on Ctrl-C.
try:
    _old_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
except ValueError:  # not the main thread: nothing to protect
    _old_sigint = None

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

if _old_sigint is not None:
    signal.signal(signal.SIGINT, _old_sigint)
