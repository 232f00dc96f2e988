"""`perfcast --help` (and the catalog commands' help) must not import torch or jax."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "jax", "duckdb", "pandas")


@pytest.mark.parametrize("args", [["--help"], ["hardware", "--help"], ["models", "--help"], ["models", "show", "--help"]])
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from engine.cli.main import main\n"
        f"sys.argv = ['perfcast', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("HEAVY=")][-1]
    assert line == "HEAVY=", f"{args} imported {line[6:]}"
