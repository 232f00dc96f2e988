"""The one configuration record shared by store, models, adapters and CLI.

A benchmark, a prediction and a recommendation all talk about the same thing: a model run on a
piece of hardware with a batch size, sequence length, precision, mode, runtime and thread count.
Keeping that as one frozen dataclass with one canonical key means the store's primary keys, the
models' feature rows and the CLI's arguments can never drift apart.
"""
from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from engine.errors import InvalidValueError

if TYPE_CHECKING:
    import numpy as np

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")
MODES: tuple[str, ...] = ("inference", "training")
RUNTIMES: tuple[str, ...] = ("torch", "onnxruntime", "openvino", "qnn", "webgpu", "webnn")
#: The columns of a run's software path (e.g. ``onnxruntime/int8/inference``): runs on one path
#: share kernels, quantisation and graph optimisations, so the GP gives the path its own group term
#: and the evaluation reports coverage per path.
SOFTWARE_PATH: tuple[str, ...] = ("runtime", "precision", "mode")


def joined_labels(table: Mapping[str, Any], columns: Sequence[str]) -> "np.ndarray":
    """Row labels ``a/b/...`` of categorical columns of a table (a DataFrame or a dict of arrays),
    one vectorised string join per column."""
    import numpy as np

    out = np.asarray(table[columns[0]]).astype(str)
    for c in columns[1:]:
        out = np.char.add(np.char.add(out, "/"), np.asarray(table[c]).astype(str))
    return out


def split_names(value: Any) -> Any:
    """``"cpu,t4"`` -> ``["cpu", "t4"]`` (stripped, empty parts dropped); anything not a string as
    it is. The Python API takes a list or one comma-separated string, and a string iterated as a
    list would be read letter by letter ("unknown hardware 'c'")."""
    if not isinstance(value, str):
        return value
    return [p.strip() for p in value.split(",") if p.strip()]


#: Largest batch size, sequence length or thread count a configuration takes: what every array
#: and runtime below can hold (a larger one was an OverflowError traceback deep in numpy).
COUNT_MAX = 2**31 - 1


def as_count(v: Any) -> Any:
    """A NumPy or pandas integer (``np.arange``, a DataFrame column) as a plain ``int``; anything
    else unchanged, for the range checks to judge. bool is left alone: it is not a count."""
    if isinstance(v, numbers.Integral) and not isinstance(v, (bool, int)):
        return int(v)
    return v


def _count(v: Any, lo: int) -> bool:
    """A whole number in [lo, COUNT_MAX]; bool is not one (True would become a key ``sTrue``)."""
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= COUNT_MAX


def count_arg(name: str, value: Any, lo: int, valid: str) -> int:
    """An API argument that must be a whole number >= ``lo`` (NumPy integers accepted, bool not),
    as a plain int; otherwise :class:`InvalidValueError` naming ``name`` and ``valid``."""
    value = as_count(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise InvalidValueError(name, value, valid)
    return value


#: Characters an imported model name or hardware id may not hold (``db import``; a user catalog's
#: names follow the stricter :data:`engine.catalog.NAME_PATTERN`), and why: ``|`` separates a configuration
#: key's fields (an imported model "x|y" was stored under a key no command could parse back), ``,``
#: separates the CLI's lists (such a name cannot be given to ``--model``), ``[`` and ``]`` open Rich
#: markup (a user catalog's "tiny[red]bert" printed as "tinybert" in every table), and control
#: characters break the one-line errors and the emitted shell scripts.
NAME_FORBIDDEN = "|,[]"


def name_rule() -> str:
    """The valid names, for an error's ``valid:`` part."""
    return f"a name without {', '.join(repr(c) for c in NAME_FORBIDDEN)} or control characters"


@dataclass(frozen=True, order=True)
class Config:
    """One point of the performance surface.

    ``threads`` is 0 when the runtime's default thread count is used (accelerators, or "all
    cores"). ``seq_len`` is 0 for models without a sequence axis (CNNs).
    """

    model: str
    hardware: str
    batch_size: int = 1
    seq_len: int = 128
    precision: str = "fp32"
    mode: str = "inference"
    runtime: str = "torch"
    threads: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_size", "seq_len", "threads"):
            object.__setattr__(self, name, as_count(getattr(self, name)))
        if not _count(self.batch_size, 1):
            raise InvalidValueError("batch_size", self.batch_size, f"an integer from 1 to {COUNT_MAX}")
        if not _count(self.seq_len, 0):
            raise InvalidValueError("seq_len", self.seq_len, f"an integer from 0 to {COUNT_MAX} (0 = the model's "
                                    "default: 128 tokens for a text model; vision models have none)")
        if self.precision not in PRECISIONS:
            raise InvalidValueError("precision", self.precision, ", ".join(PRECISIONS))
        if self.mode not in MODES:
            raise InvalidValueError("mode", self.mode, ", ".join(MODES))
        if self.runtime not in RUNTIMES:
            raise InvalidValueError("runtime", self.runtime, ", ".join(RUNTIMES))
        if not _count(self.threads, 0):
            raise InvalidValueError("threads", self.threads, "an integer >= 0 (0 = runtime default)")
        if not self.model:
            raise InvalidValueError("model", self.model, "a catalog model name")
        if not self.hardware:
            raise InvalidValueError("hardware", self.hardware, "a hardware id")

    @property
    def key(self) -> str:
        """Canonical, human-readable, stable key: used as a primary key in the store."""
        return (
            f"{self.model}|{self.hardware}|b{self.batch_size}|s{self.seq_len}|{self.precision}"
            f"|{self.mode}|{self.runtime}|t{self.threads}"
        )

    @classmethod
    def from_key(cls, key: str) -> "Config":
        parts = key.split("|")
        if len(parts) != 8:
            raise InvalidValueError("config key", key, "model|hardware|bN|sN|precision|mode|runtime|tN")
        m, h, b, s, p, mode, rt, t = parts
        return cls(m, h, int(b[1:]), int(s[1:]), p, mode, rt, int(t[1:]))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> "Config":
        names = {f.name for f in fields(cls)}
        kw = {k: row[k] for k in names if k in row and row[k] is not None}
        for k in ("batch_size", "seq_len", "threads"):
            if k in kw:
                kw[k] = int(kw[k])
        return cls(**kw)

    def with_(self, **changes: Any) -> "Config":
        return replace(self, **changes)


CONFIG_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Config))
