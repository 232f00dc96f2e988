"""Local hardware detection: what this machine is, and how fast its CPU really is.

``local_cpu_id()`` names this machine class in stored measurements (``cpu-amd-epyc-2c``) and must
stay stable: every measurement taken here is keyed by it. Where the catalog pins the plain id to a
CPU of another instruction-set tier, the tier joins it (``cpu-amd-epyc-avx2-2c``; see the function).

``detect_local()`` returns one :class:`engine.catalog.HardwareEntry` per device found here:

* the CPU (always): model name, cores, memory, vector extensions from ``/proc/cpuinfo``, a
  spec-style peak estimate (cores x frequency x SIMD FLOPs/cycle) AND a quick measured matmul
  throughput and memory bandwidth (< 3 s). **The measured figures are the peaks the roofline
  uses**; the estimate stays in ``details``. Why: a CPU has no datasheet peak that a framework can
  reach. The estimate depends on the turbo clock under load (unknown inside a VM), on how many SIMD
  pipes a core really has (Zen 4 runs AVX-512 on 256-bit pipes, Intel server parts have two
  512-bit FMA units) and on whether the BLAS has a kernel at all for a precision (fp16 GEMM on a
  CPU without AVX512-FP16 runs hundreds of times below the "SIMD" estimate). The measured GEMM rate
  is the attainable ceiling the roofline's "peak" is meant to be, and the measured copy bandwidth
  is the attainable DRAM bandwidth; the learned efficiencies then describe the model, not our
  guess of the clock.
* CUDA / ROCm / MPS devices through torch, when torch is installed: mapped by name onto catalog
  entries (``NVIDIA H100 80GB HBM3`` -> ``h100-sxm``) whose DATASHEET figures stay the peaks, so a
  catalog id means the same thing wherever perfcast runs; unmatched devices get a measured
  fp32/fp16 matmul rate and copy bandwidth instead.
* OpenVINO devices (``openvino.Core().available_devices``) where openvino is installed: its CPU
  device is this CPU (recorded in the CPU entry's details); GPU/NPU devices get their own entries.

Detection is cached in a JSON file under :func:`engine.store.paths.cache_dir` (keyed by host and
CPU id), so repeating it is free; ``refresh=True`` measures again.
"""
from __future__ import annotations

import json
import os
import platform
import re
import socket
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional

if TYPE_CHECKING:
    from engine.catalog import HardwareEntry

CACHE_VERSION = 2  # 2: int8 measured with a dynamically quantized Linear, not torch._int_mm
CACHE_FILE = "hardware_detect.json"
# /proc/cpuinfo flags that matter for ML kernels
VECTOR_FLAGS: tuple[str, ...] = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                                 "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
                                 "amx_bf16", "amx_int8", "asimd", "sve", "sve2", "bf16", "i8mm")


def _slug(text: str) -> str:
    text = re.sub(r"\(r\)|\(tm\)|cpu|processor|@.*$|\d+-core", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def _cpuinfo_fields() -> dict[str, str]:
    """First value of each key in /proc/cpuinfo ({} where the file does not exist)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" in line:
                    k, v = line.split(":", 1)
                    out.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    return out


@lru_cache(maxsize=1)
def cpu_model_name() -> str:
    name = _cpuinfo_fields().get("model name")
    if name:
        return name
    if platform.system() == "Darwin":
        import subprocess

        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5).stdout.strip() or platform.machine()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown-cpu"


def isa_tier(extensions: Iterable[str], machine: str = "") -> str:
    """The instruction-set tier that decides which GEMM kernels a CPU gets: ``amx``, ``avx512bf16``,
    ``avx512``, ``avx2``, ``avx``, ``sve``, ``neon`` or ``sse``.

    Why a tier and not the model name: a cloud VM reports one brand string ("AMD EPYC") for CPUs a
    generation apart, and what separates their speeds is mostly this: an AMD EPYC Zen 4 guest
    (AVX512_BF16) ran bf16 GEMMs 2.2x faster than fp32, a Zen 3 guest of the same name (AVX2 only)
    ~190x slower (0.98 against 185 GFLOP/s, 1024^2, 2 threads; torch has no bf16 kernel for it)."""
    ext = set(extensions)
    if ext & {"amx_bf16", "amx_tile", "amx_int8"}:
        return "amx"
    if "avx512_bf16" in ext:
        return "avx512bf16"
    if "avx512f" in ext:
        return "avx512"
    if "avx2" in ext:
        return "avx2"
    if "avx" in ext:
        return "avx"
    if ext & {"sve", "sve2"}:
        return "sve"
    if "asimd" in ext or machine in ("arm64", "aarch64"):
        return "neon"
    return "sse"


@lru_cache(maxsize=1)
def local_isa_tier() -> str:
    """:func:`isa_tier` of this machine's CPU (from /proc/cpuinfo's flags)."""
    info = _cpuinfo_fields()
    return isa_tier(info.get("flags", info.get("Features", "")).split(), platform.machine())


def _pinned_isa(hardware_id: str) -> Optional[str]:
    """The ISA tier recorded (``details.isa``) by a catalog CPU entry under this id, if any."""
    from engine.catalog import catalog_hardware
    from engine.errors import PerfcastError

    try:
        e = catalog_hardware().get(hardware_id)
    except PerfcastError:  # a broken user catalog is reported where the catalog is used, not here
        return None
    return str(e.details["isa"]) if e is not None and e.kind == "cpu" and e.details.get("isa") else None


def local_cpu_id() -> str:
    """Stable id for this CPU class: model + logical core count, e.g. ``cpu-amd-epyc-2c``.

    The catalog pins measured figures to an id (the machine that recorded the shipped dataset lists
    itself there), so an id must not name two kinds of CPU. Where the catalog's entry under the
    plain id records another instruction-set tier than this CPU's, the tier joins the id
    (``cpu-amd-epyc-avx2-2c`` on a Zen 3 guest, which reports the same "AMD EPYC" as the shipped
    Zen 4): its runs are then stored as a device of their own, and it gets its own measured peaks
    instead of the catalog's."""
    slug, cores = _slug(cpu_model_name()), os.cpu_count() or 1
    plain = f"cpu-{slug}-{cores}c"
    pinned = _pinned_isa(plain)
    tier = local_isa_tier()
    return plain if pinned is None or pinned == tier else f"cpu-{slug}-{tier}-{cores}c"


# -- CPU facts and the spec-style estimate --------------------------------------------------------
def cpu_facts() -> dict[str, Any]:
    """Model, vendor, cores, clock, memory and vector extensions of this CPU (no measurement)."""
    info = _cpuinfo_fields()
    flags = set(info.get("flags", info.get("Features", "")).split())
    freq_ghz, freq_source = None, ""
    try:  # the advertised maximum clock, where the kernel exposes cpufreq (not inside most VMs)
        freq_ghz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e6
        freq_source = "cpufreq cpuinfo_max_freq"
    except (OSError, ValueError):
        pass
    if not freq_ghz and info.get("cpu MHz"):
        freq_ghz, freq_source = float(info["cpu MHz"]) / 1000.0, "/proc/cpuinfo cpu MHz"
    if not freq_ghz:
        try:
            import psutil

            f = psutil.cpu_freq()
            if f and (f.max or f.current):
                freq_ghz, freq_source = (f.max or f.current) / 1000.0, "psutil.cpu_freq"
        except Exception:  # noqa: BLE001 - psutil raises platform-specific errors
            pass
    try:
        import psutil

        mem_gib = psutil.virtual_memory().total / 2**30
        physical = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - psutil is a dependency
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        physical = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        usable = os.cpu_count() or 1
    return {
        "model": cpu_model_name(),
        "vendor_id": info.get("vendor_id", platform.machine()),
        "cpu_family": info.get("cpu family"),
        "logical_cores": os.cpu_count() or 1,
        "usable_cores": usable,
        "physical_cores": physical,
        "freq_ghz": round(freq_ghz, 3) if freq_ghz else None,
        "freq_source": freq_source,
        "memory_gib": round(mem_gib, 2),
        "extensions": sorted(f for f in VECTOR_FLAGS if f in flags),
        "machine": platform.machine(),
    }


def flops_per_cycle(facts: dict[str, Any]) -> dict[str, float]:
    """Per-core FLOPs (ops for int8) per cycle at each precision, from the vector extensions.

    fp32: FMA lanes x 2 x FMA pipes. AVX-512 counts as 2 x 16 lanes on Intel but 2 x 8 on AMD Zen 4
    (256-bit pipes, double-pumped); AVX2+FMA 2 x 8. bf16: AMX 1,024 ops/cycle, AVX512_BF16 twice
    the fp32 rate. int8: AMX 2,048, VNNI four times the fp32 rate, else twice. fp16: AVX512-FP16
    twice the fp32 rate, else the fp32 rate (convert and compute in fp32). Arm: NEON 2 x 4 lanes.
    """
    ext = set(facts.get("extensions", []))
    amd = "AMD" in str(facts.get("vendor_id", "")).upper()
    if "avx512f" in ext:
        fp32 = 32.0 if amd and str(facts.get("cpu_family")) in ("25",) else 64.0
    elif "avx2" in ext and "fma" in ext:
        fp32 = 32.0
    elif "avx" in ext:
        fp32 = 16.0
    elif "asimd" in ext or facts.get("machine") in ("arm64", "aarch64"):
        fp32 = 16.0
    else:
        fp32 = 8.0
    bf16 = 1024.0 if "amx_bf16" in ext else (2 * fp32 if ("avx512_bf16" in ext or "bf16" in ext) else fp32)
    if "amx_int8" in ext:
        int8 = 2048.0
    elif "avx512_vnni" in ext or "avx_vnni" in ext or "i8mm" in ext:
        int8 = 4 * fp32
    else:
        int8 = 2 * fp32
    fp16 = 2 * fp32 if "avx512_fp16" in ext else fp32
    return {"fp32": fp32, "fp16": fp16, "bf16": bf16, "int8": int8}


def cpu_spec_estimate(facts: dict[str, Any]) -> dict[str, Optional[float]]:
    """Peak TFLOP/s (TOPS for int8) = usable cores x clock x FLOPs/cycle; None without a clock."""
    ghz = facts.get("freq_ghz")
    if not ghz:
        return {k: None for k in ("fp32", "fp16", "bf16", "int8")}
    cores = facts.get("usable_cores") or facts.get("logical_cores") or 1
    return {k: round(cores * ghz * 1e9 * v / 1e12, 4) for k, v in flops_per_cycle(facts).items()}


# -- micro-benchmarks -----------------------------------------------------------------------------
def _best_rate(fn: Any, work: float, budget_s: float, min_reps: int = 3) -> float:
    """Best observed work/second over repetitions within ``budget_s`` (after one warm-up call).

    The best (not the mean) is the right statistic for a ceiling: interference only slows a run.
    """
    fn()
    best = float("inf")
    deadline = time.perf_counter() + budget_s
    reps = 0
    while reps < min_reps or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        reps += 1
        if reps >= 50:
            break
    return work / best


def _dynamic_int8_gops(torch: Any, budget_s: float, n: int = 1024) -> Optional[float]:
    """GOP/s of a dynamically quantized 1024x1024 ``Linear`` on 1024 rows: the int8 rate perfcast's
    int8 runs can reach (every adapter quantizes dynamically: torch's ``quantize_dynamic``, ONNX
    Runtime's), activation quantization included.

    Not ``torch._int_mm``: on a Xeon with AMX it runs 2.9 TOPS where a quantized ``Linear`` reaches
    1.0-1.1 (session 13, 2 threads), and the int8 runs there were only about as much faster than on
    an AMD EPYC as the fp32 ones (bench/cross_cpu.py): with the ``_int_mm`` figure the roofline
    priced them 1.5-1.7x too fast. (The catalog's AMD EPYC figure was measured with ``_int_mm``,
    through VNNI, before this change.)"""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's migration notice
            lin = torch.nn.Sequential(torch.nn.Linear(n, n))
            q = torch.ao.quantization.quantize_dynamic(lin, {torch.nn.Linear}, dtype=torch.qint8)
        x = torch.randn(n, n)
        return _best_rate(lambda: q(x), 2.0 * n**3, budget_s) / 1e9
    except (RuntimeError, AttributeError, AssertionError):
        return None


def measure_cpu(budget_s: float = 2.0) -> dict[str, Any]:
    """Measured GEMM throughput (GFLOP/s) per precision and copy bandwidth (GB/s) on all cores.

    torch when installed (its BLAS/oneDNN kernels are what the models run on), else numpy for fp32
    and the bandwidth only. Sizes: 1024^2 GEMMs (fp16 256^2: CPUs without AVX512-FP16 are slow at
    it; int8 a dynamically quantized Linear, see :func:`_dynamic_int8_gops`); the copy moves
    2 x 128 MiB, well above any last-level cache. Read + write bytes count.
    """
    out: dict[str, Any] = {"budget_s": budget_s, "at": round(time.time())}
    try:
        out["loadavg_1m_before"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    t_start = time.perf_counter()
    share = budget_s / 6
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        out["library"] = f"torch {torch.__version__}"
        before = torch.get_num_threads()
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # macOS
            cores = os.cpu_count() or before
        torch.set_num_threads(cores)  # whole-device peak, whatever the caller configured
        out["threads"] = cores
        gflops: dict[str, Optional[float]] = {}
        with torch.no_grad():
            for prec, dtype, n in (("fp32", torch.float32, 1024), ("bf16", torch.bfloat16, 1024),
                                   ("fp16", torch.float16, 256)):
                try:
                    a = torch.randn(n, n).to(dtype)
                    b = torch.randn(n, n).to(dtype)
                    gflops[prec] = _best_rate(lambda: torch.mm(a, b), 2.0 * n**3, share) / 1e9
                except RuntimeError:
                    gflops[prec] = None
            gflops["int8"] = _dynamic_int8_gops(torch, share)
            x = torch.ones(32 * 2**20)  # 128 MiB of fp32
            y = torch.empty_like(x)
            out["bandwidth_gbs"] = _best_rate(lambda: y.copy_(x), 2.0 * x.numel() * 4, share * 2) / 1e9
            del x, y
        torch.set_num_threads(before)
        out["matmul_gflops"] = gflops
    else:
        import numpy as np

        out["library"] = f"numpy {np.__version__}"
        n = 1024
        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        b = a.copy()
        out["matmul_gflops"] = {"fp32": _best_rate(lambda: a @ b, 2.0 * n**3, share) / 1e9,
                                "fp16": None, "bf16": None, "int8": None}
        x = np.ones(32 * 2**20, dtype=np.float32)
        y = np.empty_like(x)
        out["bandwidth_gbs"] = _best_rate(lambda: np.copyto(y, x), 2.0 * x.nbytes, share * 2) / 1e9
    out["elapsed_s"] = round(time.perf_counter() - t_start, 3)
    return out


# -- entries --------------------------------------------------------------------------------------
def local_cpu_entry(measure: bool = True) -> "HardwareEntry":
    """The local CPU as a HardwareEntry (measured peaks when ``measure``, else the spec estimate)."""
    from engine.catalog import HardwareEntry

    facts = cpu_facts()
    estimate = cpu_spec_estimate(facts)
    details: dict[str, Any] = {**facts, "spec_estimate_tflops": estimate,
                               "flops_per_cycle_per_core": flops_per_cycle(facts),
                               "host": socket.gethostname(), "detected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    bandwidth = None
    if measure:
        m = measure_cpu()
        details["measured"] = m
        peaks = {k: (round(v / 1000.0, 5) if v else None) for k, v in m["matmul_gflops"].items()}
        bandwidth = round(m["bandwidth_gbs"], 2)
        peak_src = (f"measured on this machine: best {m['library']} GEMM rate per precision (1024^2; fp16 256^2) "
                    f"on {m.get('threads', facts['usable_cores'])} threads; spec estimate "
                    f"(cores x clock x FLOPs/cycle) in details.spec_estimate_tflops")
        bw_src = "measured: best multi-threaded copy of 128 MiB (read + write bytes)"
    else:
        peaks = dict(estimate)
        peak_src = "estimate: usable cores x clock x SIMD FLOPs/cycle from /proc/cpuinfo flags (not measured)"
        bw_src = "unknown (not measured)"
    vendor = "amd" if "AMD" in str(facts["vendor_id"]).upper() else ("intel" if "INTEL" in str(facts["vendor_id"]).upper() else str(facts["vendor_id"]).lower())
    return HardwareEntry(id=local_cpu_id(), name=f"{facts['model']} ({facts['usable_cores']} cores)", kind="cpu",
                         vendor=vendor, peak_tflops=peaks, memory_bandwidth_gbs=bandwidth,
                         memory_gib=facts["memory_gib"], tdp_w=None, price_per_hour_usd=None,
                         sources={"peak": peak_src, "bandwidth": bw_src, "memory": "psutil.virtual_memory"},
                         detected=True, details=details)


# device-name patterns -> catalog ids (first match wins; order matters: 80GB before generic A100)
_GPU_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"h200", "h200"), (r"h100.*(pcie|nvl)", "h100-pcie"), (r"h100", "h100-sxm"),
    (r"a100.*80", "a100-80gb"), (r"a100", "a100-40gb"), (r"a10g", "a10g"), (r"\bl4\b", "l4"),
    (r"\bt4\b", "t4"), (r"rtx 4090", "rtx-4090"), (r"rtx 3090", "rtx-3090"),
    (r"mi300x", "mi300x"), (r"mi250x?", "mi250x"),
    (r"apple m3 max", "apple-m3-max"), (r"apple m2", "apple-m2"), (r"apple m1", "apple-m1"),
)


def match_catalog(device_name: str) -> Optional[str]:
    """Catalog id for a device name reported by torch/sysctl, or None."""
    low = device_name.lower()
    for pat, hid in _GPU_PATTERNS:
        if re.search(pat, low):
            return hid
    return None


def _measure_torch_device(torch: Any, device: str) -> dict[str, Any]:
    """fp32/fp16 GEMM rate and copy bandwidth of an accelerator (used only for unknown devices)."""
    out: dict[str, Any] = {}

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        elif device == "mps":
            torch.mps.synchronize()

    for prec, dt in (("fp32", torch.float32), ("fp16", torch.float16)):
        n = 4096
        a = torch.randn(n, n, device=device, dtype=dt)
        b = torch.randn(n, n, device=device, dtype=dt)
        out[f"{prec}_gflops"] = _best_rate(lambda: (torch.mm(a, b), sync()), 2.0 * n**3, 0.3) / 1e9
    x = torch.ones(64 * 2**20, device=device)
    y = torch.empty_like(x)
    out["bandwidth_gbs"] = _best_rate(lambda: (y.copy_(x), sync()), 2.0 * x.numel() * 4, 0.3) / 1e9
    return out


def accelerator_entries(measure: bool = True) -> list["HardwareEntry"]:
    """CUDA/ROCm and MPS devices through torch ([] when torch is absent or sees none)."""
    import importlib.util

    from engine.catalog import HardwareEntry, catalog_hardware

    if importlib.util.find_spec("torch") is None:
        return []
    import torch

    found: list[HardwareEntry] = []
    cat = catalog_hardware()
    if torch.cuda.is_available():
        kind = "rocm" if getattr(torch.version, "hip", None) else "cuda"
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            details: dict[str, Any] = {"device_index": i, "device_name": p.name,
                                       "total_memory_gib": round(p.total_memory / 2**30, 2),
                                       "multiprocessors": p.multi_processor_count,
                                       "capability": f"{p.major}.{p.minor}", "torch": torch.__version__}
            hid = match_catalog(p.name)
            if hid and hid in cat:
                details["catalog_match"] = hid
                found.append(replace(cat[hid], detected=True, details={**cat[hid].details, **details}))
                continue
            m = _measure_torch_device(torch, f"cuda:{i}") if measure else {}
            details["measured"] = m
            found.append(HardwareEntry(
                id=f"{kind}-{_slug(p.name)}", name=p.name, kind=kind, vendor="amd" if kind == "rocm" else "nvidia",
                peak_tflops={"fp32": (m.get("fp32_gflops") or 0) / 1e3 or None, "fp16": (m.get("fp16_gflops") or 0) / 1e3 or None,
                             "bf16": None, "int8": None},
                memory_bandwidth_gbs=m.get("bandwidth_gbs"), memory_gib=round(p.total_memory / 2**30, 2),
                sources={"peak": "measured GEMM rate (not in the catalog)" if m else "unknown device, not measured"},
                detected=True, details=details))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        chip = cpu_model_name()
        hid = match_catalog(chip)
        details = {"device_name": chip, "torch": torch.__version__}
        if hid and hid in cat:
            found.append(replace(cat[hid], detected=True, details={**details, "catalog_match": hid}))
        else:
            m = _measure_torch_device(torch, "mps") if measure else {}
            found.append(HardwareEntry(
                id=f"mps-{_slug(chip)}", name=chip, kind="mps", vendor="apple",
                peak_tflops={"fp32": (m.get("fp32_gflops") or 0) / 1e3 or None, "fp16": (m.get("fp16_gflops") or 0) / 1e3 or None,
                             "bf16": None, "int8": None},
                memory_bandwidth_gbs=m.get("bandwidth_gbs"), memory_gib=cpu_facts()["memory_gib"],
                sources={"peak": "measured GEMM rate (not in the catalog)" if m else "unknown device, not measured"},
                detected=True, details={**details, "measured": m}))
    return found


def openvino_devices() -> list[dict[str, Any]]:
    """``[{device, full_name, capabilities}]`` from ``openvino.Core()`` ([] when not installed)."""
    import importlib.util

    if importlib.util.find_spec("openvino") is None:
        return []
    try:
        import openvino as ov

        core = ov.Core()
        out = []
        for dev in core.available_devices:
            rec: dict[str, Any] = {"device": dev}
            for prop, key in (("FULL_DEVICE_NAME", "full_name"), ("OPTIMIZATION_CAPABILITIES", "capabilities")):
                try:
                    v = core.get_property(dev, prop)
                    rec[key] = list(v) if isinstance(v, (list, tuple)) else str(v)
                except Exception:  # noqa: BLE001 - plugins raise their own error types
                    pass
            out.append(rec)
        return out
    except Exception as e:  # noqa: BLE001 - a broken plugin must not break detection
        return [{"device": "error", "error": str(e)[:200]}]


def _openvino_entries(devices: list[dict[str, Any]]) -> list["HardwareEntry"]:
    """Non-CPU OpenVINO devices (integrated GPU, NPU) as entries of kind ``openvino``."""
    from engine.catalog import HardwareEntry

    out = []
    for d in devices:
        dev = d.get("device", "")
        if dev in ("CPU", "error") or not dev:
            continue
        name = str(d.get("full_name") or dev)
        out.append(HardwareEntry(id=f"openvino-{_slug(dev)}-{_slug(name)}", name=f"{name} (OpenVINO {dev})",
                                 kind="openvino", vendor="intel", peak_tflops={},
                                 sources={"peak": "unknown: OpenVINO reports no throughput figure"},
                                 detected=True, details=d))
    return out


# -- detection with a cache -----------------------------------------------------------------------
def _cache_path() -> Path:
    from engine.store.paths import cache_dir

    return cache_dir() / CACHE_FILE


def _cache_key() -> dict[str, Any]:
    return {"version": CACHE_VERSION, "host": socket.gethostname(), "cpu_id": local_cpu_id()}


def _load_cache() -> Optional[list["HardwareEntry"]]:
    from engine.catalog import HardwareEntry

    try:
        data = json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return None
    if data.get("key") != _cache_key():
        return None
    try:
        return [HardwareEntry(**e) for e in data["entries"]]
    except (TypeError, KeyError):
        return None


def _save_cache(entries: list["HardwareEntry"]) -> None:
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": _cache_key(), "entries": [e.to_dict() for e in entries]},
                                  indent=1, default=str))
        os.replace(tmp, path)
    except OSError:  # a read-only cache dir only costs a re-detection next time
        pass


_MEMO: dict[str, list[Any]] = {}


def detect_local(refresh: bool = False, measure: bool = True) -> list["HardwareEntry"]:
    """Devices on this machine, local CPU first. Cached in memory and on disk unless ``refresh``.

    ``measure=False`` skips the micro-benchmarks (spec estimate as the CPU peaks) and is never
    written to the cache, so the roofline always sees the measured figures once they exist.
    """
    if not refresh:
        if "entries" in _MEMO:
            return list(_MEMO["entries"])
        cached = _load_cache()
        if cached is not None and not (measure and _worth_measuring_again(cached[0])):
            cached[0] = _keep_best(cached[0], _catalog_copy(cached[0].id))
            _MEMO["entries"] = cached
            return list(cached)
    # measure the CPU before openvino.Core() starts its own worker threads, which would compete
    # with the GEMM threads and halve the measured figures
    cpu = local_cpu_entry(measure=measure)
    ov = openvino_devices()
    if ov:
        cpu = replace(cpu, details={**cpu.details, "openvino_devices": ov})
    entries = [cpu]
    entries += accelerator_entries(measure=measure)
    entries += _openvino_entries(ov)
    if measure:
        previous = _load_cache()
        if previous:
            entries[0] = _keep_best(entries[0], previous[0])
        entries[0] = _keep_best(entries[0], _catalog_copy(entries[0].id))
        _save_cache(entries)
        _MEMO["entries"] = entries
    return list(entries)


#: A busy measurement is retried once the machine is idle, but not sooner than this after it
REMEASURE_AFTER_S = 600.0


def _busy(load: Optional[float], cores: int) -> bool:
    return load is not None and load > 0.5 * cores


def _worth_measuring_again(cpu: "HardwareEntry") -> bool:
    """Whether a cached CPU measurement taken on a busy machine should be retried now.

    A micro-benchmark competing with other processes reads low (audit P: 0.018-0.069 fp32 TFLOP/s at
    a load of 6 on 2 cores, against 0.40 idle), and the first detection is cached for every later
    command: predictions for this CPU were 4.6x slow. When the cached figure was measured busy, at
    least :data:`REMEASURE_AFTER_S` ago, and the machine is idle now, it is measured again (2 s) and
    the better figures kept (:func:`_keep_best`)."""
    m = cpu.details.get("measured") or {}
    cores = int(cpu.details.get("usable_cores") or os.cpu_count() or 1)
    if not m or not _busy(m.get("loadavg_1m_before"), cores):
        return False
    if time.time() - float(m.get("at") or 0.0) < REMEASURE_AFTER_S:
        return False
    try:
        return not _busy(os.getloadavg()[0], cores)
    except OSError:
        return False


def _catalog_copy(hid: str) -> Optional["HardwareEntry"]:
    """A measured entry for this very CPU shipped in configs/hardware.yaml (the machine that
    recorded the shipped dataset lists itself there, so other machines can resolve its id)."""
    from engine.catalog import catalog_hardware

    e = catalog_hardware().get(hid)
    return e if e is not None and e.kind == "cpu" else None


def _keep_best(new: "HardwareEntry", old: Optional["HardwareEntry"]) -> "HardwareEntry":
    """Element-wise max of a fresh and a cached CPU measurement of the same machine.

    Other processes (a benchmark grid, a test run) only ever slow a micro-benchmark down, so the
    best figure observed on this machine is the better estimate of its ceiling; a re-detection
    under load must not lower the roofline's peaks.
    """
    if old is None or new.id != old.id or not new.details.get("measured"):
        return new
    if not (old.details.get("measured") or old.sources.get("peak", "").startswith("measured")):
        return new
    peaks = {k: max(filter(None, [new.peak_tflops.get(k), old.peak_tflops.get(k)]), default=None)
             for k in set(new.peak_tflops) | set(old.peak_tflops)}
    bw = max(filter(None, [new.memory_bandwidth_gbs, old.memory_bandwidth_gbs]), default=None)
    details = {**new.details, "previous_measured": old.details.get("measured") or old.sources.get("peak"),
               "peaks_are": "element-wise best of this and the previous measurement"}
    return replace(new, peak_tflops=peaks, memory_bandwidth_gbs=bw, details=details)
