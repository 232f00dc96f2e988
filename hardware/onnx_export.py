"""Export catalog models to ONNX once, and reuse the file across batch/seq/thread variations.

Export is the expensive part of an ONNX Runtime or OpenVINO benchmark (tens of seconds for a
large model), while one file with dynamic batch and sequence axes serves every shape. Files are
cached per (model, precision, exporter versions) under ``engine.store.paths.cache_dir()/onnx``
and written atomically so an interrupted export never leaves a truncated model behind.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.catalog import ModelEntry, get_model

OPSET = 18
EXPORT_PRECISIONS = ("fp32", "int8")


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Silence the exporters' advice while they run: the torch.onnx exporter logs one line per
    torchvision op it skips, and onnxruntime's quantizer warns through the root logger that a
    pre-processing pass is recommended. Neither is actionable for a user timing a model, and
    they would land between the progress bar and the table. Errors still come through."""
    names = ["", "torch.onnx", "onnxruntime"]
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def onnx_cache_dir() -> Path:
    from engine.store.paths import cache_dir

    d = cache_dir() / "onnx"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _tag() -> str:
    import torch

    return f"op{OPSET}-torch{torch.__version__.split('+')[0]}"


def onnx_path(model: str, precision: str) -> Path:
    return onnx_cache_dir() / f"{model}-{precision}-{_tag()}.onnx"


def input_axes(entry: ModelEntry, name: str, ndim: int) -> dict[int, str]:
    """Dynamic axes: batch everywhere, sequence on token inputs (images/audio have fixed sizes)."""
    axes = {0: "batch"}
    if name in ("input_ids", "attention_mask", "decoder_input_ids", "token_type_ids") and ndim >= 2:
        axes[1] = f"{name}_len"
    return axes


def _export_fp32(entry: ModelEntry, path: Path) -> None:
    import torch

    from engine.workloads import build_model, make_inputs

    model = build_model(entry, "cpu", torch.float32)
    if hasattr(model.config, "use_cache"):
        model.config.use_cache = False
    inputs = make_inputs(entry, 2, 16, "cpu")
    names = list(inputs)

    class Wrapper(torch.nn.Module):
        """Named inputs in, the main output tensor out: what ONNX graphs want.

        Explicit parameters (not ``**kwargs``) so torch.export can map dynamic shapes by name.
        """

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any = None, pixel_values: Any = None, input_features: Any = None,
                    decoder_input_ids: Any = None) -> Any:
            given = {"input_ids": input_ids, "pixel_values": pixel_values, "input_features": input_features,
                     "decoder_input_ids": decoder_input_ids}
            kw = {k: v for k, v in given.items() if v is not None}
            if "use_cache" in inspect.signature(model.forward).parameters:
                kw["use_cache"] = False
            return self.model(**kw, return_dict=False)[0]

    wrapper = Wrapper().eval()
    unknown = set(names) - {"input_ids", "pixel_values", "input_features", "decoder_input_ids"}
    if unknown:
        raise ValueError(f"ONNX export does not know the inputs {sorted(unknown)}")
    dim = torch.export.Dim
    shapes: dict[str, Any] = {}
    for n in ("input_ids", "pixel_values", "input_features", "decoder_input_ids"):
        if n in inputs:
            shapes[n] = {i: (dim.DYNAMIC) for i in input_axes(entry, n, inputs[n].dim())}
    with _atomic(path) as tmp, torch.no_grad(), _quiet_exporters():
        prog = torch.onnx.export(wrapper, (), kwargs=inputs, input_names=names, output_names=["output"],
                                 dynamic_shapes=shapes, opset_version=OPSET, dynamo=True, external_data=False,
                                 optimize=True, verbose=False)
        prog.save(str(tmp))


def _quantize_int8(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _atomic(dst) as tmp, _quiet_exporters():
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8)


#: grace period before a temporary export file of a writer that is gone is removed
STALE_TMP_S = 60.0


def _writer_tag() -> str:
    """Who writes a temporary export file: this process on this host (a cache may be shared by
    hosts, whose process ids mean nothing here)."""
    import socket

    return f"{os.getpid()}@{socket.gethostname().split('.')[0]}"


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary siblings of ``path`` whose writer, on this host, is gone: an export child
    killed at its time limit (SIGKILL: no ``__exit__``) left a 0-byte ``*.tmp.onnx`` in the cache for
    good. Another host's files are left to it."""
    import socket
    import time

    from engine.store.owner import owner_alive  # the store's own test of a recorded process

    host = socket.gethostname()
    here = host.split(".")[0]
    for tmp in path.parent.glob(f"{path.stem}.*@{here}.*.tmp.onnx"):
        pid = tmp.name[len(path.stem) + 1:].split("@", 1)[0]
        try:
            if (pid.isdigit() and not owner_alive({"host": host, "pid": int(pid)})
                    and time.time() - tmp.stat().st_mtime > STALE_TMP_S):
                tmp.unlink()
        except OSError:  # gone already, or not ours to delete
            pass


class _atomic:
    """Write to a temporary sibling named after the writing process and host, rename into place on
    success; a sibling whose writer on this host was killed is removed by the next writer."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Path:
        _remove_stale_temporaries(self.path)
        fd, name = tempfile.mkstemp(prefix=f"{self.path.stem}.{_writer_tag()}.", suffix=".tmp.onnx",
                                    dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def _passing(e: BaseException) -> bool:
    """A failure of the machine, not of the export (memory, a full disk, permissions): the next
    try may succeed, so no ``.failed`` marker. A marker written for a briefly full disk failed
    every later run of that model until someone deleted it."""
    from hardware.isolation import classify_exception  # the runs' own reading of an allocation failure

    cause = e.__cause__ or e.__context__
    return (classify_exception(e) == "oom" or isinstance(e, OSError) or "no space left" in str(e).lower()
            or isinstance(cause, (MemoryError, OSError)))


#: adapters that run an exported graph, and so need the export before their first run
EXPORTING_ADAPTERS = ("onnxruntime", "openvino")


def export_precision(precision: str) -> str:
    """The export a run at ``precision`` reads: ONNX Runtime's int8 graph for int8, else the fp32
    export (OpenVINO compiles it at its own precision hint)."""
    return "int8" if precision == "int8" else "fp32"


def needs_export(adapter_name: str, model: str, precision: str) -> bool:
    """Whether a run of ``adapter_name`` would export first: no cached file and no failure marker
    (a marked failure is reported by the run itself, with its reason)."""
    if adapter_name not in EXPORTING_ADAPTERS:
        return False
    path = onnx_path(model, export_precision(precision))
    return not path.exists() and not path.with_suffix(".failed").exists()


def ensure_onnx(model: str, precision: str) -> tuple[Path, bool]:
    """Path of the cached ONNX file for (model, precision), exporting if needed.

    Returns (path, exported_now). ``int8`` is ONNX Runtime's dynamic quantization of the fp32
    export (weights int8, activations quantized on the fly), usable by ORT and OpenVINO alike.
    """
    if precision not in EXPORT_PRECISIONS:
        raise ValueError(f"no ONNX export for precision {precision!r}; valid: {', '.join(EXPORT_PRECISIONS)}")
    entry = get_model(model)
    path = onnx_path(model, precision)
    if path.exists():
        return path, False
    failed = path.with_suffix(".failed")
    if failed.exists():  # a failed export fails the same way next time: do not pay for it again
        # the way to retry comes first: an exporter's error spans lines, and `benchmark`'s table and a
        # loop's line show a failure's first line only (the hint at the end was never seen there)
        raise RuntimeError(f"ONNX export of {model} ({precision}) failed before (delete {failed} to retry): "
                           f"{failed.read_text()[:2000]}")
    fp32 = onnx_path(model, "fp32")
    try:
        if not fp32.exists():
            _export_fp32(entry, fp32)
        if precision == "int8":
            _quantize_int8(fp32, path)
    except Exception as e:  # noqa: BLE001 - recorded, then re-raised for the run's error text
        if not _passing(e):
            failed.write_text(f"{type(e).__name__}: {str(e)[-1500:]}")
        raise
    return path, True


def numpy_inputs(model: str, batch: int, seq: int) -> dict[str, Any]:
    """Synthetic inputs as numpy arrays keyed by the ONNX graph's input names."""
    from engine.workloads import make_inputs

    return {k: v.numpy() for k, v in make_inputs(model, batch, seq, "cpu").items()}
