"""Shared by the CLI error tests: run a command in-process, and check it failed in one line."""
from __future__ import annotations

from click.testing import CliRunner, Result

from engine.cli.main import cli


def invoke(*argv: str) -> Result:
    return CliRunner().invoke(cli, list(argv))


def one_error_line(r: Result, *needles: str) -> str:
    """The result failed with exit code 2 and one `error:` line that holds every needle."""
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]
