"""Entry point for ``perfcast``.

Subcommands are registered by import path and imported only when invoked, so ``perfcast --help``
never pulls in torch, jax or duckdb. Errors derived from :class:`engine.errors.PerfcastError`
become one red line on stderr and their exit code; nothing else is swallowed.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Optional

import click

# name -> ("module:attribute", one-line help shown by `perfcast --help` without importing it)
COMMANDS: dict[str, tuple[str, str]] = {
    "db": ("engine.cli.db_cmd:db", "Initialise, import into and export the benchmark store."),
    "hardware": ("engine.cli.hardware_cmd:hardware", "Detect and list hardware."),
    "models": ("engine.cli.models_cmd:models", "List catalog models and their descriptors."),
    "benchmark": ("engine.cli.benchmark_cmd:benchmark", "Run real benchmarks through the hardware adapters."),
    "train": ("engine.cli.predict_cmd:train", "Fit a predictor (GP or hierarchical) on the store."),
    "predict": ("engine.cli.predict_cmd:predict", "Predict throughput, latency and memory with credible intervals."),
    "compare-hardware": ("engine.cli.predict_cmd:compare_hardware", "Compare hardware (or batch sizes) for one model."),
    "matrix": ("engine.cli.predict_cmd:matrix", "Prediction matrix over models x hardware x batch x precision."),
    "evaluate": ("engine.cli.evaluate_cmd:evaluate", "Held-out accuracy and calibration of every predictor."),
    "suggest": ("engine.cli.suggest_cmd:suggest", "Choose the most informative benchmarks to run next."),
    "run": ("engine.cli.run_cmd:run", "Run a config-driven active-learning loop (fit, acquire, benchmark, refit)."),
    "replay": ("engine.cli.run_cmd:replay", "Replay a loop against recorded measurements as an oracle."),
    "demo": ("engine.cli.run_cmd:demo", "The quick CPU loop (configs/experiments/cpu-quick.yaml)."),
    "experiments": ("engine.cli.run_cmd:experiments_", "The loops run against this store: progress, spend, status."),
    "optimize": ("engine.cli.optimize_cmd:optimize", "Bayesian optimisation of a deployment configuration."),
    "recommend-hardware": ("engine.cli.recommend_cmd:recommend_hardware", "Which hardware is best, with P(best)."),
    "doctor": ("engine.cli.doctor_cmd:doctor", "What perfcast sees here: versions, adapters, store, catalogs."),
    "worker": ("engine.cli.workers_cmd:worker", "Join a Ray cluster as a benchmark worker."),
    "workers": ("engine.cli.workers_cmd:workers", "List the Ray cluster's benchmark workers."),
}


def _available(target: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(target.split(":")[0]) is not None


def _complete_names(kind: str) -> Any:
    """Shell completion of catalog names (``model``) or hardware ids and platforms (``hardware``),
    including the last element of a comma-separated list (``--hardware cpu,h1`` → ``cpu,h100-sxm``)."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        from engine import catalog

        try:
            names = list(catalog.models()) if kind == "model" else [*catalog.PLATFORMS, *catalog.catalog_hardware()]
        except Exception:  # a broken user catalog must not break the shell
            return []
        head, comma, tail = incomplete.rpartition(",")
        return [f"{head}{comma}{n}" for n in names if n.startswith(tail)]

    return complete


_COMPLETED_OPTIONS = {"--model": "model", "--models": "model", "--hardware": "hardware", "--available": "hardware"}


def _with_completions(cmd: click.Command) -> click.Command:
    """Attach name completion to every ``--model``/``--hardware``-like option (and ``models show NAME``)."""
    for p in cmd.params:
        if p._custom_shell_complete is not None:  # a command's own completion wins
            continue
        kind = next((k for o, k in _COMPLETED_OPTIONS.items() if o in p.opts), None)
        if kind is None and isinstance(p, click.Argument) and cmd.name == "show" and p.name == "name":
            kind = "model"
        if kind is not None:
            p._custom_shell_complete = _complete_names(kind)
    for sub in getattr(cmd, "commands", {}).values():
        _with_completions(sub)
    return cmd


# 128 + SIGPIPE: what a shell reports for `ls` when its reader closed early (`ls | head`, under pipefail)
READER_CLOSED_EXIT = 141


def _reader_closed() -> int:
    """stdout's reader went away (``perfcast models list | head -3``): end quietly like ``ls``, no
    traceback and no text. Python's recipe: point stdout at devnull, so the flush at exit cannot
    raise again, and exit. Rich and click each used to turn it into a silent exit 1, which a
    pipefail script could not tell from a failure of perfcast's own."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (captured output): nothing to flush
        pass
    return READER_CLOSED_EXIT


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n, (t, _) in COMMANDS.items() if _available(t))

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        entry = COMMANDS.get(name)
        if entry is None or not _available(entry[0]):
            return None
        module, attr = entry[0].split(":")
        return _with_completions(getattr(importlib.import_module(module), attr))

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        """``perfcast --help`` / ``--version`` into a closed pipe: caught here because click's own
        handler, around this call, would exit 1 (see :func:`_reader_closed`)."""
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            raise click.exceptions.Exit(_reader_closed()) from None

    def invoke(self, ctx: click.Context) -> Any:
        """Turn perfcast's own errors into one red line and their exit code (also under CliRunner),
        and a closed stdout (``| head``) into a quiet exit; both print paths raise BrokenPipeError
        here: click.echo, and Rich through :func:`engine.cli.common.console`."""
        from engine.errors import PerfcastError

        try:
            return super().invoke(ctx)
        except PerfcastError as e:
            click.secho(f"error: {e}", fg="red", err=True)
            ctx.exit(e.exit_code)
        except BrokenPipeError:
            ctx.exit(_reader_closed())

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, COMMANDS[n][1]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="perfcast")
def cli() -> None:
    """perfcast: predict how fast an ML model runs on hardware, with honest credible intervals.

    \b
    Examples:
      perfcast demo                                  # quick real CPU loop on the embedded DB
      perfcast predict --model bert-base-uncased --hardware cpu --batch-size 8
      perfcast benchmark --model gpt2 --hardware cpu --batch-sizes 1,2 --save
    Commands that read or write the store take --db PATH (or PERFCAST_DB); most take --json.
    """


def _one_line_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                      line: Optional[str] = None) -> None:
    """Warnings reach a CLI user as one line, like errors, not as a source location and a code line."""
    click.secho(f"warning: {message}", fg="yellow", err=True)


def _resume_hint(argv: Optional[list[str]]) -> str:
    """After Ctrl-C in a loop: every benchmark that finished is stored, and the same command resumes
    (an online ``optimize`` too: it resumes the same problem's interrupted optimisation)."""
    args = sys.argv[1:] if argv is None else argv
    if args and (args[0] in ("run", "demo") or (args[0] == "optimize" and "--online" in args)):
        return " Every finished benchmark is stored: run the same command again to resume."
    return ""


def main(argv: Optional[list[str]] = None) -> Any:
    import warnings

    from engine.errors import PerfcastError

    warnings.showwarning = _one_line_warning

    try:
        rv = cli.main(args=argv, prog_name="perfcast", standalone_mode=False)
        sys.stdout.flush()  # what print() left buffered fails here, not in the interpreter's exit
        # in non-standalone mode click returns ctx.exit()'s code instead of exiting
        return rv if isinstance(rv, int) else 0
    except BrokenPipeError:
        sys.exit(_reader_closed())
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.UsageError as e:
        # a bad option value or a missing option: one red line like perfcast's own errors, naming
        # the command whose --help lists the valid values (click's default is three lines)
        ctx = e.ctx
        where = f" (perfcast {ctx.command_path.split(' ', 1)[1]} --help)" if ctx and " " in ctx.command_path else ""
        click.secho(f"error: {e.format_message()}{where}", fg="red", err=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted." + _resume_hint(argv), err=True)
        sys.exit(130)
    except PerfcastError as e:
        click.secho(f"error: {e}", fg="red", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted." + _resume_hint(argv), err=True)
        sys.exit(130)


if __name__ == "__main__":
    sys.exit(main())
