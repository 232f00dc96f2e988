"""What the torch adapters (CPU, CUDA/ROCm, MPS) share: model preparation, steps, generation.

The device-specific adapters only decide the device, the timer and how memory is read; the
work done per iteration is identical, so torch-cpu and torch-cuda numbers are comparable.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

from engine.catalog import ModelEntry, get_model
from engine.config import Config

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "int8": "float32"}
#: How the torch adapters build a model, written into every run's versions: half precision is
#: built in its own dtype, int8 quantizes the fp32 model in place. Runs without it (before
#: 2026-12-07) built in fp32 and converted, or quantized a copy, and their peak memory holds that
#: build (building in a fresh process peaked at: bert-base bf16 836 MiB against 582 now, int8
#: 1,328 against 910, gpt2 bf16 993 against 682). ``engine.models.targets.legacy_builds`` tells the
#: memory models which runs are which.
BUILD_PROTOCOL_KEY = "perfcast_build"
BUILD_PROTOCOL = "target-dtype"


def build_versions() -> dict[str, str]:
    """The build protocol's entry of a torch run's versions."""
    return {BUILD_PROTOCOL_KEY: BUILD_PROTOCOL}


def torch_dtype(precision: str) -> Any:
    import torch

    return getattr(torch, DTYPES[precision])


def conv1d_to_linear(model: Any) -> Any:
    """Replace transformers' GPT-2 style ``Conv1D`` by ``nn.Linear`` (same maths, weight transposed).

    Why: torch's dynamic quantization only rewrites ``nn.Linear``; without this GPT-2's int8
    model would quantize nothing but the LM head and "int8" would be a mislabelled fp32 run.
    """
    import torch
    from torch import nn

    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover
        return model
    for name, child in list(model.named_children()):
        if isinstance(child, Conv1D):
            nx, nf = child.weight.shape
            lin = nn.Linear(nx, nf, bias=child.bias is not None, device=child.weight.device, dtype=child.weight.dtype)
            with torch.no_grad():
                lin.weight.copy_(child.weight.t())
                if child.bias is not None:
                    lin.bias.copy_(child.bias)
            setattr(model, name, lin)
        else:
            conv1d_to_linear(child)
    return model


def prepare(config: Config, device: str) -> tuple[Any, dict[str, Any], ModelEntry]:
    """Build the random-weight model at the config's precision and its synthetic inputs."""
    import torch

    from engine.workloads import build_model, make_inputs

    entry = get_model(config.model)
    from hardware.registry import refusal_reason

    why = refusal_reason(device, "torch", config.precision, config.mode)
    if why:
        raise ValueError(why)
    if config.precision == "int8":
        model = build_model(entry, "cpu", torch.float32)
        model = conv1d_to_linear(model)
        # in place: a copy held the fp32 model twice at the peak (BUILD_PROTOCOL)
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    else:
        model = build_model(entry, device, torch_dtype(config.precision))
    fdt = torch.float32 if config.precision == "int8" else torch_dtype(config.precision)
    inputs = make_inputs(entry, config.batch_size, config.seq_len, device, fdt)
    if config.mode == "training":
        model.train()
    return model, inputs, entry


def first_tensor(out: Any) -> Any:
    """The main output tensor (logits, last hidden state) of a transformers output."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    values = out.values() if hasattr(out, "values") else out
    for v in values:
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return v
    raise ValueError("model returned no floating-point tensor")


def make_step(model: Any, inputs: dict[str, Any], mode: str) -> Callable[[], Any]:
    """One iteration: a forward pass (inference) or forward + backward + AdamW step (training)."""
    import torch

    if mode == "inference":
        def infer() -> Any:
            with torch.inference_mode():
                return model(**inputs)
        return infer

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def train() -> Any:
        opt.zero_grad(set_to_none=True)
        out = first_tensor(model(**inputs))
        loss = out.float().pow(2).mean()
        loss.backward()
        opt.step()
        return loss
    return train


def time_generation(model: Any, entry: ModelEntry, inputs: dict[str, Any], new_tokens: int,
                    sync: Optional[Callable[[], None]] = None) -> tuple[Optional[float], Optional[float]]:
    """(first-token ms, per-token decode ms) from ``generate`` with the KV cache on.

    Timestamps come from a logits processor, which runs right after each forward step: the
    first stamp minus the start is the prefill (time to first token), the mean gap between later
    stamps is the per-token decode latency. One new token times the first token alone (decode None):
    ``--decode-tokens 1`` returned neither, without a word.
    """
    import torch

    if entry.family != "text_generation" or new_tokens < 1:
        return None, None
    stamps: list[float] = []

    class Stamp:
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            if sync is not None:
                sync()
            stamps.append(time.perf_counter())
            return scores

    from transformers import LogitsProcessorList

    gen_inputs = {k: v for k, v in inputs.items() if k != "decoder_input_ids"}
    cfg = model.config
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else (cfg.eos_token_id or 0)

    def generate(n: int) -> None:
        stamps.clear()
        with torch.inference_mode():
            model.generate(**gen_inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False, num_beams=1,
                           use_cache=True, pad_token_id=pad, logits_processor=LogitsProcessorList([Stamp()]))

    was_training = model.training
    model.eval()
    try:
        generate(2)  # warm the decode path (shapes differ from the full forward)
        if sync is not None:
            sync()
        t0 = time.perf_counter()
        stamps.clear()
        generate(new_tokens)
    finally:
        model.train(was_training)
    if not stamps:
        return None, None
    first = (stamps[0] - t0) * 1000.0
    decode = (stamps[-1] - stamps[0]) * 1000.0 / (len(stamps) - 1) if len(stamps) > 1 else None
    return first, decode
