"""Model descriptors: FLOPs, parameters and bytes moved for a configuration.

Contract used by the models (roofline prior, GP features)::

    describe(config: Config) -> Descriptor            # one configuration
    describe_decode(config: Config) -> Descriptor     # one generated token (text_generation)
    describe_many(configs) -> pandas.DataFrame        # many, vectorised (100k rows in well under 1 s)

FLOPs, parameters and activations are COUNTED (``counting.py``: FlopCounterMode on the meta
device) or, without transformers, computed from the analytic formulas in ``analytic.py``. They are
counted once per (model, sequence length, pass kind) at batch 1 and scaled by the batch size,
which is exact because no layer mixes batch elements.

Widths follow what the adapters run: fp32 4 bytes, fp16/bf16 2 bytes for weights, activations,
KV cache and training state alike (a half-precision model is trained in half precision: AdamW's
moments take the parameters' dtype, with no fp32 master copy). int8 is dynamic quantization: only
weights are int8, while activations, the KV cache and every other tensor stay fp32 (4 bytes). Which
weights depends on the runtime: torch quantizes ``nn.Linear`` weights only (embeddings,
convolutions and norms stay fp32, and an LM head tied to the input embedding becomes an int8 copy
beside the fp32 embedding); ONNX Runtime's quantizer stores every weight initializer (MatMul, Conv,
Gather) in int8, and OpenVINO reads that graph. An exported graph (every runtime but torch) runs
without the KV cache the torch forward returns.

Bytes moved (a lower bound on DRAM traffic):

* inference: ``weights + 2 x activations (+ KV cache written)``: every weight read once, every
  leaf-module output written once and read once by the next layer.
* training: ``3 x weights`` (read in forward and backward, gradient written) ``+ 4 x activations``
  (written and read in forward, gradient written and read in backward) ``+ optimizer traffic``:
  AdamW reads the parameter, its gradient, m and v and writes the parameter, m and v back (7 x the
  weights' bytes).
* decode: ``weights + KV cache read + 2 x activations`` of the one token.

Memory (``Descriptor.memory_bytes``): weights, plus gradients and AdamW's two moments in training
(``state_bytes``, 3 x the weights' bytes), plus all activations in training (kept for the backward)
or, in inference, the activations alive at once at the pass's peak (``peak_live_elems``, followed
tensor by tensor on the meta device: counting.py; twice the largest activation where it was not
counted), plus the KV cache.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

from engine.config import Config

if TYPE_CHECKING:
    import pandas as pd

    from engine.descriptors.counting import PassCounts

#: Bytes per element of a precision's quantized weights (int8: only the weights that are quantized).
WIDTH: dict[str, int] = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
#: Bytes per element of everything that is not an int8 weight: activations, KV cache, training state.
TENSOR_WIDTH: dict[str, int] = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 4}
#: AdamW's traffic per parameter, in the parameters' bytes: read the parameter, gradient, m and v,
#: write the parameter, m and v
ADAM_TRAFFIC = 7.0
#: Training state per parameter, in the parameters' bytes: the gradient and AdamW's m and v
TRAINING_STATE = 3.0


@dataclass(frozen=True)
class Descriptor:
    """Work and traffic of one forward (inference) or forward+backward+step (training) pass.

    ``flops`` counts multiply-adds as 2 FLOPs. ``bytes_moved`` is a lower bound on DRAM
    traffic: weights read once at the precision's width plus activations written and read.
    """

    model: str
    family: str
    params: int
    flops: float
    bytes_moved: float
    weight_bytes: float
    activation_bytes: float
    method: str  # "flop_counter" or "analytic"
    batch_size: int = 1
    seq_len: int = 0  # effective sequence length (0 for vision models; CLIP text capped at 77)
    precision: str = "fp32"
    mode: str = "inference"  # inference | training | decode
    state_bytes: float = 0.0  # gradients + optimizer states (training)
    kv_cache_bytes: float = 0.0
    peak_activation_bytes: float = 0.0  # working set of activations (see module docstring)
    linear_flops: float = 0.0  # of flops: weight matmuls (Linear layers), what int8 dynamic quantization runs in int8
    note: str = ""
    tied_head_flops: float = 0.0  # of linear_flops: an LM head tied to the input embedding (counting.py)
    runtime: str = "torch"  # int8's quantized weights and the KV cache depend on it (module docstring)
    build_bytes: float = 0.0  # held while the adapter builds the model (construction_bytes)
    largest_activation_bytes: float = 0.0  # the largest single activation (part of floor_bytes)
    floor_bytes: float = 0.0  # what must be resident at once at some moment of the pass (pass_bytes)

    @property
    def arithmetic_intensity(self) -> float:
        return self.flops / max(self.bytes_moved, 1.0)

    @property
    def memory_bytes(self) -> float:
        """Weights + training state + live activations + KV cache (no runtime overhead)."""
        return self.weight_bytes + self.state_bytes + self.peak_activation_bytes + self.kv_cache_bytes

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        d["arithmetic_intensity"] = self.arithmetic_intensity
        d["memory_bytes"] = self.memory_bytes
        return d


def _effective_seq(model: str, seq_len: int) -> int:
    from engine.catalog import get_model
    from engine.workloads import effective_seq_len

    return effective_seq_len(get_model(model), seq_len)


#: How many times a pass moves its weights and its activations, by mode: activations are written
#: and read back (2); a training step also reads weights for the backward pass and writes their
#: gradients (3) and moves activations and their gradients (4), plus the optimizer's traffic.
TRAFFIC: dict[str, tuple[int, int]] = {"inference": (1, 2), "decode": (1, 2), "training": (3, 4)}


def _widths(precision: Any, table: dict[str, int]) -> Any:
    """``table``'s width of each precision in an array (one look-up per distinct precision)."""
    import numpy as np

    uniq, inv = np.unique(np.asarray(precision, dtype=object).astype(str), return_inverse=True)
    return np.array([table[u] for u in uniq], dtype=float)[inv].reshape(np.shape(precision))


def exported_graph(runtime: Any) -> Any:
    """Whether ``runtime`` runs an exported graph (every runtime but torch): no KV cache is kept,
    and int8 quantizes every weight initializer (module docstring). Works on arrays."""
    import numpy as np

    return np.asarray(runtime, dtype=object) != "torch"


def weight_bytes(params: Any, linear_weight_elems: Any, tied_head_elems: Any, precision: Any, runtime: Any) -> Any:
    """Resident bytes of the weights at ``precision`` on ``runtime`` (module docstring; arrays work).

    torch int8: the Linear weights (and an int8 copy of a tied LM head) at 1 byte, every other
    parameter at 4; an exported graph's int8: every weight at 1 byte."""
    import numpy as np

    p = np.asarray(params, dtype=float)
    prec = np.asarray(precision, dtype=object)
    linear = np.asarray(linear_weight_elems, dtype=float)
    torch_int8 = TENSOR_WIDTH["int8"] * (p - linear) + WIDTH["int8"] * (linear + np.asarray(tied_head_elems, dtype=float))
    return np.where((prec == "int8") & ~exported_graph(runtime), torch_int8, p * _widths(prec, WIDTH))


def construction_bytes(params: Any, weights: Any, quantized_elems: Any, tied_head_elems: Any, precision: Any,
                       runtime: Any, legacy: Any = False) -> Any:
    """Bytes held while the adapter builds the model, before the first pass (arrays work).

    A process's peak memory is the larger of this and the run's working set; pages freed while
    building stay in the process. torch builds a half-precision model in its own dtype
    (``engine.workloads.build_model``): the weights as run, plus an LM head that transformers
    allocates before tying it to the input embedding (gpt2: 147 MiB in fp32). Dynamic quantization
    needs that fp32 model first and quantizes it in place, adding the int8 weights
    (``quantized_elems``: Linear weights and a tied head's copy). ``legacy`` runs were measured
    before 2026-12-07 (``hardware.torch_common.BUILD_PROTOCOL`` absent from their versions): torch
    built every model in fp32 and converted it (fp16/bf16), and quantized a deep copy (int8). An
    exported graph loads its file: the weights as run. Measured in a fresh process (imports warmed),
    the build raised the peak by 1.00-1.07x these bytes (distilbert, gpt2, resnet50; fp32, bf16,
    int8); building bert-base peaked at 836 and 1,328 MiB the legacy way against 582 and 910 now
    (bf16, int8; a fresh process)."""
    import numpy as np

    p = np.asarray(params, dtype=float)
    w = np.asarray(weights, dtype=float)
    prec = np.asarray(precision, dtype=object)
    torch_rt = ~exported_graph(runtime)
    old = np.asarray(legacy, dtype=bool)
    int8 = torch_rt & (prec == "int8")
    half = torch_rt & ((prec == "bf16") | (prec == "fp16"))
    tied = np.asarray(tied_head_elems, dtype=float)
    fp32_build = WIDTH["fp32"] * (p + tied)  # the fp32 model and its untied head
    quantized = WIDTH["int8"] * np.asarray(quantized_elems, dtype=float)
    int8_build = np.maximum(fp32_build, np.where(old, 2 * WIDTH["fp32"] * p, WIDTH["fp32"] * p) + quantized)
    own_dtype = w + tied * _widths(prec, WIDTH)  # a half model is built half, with its untied head
    return np.where(int8, int8_build, np.where(half & old, fp32_build, np.where(torch_rt, own_dtype, w)))


def pass_bytes(counts: dict[str, Any], batch: Any, precision: Any, mode: Any, runtime: Any) -> dict[str, Any]:
    """Bytes of a pass from its counts at batch 1 (arrays work): weight, activation (traffic), KV
    cache, training state, bytes moved, live (working set besides weights and state) and floor
    bytes. ``counts`` holds ``params``, ``linear_weight_elems``, ``tied_head_elems``,
    ``activation_elems``, ``max_activation_elems`` and ``kv_cache_elems``, and ``peak_live_elems``
    where counted (0 or absent: twice the largest activation stands in for it)."""
    import numpy as np

    prec = np.asarray(precision, dtype=object)
    train = np.asarray(mode, dtype=object) == "training"
    b = np.asarray(batch, dtype=float)
    tw, pw = _widths(prec, TENSOR_WIDTH), _widths(prec, WIDTH)
    weights = weight_bytes(counts["params"], counts["linear_weight_elems"], counts["tied_head_elems"], prec, runtime)
    acts = np.asarray(counts["activation_elems"], dtype=float) * b * tw
    largest = np.asarray(counts["max_activation_elems"], dtype=float) * b * tw
    # inference's working set: the activations alive at once at the peak (counted), else the largest
    # activation twice (its input and output alive at once: the analytic fallback's estimate)
    peak = np.asarray(counts.get("peak_live_elems", 0.0), dtype=float) * b * tw
    working = np.where(peak > 0, peak, 2 * largest)
    # an exported graph keeps no KV cache (the forward's; a decode step is torch's)
    kv = np.where(exported_graph(runtime) & (np.asarray(mode, dtype=object) != "decode"), 0.0,
                  np.asarray(counts["kv_cache_elems"], dtype=float) * b * tw)
    param_bytes = np.asarray(counts["params"], dtype=float) * pw  # training: int8 is refused
    state = np.where(train, TRAINING_STATE * param_bytes, 0.0)
    (tw_i, ta_i), (tw_t, ta_t) = TRAFFIC["inference"], TRAFFIC["training"]  # decode moves as inference
    moved = np.where(train, tw_t * weights + ta_t * acts + ADAM_TRAFFIC * param_bytes, tw_i * weights + ta_i * acts + kv)
    live = np.where(train, acts, working)
    floor = np.where(train, weights + state, weights + largest + kv)
    tied = np.asarray(counts["tied_head_elems"], dtype=float)
    quantized = np.asarray(counts["linear_weight_elems"], dtype=float) + tied
    build = {f"{k}build_bytes": construction_bytes(counts["params"], weights, quantized, tied, prec, runtime, legacy)
             for k, legacy in (("", False), ("legacy_", True))}
    return {"weight_bytes": weights, "activation_bytes": acts, "kv_cache_bytes": kv, "state_bytes": state,
            "bytes_moved": moved, "live_bytes": live, "floor_bytes": floor, "largest_bytes": largest, **build}


def _build(counts: "PassCounts", family: str, batch: int, precision: str, mode: str, runtime: str) -> Descriptor:
    from dataclasses import asdict

    b = {k: float(v) for k, v in pass_bytes(asdict(counts), batch, precision, mode, runtime).items()}
    return Descriptor(model=counts.model, family=family, params=int(counts.params), flops=counts.flops * batch,
                      bytes_moved=b["bytes_moved"], weight_bytes=b["weight_bytes"],
                      activation_bytes=b["activation_bytes"], method=counts.method,
                      batch_size=batch, seq_len=counts.seq_len, precision=precision, mode=mode,
                      state_bytes=b["state_bytes"], kv_cache_bytes=b["kv_cache_bytes"],
                      peak_activation_bytes=b["live_bytes"],
                      linear_flops=counts.linear_flops * batch, note=counts.note,
                      tied_head_flops=counts.tied_head_flops * batch, runtime=runtime, build_bytes=b["build_bytes"],
                      largest_activation_bytes=b["largest_bytes"], floor_bytes=b["floor_bytes"])


def describe(config: Config, method: str = "auto") -> Descriptor:
    """FLOPs, parameters and bytes moved of one pass of ``config`` (hardware is irrelevant here).

    ``method``: ``auto`` (FLOP counter when transformers is installed, else analytic),
    ``flop_counter`` or ``analytic``.
    """
    from engine.catalog import get_model
    from engine.descriptors.counting import pass_counts

    entry = get_model(config.model)
    seq = _effective_seq(config.model, config.seq_len)
    kind = "train" if config.mode == "training" else "forward"
    return _build(pass_counts(entry.name, seq, kind, method), entry.family, config.batch_size, config.precision,
                  config.mode, config.runtime)


def _decode_cache(config: Config) -> tuple[int, Optional[int]]:
    """(tokens a decode step's cache holds, the model's position limit or None)."""
    from engine.catalog import get_model
    from engine.workloads import position_limit

    return max(1, _effective_seq(config.model, config.seq_len)), position_limit(get_model(config.model))


def has_decode_step(config: Config) -> bool:
    """Whether ``config`` describes a decode step: a generative model whose cache of ``seq_len``
    tokens leaves a position for the next one (gpt2 with 1,024 cached tokens raises when run)."""
    from engine.catalog import get_model
    from engine.descriptors.counting import supports_decode

    if not supports_decode(get_model(config.model)):
        return False
    seq, limit = _decode_cache(config)
    return limit is None or seq < limit


def describe_decode(config: Config, method: str = "auto") -> Descriptor:
    """One generated token per sequence with a KV cache of ``config.seq_len`` tokens.

    Only for generative models (text_generation, and Whisper); the roofline of a decode step is usually memory-bound
    (every weight and the whole KV cache are read for a handful of FLOPs per byte).
    """
    from engine.catalog import get_model
    from engine.descriptors.counting import pass_counts, supports_decode
    from engine.errors import InvalidValueError

    entry = get_model(config.model)
    if not supports_decode(entry):
        raise InvalidValueError("model for decode", config.model, "a generative model (text_generation family or whisper)")
    seq, limit = _decode_cache(config)
    if limit is not None and seq >= limit:
        raise InvalidValueError("seq_len for a decode step", seq,
                                f"1 to {limit - 1} for {entry.name} (a cache of {limit} tokens leaves no position "
                                "for the next one)")
    return _build(pass_counts(entry.name, seq, "decode", method), entry.family, config.batch_size,
                  config.precision, "decode", config.runtime)


def describe_many(configs: Sequence[Config] | "pd.DataFrame", method: str = "auto") -> "pd.DataFrame":
    """Descriptors of many configurations as a DataFrame, one row per input row, in order.

    Columns: model, family, flops, linear_flops, tied_head_flops, bytes_moved, params, weight_bytes,
    activation_bytes, state_bytes, kv_cache_bytes, memory_bytes, floor_bytes, build_bytes,
    legacy_build_bytes, seq_len_effective, method. ``build_bytes`` is what the adapter holds while it
    builds the model (:func:`construction_bytes`), ``legacy_build_bytes`` the same for a run measured
    before the build protocol changed.
    ``floor_bytes`` is what must be resident at once at some moment of the pass, whatever the runtime
    fuses or frees: the weights; in training also their gradients and AdamW's two moments (each at
    least the weights' width, so 3x the weights); in inference one copy of the largest activation (a
    leaf module's output, e.g. the logits) and the KV cache the forward returns (torch's; an exported
    graph keeps none). Counts are taken once per distinct (model, effective seq_len, mode) and scaled
    by batch, precision and runtime with numpy (:func:`pass_bytes`), so 100k configurations cost a few
    distinct counts plus vectorised arithmetic.
    ``configs`` is a sequence of :class:`Config` or a DataFrame with columns model, batch_size,
    seq_len, precision, mode and optionally runtime (torch when absent).
    """
    import numpy as np
    import pandas as pd

    from engine.catalog import get_model
    from engine.config import MODES, PRECISIONS
    from engine.descriptors.counting import pass_counts
    from engine.errors import InvalidValueError

    if isinstance(configs, pd.DataFrame):
        df = configs[["model", "batch_size", "seq_len", "precision", "mode"]].reset_index(drop=True).copy()
        df["runtime"] = (configs["runtime"].to_numpy() if "runtime" in configs.columns else "torch")
    else:
        df = pd.DataFrame({"model": [c.model for c in configs], "batch_size": [c.batch_size for c in configs],
                           "seq_len": [c.seq_len for c in configs], "precision": [c.precision for c in configs],
                           "mode": [c.mode for c in configs], "runtime": [c.runtime for c in configs]})
    n = len(df)
    cols = ["model", "family", "flops", "linear_flops", "tied_head_flops", "bytes_moved", "params", "weight_bytes",
            "activation_bytes", "state_bytes", "kv_cache_bytes", "memory_bytes", "floor_bytes", "build_bytes",
            "legacy_build_bytes", "seq_len_effective", "method"]
    if n == 0:
        return pd.DataFrame(columns=cols)
    bad_p = set(df["precision"].unique()) - set(PRECISIONS)
    if bad_p:
        raise InvalidValueError("precision", sorted(bad_p)[0], ", ".join(PRECISIONS))
    bad_m = set(df["mode"].unique()) - set(MODES)
    if bad_m:
        raise InvalidValueError("mode", sorted(bad_m)[0], ", ".join(MODES))

    # effective sequence length per distinct (model, seq_len), then counts per distinct workload;
    # grouping goes through integer codes (pd.factorize per column), not Python tuples
    m_codes, m_uni = pd.factorize(df["model"])
    s_codes, s_uni = pd.factorize(df["seq_len"].astype(int))
    pair, pair_inv = np.unique(m_codes.astype(np.int64) * len(s_uni) + s_codes, return_inverse=True)
    eff_pair = np.array([_effective_seq(m_uni[p // len(s_uni)], int(s_uni[p % len(s_uni)])) for p in pair], dtype=np.int64)
    seq_eff = eff_pair[pair_inv.reshape(-1)]
    train = (df["mode"] == "training").to_numpy()
    e_codes, e_uni = pd.factorize(seq_eff)
    wl = (m_codes.astype(np.int64) * len(e_uni) + e_codes) * 2 + train
    uniq, codes = np.unique(wl, return_inverse=True)
    codes = codes.reshape(-1)
    table = []
    families, methods = [], []
    for u in uniq:
        model = m_uni[int(u // 2) // len(e_uni)]
        seq = int(e_uni[int(u // 2) % len(e_uni)])
        c = pass_counts(model, seq, "train" if u % 2 else "forward", method)
        table.append((c.params, c.flops, c.activation_elems, c.max_activation_elems, c.kv_cache_elems, c.linear_flops,
                      c.tied_head_flops, c.linear_weight_elems, c.tied_head_elems, c.peak_live_elems))
        families.append(get_model(model).family)
        methods.append(c.method)
    t = np.asarray(table, dtype=float)
    params, flops1, act1, maxact1, kv1, linear1, tied1, lin_w, tied_w, peak1 = (t[codes, j] for j in range(10))
    b = df["batch_size"].to_numpy(dtype=float)
    by = pass_bytes({"params": params, "linear_weight_elems": lin_w, "tied_head_elems": tied_w,
                     "activation_elems": act1, "max_activation_elems": maxact1, "kv_cache_elems": kv1,
                     "peak_live_elems": peak1},
                    b, df["precision"].to_numpy(dtype=object), df["mode"].to_numpy(dtype=object),
                    df["runtime"].to_numpy(dtype=object))
    out = pd.DataFrame({
        "model": df["model"].to_numpy(), "family": np.asarray(families, dtype=object)[codes],
        "flops": flops1 * b, "linear_flops": linear1 * b, "tied_head_flops": tied1 * b, "bytes_moved": by["bytes_moved"],
        "params": params, "weight_bytes": by["weight_bytes"],
        "activation_bytes": by["activation_bytes"], "state_bytes": by["state_bytes"], "kv_cache_bytes": by["kv_cache_bytes"],
        "memory_bytes": by["weight_bytes"] + by["state_bytes"] + by["live_bytes"] + by["kv_cache_bytes"],
        "floor_bytes": by["floor_bytes"], "build_bytes": by["build_bytes"],
        "legacy_build_bytes": by["legacy_build_bytes"], "seq_len_effective": seq_eff,
        "method": np.asarray(methods, dtype=object)[codes]})
    return out[cols]


__all__ = ["Descriptor", "WIDTH", "construction_bytes", "describe", "describe_decode", "describe_many", "has_decode_step"]
