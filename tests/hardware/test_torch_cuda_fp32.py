"""The CUDA adapter's fp32 is IEEE fp32 in convolutions too (checked without a GPU: the flags)."""
from __future__ import annotations

import pytest


def test_strict_fp32_turns_tf32_off_for_cudnn_convolutions_as_well_as_matmuls() -> None:
    """torch leaves cuDNN's TF32 on by default; the adapter turned off only the matmul flag, so an
    "fp32" resnet50 on an A100 timed its convolutions in TF32 (audit, 2026-12-08)."""
    torch = pytest.importorskip("torch")
    from hardware.torch_cuda import strict_fp32

    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32)
    try:
        cudnn.allow_tf32, matmul.allow_tf32 = True, True  # cuDNN's as torch starts
        strict_fp32()
        assert cudnn.allow_tf32 is False and matmul.allow_tf32 is False
    finally:  # this test process's flags as they were
        cudnn.allow_tf32, matmul.allow_tf32 = saved
