"""Counting FLOPs, parameters and activations on the meta device with ``FlopCounterMode``.

A model built on ``device="meta"`` has shapes but no storage, so counting even llama-2-13b costs
well under a second and no memory. One pass gives, at batch 1:

* ``flops``: what :class:`torch.utils.flop_counter.FlopCounterMode` counts (matmuls, convolutions,
  attention; multiply-add = 2 FLOPs). Training runs the backward on meta too (it works for every
  catalog model), so training FLOPs are counted, not assumed to be 3x forward.
* ``linear_flops``: the part of ``flops`` in 2-D matrix products (``aten.mm``/``aten.addmm``): the
  weight matmuls of ``nn.Linear`` (and GPT-2's ``Conv1D``) layers. It is what int8 dynamic
  quantization runs in int8; attention's batched products and convolutions stay in float (0.1% of
  resnet50's FLOPs are linear, 62% of whisper-tiny's, 90-100% of the text transformers').
* ``tied_head_flops``: the part of ``linear_flops`` in the output projection whose weight *is* the
  input embedding (GPT-2's, T5's and Whisper's LM head; ``get_output_embeddings()`` sharing its
  ``weight`` with ``get_input_embeddings()``), from FlopCounterMode's per-module counts. ONNX
  Runtime's dynamic quantization cannot make that shared weight a ``MatMulInteger`` operand: its
  int8 graph stores it once and runs ``DequantizeLinear`` → ``Transpose`` → an fp32 ``MatMul``
  (27-31% of gpt2's and t5-small's linear FLOPs), so the roofline prices it at the fp32 peak there
  (:func:`engine.models.features.tied_head_precision`).
* ``linear_weight_elems``: elements of the weights of ``nn.Linear`` (and ``Conv1D``) layers, each
  weight once, the tied LM head's excluded (it is the input embedding): what torch's dynamic
  quantization stores in int8. ``tied_head_elems``: that tied head's weight; torch quantizes an int8
  copy of it and keeps the fp32 embedding (:mod:`engine.descriptors`' int8 widths).
* ``activation_elems``: elements of every floating-point tensor output by a leaf module (Linear,
  LayerNorm, activation, Conv, ...), via forward hooks: the activations written to and read back
  from memory. An output that *is* one of the module's inputs (``nn.Identity``, ``Dropout`` in
  eval) is not counted: nothing is written (23% of resnet50's counted elements were its identity
  shortcuts, 9-12% of the transformers' their eval dropouts). ``max_activation_elems`` is the
  largest single one (inference working set).
* ``kv_cache_elems``: elements of the KV cache a generative model returns (prefill) or reads
  (decode step).
* ``peak_live_elems`` (forward): elements of the tensors alive at once at the pass's peak, the KV
  cache it returns left out (4-byte elements; each storage counted once however many views it
  has), followed op by op with a dispatch mode and each tensor's finalizer (:class:`_LiveTensors`).
  Scaled dot-product attention counts as one fused kernel, its output only, as torch runs it on a
  CPU (flash attention) and a GPU (flash or memory-efficient): on the meta device it decomposes
  into the math path, whose batch x heads x seq² scores no real run holds. Measured on an Intel
  Xeon (2026-12-07; the run's peak minus its batch-1 peak, fp32): gpt2 b16 x 512 2,262 MiB against
  2,171 counted, t5-small b64 x 512 5,609 / 5,744, resnet50 b128 1,473 / 1,372 MiB (KV caches
  included); the old working set, twice the largest activation, read 3,717 for gpt2 (its logits
  twice, though the LM head's input is small) and 784 for resnet50 (whose residual branches keep
  more alive). 0 where not counted (the
  analytic fallback): the descriptors then use twice the largest activation.

FLOPs are exactly linear in batch (no op mixes batch elements) and activations are up to a few
batch-independent broadcast tensors (position embeddings, < 1%), so counts are taken at batch 1 and
scaled (tests/engine/test_descriptors.py checks both against real counts at batch 3); sequence length is NOT linear (attention is quadratic), so it is counted per
sequence length. Counts are precision-independent (elements, not bytes): the width is applied
later. Results are cached in memory and in a small JSON file under ``cache_dir()``.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Iterator

from engine.catalog import ModelEntry, get_model

# bump when counting.py or analytic.py change what they count (invalidates the disk cache); 3: linear_flops;
# 4: tied_head_flops; 5: linear_weight_elems, tied_head_elems, pass-through outputs not counted;
# 6: peak_live_elems
COUNT_VERSION = 6
KINDS = ("forward", "train", "decode")


@dataclass(frozen=True)
class PassCounts:
    """Work of one pass at batch 1 (scale everything but params by the batch size)."""

    model: str
    seq_len: int  # effective sequence length (0 for models without one)
    kind: str  # forward | train | decode
    params: int
    embedding_params: int
    flops: float
    linear_flops: float  # of ``flops``: 2-D weight matmuls (Linear layers), see the module docstring
    activation_elems: float
    max_activation_elems: float
    kv_cache_elems: float
    method: str  # flop_counter | analytic
    note: str = ""
    tied_head_flops: float = 0.0  # of ``linear_flops``: the LM head tied to the input embedding (docstring)
    linear_weight_elems: float = 0.0  # weights of Linear layers, the tied head's excluded (docstring)
    tied_head_elems: float = 0.0  # the LM head's weight when it is the input embedding's
    peak_live_elems: float = 0.0  # forward: alive at once at the peak, KV cache left out; 0 = not counted


# -- the on-disk cache ----------------------------------------------------------------------------
_LOCK = threading.Lock()
_DISK: dict[str, dict[str, Any]] | None = None


def _cache_file() -> "os.PathLike[str]":
    from engine.store.paths import cache_dir

    return cache_dir() / f"descriptors-v{COUNT_VERSION}.json"


def _disk() -> dict[str, dict[str, Any]]:
    global _DISK
    if _DISK is None:
        try:
            with open(_cache_file()) as f:
                _DISK = json.load(f)
        except (OSError, ValueError):
            _DISK = {}
    return _DISK


def _disk_put(key: str, counts: PassCounts) -> None:
    """Merge one entry into the JSON cache (atomic replace; a failure only costs a recount)."""
    with _LOCK:
        data = _disk()
        data[key] = asdict(counts)
        path = _cache_file()
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:  # keep what other processes added meanwhile
                with open(path) as f:
                    on_disk = json.load(f)
                on_disk.update(data)
                data.update(on_disk)
            except (OSError, ValueError):
                pass
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump(data, f)
            os.replace(tmp, path)
        except OSError:
            pass


def library_tag() -> str:
    """The transformers and torch versions that counted: part of every count's cache key, because a
    new version may build a model with other operations (``perfcast doctor`` reports it)."""
    try:
        from importlib.metadata import version

        return f"tf{version('transformers')}-torch{version('torch')}"
    except Exception:  # noqa: BLE001 - metadata lookups fail in odd installs
        return "unknown"


def cache_key(entry: ModelEntry, seq_len: int, kind: str, method: str) -> str:
    """Model name + a hash of its architecture (edits to models.yaml invalidate) + shape + kind."""
    arch = hashlib.sha1(json.dumps([entry.hf_config, entry.hf_model, entry.arch, entry.image_size,
                                    entry.audio_frames, entry.max_seq_len], sort_keys=True).encode()).hexdigest()[:10]
    lib = library_tag() if method == "flop_counter" else "analytic"
    return f"{entry.name}|{arch}|s{seq_len}|{kind}|{method}|{lib}"


# -- counting -------------------------------------------------------------------------------------
def _tensors(obj: Any, depth: int = 0) -> Iterator[Any]:
    """Every tensor inside a model output / HF cache object (DynamicCache, EncoderDecoderCache)."""
    import torch

    if torch.is_tensor(obj):
        yield obj
        return
    if obj is None or depth > 6:
        return
    if isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _tensors(x, depth + 1)
        return
    if isinstance(obj, dict):
        for x in obj.values():
            yield from _tensors(x, depth + 1)
        return
    for attr in ("layers", "keys", "values", "self_attention_cache", "cross_attention_cache", "key_cache", "value_cache"):
        if hasattr(obj, attr) and not callable(getattr(obj, attr)):
            yield from _tensors(getattr(obj, attr), depth + 1)


def _embedding_params(model: Any) -> int:
    import torch

    return int(sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding)))


class _ActivationHooks:
    """Forward hooks on leaf modules summing the elements of their floating-point outputs."""

    def __init__(self, model: Any) -> None:
        self.total = 0.0
        self.largest = 0.0
        self.handles = [m.register_forward_hook(self._hook) for m in model.modules()
                        if next(iter(m.children()), None) is None]

    def _hook(self, module: Any, inputs: Any, output: Any) -> None:
        given = [x for x in _tensors(inputs)]
        for t in _tensors(output):
            if t.is_floating_point() and not any(t is x for x in given):  # a pass-through writes nothing
                n = float(t.numel())
                self.total += n
                self.largest = max(self.largest, n)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _live_tensors() -> Any:
    """A fresh pair of modes, ``(live, fused)``: ``live`` follows the bytes of live tensors and their
    peak, ``fused`` (entered outside it) makes attention one op. Built here: torch loads lazily."""
    import weakref

    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class _LiveTensors(TorchDispatchMode):
        """Bytes of the storages alive at once, and their peak, over the ops run under it.

        Every op's output storage that no input already holds is a new allocation; it is freed when
        the last tensor viewing it is collected (``weakref.finalize``), as torch frees it on a real
        device. Storages are told apart by their C++ object, since meta tensors have no addresses.
        ``fused`` turns scaled dot-product attention into one op (see the module docstring)."""

        def __init__(self) -> None:
            super().__init__()
            self.refs: dict[int, int] = {}
            self.nbytes: dict[int, int] = {}
            self.live = 0
            self.peak = 0
            self.paused = False

        def _drop(self, key: int) -> None:
            self.refs[key] -= 1
            if not self.refs[key]:
                del self.refs[key]
                self.live -= self.nbytes.pop(key)

        def track(self, out: Any, given: set[int]) -> None:
            for t in tree_flatten(out)[0]:
                if not isinstance(t, torch.Tensor):
                    continue
                key = t.untyped_storage()._cdata
                if key not in self.refs:
                    if key in given:
                        continue  # a view or in-place result of a weight or an input: not allocated here
                    self.refs[key] = 0
                    self.nbytes[key] = t.untyped_storage().nbytes()
                    self.live += self.nbytes[key]
                self.refs[key] += 1
                weakref.finalize(t, self._drop, key)
            self.peak = max(self.peak, self.live)

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            if not self.paused:
                self.track(out, _storages((args, kwargs)))
            return out

    class _FusedAttention(TorchFunctionMode):
        """Run scaled dot-product attention untracked, then count its output alone."""

        def __init__(self, live: "_LiveTensors") -> None:
            super().__init__()
            self.tracker = live

        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if func is not torch.nn.functional.scaled_dot_product_attention or self.tracker.paused:
                return func(*args, **kwargs)
            self.tracker.paused = True
            try:
                out = func(*args, **kwargs)
            finally:
                self.tracker.paused = False
            self.tracker.track(out, _storages((args, kwargs)))
            return out

    def _storages(obj: Any) -> set[int]:
        return {t.untyped_storage()._cdata for t in tree_flatten(obj)[0] if isinstance(t, torch.Tensor)}

    live = _LiveTensors()
    return live, _FusedAttention(live)


def _main_output(out: Any) -> Any:
    """The first floating tensor of a model output (logits, last_hidden_state, ...) for a loss."""
    import torch

    items = out.values() if hasattr(out, "values") else out
    for v in items:
        if torch.is_tensor(v) and v.is_floating_point():
            return v
    raise ValueError("model output has no floating-point tensor to build a loss from")


LINEAR_OPS = ("mm", "addmm")  # aten ops of 2-D matrix products: Linear layers forward and backward


def linear_flops(counter: Any) -> float:
    """FLOPs a :class:`FlopCounterMode` counted in 2-D matrix products (see ``linear_flops`` above)."""
    ops = counter.get_flop_counts().get("Global", {})
    return float(sum(v for op, v in ops.items() if getattr(op, "__name__", str(op)).split(".")[-1] in LINEAR_OPS))


def _tied_head(model: Any) -> Any:
    """``model``'s output projection when its weight is the input embedding's, else None."""
    get_out = getattr(model, "get_output_embeddings", None)
    get_in = getattr(model, "get_input_embeddings", None)
    if get_out is None or get_in is None:
        return None
    try:
        head, emb = get_out(), get_in()
    except (NotImplementedError, AttributeError):
        return None
    if head is None or emb is None or getattr(head, "weight", None) is not getattr(emb, "weight", False):
        return None
    return head


def linear_weights(model: Any) -> tuple[float, float]:
    """(``linear_weight_elems``, ``tied_head_elems``) of ``model`` (module docstring)."""
    import torch

    head = _tied_head(model)
    seen: set[int] = set()
    linear = 0.0
    for m in model.modules():
        if m is head or not (isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D"):
            continue
        w = getattr(m, "weight", None)
        if w is not None and id(w) not in seen:
            seen.add(id(w))
            linear += float(w.numel())
    return linear, float(head.weight.numel()) if head is not None else 0.0


def tied_head_flops(model: Any, counter: Any) -> float:
    """FLOPs a :class:`FlopCounterMode` counted in ``model``'s output projection when its weight is the
    input embedding's (0 when the model has no such head or does not tie it)."""
    head = _tied_head(model)
    if head is None:
        return 0.0
    name = next((n for n, m in model.named_modules() if m is head), None)
    if not name:
        return 0.0
    ops = counter.get_flop_counts().get(f"{type(model).__name__}.{name}", {})
    return float(sum(ops.values()))


def count_with_flop_counter(entry: ModelEntry, seq_len: int, kind: str, batch: int = 1) -> PassCounts:
    """Build the model on meta, run one pass under FlopCounterMode, count everything.

    ``batch`` other than 1 exists for the test that checks the batch-linearity the caches rely on.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from engine.workloads import build_model, make_inputs

    model = build_model(entry, device="meta")
    params = int(sum(p.numel() for p in model.parameters()))
    emb = _embedding_params(model)
    lin_w, tied_w = linear_weights(model)
    inputs = make_inputs(entry, batch, seq_len, device="meta")
    note = ""
    kv = 0.0
    peak_live = 0.0  # counted for the forward only
    if kind == "train":
        model.train()  # (use_cache stays as built: with it off, transformers 5 probes position ids with .item())
        hooks = _ActivationHooks(model)
        counter = FlopCounterMode(display=False)
        try:
            with counter:
                out = model(**inputs)
                loss = _main_output(out).float().sum()
                loss.backward()
        finally:
            hooks.remove()
        note = "forward + backward counted on meta; optimizer FLOPs (~10 per parameter) not counted"
    elif kind == "forward":
        hooks = _ActivationHooks(model)
        counter = FlopCounterMode(display=False)
        live, fused = _live_tensors()
        try:
            with counter, torch.no_grad(), fused, live:
                out = model(**inputs)
        finally:
            hooks.remove()
        kv = float(sum(t.numel() for t in _tensors(getattr(out, "past_key_values", None))))
        # 4-byte elements (built in fp32), the returned KV cache left out; never below the largest output
        peak_live = max(live.peak / 4.0 - kv, hooks.largest)
    elif kind == "decode":
        if not supports_decode(entry):
            raise ValueError(f"decode descriptors exist for generative models only, not {entry.name} ({entry.family})")
        with torch.no_grad():
            out = model(**inputs, use_cache=True)
            cache = out.past_key_values
            kv = float(sum(t.numel() for t in _tensors(cache)))
            one = torch.empty(batch, 1, dtype=torch.long, device="meta")
            if "decoder_input_ids" in inputs:  # encoder-decoder: the encoder ran once in the prefill
                step = {"encoder_outputs": (out.encoder_last_hidden_state,), "decoder_input_ids": one}
            else:
                step = {"input_ids": one}
            hooks = _ActivationHooks(model)
            counter = FlopCounterMode(display=False)
            try:
                with counter:
                    model(**step, past_key_values=cache, use_cache=True)
            finally:
                hooks.remove()
        note = f"one generated token attending to a KV cache of {seq_len} tokens"
    else:
        raise ValueError(f"invalid kind {kind!r}; valid: {', '.join(KINDS)}")
    return PassCounts(model=entry.name, seq_len=seq_len, kind=kind, params=params, embedding_params=emb,
                      flops=float(counter.get_total_flops()), linear_flops=linear_flops(counter),
                      activation_elems=hooks.total,
                      max_activation_elems=hooks.largest, kv_cache_elems=kv, method="flop_counter", note=note,
                      tied_head_flops=tied_head_flops(model, counter), linear_weight_elems=lin_w,
                      tied_head_elems=tied_w, peak_live_elems=peak_live)


def supports_decode(entry: ModelEntry) -> bool:
    """Models that generate token by token: text_generation ones and Whisper (speech to text)."""
    return entry.family == "text_generation" or entry.hf_config == "WhisperConfig"


def transformers_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("transformers") is not None and importlib.util.find_spec("torch") is not None


def _counted_or_one_line(entry: ModelEntry, seq_len: int, kind: str) -> PassCounts:
    """:func:`count_with_flop_counter`, with a user entry's failing forward as one line naming the
    entry and its file: a BERT declared ``family: vision`` is given pixels, and ``models show`` or
    ``predict`` printed the meta-device reshape error's traceback. A shipped entry's failure is
    perfcast's own bug and keeps its traceback."""
    from engine.errors import PerfcastError

    try:
        return count_with_flop_counter(entry, seq_len, kind)
    except PerfcastError:
        raise
    except Exception as e:  # noqa: BLE001 - anything a user architecture's forward raises
        if entry.origin == "shipped":
            raise
        from engine.catalog import architecture_error

        raise architecture_error(entry, e, f"one whose forward takes the inputs of a {entry.family} model "
                                           "(see the README)") from None


@lru_cache(maxsize=4096)
def pass_counts(model: str, seq_len: int, kind: str, method: str = "auto") -> PassCounts:
    """Counts for (model, effective seq_len, kind), from memory, the disk cache, the packaged seed
    (:mod:`engine.descriptors.seed`), or a fresh count.

    ``method="auto"`` uses the FLOP counter when transformers is installed and the analytic
    formulas (engine/descriptors/analytic.py) otherwise.
    """
    entry = get_model(model)
    if method == "auto":
        method = "flop_counter" if transformers_available() else "analytic"
    key = cache_key(entry, seq_len, kind, method)
    from engine.descriptors.seed import seed_counts

    # the user's cache, else the packaged seed (same keys: another library version misses both)
    hit = _disk().get(key) or seed_counts().get(key)
    if hit is not None:
        try:
            return PassCounts(**hit)
        except TypeError:
            pass
    if method == "flop_counter":
        counts = _counted_or_one_line(entry, seq_len, kind)
    elif method == "analytic":
        from engine.descriptors.analytic import analytic_counts

        counts = analytic_counts(entry, seq_len, kind)
    else:
        raise ValueError(f"invalid method {method!r}; valid: auto, flop_counter, analytic")
    _disk_put(key, counts)
    return counts
