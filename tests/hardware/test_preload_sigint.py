"""A Ctrl-C reaches the benchmark forkserver too (same process group). While it preloads torch and
transformers it ignores SIGINT, which is the parent's to handle; before session 21 it printed a
KeyboardInterrupt traceback under perfcast's "Aborted."."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.slow
def test_a_ctrl_c_during_the_preload_prints_nothing_and_leaves_the_handler_as_it_was() -> None:
    code = ("import signal, hardware._preload\n"
            "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), start_new_session=True)
    time.sleep(1.5)  # torch and transformers take several seconds to import
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0 and "Traceback" not in err, err
    assert out.strip() == "True"  # children forked after the preload still stop on Ctrl-C
