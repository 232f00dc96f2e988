"""Local hardware detection: the CPU entry, its measured peaks, the cache, and name matching."""
from __future__ import annotations

import json
import os
import re
from dataclasses import replace

import pytest

from hardware import detect


def test_local_cpu_id_is_stable_and_well_formed() -> None:
    hid = detect.local_cpu_id()
    assert hid == detect.local_cpu_id()
    assert re.fullmatch(r"cpu-[a-z0-9-]+-\d+c", hid)
    assert hid.endswith(f"-{os.cpu_count()}c")
    if detect.cpu_model_name() == "AMD EPYC" and os.cpu_count() == 2:
        # the shipped dataset's Zen 4 (AVX512_BF16) keeps the plain id; a Zen 3 guest (AVX2) does not
        assert hid == ("cpu-amd-epyc-2c" if detect.local_isa_tier() == "avx512bf16" else
                       f"cpu-amd-epyc-{detect.local_isa_tier()}-2c")


@pytest.mark.parametrize("flags, tier", [
    ("fpu sse4_2 avx avx2 fma f16c", "avx2"),
    ("avx avx2 fma avx512f avx512bw avx512vl avx512_vnni", "avx512"),
    ("avx2 avx512f avx512_bf16 avx512_vnni", "avx512bf16"),
    ("avx2 avx512f avx512_bf16 avx512_fp16 amx_tile amx_bf16 amx_int8", "amx"),
    ("fp asimd", "neon"), ("fp asimd sve sve2", "sve"), ("fpu sse4_2", "sse"),
])
def test_isa_tier_names_the_gemm_kernel_class(flags: str, tier: str) -> None:
    assert detect.isa_tier(flags.split()) == tier


@pytest.mark.parametrize("flags, expected", [
    ("avx avx2 fma avx512f avx512_bf16 avx512_vnni", "cpu-amd-epyc-2c"),  # the shipped Zen 4 itself
    ("avx avx2 fma f16c", "cpu-amd-epyc-avx2-2c"),  # a Zen 3 guest that reports the same name
])
def test_a_cpu_unlike_the_catalogs_pinned_one_gets_an_id_of_its_own(monkeypatch: pytest.MonkeyPatch, flags: str,
                                                                    expected: str) -> None:
    """The catalog pins the shipped EPYC's measured peaks to ``cpu-amd-epyc-2c``. A CPU of another
    instruction-set tier that reports the same brand string must not inherit them (bf16 without
    AVX512_BF16 ran ~190x slower than fp32 here) nor store its runs as that device's."""
    monkeypatch.setattr(detect, "cpu_model_name", lambda: "AMD EPYC")
    monkeypatch.setattr(detect.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(detect, "local_isa_tier", lambda: detect.isa_tier(flags.split()))
    assert detect.local_cpu_id() == expected
    # a CPU the catalog pins nothing to keeps the plain id, whatever its tier
    monkeypatch.setattr(detect, "cpu_model_name", lambda: "Some Laptop CPU")
    assert detect.local_cpu_id() == "cpu-some-laptop-2c"


def test_detect_local_measures_this_cpu_and_caches_it(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = detect.detect_local(refresh=True)
    cpu = entries[0]
    assert cpu.id == detect.local_cpu_id() and cpu.kind == "cpu" and cpu.detected
    assert cpu.memory_gib and cpu.memory_gib > 0
    assert cpu.details["usable_cores"] >= 1
    assert cpu.peak_tflops["fp32"] and cpu.peak_tflops["fp32"] > 0
    assert cpu.memory_bandwidth_gbs and cpu.memory_bandwidth_gbs > 0
    m = cpu.details["measured"]
    assert m["matmul_gflops"]["fp32"] > 0 and m["bandwidth_gbs"] > 0
    # the measured figure is the peak; the spec estimate is kept next to it
    assert cpu.peak_tflops["fp32"] * 1000 >= m["matmul_gflops"]["fp32"] * 0.999
    assert "spec_estimate_tflops" in cpu.details and "extensions" in cpu.details
    if os.path.exists("/proc/cpuinfo") and "avx2" in open("/proc/cpuinfo").read():
        assert "avx2" in cpu.details["extensions"]
    # cached: a second call neither measures nor re-reads torch
    monkeypatch.setattr(detect, "measure_cpu", lambda *a, **k: pytest.fail("measured again"))
    again = detect.detect_local()
    assert again[0].id == cpu.id and again[0].peak_tflops == cpu.peak_tflops
    data = json.loads(detect._cache_path().read_text())
    assert data["key"]["cpu_id"] == cpu.id
    detect._MEMO.clear()
    from_disk = detect.detect_local()
    assert from_disk[0].peak_tflops == cpu.peak_tflops


def test_refresh_keeps_the_best_measurement() -> None:
    cpu = detect.detect_local()[0]
    assert detect._keep_best(cpu, None) is cpu
    worse = replace(cpu, peak_tflops={k: (v / 2 if v else v) for k, v in cpu.peak_tflops.items()},
                    memory_bandwidth_gbs=cpu.memory_bandwidth_gbs / 2)
    best = detect._keep_best(worse, cpu)
    assert best.peak_tflops == cpu.peak_tflops and best.memory_bandwidth_gbs == cpu.memory_bandwidth_gbs


def test_flops_per_cycle_from_vector_extensions() -> None:
    intel_amx = {"vendor_id": "GenuineIntel", "extensions": ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
                                                              "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"]}
    f = detect.flops_per_cycle(intel_amx)
    assert f == {"fp32": 64.0, "fp16": 128.0, "bf16": 1024.0, "int8": 2048.0}
    zen4 = {"vendor_id": "AuthenticAMD", "cpu_family": "25", "extensions": ["avx2", "fma", "avx512f", "avx512_vnni",
                                                                           "avx512_bf16"]}
    assert detect.flops_per_cycle(zen4) == {"fp32": 32.0, "fp16": 32.0, "bf16": 64.0, "int8": 128.0}
    assert detect.flops_per_cycle({"vendor_id": "GenuineIntel", "extensions": ["avx2", "fma"]})["fp32"] == 32.0
    est = detect.cpu_spec_estimate({**zen4, "freq_ghz": 2.0, "usable_cores": 4})
    assert est["fp32"] == pytest.approx(4 * 2.0e9 * 32 / 1e12)


@pytest.mark.parametrize("name,hid", [("NVIDIA H100 80GB HBM3", "h100-sxm"), ("NVIDIA H100 PCIe", "h100-pcie"),
                                      ("NVIDIA A100-SXM4-80GB", "a100-80gb"), ("NVIDIA A100-PCIE-40GB", "a100-40gb"),
                                      ("Tesla T4", "t4"), ("NVIDIA L4", "l4"), ("NVIDIA A10G", "a10g"),
                                      ("NVIDIA H200", "h200"), ("NVIDIA GeForce RTX 4090", "rtx-4090"),
                                      ("AMD Instinct MI300X", "mi300x"), ("Apple M2", "apple-m2"),
                                      ("Apple M3 Max", "apple-m3-max"), ("NVIDIA GeForce GTX 1080", None)])
def test_device_names_map_onto_catalog_ids(name: str, hid: str | None) -> None:
    assert detect.match_catalog(name) == hid


def test_openvino_devices_include_the_cpu_when_installed() -> None:
    pytest.importorskip("openvino")
    devs = detect.openvino_devices()
    assert any(d["device"] == "CPU" for d in devs)


@pytest.mark.cuda
def test_cuda_devices_are_detected() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA/ROCm device here")
    acc = detect.accelerator_entries()
    assert len(acc) == torch.cuda.device_count()
    assert all(e.kind in ("cuda", "rocm") and e.memory_gib for e in acc)


def test_hardware_detect_cli_stores_the_devices(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from engine.cli.main import cli
    from engine.store import Store

    db = tmp_path / "hw.duckdb"
    res = CliRunner().invoke(cli, ["hardware", "detect", "--json", "--db", str(db)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["stored"] >= 1 and data["devices"][0]["id"] == detect.local_cpu_id()
    rows = Store(db, seed=False).hardware_rows()
    cpu = [r for r in rows if r["hardware_id"] == detect.local_cpu_id()]
    assert cpu and cpu[0]["detected"] and cpu[0]["peak_fp32_tflops"] > 0


def test_a_busy_measurement_is_measured_again_once_the_machine_is_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first detection is cached for every later command; taken on a busy machine it read 5-20x
    low (audit P). It is retried when the machine is idle again, not sooner than REMEASURE_AFTER_S
    after, and the better figures are kept."""
    cpu = detect.detect_local()[0]
    slow = replace(cpu, peak_tflops={k: (v / 10 if v else v) for k, v in cpu.peak_tflops.items()},
                   details={**cpu.details, "measured": {**(cpu.details.get("measured") or {}),
                                                        "loadavg_1m_before": 6.0, "at": 0}})
    detect._save_cache([slow])
    detect._MEMO.clear()
    monkeypatch.setattr(detect, "_catalog_copy", lambda hid: None)
    monkeypatch.setattr(detect, "accelerator_entries", lambda measure=True: [])
    monkeypatch.setattr(detect, "openvino_devices", lambda: [])
    fresh = replace(cpu, details={**cpu.details, "measured": {**(cpu.details.get("measured") or {}),
                                                              "loadavg_1m_before": 0.1, "at": 10**10}})
    monkeypatch.setattr(detect, "local_cpu_entry", lambda measure=True: fresh)
    monkeypatch.setattr(detect.os, "getloadavg", lambda: (6.0, 6.0, 6.0))
    assert detect.detect_local()[0].peak_tflops == slow.peak_tflops  # still busy: the cache stands
    detect._MEMO.clear()
    monkeypatch.setattr(detect.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    again = detect.detect_local()[0]
    assert again.peak_tflops["fp32"] == pytest.approx(cpu.peak_tflops["fp32"])  # measured again, idle
    detect._MEMO.clear()
    monkeypatch.setattr(detect, "local_cpu_entry", lambda measure=True: pytest.fail("measured again"))
    assert detect.detect_local()[0].peak_tflops["fp32"] == pytest.approx(cpu.peak_tflops["fp32"])  # idle: kept
