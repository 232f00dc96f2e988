"""Build catalog models with random weights, and synthetic inputs of the right shapes.

Used by the adapters (real device, real weights) and by the descriptors (meta device, no memory).
Performance does not depend on weight values, so nothing is ever downloaded: every model comes
from its transformers architecture config (the ``hf`` extra).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from engine.catalog import HF_CLASS_EXAMPLE, ModelEntry, architecture_error, entry_error, get_model
from engine.errors import NotAvailableError

if TYPE_CHECKING:
    import torch


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:  # pragma: no cover - depends on the install
        raise NotAvailableError("building models needs transformers: pip install 'perfcast[hf]'") from None
    transformers.logging.set_verbosity_error()
    return transformers


def _hf_class(tf: Any, entry: ModelEntry, key: str) -> Any:
    """The transformers class an entry names, or one line saying which entry names what."""
    name = getattr(entry, key)
    cls = getattr(tf, name, None)
    if cls is None:
        raise entry_error(key, name, f"model {entry.name!r} ({entry.origin})",
                          f"a class of transformers {tf.__version__}, e.g. {HF_CLASS_EXAMPLE[key]}")
    return cls


def _misspelt_arch_key(cls: Any, arch: dict[str, Any]) -> Optional[tuple[str, str]]:
    """(key, the key it is close to) for an ``arch`` key that the config class does not know but
    nearly does, else None. A transformers config stores any keyword it does not know as a plain
    attribute, so ``hidden_sizee: 512`` would build a model of the default width without a word
    (57.5M parameters instead of 35.1M in the QA that found it). Keys close to no known one pass:
    configs take general keywords (``num_labels``, token ids) that no list here should second-guess."""
    import difflib

    known = set(cls().to_dict()) | set(getattr(cls, "attribute_map", {}))
    for key in arch:
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.85)
        if close:
            return key, close[0]
    return None


def hf_config(entry: ModelEntry) -> Any:
    tf = _transformers()
    cls = _hf_class(tf, entry, "hf_config")
    arch = dict(entry.arch)
    bad = _misspelt_arch_key(cls, arch)
    if bad is not None:
        raise entry_error("arch key", bad[0], f"model {entry.name!r} ({entry.origin})",
                          f"a {entry.hf_config} field: did you mean {bad[1]!r}?")
    try:
        if entry.hf_config == "CLIPConfig":
            return cls(text_config=arch.pop("text_config"), vision_config=arch.pop("vision_config"), **arch)
        return cls(**arch)
    except (TypeError, ValueError) as e:  # a user entry's arch that the config class rejects
        raise entry_error("arch", entry.arch, f"model {entry.name!r} ({entry.origin})",
                          f"keyword arguments {entry.hf_config} accepts ({str(e).splitlines()[0]})") from None


def build_model(name_or_entry: str | ModelEntry, device: str = "cpu", dtype: "torch.dtype | None" = None) -> "torch.nn.Module":
    """The model with random weights, in eval mode, on ``device`` (``"meta"`` allocates nothing).

    A floating ``dtype`` is built in that dtype, as a deployment loads its checkpoint: built in fp32
    and converted, a half-precision model held its fp32 weights at the peak (building bert-base in
    bf16 peaked at 836 MiB against 582 in a fresh process; on a 24 GiB GPU an fp16 7B model would
    not have been built at all)."""
    import torch

    entry = get_model(name_or_entry) if isinstance(name_or_entry, str) else name_or_entry
    tf = _transformers()
    cfg = hf_config(entry)
    cfg.use_cache = getattr(cfg, "use_cache", True)
    model_cls = _hf_class(tf, entry, "hf_model")
    default = torch.get_default_dtype()
    if dtype is not None and dtype.is_floating_point:
        torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = model_cls(cfg)
    except Exception as e:  # noqa: BLE001 - a user entry whose arch transformers cannot build
        if entry.origin == "shipped":  # the shipped catalog builds: that would be perfcast's bug
            raise
        # one line naming the entry and the file, not a transformers traceback from `models list`
        # or `predict` (hidden size 512 with 7 heads; a GPT2Model asked to build from a BertConfig)
        raise architecture_error(entry, e, "one transformers builds") from None
    finally:
        torch.set_default_dtype(default)
    if dtype is not None:
        model = model.to(dtype=dtype)  # buffers made in an explicit dtype
    return model.eval()


#: architecture keys that bound the token positions a model embeds (the first one present counts)
_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_target_positions")


def position_limit(entry: ModelEntry) -> Optional[int]:
    """The longest sequence ``entry``'s architecture has position embeddings for, from its catalog
    ``arch`` (None where it names none: T5's relative positions have no limit). RoBERTa-style
    embeddings start counting after the padding index, so 514 positions hold 512 tokens."""
    for key in _POSITION_KEYS:
        v = entry.arch.get(key)
        if isinstance(v, int) and v > 0:
            if key == "max_position_embeddings" and "Roberta" in entry.hf_config:
                v -= int(entry.arch.get("pad_token_id", 1)) + 1
            return v
    return None


def effective_seq_len(entry: ModelEntry, seq_len: int) -> int:
    """Vision models have no sequence axis (0); CLIP's text tower caps at 77 tokens; 0 means the
    default of 128. A longer sequence than the model embeds positions for is refused: built, such a
    pass fails inside the model, and a prediction for it describes nothing that can run. A value no
    configuration takes (negative, not an integer) is refused for every model, as a Config refuses
    it: a vision model's 0 made ``--seq-length -1`` pass in recommend-hardware, matrix and optimize."""
    from engine.config import Config

    Config("x", "y", seq_len=seq_len)  # raises InvalidValueError naming seq_len and what is valid
    if not entry.has_sequence:
        return 0
    if entry.max_seq_len:
        return min(seq_len or entry.max_seq_len, entry.max_seq_len)
    limit = position_limit(entry)
    if limit is not None and seq_len > limit:
        from engine.errors import InvalidValueError

        raise InvalidValueError("seq_len", seq_len, f"1 to {limit} for {entry.name} (its position embeddings)")
    return seq_len or 128


def make_inputs(name_or_entry: str | ModelEntry, batch_size: int, seq_len: int, device: str = "cpu",
                float_dtype: "torch.dtype | None" = None) -> dict[str, "torch.Tensor"]:
    """Synthetic forward() keyword arguments: token ids, pixels, or log-mel audio features."""
    import torch

    entry = get_model(name_or_entry) if isinstance(name_or_entry, str) else name_or_entry
    fdt = float_dtype or torch.float32
    g = torch.Generator().manual_seed(0)
    arch = entry.arch
    b = batch_size

    def tokens(n: int, vocab: int) -> "torch.Tensor":
        if device == "meta":
            return torch.empty(b, n, dtype=torch.long, device="meta")
        return torch.randint(3, max(4, vocab - 1), (b, n), generator=g).to(device)

    def floats(*shape: int) -> "torch.Tensor":
        if device == "meta":
            return torch.empty(*shape, dtype=fdt, device="meta")
        return torch.randn(*shape, generator=g).to(device=device, dtype=fdt)

    s = effective_seq_len(entry, seq_len)
    if entry.hf_config in ("ViTConfig", "ResNetConfig"):
        size = entry.image_size or 224
        return {"pixel_values": floats(b, 3, size, size)}
    if entry.hf_config == "WhisperConfig":
        # the encoder always sees 30 s of audio (3000 frames); seq_len is the decoder's length
        frames = entry.audio_frames or 3000
        return {"input_features": floats(b, arch["num_mel_bins"], frames),
                "decoder_input_ids": tokens(max(1, s), arch["vocab_size"])}
    if entry.hf_config == "CLIPConfig":
        size = entry.image_size or 224
        return {"input_ids": tokens(s, arch["text_config"]["vocab_size"]), "pixel_values": floats(b, 3, size, size)}
    if entry.hf_config == "T5Config":
        return {"input_ids": tokens(s, arch["vocab_size"]), "decoder_input_ids": tokens(s, arch["vocab_size"])}
    return {"input_ids": tokens(s, arch["vocab_size"])}
