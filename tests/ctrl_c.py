"""Start a perfcast command the way a terminal runs it, for the Ctrl-C tests: in its own process
group (so a SIGINT sent to the group is what a terminal's Ctrl-C sends), output read line by line
until the moment the test wants to interrupt."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable


def start_until(args: list[str], tmp_path: Path, until: Callable[[str], bool]) -> tuple[subprocess.Popen, list[str],
                                                                                        dict[str, str]]:
    """``python -m engine.cli.main ARGS`` started in a new process group; returns it once a line of
    its output satisfies ``until``, with the lines read so far and the environment it ran with."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PERFCAST_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    p = subprocess.Popen([sys.executable, "-m", "engine.cli.main", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    assert p.stdout is not None
    lines = []
    for line in p.stdout:
        lines.append(line)
        if until(line):
            break
    return p, lines, env
