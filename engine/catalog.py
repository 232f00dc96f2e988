"""Model and hardware catalogs (``configs/*.yaml``), with close-match errors on unknown names.

The YAML files ship inside the installed package (``configs`` is a package with data files), so
a non-editable ``pip install .`` finds them through :mod:`importlib.resources`.

A user adds their own entries without editing the package: ``PERFCAST_MODELS`` and
``PERFCAST_HARDWARE`` name YAML files with the same schema (a top-level ``models:`` or
``hardware:`` mapping), whose entries join the shipped ones — an in-house architecture, or a
device the catalog does not ship. Every entry, shipped or not, goes through the same validation,
so a typo in a user file is one line naming the file, the entry, the key and what is valid.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Optional

import yaml

from engine.config import PRECISIONS
from engine.errors import InvalidValueError, UnknownNameError

FAMILIES: tuple[str, ...] = ("text_embedding", "text_generation", "vision", "audio", "multimodal")
PLATFORMS: tuple[str, ...] = ("cpu", "cuda", "rocm", "mps", "openvino", "qnn", "webgpu", "webnn")


#: The peak a precision runs at where a device lists none, in order of preference. bf16 falls
#: back to fp32, not fp16: a device without bf16 units (T4, V100, M1) converts bf16 tensors and
#: computes in fp32, so borrowing its fp16 tensor-core peak (8x the fp32 one on a T4) flattered it.
#: int8 without an int8 figure runs no faster than the half-precision units.
PEAK_FALLBACK: dict[str, tuple[str, ...]] = {"fp32": ("fp32",), "fp16": ("fp16", "bf16", "fp32"),
                                             "bf16": ("bf16", "fp32", "fp16"), "int8": ("int8", "fp16", "bf16", "fp32")}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    hf_config: str
    hf_model: str
    arch: dict[str, Any]
    published_params: Optional[int] = None
    params_source: str = ""
    image_size: Optional[int] = None
    audio_frames: Optional[int] = None
    max_seq_len: Optional[int] = None
    origin: str = "shipped"  # "shipped", or the user catalog file the entry came from

    @property
    def has_sequence(self) -> bool:
        """CNNs and ViTs have no user-chosen sequence length (seq_len is 0 for them)."""
        return self.family not in ("vision",)


@dataclass(frozen=True)
class HardwareEntry:
    """Spec-sheet figures for one device. Peaks in TFLOP/s (TOPS for int8)."""

    id: str
    name: str
    kind: str  # platform: cpu, cuda, rocm, mps, openvino, qnn, webgpu, webnn
    vendor: str = ""
    peak_tflops: dict[str, Optional[float]] = field(default_factory=dict)
    memory_bandwidth_gbs: Optional[float] = None
    memory_gib: Optional[float] = None
    tdp_w: Optional[float] = None
    price_per_hour_usd: Optional[float] = None
    reference_for: Optional[str] = None
    sources: dict[str, str] = field(default_factory=dict)
    detected: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    origin: str = "shipped"  # "shipped", or the user catalog file the entry came from

    def peak_flops(self, precision: str) -> float:
        """Peak FLOP/s at a precision, falling back as :data:`PEAK_FALLBACK` says when none is listed."""
        for p in PEAK_FALLBACK[precision]:
            v = self.peak_tflops.get(p)
            if v:
                return float(v) * 1e12
        raise ValueError(f"hardware {self.id} has no peak throughput figure")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "HardwareEntry":
        """Inverse of :meth:`to_row` (a ``hardware`` table row, ``details`` as JSON text or dict)."""
        import json
        import math

        def num(v: Any) -> Optional[float]:
            if v is None:
                return None
            try:
                f = float(v)
            except (TypeError, ValueError):
                return None
            return None if math.isnan(f) else f

        details = row.get("details") or {}
        if isinstance(details, str):
            details = json.loads(details or "{}")
        details = dict(details)
        reference_for = details.pop("reference_for", None)
        sources = details.pop("sources", None) or ({"spec": row["source"]} if row.get("source") else {})
        peaks = {"fp32": num(row.get("peak_fp32_tflops")), "fp16": num(row.get("peak_fp16_tflops")),
                 "bf16": num(row.get("peak_bf16_tflops")), "int8": num(row.get("peak_int8_tops"))}
        return cls(id=str(row["hardware_id"]), name=str(row.get("name") or row["hardware_id"]),
                   kind=str(row.get("kind") or "cpu"), vendor=str(row.get("vendor") or ""), peak_tflops=peaks,
                   memory_bandwidth_gbs=num(row.get("memory_bandwidth_gbs")), memory_gib=num(row.get("memory_gib")),
                   tdp_w=num(row.get("tdp_w")), price_per_hour_usd=num(row.get("price_per_hour_usd")),
                   reference_for=reference_for, sources=dict(sources), detected=bool(row.get("detected") or False),
                   details=details)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (used by ``--json`` output and the detection cache)."""
        from dataclasses import asdict

        return asdict(self)

    def to_row(self) -> dict[str, Any]:
        pk = self.peak_tflops
        return {"hardware_id": self.id, "name": self.name, "kind": self.kind, "vendor": self.vendor,
                "peak_fp32_tflops": pk.get("fp32"), "peak_fp16_tflops": pk.get("fp16"),
                "peak_bf16_tflops": pk.get("bf16"), "peak_int8_tops": pk.get("int8"),
                "memory_bandwidth_gbs": self.memory_bandwidth_gbs, "memory_gib": self.memory_gib,
                "tdp_w": self.tdp_w, "price_per_hour_usd": self.price_per_hour_usd,
                "source": "; ".join(f"{k}: {v}" for k, v in self.sources.items()), "detected": self.detected,
                "details": {**self.details, "reference_for": self.reference_for, "sources": dict(self.sources)}}


def _load_yaml(name: str) -> dict[str, Any]:
    text = (resources.files("configs") / name).read_text()
    return yaml.safe_load(text) or {}


#: Environment variables naming a user's own catalog files (see the module docstring).
USER_CATALOG_ENV: dict[str, str] = {"models": "PERFCAST_MODELS", "hardware": "PERFCAST_HARDWARE"}


def user_catalog_file(section: str) -> Optional[Path]:
    """The user catalog file for ``models`` or ``hardware`` named by its environment variable, if any."""
    value = os.environ.get(USER_CATALOG_ENV[section], "").strip()
    return Path(value).expanduser() if value else None


def _user_entries(section: str) -> tuple[str, dict[str, Any]]:
    """(origin, raw entries) of the user catalog file for ``section``; ("", {}) when none is set."""
    path = user_catalog_file(section)
    if path is None:
        return "", {}
    env = USER_CATALOG_ENV[section]
    shape = f"a YAML file with a top-level '{section}:' mapping (the schema of configs/{section}.yaml)"
    if not path.is_file():
        raise InvalidValueError(f"{env} file", str(path), f"an existing file: {shape}")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: {getattr(e, 'problem', '')}" if mark is not None else "not YAML"
        err = InvalidValueError(f"{env} file", str(path), shape)
        err.args = (f"invalid {env} file '{path}' ({where}); valid: {shape}",)  # the file name alone is quoted
        raise err from None
    if not isinstance(doc, dict) or not isinstance(doc.get(section), dict):
        raise InvalidValueError(f"{env} file", str(path), shape)
    return str(path), doc[section]


#: What a model name or hardware id may be made of. A name is typed on the command line, split out
#: of comma lists (``--hardware cpu,l40s``), joined into ``|``-separated configuration keys and
#: cache paths, and printed through Rich, where ``[/x]`` is a closing tag: a user entry named
#: ``my-bert[/x]`` crashed ``models list`` and ``predict`` with a MarkupError traceback.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
NAME_VALID = "letters, digits and . _ + - (starting with a letter or digit)"


def _check_name(section: str, name: str, origin: str) -> None:
    """Refuse a user entry's name that another part of perfcast would misread (see NAME_PATTERN),
    or a hardware id that is a platform name (``--hardware cpu`` means the platform)."""
    what = "model name" if section == "models" else "hardware id"
    if not NAME_PATTERN.fullmatch(name):
        raise entry_error(what, name, origin, NAME_VALID)
    if section == "hardware" and name in PLATFORMS:
        raise entry_error(what, name, f"{origin} (a platform name: --hardware {name} means the platform)",
                          "another id")


def _merged(section: str, shipped: dict[str, Any], build: Any) -> dict[str, Any]:
    """Shipped entries, then the user's; a user entry may not redefine a shipped name (the store's
    runs of that name would then describe two different things)."""
    out = {name: build(name, spec, "shipped") for name, spec in shipped.items()}
    origin, raw = _user_entries(section)
    for name, spec in raw.items():
        name = str(name)
        if name in out:
            raise entry_error("model name" if section == "models" else "hardware id", name,
                              f"{origin} (the shipped catalog defines it)", "another name")
        _check_name(section, name, origin)
        out[name] = build(name, spec, origin)
    return out


def user_catalog_payload() -> dict[str, str]:
    """The user's catalog files as text, keyed by their environment variable: what a driver sends
    with a benchmark to a machine that does not have the files (a Ray worker)."""
    out = {}
    for section, env in USER_CATALOG_ENV.items():
        path = user_catalog_file(section)
        if path is not None and path.is_file():
            out[env] = path.read_text()
    return out


@contextmanager
def user_catalog_env(payload: Optional[dict[str, str]]) -> Iterator[None]:
    """Within the block, the catalogs include the entries of ``payload`` (see
    :func:`user_catalog_payload`): each text is written to a temporary file its variable names,
    the catalog caches are dropped on the way in and out, and the environment is restored after.
    Benchmark children started inside the block inherit the variables (hardware.isolation)."""
    if not payload:
        yield
        return
    import tempfile

    saved = {env: os.environ.get(env) for env in USER_CATALOG_ENV.values()}
    with tempfile.TemporaryDirectory(prefix="perfcast-catalog-") as tmp:
        for env, text in payload.items():
            if env in saved:
                path = Path(tmp) / f"{env.lower()}.yaml"
                path.write_text(text)
                os.environ[env] = str(path)
        refresh_catalogs()
        try:
            yield
        finally:
            for env, value in saved.items():
                if value is None:
                    os.environ.pop(env, None)
                else:
                    os.environ[env] = value
            refresh_catalogs()


def refresh_catalogs() -> None:
    """Read the catalogs again. Rarely needed: :func:`models` and :func:`catalog_hardware` already
    re-read when the variable naming a user file changes or the file is edited."""
    _models.cache_clear()
    _catalog_hardware.cache_clear()


def _user_file_state(section: str) -> tuple[str, Optional[int]]:
    """What the user catalog of ``section`` is now: its variable's value and the file's mtime. The
    catalogs are cached per state, so a notebook that sets ``PERFCAST_MODELS`` (or edits the file)
    after its first prediction sees its models; a plain cache answered "unknown model" until restart."""
    value = os.environ.get(USER_CATALOG_ENV[section], "").strip()
    if not value:
        return "", None
    try:
        return value, Path(value).expanduser().stat().st_mtime_ns
    except OSError:
        return value, None


def catalog_state() -> tuple[tuple[str, Optional[int]], tuple[str, Optional[int]]]:
    """The user catalogs' state (variables and file mtimes): caches of what an entry *says*
    (counted FLOPs, a featuriser's descriptors and peaks) compare it to notice an edit."""
    return _user_file_state("models"), _user_file_state("hardware")


def user_catalog_digest() -> str:
    """A short hash of the user's own catalog entries ("" when there are none): fitted models are
    cached per data *and* catalog, since a run of a user model counts only while its file is set."""
    import hashlib
    import json
    from dataclasses import asdict

    own = [asdict(e) for e in [*models().values(), *catalog_hardware().values()] if e.origin != "shipped"]
    if not own:
        return ""
    return hashlib.sha1(json.dumps(own, sort_keys=True, default=str).encode()).hexdigest()[:8]


def entry_error(what: str, value: Any, where: str, valid: str) -> InvalidValueError:
    """``invalid family 'text' of model 'x' in my-models.yaml; valid: ...``: the bad value first,
    then the entry and file it sits in."""
    err = InvalidValueError(what, value, valid)
    err.args = (f"missing {what} in {where}; valid: {valid}" if value is None else
                f"invalid {what} {value!r} of {where}; valid: {valid}",)
    return err


def architecture_error(entry: "ModelEntry", error: BaseException, valid: str) -> InvalidValueError:
    """A user entry's architecture failing in transformers or torch, as one line naming the entry,
    its file and the error's first line (``valid`` says what the entry must be), not a traceback:
    building it (:func:`engine.workloads.build_model`) and counting its forward
    (:mod:`engine.descriptors.counting`) both raise it."""
    first = (str(error).strip().splitlines() or [""])[0]
    return entry_error("architecture", f"{entry.hf_model}({entry.hf_config})", f"model {entry.name!r} ({entry.origin})",
                       f"{valid}; it failed: {type(error).__name__}: {first}")


def _entry_keys(kind: str, name: str, spec: Any, origin: str, shipped_file: str, keys: tuple[str, ...]) -> str:
    """Check that a catalog entry is a mapping of known keys; returns where it sits, for the
    entry's other errors (``model 'x' in my-models.yaml``)."""
    where = f"{kind} {name!r} in {shipped_file if origin == 'shipped' else origin}"
    if not isinstance(spec, dict):
        raise entry_error("entry", spec, where, "a mapping with the keys " + ", ".join(keys))
    unknown = sorted(set(map(str, spec)) - set(keys))
    if unknown:
        raise entry_error("key", unknown[0], where, ", ".join(keys))
    return where


_MODEL_REQUIRED = ("family", "hf_config", "hf_model", "arch")
#: what a valid transformers class name looks like, for the errors of ``hf_config`` / ``hf_model``
HF_CLASS_EXAMPLE = {"hf_config": "LlamaConfig", "hf_model": "LlamaForCausalLM"}
_MODEL_KEYS = tuple(f.name for f in fields(ModelEntry) if f.name not in ("name", "origin"))


def _model_entry(name: str, spec: Any, origin: str) -> ModelEntry:
    where = _entry_keys("model", name, spec, origin, "configs/models.yaml", _MODEL_KEYS)
    missing = [k for k in _MODEL_REQUIRED if k not in spec]
    if missing:
        raise entry_error("keys", sorted(map(str, spec)), where,
                          f"keys including {', '.join(_MODEL_REQUIRED)} (missing: {', '.join(missing)})")
    if spec["family"] not in FAMILIES:
        raise entry_error("family", spec["family"], where, ", ".join(FAMILIES))
    for key in ("hf_config", "hf_model"):
        if not isinstance(spec[key], str) or not spec[key].isidentifier():
            raise entry_error(key, spec[key], where, f"the name of a transformers class, e.g. {HF_CLASS_EXAMPLE[key]}")
    if not isinstance(spec["arch"], dict):
        raise entry_error("arch", spec["arch"], where, "a mapping of the config class's keyword arguments")
    # the optional figures: text for published_params was a traceback from `models list`, and a
    # negative max_seq_len was blamed on a --seq-length the user never gave
    for key in ("published_params", "image_size", "audio_frames", "max_seq_len"):
        v = spec.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise entry_error(key, v, where, "a positive integer, or null")
    if spec.get("params_source") is not None and not isinstance(spec["params_source"], str):
        raise entry_error("params_source", spec["params_source"], where, "text")
    return ModelEntry(name=name, origin=origin, **spec)


def models() -> dict[str, ModelEntry]:
    """The shipped model catalog plus the user's (``PERFCAST_MODELS``)."""
    return _models(_user_file_state("models"))


@lru_cache(maxsize=4)
def _models(state: tuple[str, Optional[int]]) -> dict[str, ModelEntry]:
    return _merged("models", _load_yaml("models.yaml").get("models", {}), _model_entry)


_HW_KEYS = tuple(f.name for f in fields(HardwareEntry) if f.name not in ("id", "origin", "detected"))


def _hardware_entry(hid: str, spec: Any, origin: str) -> HardwareEntry:
    where = _entry_keys("hardware", hid, spec, origin, "configs/hardware.yaml", _HW_KEYS)
    if spec.get("kind") not in PLATFORMS:
        raise entry_error("kind", spec.get("kind"), where, ", ".join(PLATFORMS))
    peaks = spec.get("peak_tflops")
    if not isinstance(peaks, dict) or set(map(str, peaks)) - set(PRECISIONS) or not any(
            isinstance(v, (int, float)) and v > 0 for v in peaks.values()) or any(
            v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0)
            for v in peaks.values()):
        raise entry_error("peak_tflops", peaks, where,
                          "a mapping of fp32/fp16/bf16/int8 to TFLOP/s (TOPS for int8): each > 0 or null, "
                          "at least one > 0")
    for key in ("memory_bandwidth_gbs", "memory_gib"):
        v = spec.get(key)
        if not isinstance(v, (int, float)) or v <= 0:
            raise entry_error(key, v, where, "a positive number (the roofline and the memory check need it)")
    # optional figures, checked as the required ones: a negative price ranked its device cheapest
    # (-4.43 USD per 1M items) and a string one was a traceback from recommend-hardware and hardware list
    for key in ("tdp_w", "price_per_hour_usd"):
        v = spec.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
            raise entry_error(key, v, where, "a positive number, or null where it is not known")
    for key in ("name", "vendor"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise entry_error(key, spec[key], where, "text")
    spec = {"name": hid, **spec, "peak_tflops": {p: peaks.get(p) for p in PRECISIONS}}
    return HardwareEntry(id=hid, origin=origin, **spec)


def catalog_hardware() -> dict[str, HardwareEntry]:
    """The spec-sheet devices of ``configs/hardware.yaml`` plus the user's (``PERFCAST_HARDWARE``);
    no detection, no store."""
    return _catalog_hardware(_user_file_state("hardware"))


@lru_cache(maxsize=4)
def _catalog_hardware(state: tuple[str, Optional[int]]) -> dict[str, HardwareEntry]:
    return _merged("hardware", _load_yaml("hardware.yaml").get("hardware", {}), _hardware_entry)


def _store_hardware(store: Any) -> dict[str, HardwareEntry]:
    if store is None:
        return {}
    return {str(r["hardware_id"]): HardwareEntry.from_row(r) for r in store.hardware_rows()}


def all_hardware(store: Any = None, *, detect: bool = True) -> dict[str, HardwareEntry]:
    """Every device perfcast knows: catalog, then rows of the store's ``hardware`` table, then the
    devices detected on this machine (later sources win for the same id).

    Detected devices come from :func:`hardware.detect.detect_local`, which caches its result on
    disk, so this is cheap after the first call on a machine. ``store`` is an
    :class:`engine.store.Store` or None (then no database is opened).
    """
    out = dict(catalog_hardware())
    # a store's row never overrides a CPU the catalog pins: a store written before ids named the ISA
    # tier may hold another CPU's detected figures under the pinned id (session 18's Zen 3 host)
    out.update({k: _with_pinned_figures(v) for k, v in _store_hardware(store).items()})
    if detect:
        from hardware.detect import detect_local

        for e in detect_local():
            out[e.id] = _with_pinned_figures(e)  # the same figures resolve_hardware answers with
    return out


def _detected_of_kind(kind: str) -> Optional[HardwareEntry]:
    from hardware.detect import detect_local

    for e in detect_local():
        if e.kind == kind:
            return e
    return None


def _pinned_in_catalog(hardware_id: str) -> bool:
    """Whether configs/hardware.yaml ships measured figures for this CPU (see resolve_hardware)."""
    e = catalog_hardware().get(hardware_id)
    return e is not None and e.kind == "cpu" and str(e.sources.get("peak", "")).startswith("measured")


def _with_pinned_figures(found: HardwareEntry) -> HardwareEntry:
    """This machine's detected CPU, with the catalog's measured figures and name where the catalog
    pins them (see resolve_hardware): `cpu` and the CPU's own id then describe the device alike,
    and one id has one name (the detected "AMD EPYC (2 cores)" and the catalog's "AMD EPYC (Zen 3,
    AVX2, 2 vCPUs, KVM guest)" alternated between commands)."""
    if not _pinned_in_catalog(found.id):
        return found
    from dataclasses import replace

    cat = catalog_hardware()[found.id]
    return replace(found, name=cat.name, peak_tflops=dict(cat.peak_tflops),
                   memory_bandwidth_gbs=cat.memory_bandwidth_gbs, sources=dict(cat.sources))


def _openvino_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def reference_device(platform: str) -> Optional[HardwareEntry]:
    """The catalog device that answers for ``platform`` when none is detected (``reference_for``)."""
    for e in catalog_hardware().values():
        if e.reference_for == platform:
            return e
    return None


def resolve_hardware(name: str, store: Any = None) -> HardwareEntry:
    """A hardware id or a platform name -> the device that answers for it.

    * a catalog id (``h100-sxm``), a detected id (``cpu-amd-epyc-2c``) or an id in the store's
      ``hardware`` table -> that device;
    * a platform name (``cpu``, ``cuda``, ``rocm``, ``mps``, ``openvino``, ``qnn``, ``webgpu``,
      ``webnn``) -> the device of that kind detected here, else the catalog's reference device for
      it (``reference_for`` in configs/hardware.yaml). ``cpu`` is always the local CPU;
      ``openvino`` is the local CPU when the openvino package is installed (OpenVINO runs on it).

    The caller should tell the user which device answered (``entry.id``): `--hardware cuda` on a
    laptop without a GPU means the catalog's reference GPU, not this machine.
    Raises UnknownNameError (exit code 2) with the closest valid names otherwise.
    """
    key = (name or "").strip()
    low = key.lower()
    if low in PLATFORMS:
        if low == "cpu" or (low == "openvino" and _openvino_installed()):
            found = _detected_of_kind("cpu")
            if found is not None:
                return _with_pinned_figures(found)
        else:
            found = _detected_of_kind(low)
            if found is not None:
                return found
        ref = reference_device(low)
        if ref is not None:
            return ref
        raise UnknownNameError("hardware", key, [*PLATFORMS, *catalog_hardware()])
    from hardware.detect import local_cpu_id

    # this machine: the detected (measured) figures win over any copy, except over the catalog's
    # measured entry for this very CPU (the one that recorded the shipped dataset): a fresh
    # micro-benchmark differs by a percent or two from run to run, and would make the features,
    # the roofline and every fit on this machine depend on the moment of detection
    if key == local_cpu_id() and not _pinned_in_catalog(key):
        found = _detected_of_kind("cpu")
        if found is not None and found.id == key:
            return found
    known = all_hardware(store, detect=False)
    if key in known:
        return known[key]
    if low in known:
        return known[low]
    detected: dict[str, HardwareEntry] = {}
    if low.split("-", 1)[0] in PLATFORMS:  # looks like a detected id (cuda-..., openvino-gpu-...)
        from hardware.detect import detect_local

        detected = {e.id: e for e in detect_local()}
        if key in detected:
            return detected[key]
    raise UnknownNameError("hardware", key, [*PLATFORMS, *known, *detected, local_cpu_id()])


def get_model(name: str) -> ModelEntry:
    if not isinstance(name, str):  # None or a list gave "'NoneType' object is not iterable"
        raise UnknownNameError("model", repr(name), models().keys())
    try:
        return models()[name]
    except KeyError:
        err = UnknownNameError("model", name, models().keys())
        if user_catalog_file("models") is None and not err.suggestions:
            # the likeliest cause of a name that matches nothing: an own model, its file not set here
            err.args = (f"{err.args[0]} (own architectures: set {USER_CATALOG_ENV['models']}, see the README)",)
        raise err from None
