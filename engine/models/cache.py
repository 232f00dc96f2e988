"""Fitted predictors on disk, keyed by predictor name + the hash of the data they saw.

A fit costs seconds (GP) to tens of seconds (NUTS); a ``perfcast predict`` must not pay that every
time. ``load_or_fit(name, store)`` looks for ``<cache_dir>/models/<name>-<data_hash>-<opts>/`` and
reuses it until the measurements change (``Store.data_hash()``), or the predictor's
``CACHE_VERSION`` (its code's format) or ``features.FEATURES_VERSION`` (what it sees of a
configuration) changes.

A predictor may define ``save(directory)`` and ``load(directory)`` (classmethod) — the GP stores a
torch state dict, the hierarchical model its posterior draws plus the ArviZ netcdf file; otherwise
the predictor is pickled.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from engine.models.base import Predictor
from engine.models.registry import get_predictor, predictor_class
from engine.store.paths import cache_dir

if TYPE_CHECKING:
    from engine.store.store import Store


def _opts_hash(kw: dict[str, Any]) -> str:
    text = json.dumps({k: v for k, v in sorted(kw.items()) if k != "featurizer"}, default=str, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


#: predictor options that decide only whether a finished fit is kept, never what it is
KEEP_ONLY_OPTIONS: frozenset[str] = frozenset({"allow_bad_diagnostics"})


def model_dir(name: str, data_hash: str, kw: Optional[dict[str, Any]] = None) -> Path:
    """The cache directory of a fit: predictor, data, code version, options and the user's own
    catalog entries (a run of a user model is fitted only while its ``PERFCAST_MODELS`` file is set)."""
    from engine.catalog import user_catalog_digest
    from engine.models.features import FEATURES_VERSION

    cls = predictor_class(name)
    # the predictor's code version and the featuriser's: a fit on other features is not reused
    version = f"{getattr(cls, 'CACHE_VERSION', 1)}.{FEATURES_VERSION}"
    own = user_catalog_digest()
    # options that change what is fitted, not whether a fit is kept: a fit kept with
    # --allow-bad-diagnostics is the store's fit for every command (its answers carry the caution);
    # keyed by it, compare-hardware, matrix and suggest, which have no such flag, fitted again and
    # failed, and suggest refitted what train had cached (audit H)
    opts = {k: v for k, v in (kw or {}).items() if k not in KEEP_ONLY_OPTIONS}
    key = {**opts, "user_catalog": own} if own else opts
    return cache_dir() / "models" / f"{name}-{data_hash}-v{version}-{_opts_hash(key)}"


def save_predictor(predictor: Predictor, directory: Path) -> Path:
    """Write atomically: a half-written model directory is never picked up."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    try:
        if hasattr(predictor, "save"):
            predictor.save(tmp)  # type: ignore[attr-defined]
        else:
            with open(tmp / "predictor.pkl", "wb") as f:
                pickle.dump(predictor, f)
        if directory.exists():
            shutil.rmtree(directory)
        tmp.rename(directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory


def load_predictor(name: str, directory: Path) -> Predictor:
    cls = predictor_class(name)
    if hasattr(cls, "load"):
        return cls.load(directory)
    with open(directory / "predictor.pkl", "rb") as f:
        return pickle.load(f)


def load_or_fit(name: str, store: "Store", refit: bool = False, **kw: Any) -> Predictor:
    """The predictor ``name`` fitted on the store's successful measurements, cached by data hash.

    ``refit=True`` ignores the cache (and overwrites it). Keyword arguments go to the predictor's
    constructor and are part of the cache key.
    """
    data_hash = store.data_hash()
    directory = model_dir(name, data_hash, kw)
    if not refit and directory.exists():
        try:
            predictor = load_predictor(name, directory)
            if kw.get("allow_bad_diagnostics") is not None and hasattr(predictor, "allow_bad_diagnostics"):
                predictor.allow_bad_diagnostics = bool(kw["allow_bad_diagnostics"]) or predictor.allow_bad_diagnostics
            return predictor
        except Exception:  # a stale/corrupt cache entry is refitted, never fatal
            shutil.rmtree(directory, ignore_errors=True)
    predictor = get_predictor(name, **kw)
    predictor.fit(store.measurements(with_samples=True))
    setattr(predictor, "data_hash", data_hash)
    save_predictor(predictor, directory)
    return predictor
