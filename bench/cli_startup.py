"""How long `perfcast --help` takes, next to a bare `python -c pass`, in the same run.

Usage: python bench/cli_startup.py [-n 15]

Prints the medians and, last, the one line
``cli_help_s=<median> python_pass_s=<median>`` (goal: cli_help_s < 0.5).
It also checks that `--help` imports neither torch nor jax (nor duckdb, pandas): those cost seconds
and the CLI registry is built to import a command's module only when it runs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("torch", "jax", "duckdb", "pandas", "botorch", "numpyro", "transformers")


def cli_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m engine.cli.main``."""
    script = Path(sys.executable).with_name("perfcast")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "engine.cli.main"]


def timed(cmd: list[str], n: int) -> list[float]:
    times = []
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
        times.append(time.perf_counter() - t0)
    return times


def heavy_imports_of_help() -> list[str]:
    """Heavy top-level packages imported while `perfcast --help` runs (via -X importtime)."""
    code = "import sys; sys.argv=['perfcast','--help']\nfrom engine.cli.main import main\ntry:\n main()\nexcept SystemExit:\n pass"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=False)
    found = set()
    for line in proc.stderr.splitlines():
        if "|" not in line:
            continue
        name = line.rsplit("|", 1)[1].strip()
        top = name.split(".")[0]
        if top in HEAVY:
            found.add(top)
    return sorted(found)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=15, help="runs of each command (default 15)")
    args = ap.parse_args()
    cli = cli_command() + ["--help"]
    timed(cli, 2)  # warm the page cache and __pycache__
    # interleave so background load hits both alike
    t_cli: list[float] = []
    t_py: list[float] = []
    for _ in range(args.n):
        t_cli += timed(cli, 1)
        t_py += timed([sys.executable, "-c", "pass"], 1)
    heavy = heavy_imports_of_help()
    cli_med, py_med = statistics.median(t_cli), statistics.median(t_py)
    print(f"command: {' '.join(cli)}  (n={args.n})")
    print(f"perfcast --help: median {cli_med:.3f} s, min {min(t_cli):.3f} s, max {max(t_cli):.3f} s")
    print(f"python -c pass : median {py_med:.3f} s, min {min(t_py):.3f} s, max {max(t_py):.3f} s")
    print(f"heavy modules imported by --help: {', '.join(heavy) if heavy else 'none'}")
    print(f"goal cli_help_s < 0.5: {'met' if cli_med < 0.5 else 'MISSED'}")
    print(f"cli_help_s={cli_med:.3f} python_pass_s={py_med:.3f}")


if __name__ == "__main__":
    main()
