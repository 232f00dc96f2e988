"""Analytic descriptors: the fallback when transformers (and so the FLOP counter) is absent.

Standard transformer arithmetic from the architecture hyperparameters in configs/models.yaml
(Kaplan et al. 2020, "Scaling laws", Table 1; multiply-add = 2 FLOPs), per layer of width h,
attention width a (= heads x head_dim), key/value width k (grouped-query attention: k < a),
feed-forward width f (m = 3 matrices when gated, as in Llama/Mistral, else 2):

    linear FLOPs per token  = 2 (2 h a + 2 h k + m h f)           (= 2 x non-embedding params;
                                                                   ``linear_flops``, with the LM head
                                                                   and cross-attention projections)
    attention FLOPs         = 4 t_q t_kv a                        (QK^T and AV)
    cross-attention         = 4 h a (t_q + t_enc) + 4 t_q t_enc a (encoder-decoder models)
    LM head                 = 2 h V per token                     (``tied_head_flops`` too when
                                                                   it shares the input embedding)

so a decoder-only forward at sequence s is ~ 2 N s + 4 L s^2 h. Activations per token per layer
(leaf-module outputs): a + 2 k + 4 h + m f. Training is 3x the forward FLOPs (the backward does two
matmuls per forward matmul). Parameters are the published figure from models.yaml (else the weight matmuls' and embeddings').

Convolutional networks have no such closed form in their hyperparameters: their per-image figures
are computed once with the FLOP counter (``python -m engine.descriptors.analytic
--write-reference``) and shipped in ``engine/data/descriptor_reference.json``. The tests check
these formulas against the FLOP counter for every transformer in the catalog.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from engine.catalog import ModelEntry, models
from engine.descriptors.counting import PassCounts
from engine.errors import NotAvailableError

REFERENCE_FILE = "descriptor_reference.json"


@dataclass
class _Work:
    flops: float = 0.0
    linear: float = 0.0  # of flops: weight matmuls (Linear layers), what int8 dynamic quantization runs in int8
    acts: float = 0.0
    largest: float = 0.0
    kv: float = 0.0
    tied: float = 0.0  # of linear: an LM head whose weight is the input embedding (counting.py's tied_head_flops)
    weights: float = 0.0  # elements of the weight matmuls' weights, a tied head's excluded (linear_weight_elems)
    tied_weights: float = 0.0  # a tied LM head's weight (tied_head_elems)

    def add(self, flops: float, acts: float, largest: float, linear: float = 0.0) -> None:
        self.flops += flops
        self.linear += linear
        self.acts += acts
        self.largest = max(self.largest, largest)

    def add_matmul(self, flops: float, acts: float, largest: float, weights: float | None = None) -> None:
        """A weight matmul (a Linear layer): all of its FLOPs are linear; ``weights`` defaults to
        those of a layer applied to one token."""
        self.add(flops, acts, largest, linear=flops)
        self.weights += flops / 2.0 if weights is None else weights


def _stack(w: _Work, layers: int, h: int, f: int, tokens: int, *, attend: int | None = None, inner: int | None = None,
           kv_dim: int | None = None, gated: bool = False, cross: int = 0, cross_cached: bool = False) -> None:
    """Add ``layers`` transformer blocks over ``tokens`` tokens (attending to ``attend``).

    ``cross``: encoder tokens a decoder block cross-attends to; ``cross_cached``: their keys and
    values were projected once at prefill (a decode step only projects its own query/output).
    """
    a = inner or h
    k = kv_dim or a
    attend = tokens if attend is None else attend
    m = 3 if gated else 2
    lin = 2.0 * (2 * h * a + 2 * h * k + m * h * f)
    linear = layers * lin * tokens
    flops = linear + layers * 4.0 * tokens * attend * a
    acts = layers * tokens * (a + 2 * k + 4 * h + m * f)
    w.weights += layers * lin / 2.0
    if cross:
        projections = layers * 4.0 * h * a * (tokens + (0 if cross_cached else cross))
        linear += projections
        flops += projections + layers * 4.0 * tokens * cross * a
        # a decode step's cross keys and values were projected at the prefill: only its own outputs
        acts += layers * (tokens * 2 * a + (0 if cross_cached else cross * 2 * a))
        w.weights += layers * 4.0 * h * a
    w.add(flops, acts, tokens * max(f, a, h), linear=linear)


def _lm_head(w: _Work, h: int, vocab: int, tokens: int, tied: bool) -> None:
    flops = 2.0 * h * vocab * tokens
    w.add_matmul(flops, float(vocab * tokens), float(vocab * tokens), weights=0.0)
    if tied:
        w.tied += flops
        w.tied_weights += float(h * vocab)
    else:
        w.weights += float(h * vocab)


def _tied(arch: dict[str, Any], default: bool) -> bool:
    """Whether the LM head shares the input embedding's weight (transformers' ``tie_word_embeddings``,
    whose default is True for GPT-2, OPT, T5 and Whisper and False for Llama and Mistral)."""
    return bool(arch.get("tie_word_embeddings", default))


def _reference() -> dict[str, Any]:
    try:
        return json.loads((resources.files("engine") / "data" / REFERENCE_FILE).read_text())
    except (OSError, ValueError, FileNotFoundError):
        return {}


def analytic_counts(entry: ModelEntry, seq_len: int, kind: str) -> PassCounts:
    """Counts at batch 1 for ``kind`` in forward | train | decode (see the module docstring)."""
    a = entry.arch
    cfg = entry.hf_config
    w = _Work()
    decode = kind == "decode"
    s = max(1, seq_len)
    emb = 0
    note = "analytic transformer formulas"
    if cfg in ("BertConfig", "RobertaConfig", "DistilBertConfig"):
        L = a.get("num_hidden_layers", a.get("n_layers"))
        h = a.get("hidden_size", a.get("dim"))
        f = a.get("intermediate_size", a.get("hidden_dim"))
        _stack(w, L, h, f, s)
        if cfg != "DistilBertConfig":
            w.add_matmul(2.0 * h * h, h, h)  # pooler on the first token
        emb = (a["vocab_size"] + a.get("max_position_embeddings", 512)) * h
    elif cfg in ("GPT2Config", "OPTConfig", "LlamaConfig", "MistralConfig"):
        L = a.get("num_hidden_layers", a.get("n_layer"))
        h = a.get("hidden_size", a.get("n_embd"))
        f = a.get("intermediate_size", a.get("ffn_dim", 4 * h))
        heads = a.get("num_attention_heads", a.get("n_head"))
        kv_heads = a.get("num_key_value_heads", heads)
        kv_dim = h * kv_heads // heads
        gated = cfg in ("LlamaConfig", "MistralConfig")
        tokens = 1 if decode else s
        # a sliding window (Mistral) caps what is cached and what a new token attends to; a prefill's
        # attention is still counted whole, as FlopCounterMode counts the masked product
        window = a.get("sliding_window") if cfg == "MistralConfig" else None
        cached = min(s, window) if window else s
        _stack(w, L, h, f, tokens, attend=min(s + 1, window or s + 1) if decode else s, kv_dim=kv_dim, gated=gated)
        _lm_head(w, h, a["vocab_size"], tokens, _tied(a, not gated))
        w.kv = 2.0 * L * cached * kv_dim
        emb = a["vocab_size"] * h + (a.get("n_positions", a.get("max_position_embeddings", 0)) * h
                                     if cfg in ("GPT2Config", "OPTConfig") else 0)
    elif cfg == "T5Config":
        h, f = a["d_model"], a["d_ff"]
        inner = a["num_heads"] * a["d_kv"]
        Le, Ld = a["num_layers"], a.get("num_decoder_layers", a["num_layers"])
        if not decode:
            _stack(w, Le, h, f, s, inner=inner)
        tokens = 1 if decode else s
        _stack(w, Ld, h, f, tokens, attend=s + 1 if decode else s, inner=inner, cross=s, cross_cached=decode)
        _lm_head(w, h, a["vocab_size"], tokens, _tied(a, True))
        w.kv = 2.0 * Ld * s * inner * 2  # self- and cross-attention caches
        emb = a["vocab_size"] * h
    elif cfg == "ViTConfig":
        h, p, img = a["hidden_size"], a["patch_size"], a.get("image_size", entry.image_size or 224)
        patches = (img // p) ** 2
        w.add(2.0 * a.get("num_channels", 3) * p * p * h * patches, patches * h, patches * h)
        _stack(w, a["num_hidden_layers"], h, a["intermediate_size"], patches + 1)
        w.add_matmul(2.0 * h * h, h, h)
        emb = (patches + 1) * h
    elif cfg == "WhisperConfig":
        h, mel = a["d_model"], a["num_mel_bins"]
        frames = entry.audio_frames or 3000
        enc_t = frames // 2
        if not decode:
            w.add(2.0 * mel * 3 * h * frames + 2.0 * h * 3 * h * enc_t, h * (frames + enc_t), h * frames)
            _stack(w, a["encoder_layers"], h, a["encoder_ffn_dim"], enc_t)
        tokens = 1 if decode else s
        _stack(w, a["decoder_layers"], h, a["decoder_ffn_dim"], tokens, attend=s + 1 if decode else s, cross=enc_t,
               cross_cached=decode)
        _lm_head(w, h, a["vocab_size"], tokens, _tied(a, True))
        w.kv = 2.0 * a["decoder_layers"] * h * (s + enc_t)
        emb = a["vocab_size"] * h + a.get("max_target_positions", 448) * h + enc_t * h
    elif cfg == "CLIPConfig":
        t, v = a["text_config"], a["vision_config"]
        st = min(s, entry.max_seq_len or 77)
        _stack(w, t["num_hidden_layers"], t["hidden_size"], t["intermediate_size"], st)
        img, p, hv = v.get("image_size", entry.image_size or 224), v["patch_size"], v["hidden_size"]
        patches = (img // p) ** 2
        w.add(2.0 * 3 * p * p * hv * patches, patches * hv, patches * hv)
        _stack(w, v["num_hidden_layers"], hv, v["intermediate_size"], patches + 1)
        proj = a.get("projection_dim", 512)
        w.add_matmul(2.0 * (t["hidden_size"] + hv) * proj, 2 * proj, proj)
        emb = t["vocab_size"] * t["hidden_size"] + t.get("max_position_embeddings", 77) * t["hidden_size"] + (patches + 1) * hv
    else:
        ref = _reference().get(entry.name)
        if not ref:
            raise NotAvailableError(f"no analytic formula for {entry.name} ({cfg}) and no shipped reference "
                                    "figure; install transformers (pip install 'perfcast[hf]') to count it")
        if decode:
            raise NotAvailableError(f"{entry.name} has no decode step")
        key = "train" if kind == "train" else "forward"
        r = ref[key]
        return PassCounts(model=entry.name, seq_len=seq_len, kind=kind, params=int(ref["params"]),
                          embedding_params=int(ref.get("embedding_params", 0)), flops=float(r["flops"]),
                          linear_flops=float(r["linear_flops"]),
                          activation_elems=float(r["activation_elems"]), max_activation_elems=float(r["max_activation_elems"]),
                          kv_cache_elems=0.0, method="analytic", peak_live_elems=float(r.get("peak_live_elems", 0.0)),
                          note=f"per-image figures counted once with FlopCounterMode ({REFERENCE_FILE})",
                          linear_weight_elems=float(ref["forward"]["linear_flops"]) / 2.0)
    scale = 3.0 if kind == "train" else 1.0
    flops, linear, tied = w.flops * scale, w.linear * scale, w.tied * scale
    if kind == "train":
        note += "; training FLOPs = 3 x forward"
    lin_w, tied_w = w.weights, w.tied_weights
    if decode:  # the step skips the encoder, whose weights are still there
        fwd = analytic_counts(entry, seq_len, "forward")
        lin_w, tied_w = fwd.linear_weight_elems, fwd.tied_head_elems
    # the published figure; else the weight matmuls and embeddings (norms and biases left out)
    params = int(entry.published_params or (lin_w + emb))
    # the forward returns its cache where transformers' model does: decoders and Whisper
    returns_cache = entry.family == "text_generation" or cfg == "WhisperConfig"
    kv = w.kv if (decode or (kind == "forward" and returns_cache)) else 0.0
    return PassCounts(model=entry.name, seq_len=seq_len, kind=kind, params=params, embedding_params=int(emb),
                      flops=flops, linear_flops=linear, activation_elems=w.acts, max_activation_elems=w.largest,
                      kv_cache_elems=kv,
                      method="analytic", note=note, tied_head_flops=tied, linear_weight_elems=lin_w,
                      tied_head_elems=tied_w)


def write_reference(path: str | None = None) -> dict[str, Any]:
    """Count the models without a closed form (CNNs) with the FLOP counter; write the JSON."""
    from pathlib import Path

    from engine.descriptors.counting import count_with_flop_counter

    out: dict[str, Any] = {}
    for name, entry in models().items():
        if entry.hf_config != "ResNetConfig":
            continue
        fwd = count_with_flop_counter(entry, 0, "forward")
        train = count_with_flop_counter(entry, 0, "train")
        out[name] = {"params": fwd.params, "embedding_params": fwd.embedding_params,
                     "forward": {"flops": fwd.flops, "linear_flops": fwd.linear_flops,
                                 "activation_elems": fwd.activation_elems,
                                 "max_activation_elems": fwd.max_activation_elems,
                                 "peak_live_elems": fwd.peak_live_elems},
                     "train": {"flops": train.flops, "linear_flops": train.linear_flops,
                               "activation_elems": train.activation_elems,
                               "max_activation_elems": train.max_activation_elems},
                     "counted_with": "torch.utils.flop_counter.FlopCounterMode on meta, batch 1, image_size "
                                     f"{entry.image_size or 224}"}
    target = Path(path) if path else Path(str(resources.files("engine"))) / "data" / REFERENCE_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return out


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    import sys

    if "--write-reference" in sys.argv:
        print(json.dumps(write_reference(), indent=1))
    else:
        print("usage: python -m engine.descriptors.analytic --write-reference")
