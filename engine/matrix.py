"""The prediction matrix: models x hardware x batch size x precision, every metric with intervals.

Built in one vectorised predictor call (a :class:`PredictionSet` over every cell, summarised with
array quantiles), never one configuration at a time, so a 100k-cell matrix costs one featurisation
and one chunked posterior. The cells are stored in the ``predictions`` table in one bulk insert.

JSON layout (``payload``)::

    {"predictor": "gp", "data_hash": "...", "created_at": "...",
     "workload": {"seq_len": 128, "mode": "inference", "runtime": null, "threads": 0},
     "hardware": {"cuda": {"id": "a100-80gb", "name": "...", "kind": "cuda"}, ...},
     "models": {"gpt2": {"predictions": {"cuda": {"1": {"fp32": {
         "latency_ms": {"median", "mean", "q05", "q25", "q75", "q95"}, "throughput": {...}, ...}}}}}}},
     "refused": ["t4 int8: int8 with torch runs on CPU only ...", ...]}

A cell no adapter can run (:func:`hardware.registry.refusal_reason`: int8 training, ONNX Runtime at
fp16/bf16, torch's int8 off a CPU) is not predicted, as ``predict`` refuses it: its statistics are
null (NaN in CSV/Parquet, "n/a" on the heatmap) and it carries ``"refused": <reason>``. A matrix
whose every cell is refused is the one-line error ``predict`` gives.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from engine.config import Config
from engine.records import utc_iso, utcnow

if TYPE_CHECKING:
    import pandas as pd

    from engine.models.base import PredictionSet
    from engine.predict import PerformancePredictor, ResolvedHardware

from engine.store.store import PREDICTION_STATS as STATS


#: File types ``MatrixResult.write`` (and ``perfcast matrix --output``) writes.
OUTPUT_SUFFIXES = (".json", ".csv", ".parquet")


def check_output(path: str | Path) -> Path:
    """The output path, or one line naming its file type and the valid ones."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        from engine.errors import InvalidValueError

        raise InvalidValueError("--output file type", path.suffix or str(path), ", ".join(OUTPUT_SUFFIXES))
    return path


@dataclass
class MatrixResult:
    payload: dict[str, Any]
    n: int  # cells predicted (and stored); refused cells are not
    prediction_id: Optional[str]
    pset: "PredictionSet"  # the predicted cells only, in cell order
    summaries: dict[str, dict[str, np.ndarray]]  # every cell, NaN where refused
    models: list[str]
    hardware: list[str]  # requested names, in order
    batches: list[int]
    precisions: list[str]
    refused: list[Optional[str]] = field(default_factory=list)  # per cell: why no adapter runs it, or None

    @property
    def n_refused(self) -> int:
        return sum(r is not None for r in self.refused)

    def frame(self) -> "pd.DataFrame":
        """The matrix as one tidy row per cell (``model, hardware, hardware_id, batch_size,
        precision, <metric>_<stat>...``): what a spreadsheet or a dataframe wants."""
        import pandas as pd

        hw = self.payload["hardware"]
        rows = {"model": [], "hardware": [], "hardware_id": [], "batch_size": [], "precision": []}
        for m in self.models:
            for h in self.hardware:
                for b in self.batches:
                    for p in self.precisions:
                        for k, v in zip(rows, (m, h, hw[h]["id"], b, p)):
                            rows[k].append(v)
        df = pd.DataFrame(rows)  # the same cell order as the summaries (models x hardware x batch x precision)
        from engine.catalog import get_model
        from engine.workloads import effective_seq_len

        w = self.payload["workload"]
        seq = {m: effective_seq_len(get_model(m), w["seq_len"]) for m in self.models}  # vision models: 0
        df["seq_len"], df["mode"] = [seq[m] for m in df["model"]], w["mode"]
        df["runtime"] = [hw[h]["runtime"] for h in df["hardware"]]
        for metric, stats in self.summaries.items():
            for st in STATS:
                df[f"{metric}_{st}"] = np.asarray(stats[st], dtype=float)
        df["refused"] = self.refused or [None] * len(df)  # the reason a cell was not predicted (NaN metrics)
        return df

    def write(self, path: str | Path) -> Path:
        """``.json``: the nested payload; ``.csv`` / ``.parquet``: :meth:`frame`."""
        import json

        path = check_output(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = path.suffix.lower()
        if suffix == ".json":
            path.write_text(json.dumps(self.payload, indent=2, default=str))
        elif suffix == ".csv":
            self.frame().to_csv(path, index=False)
        else:
            self.frame().to_parquet(path, index=False)
        return path

    def heatmap(self, path: str | Path, metric: str = "latency_ms") -> Path:
        """Models x hardware at the first batch size and precision."""
        from engine import plots

        b, p = self.batches[0], self.precisions[0]
        shape = (len(self.models), len(self.hardware), len(self.batches), len(self.precisions))
        grid = {k: v.reshape(shape)[:, :, 0, 0] for k, v in self.summaries[metric].items()}
        return plots.heatmap(self.models, self.hardware, grid["median"], grid["q05"], grid["q95"], path, metric,
                             title=f"{plots.LABELS.get(metric, metric)} · batch {b} · {p} · median, ×÷ 90% factor",
                             missing="n/a")  # a refused cell: no adapter runs it


def build_matrix(pp: "PerformancePredictor", models: Sequence[str], hardware: Sequence[str],
                 batches: Sequence[int], precisions: Sequence[str], *, seq_len: int = 128,
                 mode: str = "inference", runtime: Optional[str] = None, threads: int = 0,
                 save: bool = True) -> MatrixResult:
    """Predict every runnable cell in one call; summarise with vectorised quantiles; optionally store.
    Cells no adapter runs are refused (see the module docstring); if every cell is, the first one's
    refusal is raised (:class:`engine.errors.RefusedConfigError`, exit 2), before any fitting."""
    from engine.catalog import get_model
    from engine.models.features import threads_on_several
    from engine.predict import _refuse_unrunnable, resolve, summarize
    from engine.workloads import effective_seq_len
    from hardware.registry import refusal_reason

    # a value named twice is one axis entry: it was predicted (and written, one CSV row per cell)
    # once per mention, and counted so in "N configurations predicted"
    models, hardware = list(dict.fromkeys(models)), list(dict.fromkeys(hardware))
    batches, precisions = list(dict.fromkeys(batches)), list(dict.fromkeys(precisions))
    entries = [get_model(m) for m in models]  # unknown names fail here, before any fitting
    hws: list["ResolvedHardware"] = [resolve(h, pp.store) for h in hardware]
    # validate the small axes once (Config validates each value; a bad one names itself)
    for b in batches:
        Config("x", "y", batch_size=b)
    for p in precisions:
        Config("x", "y", precision=p)
    Config("x", "y", threads=threads)
    memo: dict[tuple[str, str], Any] = {}
    # threads go to the devices that take them (a GPU column runs as it runs), and are checked there:
    # more than a CPU has cores is refused, as predict refuses them (t64 was answered as t2)
    per_device = dict(zip([hw.id for hw in hws], threads_on_several([hw.kind for hw in hws], threads)))
    for hw in hws:
        pp.check_threads(memo, hw, per_device[hw.id])
    cells = [(Config(e.name, hw.id, b, effective_seq_len(e, seq_len), p, mode, runtime or hw.runtime or "torch",
                     per_device[hw.id]), hw)
             for e in entries for hw in hws for b in batches for p in precisions]
    refused = [refusal_reason(hw.kind, c.runtime, c.precision, c.mode) for c, hw in cells]
    if cells and all(refused):
        _refuse_unrunnable(*cells[0])  # predict's one line for it (exit 2); nothing is fitted
    keep = np.array([r is None for r in refused], dtype=bool)
    configs = [c for (c, _), ok in zip(cells, keep) if ok]
    pset = pp.fitted().predict(configs)
    data_hash = pp.data_hash()
    predicted = {m: summarize(pset, m) for m in pset.metric_names()}
    summaries = {m: {st: _scatter(v, keep) for st, v in s.items()} for m, s in predicted.items()}
    shape = (len(entries), len(hws), len(batches), len(precisions))
    grids = {m: {k: v.reshape(shape) for k, v in s.items()} for m, s in summaries.items()}
    out_models: dict[str, Any] = {}
    for i, e in enumerate(entries):
        per_hw: dict[str, Any] = {}
        for j, hw in enumerate(hws):
            per_b: dict[str, Any] = {}
            for k, b in enumerate(batches):
                per_p: dict[str, Any] = {}
                for l, p in enumerate(precisions):
                    why = refused[np.ravel_multi_index((i, j, k, l), shape)]
                    per_p[p] = {m: {st: None if why else float(g[st][i, j, k, l]) for st in STATS}
                                for m, g in grids.items()}
                    if why:
                        per_p[p]["refused"] = why
                per_b[str(b)] = per_p
            per_hw[hw.requested] = per_b
        out_models[e.name] = {"family": e.family, "predictions": per_hw}
    # predict's cautions, once each: per device kind/device, and per configuration kind (one
    # representative per device and precision: the cautions do not depend on the model or batch)
    from engine.predict import answer_cautions

    first = {}
    for (c, hw), ok in zip(cells, keep):  # a refused cell's reason is in "refused", not a caution
        if ok:
            first.setdefault((hw.id, c.precision), (c, hw))
    warnings = answer_cautions(pp, first.values(), "cells")
    payload = {
        "predictor": pset.predictor, "data_hash": data_hash, "created_at": utc_iso(utcnow()),
        "workload": {"seq_len": seq_len, "mode": mode, "runtime": runtime, "threads": threads},
        "hardware": {hw.requested: {"id": hw.id, "name": hw.name, "kind": hw.kind, "memory_gib": hw.memory_gib,
                                    "runtime": runtime or hw.runtime or "torch"} for hw in hws},
        "models": out_models, "warnings": warnings, "refused": refusal_notes(cells, refused),
    }
    pid = pp.store.save_prediction_arrays(pset.predictor, data_hash, configs, predicted) if save else None
    return MatrixResult(payload, len(configs), pid, pset, summaries, [e.name for e in entries],
                        [hw.requested for hw in hws], list(batches), list(precisions), refused)


def _scatter(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The predicted cells' values at their places among every cell, NaN at the refused ones (so
    every grid keeps the models x hardware x batch x precision shape)."""
    out = np.full(keep.shape, np.nan)
    out[keep] = values
    return out


def refusal_notes(cells: Sequence[tuple[Config, "ResolvedHardware"]], refused: Sequence[Optional[str]]) -> list[str]:
    """One line per reason, once each, naming the (device, precision) pairs it refuses: the reason
    depends on neither the model nor the batch size, so a 100-cell matrix does not repeat it 100 times."""
    by_reason: dict[str, list[str]] = {}
    for (c, hw), why in zip(cells, refused):
        if why:
            label = f"{hw.requested} {c.precision}"
            if label not in by_reason.setdefault(why, []):
                by_reason[why].append(label)
    return [f"{', '.join(labels)}: {why}" for why, labels in by_reason.items()]
