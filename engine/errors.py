"""Errors that the CLI turns into one clear line and a meaningful exit code.

Exit codes: 2 = bad input from the user (unknown name, invalid value), 3 = data problem
(import rejected, database locked), 4 = an inference diagnostic failed (r_hat, divergences).
"""
from __future__ import annotations

import difflib
from typing import Any, Iterable


class PerfcastError(Exception):
    """Base class: ``str(err)`` is the one line a user sees."""

    exit_code = 1


class InvalidValueError(PerfcastError, ValueError):
    exit_code = 2

    def __init__(self, what: str, value: Any, valid: str) -> None:
        self.what, self.value, self.valid = what, value, valid
        super().__init__(f"invalid {what} {value!r}; valid: {valid}")


class RefusedConfigError(PerfcastError, ValueError):
    """A configuration that no adapter runs (int8 training, ONNX Runtime fp16, ...): a prediction for
    it describes nothing that can be measured or deployed, so it is refused as a run would be."""

    exit_code = 2


class UnknownNameError(PerfcastError, KeyError):
    """An unknown model/hardware/etc. name, with the closest valid names suggested."""

    exit_code = 2

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        valid = sorted(set(valid))
        self.kind, self.name, self.valid = kind, name, valid
        # names that contain what was typed ("bert" -> bert-base-uncased, distilbert-...) first, then
        # spelling neighbours: difflib alone offered only roberta-base for "bert"
        low = name.lower()
        # the same name in other letter case first: "GPT2" was offered only gpt2-medium (the exact
        # match was left out of the "contains" list, and difflib compares case-sensitively)
        same = [v for v in valid if low and v.lower() == low]
        contains = sorted((v for v in valid if low and low in v.lower() and v.lower() != low),
                          key=lambda v: (not v.lower().startswith(low), len(v)))
        close = list(dict.fromkeys([*same, *contains, *difflib.get_close_matches(name, valid, n=3, cutoff=0.5)]))[:3]
        if close:
            hint = "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
        else:
            shown = ", ".join(valid[:12]) + (" ..." if len(valid) > 12 else "")
            hint = f"valid: {shown}" if valid else "there is none"
        self.suggestions = close
        super().__init__(f"unknown {kind} '{name}'; {hint}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class ImportRejectedError(PerfcastError):
    exit_code = 3


class NoDataError(InvalidValueError):
    """A fit was asked of a store with no successful run to fit on (an empty ``--db``, or every run
    failed or left out): a data problem, exit code 3 as the README's table has it, not bad input."""

    exit_code = 3


class DatabaseLockedError(PerfcastError):
    exit_code = 3


class NotADatabaseError(PerfcastError):
    """The store path is not a DuckDB database (a CSV, a directory, a corrupt file) or cannot be
    created there. Bad input from the user, so exit code 2 like the other invalid values."""

    exit_code = 2


class DiagnosticsError(PerfcastError):
    """MCMC diagnostics failed (r_hat too high, divergences) and the user did not allow it."""

    exit_code = 4


class NotAvailableError(PerfcastError):
    """An adapter or optional extra is not available here; the message says why/how to fix."""

    exit_code = 2
