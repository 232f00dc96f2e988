"""The GPUs added for the cross-hardware evaluation (bench/cross_hardware.py) load and resolve."""
from __future__ import annotations

import pytest

from engine.catalog import catalog_hardware, resolve_hardware
from engine.models.features import HardwareFacts

ADDED = ("a10", "a100-40gb-pcie", "a100-80gb-pcie", "v100-16gb", "quadro-rtx-8000", "rtx-a6000", "rtx-6000-ada")


@pytest.mark.parametrize("hid", ADDED)
def test_added_gpu_resolves_with_sourced_figures(hid: str) -> None:
    e = resolve_hardware(hid)
    assert e.id == hid and e.kind == "cuda" and not e.detected
    assert e.sources["peak"] and e.sources["price"]
    # tensor cores: the fp16 path is ~4x or more the CUDA-core fp32 rate on every one of them
    assert e.peak_flops("fp16") >= 3.5 * e.peak_flops("fp32")
    facts = HardwareFacts.from_entry(e)  # what the predictors see
    assert facts.bandwidth_bytes_s > 5e11 and facts.memory_mib and facts.memory_mib >= 16 * 1024


def test_added_gpus_follow_the_datasheet_order() -> None:
    hw = catalog_hardware()
    # PCIe A100s: same compute as SXM, less bandwidth; the 80GB part has more than the 40GB one
    assert hw["a100-80gb-pcie"].peak_tflops == hw["a100-80gb"].peak_tflops
    assert hw["a100-40gb-pcie"].memory_bandwidth_gbs < hw["a100-80gb-pcie"].memory_bandwidth_gbs \
        < hw["a100-80gb"].memory_bandwidth_gbs
    # no BF16 before Ampere: such a GPU computes bf16 in fp32 (no bf16 tensor cores; e.g. XLA on a T4,
    # openxla/xla#12429), so the roofline prices bf16 at the fp32 rate, not the fp16 tensor rate
    for old in ("v100-16gb", "quadro-rtx-8000"):
        assert hw[old].peak_tflops["bf16"] is None
        assert hw[old].peak_flops("bf16") == hw[old].peak_flops("fp32") < hw[old].peak_flops("fp16")
    assert hw["rtx-6000-ada"].peak_flops("fp16") > hw["rtx-a6000"].peak_flops("fp16") > hw["quadro-rtx-8000"].peak_flops("fp16")
