"""The experiment config: a YAML file that says what to learn, how, and when to stop.

Validated with pydantic; every error becomes ONE line naming the key and what would be valid,
e.g. ``cpu-quick.yaml: invalid acquisition.name 'eigg'; valid: eig, bald, max-variance, random``.
Unknown keys are errors too (a typo must not silently fall back to a default).

Files are found by path, or by bare name (``cpu-quick``) among the YAMLs shipped in the
``configs`` package (``configs/experiments/*.yaml``), so an installed perfcast finds them too.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator

from engine.config import MODES, PRECISIONS, RUNTIMES
from engine.errors import PerfcastError, UnknownNameError

if TYPE_CHECKING:
    from engine.config import Config
    from hardware.base import BenchmarkSpec

ACQUISITION_NAMES = ("eig", "bald", "max-variance", "random")
PREDICTOR_KINDS = ("gp", "hierarchical")
METRIC_NAMES = ("latency", "throughput", "memory")


class ExperimentConfigError(PerfcastError):
    """A bad experiment config: one line with the file, the key and the valid values."""

    exit_code = 2


#: (section, key, value) of settings added after experiment ids existed: part of the id only when
#: they differ from ``value``, the one every id stored before them was computed at. It is fixed, not
#: the field's current default, so a loop stored at that value keeps its id when the default moves
#: (cost_exponent's went from 0.5 to 0.25 in session 10; a config that says 0.5 still resumes).
DIGEST_IF_CHANGED: tuple[tuple[str, str, Any], ...] = (("acquisition", "cost_exponent", 0.5),
                                                       ("replay", "prior", "none"),  # session 14
                                                       ("stop", "max_reducible", None),  # session 20
                                                       ("stop", "plateau_runs", None),  # session 23
                                                       ("stop", "plateau_min_gain", 0.0))


#: what a real loop's id leaves out: when to stop (budget, stop rule), words (description) and the
#: after-run replay of the baselines. Raising ``budget.runs`` continues the same experiment; it
#: started a new one from zero (audit, 2026-12-07).
RUN_ID_EXCLUDES: tuple[str, ...] = ("budget", "stop", "description", "replay")


class _Strict(BaseModel):
    # strict: YAML's `true` or a quoted "3" is not a count (budget.runs: true ran one run); finite:
    # YAML's `.inf` passed every `gt=0` (budget.benchmark_seconds: .inf was an unbounded budget)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SearchSpace(_Strict):
    """The configurations the loop may benchmark (the cross product, invalid combos dropped).

    In replay mode an omitted axis means "every value the dataset has".
    """

    models: Optional[list[str]] = None
    hardware: Optional[list[str]] = None  # adapter names (torch-cpu, onnxruntime, openvino) or platforms (cpu)
    runtimes: Optional[list[Literal[RUNTIMES]]] = None  # type: ignore[valid-type]
    batch_sizes: Optional[list[StrictInt]] = None  # strict: YAML's `true` is not a batch size of 1
    seq_lengths: Optional[list[StrictInt]] = None
    precisions: Optional[list[Literal[PRECISIONS]]] = None  # type: ignore[valid-type]
    modes: Optional[list[Literal[MODES]]] = None  # type: ignore[valid-type]
    threads: Optional[list[StrictInt]] = None

    @field_validator("models", "hardware", "runtimes", "batch_sizes", "seq_lengths", "precisions", "modes", "threads")
    @classmethod
    def _not_empty(cls, v: Optional[list[Any]]) -> Optional[list[Any]]:
        if v is not None and not v:
            raise ValueError("an empty list selects nothing: list at least one value, or leave the key out "
                             "(in replay: every value the dataset has)")
        return v

    @field_validator("batch_sizes")
    @classmethod
    def _positive(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        if v is not None and any(b < 1 for b in v):
            raise ValueError("batch sizes must be integers >= 1")
        return v

    @field_validator("seq_lengths", "threads")
    @classmethod
    def _non_negative(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        if v is not None and any(b < 0 for b in v):
            raise ValueError("values must be integers >= 0")
        return v


class PredictorSettings(_Strict):
    kind: Literal[PREDICTOR_KINDS] = "gp"  # type: ignore[valid-type]
    refit_every: int = Field(1, ge=1, description="full hyperparameter fit every k steps; others only condition")
    options: dict[str, Any] = Field(default_factory=dict)


class AcquisitionSettings(_Strict):
    name: Literal[ACQUISITION_NAMES] = "eig"  # type: ignore[valid-type]
    q: int = Field(1, ge=1, le=64)
    mc_points: int = Field(128, ge=64, le=4096)
    cost_aware: bool = True
    # information / cost**α. α starts at cost_exponent and, with cost_cooling, falls in proportion
    # to the budget left: α = cost_exponent × (1 − share spent) (EI-cool); without, it stays there.
    # 0.25 rather than EI-cool's 1: on 36 replay seeds of the shipped data it needed fewer
    # benchmarks AND fewer benchmark-seconds than 1, 0.5 or 0 (engine.acquisition.select.cooled_cost_exponent)
    cost_exponent: float = Field(0.25, ge=0.0, le=1.0)
    cost_cooling: bool = True
    metric: Literal[METRIC_NAMES] = "latency"  # type: ignore[valid-type]


class Budget(_Strict):
    runs: Optional[int] = Field(None, ge=1)
    benchmark_seconds: Optional[float] = Field(None, gt=0)


class StopRule(_Strict):
    """Stop early once the pool's 90% intervals are narrow enough (either target, whichever is met).

    ``max_rel_width90``: the largest relative 90% width, (q95 − q05) / median, over the pool. A
    GP's interval for a configuration never measured keeps its run noise and its own roughness
    whatever else is measured (about 0.4 in cpu-full's loop on a Zen 3, session 20), so a target
    below that floor cannot be met; the loop says so once. ``max_reducible``: the largest share of
    a pool configuration's 90% width that benchmarks of *other* configurations could still remove,
    1 − width at the predictor's floor / width now (``floor_sd``: the GP's run noise and roughness,
    the hierarchical model's run noise): "no interval can narrow by more than this share without
    measuring that configuration itself". It falls as the pool is measured (cpu-full's loop on a
    Zen 3: 0.81 after 4 runs, 0.33 after 80, 0.296 after 20 more). The hierarchical model's floor
    holds each configuration's own departure too, so it meets 0.3 within a few runs (real bald loops
    on cpu-quick's space, session 21: 17% after 3 runs, 28% after 4); the stop message says when
    the share was below the target from the first fit.

    ``plateau_runs`` (W): stop once the forecast error stopped falling: the median prequential APE
    (each run against the forecast made before it ran, which a real loop has) of the last W
    successful runs is not ``plateau_min_gain`` (APE units: 0.01 = 1 point) below that of the W
    before. In twelve replays of replay-shipped the held-out error was flat from about 30 runs on
    while ``max_reducible`` fell slowly (docs/active-learning.md, "Session 23").
    """

    max_rel_width90: Optional[float] = Field(None, gt=0)
    max_reducible: Optional[float] = Field(None, gt=0, lt=1)
    plateau_runs: Optional[int] = Field(None, ge=2)
    plateau_min_gain: float = Field(0.0, ge=0, lt=1)
    min_runs: int = Field(1, ge=0)


class BenchmarkSettings(_Strict):
    iterations: int = Field(10, ge=1)
    warmup: int = Field(2, ge=0)
    min_time_s: float = Field(1.0, ge=0)
    max_time_s: float = Field(30.0, gt=0)
    max_iterations: int = Field(1000, ge=1)
    time_limit_s: float = Field(600.0, gt=0)
    memory_limit_mib: Optional[float] = Field(None, gt=0)
    decode_tokens: int = Field(8, ge=0)
    rerun_busy: int = Field(1, ge=0, description=(
        "reruns a loop spends on a configuration whose every successful run was timed while other "
        "processes needed its cores (hardware.protocol.busy_machine); 0 never reruns"))

    @model_validator(mode="after")
    def _time_caps_in_order(self) -> "BenchmarkSettings":
        if self.min_time_s > self.max_time_s:
            raise ValueError(f"min_time_s {self.min_time_s:g} is above max_time_s {self.max_time_s:g}; "
                             "valid: min_time_s <= max_time_s")
        return self

    def spec(self, config: Config) -> "BenchmarkSpec":
        """The isolated benchmark of ``config`` with this measuring plan (what a loop submits)."""
        from hardware.base import BenchmarkSpec

        return BenchmarkSpec(config, iterations=self.iterations, warmup=self.warmup, min_time_s=self.min_time_s,
                             max_time_s=self.max_time_s, max_iterations=self.max_iterations,
                             time_limit_s=self.time_limit_s, memory_limit_mib=self.memory_limit_mib,
                             decode_tokens=self.decode_tokens, isolate=True)


def prior_is_oracle(dataset: str, prior: str) -> bool:
    """True when each replay's store would start with the shipped runs (``prior: shipped``) while
    those runs are also the oracle: the replay would be graded on what it already holds. Checked
    by :class:`ReplaySettings` and by ``perfcast replay --dataset``, which bypasses it."""
    return prior == "shipped" and dataset == "shipped"


class ReplaySettings(_Strict):
    dataset: str = "shipped"  # "shipped", a bundled replay grid (experiments.replay.bundled_datasets) or an export's path
    initial_runs: int = Field(5, ge=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    prior: Literal["none", "shipped"] = Field("none", description=(
        "what each replay's store holds before its first pick: nothing, or the shipped runs, as a real "
        "loop's store does (then the replay starts from the model a real run starts from, on a grid of "
        "another device; the initial design is skipped because the store already has runs)"))

    @field_validator("seeds")
    @classmethod
    def _seeds_non_negative(cls, v: list[int]) -> list[int]:
        if any(x < 0 for x in v):  # numpy's generators take non-negative seeds only
            raise ValueError("seeds must be integers >= 0")
        return v

    @field_validator("prior")
    @classmethod
    def _no_leak(cls, v: str, info: Any) -> str:
        if prior_is_oracle(str(info.data.get("dataset")), v):
            raise ValueError("the shipped runs cannot be both the oracle and the prior; use prior: none")
        return v


class ExperimentConfig(_Strict):
    name: str  # not blank (checked below): it starts every experiment id
    description: str = ""
    seed: int = Field(0, ge=0)  # numpy's generators take non-negative seeds
    search_space: SearchSpace
    predictor: PredictorSettings = Field(default_factory=PredictorSettings)
    acquisition: AcquisitionSettings = Field(default_factory=AcquisitionSettings)
    budget: Budget = Field(default_factory=Budget)
    stop: StopRule = Field(default_factory=StopRule)
    initial_design: int = Field(3, ge=1,
                                description="random picks while fewer configurations of the search space than this "
                                            "have a successful run (other devices' runs in the store do not count)")
    benchmark: BenchmarkSettings = Field(default_factory=BenchmarkSettings)
    replay: ReplaySettings = Field(default_factory=ReplaySettings)

    @field_validator("name")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the name must not be blank: it starts every experiment id")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v):
            # it starts every experiment id, which commands take as an argument ("../x y" was accepted)
            raise ValueError("valid: letters, digits, '.', '_' and '-', starting with a letter or digit")
        return v

    def digest(self) -> str:
        """A stable hash of the settings that define the experiment (name included).

        ``benchmark.rerun_busy`` is left out: it says how to repair a disturbed run, not which
        experiment this is, and leaving it out keeps the ids of experiments stored before it
        existed, so they still resume. Settings added later (:data:`DIGEST_IF_CHANGED`) count
        only when they differ from the value the stored ids were computed at, for the same reason.
        """
        d = self.model_dump(mode="json", exclude={"benchmark": {"rerun_busy"}})
        for section, key, stored_at in DIGEST_IF_CHANGED:  # added later: at that value, the id stays
            if d[section][key] == stored_at:
                del d[section][key]
        text = json.dumps(d, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    def run_digest(self) -> str:
        """The hash behind a real loop's id: what it measures and how it chooses, not when it stops
        (:data:`RUN_ID_EXCLUDES`), so the same command with a larger budget resumes."""
        d = self.model_dump(mode="json", exclude={"benchmark": {"rerun_busy"}, **{k: True for k in RUN_ID_EXCLUDES}})
        for section, key, stored_at in DIGEST_IF_CHANGED:
            if section in d and d[section][key] == stored_at:
                del d[section][key]
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def experiment_id(self, mode: str = "run") -> str:
        """``NAME-run-HASH`` of :meth:`run_digest` for a real loop; a replay's hash covers every setting
        (its budget and seeds define what it compares)."""
        return f"{self.name}-run-{self.run_digest()}" if mode == "run" else f"{self.name}-{mode}-{self.digest()}"

    def with_acquisition(self, name: str) -> "ExperimentConfig":
        return self.model_copy(update={"acquisition": self.acquisition.model_copy(update={"name": name})})


# -- loading ----------------------------------------------------------------------------------------
def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> Optional[type[BaseModel]]:
    """The section (pydantic model) that ``loc`` leads to from ``model``, or None."""
    cur: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        f = getattr(cur, "model_fields", {}).get(part)
        if f is None:
            return None
        ann = f.annotation
        for cand in getattr(ann, "__args__", ()) or (ann,):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                cur = cand
                break
        else:
            return None
    return cur


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The valid keys at ``loc`` (for "unknown key" errors)."""
    return list(getattr(_model_at(model, loc[:-1]), "model_fields", {}))


def _number_range(loc: tuple[Any, ...]) -> str:
    """"a finite number > 0" for the number field at ``loc``, from its bounds (``gt``, ``le``, ...):
    what a refused ``.inf`` or ``.nan`` names as valid, in the words of the other keys' errors."""
    import annotated_types as at

    section = _model_at(ExperimentConfig, loc[:-1])
    field = getattr(section, "model_fields", {}).get(loc[-1]) if loc else None
    ops = ((at.Gt, "gt", ">"), (at.Ge, "ge", ">="), (at.Lt, "lt", "<"), (at.Le, "le", "<="))
    bounds = [f"{sign} {getattr(m, attr):g}" for m in (field.metadata if field is not None else ())
              for kind, attr, sign in ops if isinstance(m, kind)]
    return "a finite number" + (" " + " and ".join(bounds) if bounds else "")


def _did_you_mean(key: str, valid: list[str]) -> str:
    """"did you mean 'x'? " for the closest valid key, or "" (a config error lists the valid keys too)."""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def _one_line(err: ValidationError, source: str) -> ExperimentConfigError:
    errors = err.errors()
    # a misspelt key shows as an unknown key AND as the missing required one: name the typo
    e = next((x for x in errors if x.get("type") == "extra_forbidden"), errors[0])
    loc = tuple(e.get("loc", ()))
    key = ".".join(str(p) for p in loc if not isinstance(p, int)) or "(top level)"
    typ = e.get("type", "")
    ctx = e.get("ctx") or {}
    value = e.get("input")
    if typ == "extra_forbidden":
        names = _field_names(ExperimentConfig, loc)
        hint = _did_you_mean(str(loc[-1]), names) if loc else ""
        return ExperimentConfigError(f"{source}: unknown key '{key}'; {hint}valid: {', '.join(names)}")
    if typ == "missing":
        return ExperimentConfigError(f"{source}: missing required key '{key}'")
    if typ == "finite_number":
        return ExperimentConfigError(f"{source}: invalid {key} {value!r}; valid: {_number_range(loc)}")
    if typ == "literal_error":
        valid = str(ctx.get("expected", "")).replace("'", "")
        return ExperimentConfigError(f"{source}: invalid {key} {value!r}; valid: {valid.replace(' or ', ', ')}")
    msg = e.get("msg", "invalid value")
    if msg.startswith("Value error, "):  # pydantic's prefix for a validator's own message
        msg = msg[len("Value error, "):]
    if isinstance(value, dict):  # a check across a section's keys: its message names them, not the whole section
        return ExperimentConfigError(f"{source}: invalid {key}: {msg}")
    return ExperimentConfigError(f"{source}: invalid {key} {value!r}; {msg[0].lower() + msg[1:]}")


def _check_names(cfg: ExperimentConfig, source: str) -> None:
    """Catalog model names are checked here so the error names the key."""
    from engine.catalog import models

    sp = cfg.search_space
    for m in sp.models or []:
        if m not in models():
            err = UnknownNameError("model", m, models())
            raise ExperimentConfigError(f"{source}: search_space.models: {err}")
    for h in sp.hardware or []:
        # adapter names, platform names and ids of measured devices are all valid (replay, Ray workers)
        if not h.strip():
            from hardware.registry import ADAPTERS, PLATFORMS

            raise ExperimentConfigError(f"{source}: invalid search_space.hardware {h!r}; valid: "
                                        f"{', '.join([*ADAPTERS, *PLATFORMS])} or a hardware id")


def check_predictor_options(cfg: ExperimentConfig, source: Optional[str] = None) -> None:
    """``predictor.options`` are the predictor's constructor arguments: a misspelt one is named here,
    before any benchmark, instead of a TypeError at the loop's first fit. Not part of
    :func:`parse_config` because it imports the predictor (torch or jax)."""
    import inspect

    from engine.models.registry import predictor_class

    params = inspect.signature(predictor_class(cfg.predictor.kind).__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items() if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in cfg.predictor.options:
        if key not in valid:
            raise ExperimentConfigError(f"{source or cfg.name}: unknown predictor.options key '{key}' for predictor "
                                        f"{cfg.predictor.kind}; {_did_you_mean(key, valid)}valid: {', '.join(valid)}")
    from engine.errors import InvalidValueError

    try:  # the values too: a constructor checks its own (cheap; nothing is fitted)
        predictor_class(cfg.predictor.kind)(**cfg.predictor.options)
    except InvalidValueError as e:
        raise ExperimentConfigError(f"{source or cfg.name}: predictor.options: {e}") from None


def parse_config(data: Any, source: str = "experiment config") -> ExperimentConfig:
    if not isinstance(data, dict):
        raise ExperimentConfigError(f"{source}: expected a mapping of keys (name, search_space, ...), "
                                    f"got {type(data).__name__}")
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise _one_line(e, source) from None
    _check_names(cfg, source)
    return cfg


def shipped_configs() -> dict[str, str]:
    """Bare name -> YAML text of the experiment configs shipped in the package."""
    root = resources.files("configs") / "experiments"
    out = {}
    try:
        entries = list(root.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return {}
    for p in entries:
        if p.name.endswith((".yaml", ".yml")):
            out[p.name.rsplit(".", 1)[0]] = p.read_text()
    return out


def resolve_config(name_or_path: str) -> tuple[str, str]:
    """(source label, YAML text) for a path or a bare shipped name such as ``cpu-quick``."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        try:
            return str(p), p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as e:
            why = "not a UTF-8 text file" if isinstance(e, UnicodeDecodeError) else (e.strerror or str(e))
            raise ExperimentConfigError(f"{p}: cannot read the experiment config ({why}); valid: a YAML file") from None
    if p.is_dir():
        raise ExperimentConfigError(f"{p} is a folder; valid: a YAML file, e.g. "
                                    f"{p / 'cpu-quick.yaml'}, or a shipped name: {', '.join(sorted(shipped_configs()))}")
    shipped = shipped_configs()
    # a bare name is a word, not a file name: "cpu-quick.yaml" and "./cpu-quick.yaml" name files in
    # this folder (pathlib drops the "./", so the string itself is read)
    is_file_name = p.suffix in (".yaml", ".yml") or "/" in name_or_path or os.sep in name_or_path
    bare = not is_file_name
    stem = p.stem if p.suffix in (".yaml", ".yml") else p.name
    # a bare name, or the README's repo-relative path (configs/experiments/NAME.yaml) used outside the
    # repository. Any other missing path is an error: falling back to the shipped file of the same
    # name ran the shipped loop when a user's own file was mistyped
    if stem in shipped and (bare or (p.parent.parts[-2:] == ("configs", "experiments")
                                     and not name_or_path.startswith((".", "/", "~")))):
        return f"{stem}.yaml", shipped[stem]
    if not bare:
        from engine.errors import InvalidValueError

        raise InvalidValueError("experiment config", name_or_path, f"an existing YAML file (no such file: {p}) "
                                                                   f"or a shipped name: {', '.join(sorted(shipped))}")
    raise UnknownNameError("experiment config", name_or_path, [*shipped, "a path to a YAML file"])


def _unique_key_loader() -> Any:
    """A SafeLoader that refuses a key given twice in one mapping (``yaml.safe_load`` keeps the last:
    ``budget: {runs: 99}`` then ``budget: {runs: 3}`` ran 3 without a word)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        # the mapping's own keys: a key merged in (<<: *defaults) may be overridden, not repeated
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:  # a list or mapping as a key: safe_load refuses it too, in one line here
                raise ExperimentConfigError(f"invalid key (a {type(key).__name__}, line {key_node.start_mark.line + 1})"
                                            "; valid: a name such as iterations or batch_sizes") from None
            if key in seen:
                raise ExperimentConfigError(f"duplicate key {key!r} (lines {seen[key] + 1} and "
                                            f"{key_node.start_mark.line + 1}); valid: each key once per section")
            seen[key] = key_node.start_mark.line
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)  # merges, as safe_load does

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return UniqueKeyLoader


def load_config(name_or_path: str) -> ExperimentConfig:
    import yaml

    source, text = resolve_config(name_or_path)
    try:
        data = yaml.load(text, Loader=_unique_key_loader())  # noqa: S506 - a SafeLoader subclass
    except ExperimentConfigError as e:
        raise ExperimentConfigError(f"{source}: {e}") from None
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        problem = " ".join(str(getattr(e, "problem", e)).split())  # one line, whatever the parser wrote
        raise ExperimentConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    return parse_config(data, source)


__all__ = ["ExperimentConfig", "ExperimentConfigError", "check_predictor_options", "load_config", "parse_config",
           "resolve_config", "shipped_configs"]
