"""`perfcast ... | head -3`: when the reader closes stdout early the command ends quietly, like `ls`
(exit 141, no traceback, no text), through either print path. It used to exit 1 (Rich's and
click's own handlers), which a pipefail script could not tell from a failure of perfcast's own."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine.cli.main import READER_CLOSED_EXIT


@pytest.mark.parametrize("args", [["models", "list"],            # Rich console
                                  ["models", "list", "--json"],  # click.echo
                                  ["--help"]])                   # click's help, before any command
def test_closed_reader_ends_quietly(args: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write: EPIPE every time, no race
    try:
        out = subprocess.run([sys.executable, "-m", "engine.cli.main", *args], stdout=write_end,
                             stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert out.stderr == ""
    assert out.returncode == READER_CLOSED_EXIT
