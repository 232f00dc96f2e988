"""Configurations -> physics quantities and a numeric feature matrix, vectorised.

Every predictor sees a configuration through the same lens: the work it does (FLOPs, bytes moved,
weights, activations from :mod:`engine.descriptors`) and the machine it runs on (peak FLOP/s at
the precision, scaled to the threads actually used on a CPU; memory bandwidth; capacity). The
roofline predictor uses the physics columns, the GP uses the feature matrix, the hierarchical
model uses both plus the categorical codes.

Speed: descriptors are computed once per distinct *workload* (model, batch, seq_len, precision,
mode, runtime) and hardware figures once per distinct (hardware, precision); everything else is
numpy over arrays, so 100k configurations (a prediction matrix) featurise in well under a second
once the few distinct workloads are cached.

int8 is dynamic quantization in every perfcast adapter (torch's ``quantize_dynamic`` of Linear
layers; ONNX Runtime's of the nodes with weights, which OpenVINO also reads): the weight matmuls
run in int8, while attention's batched products and, in torch, convolutions stay in fp32 (ONNX
Runtime's int8 convolutions are slower than its fp32 ones on the shipped CPU, which the GP learns).
So an int8 pass's ideal compute time is its ``linear_flops`` at the int8 peak plus the rest at the
fp32 peak, not all FLOPs at the int8 peak: for resnet50 (0.1% linear) that is 4.4x on the shipped
CPU, the gap the shipped torch runs show (int8 1.09x fp32's time for resnet50, 0.2-0.35x for the
text transformers). On the ten random
splits of the shipped data it took the roofline's median APE on int8 runs from 36% to 26% and the
GP's from 12.1% to 11.4%.

OpenVINO is the exception (:func:`linear_precision`): the adapter compiles ONNX Runtime's
dynamically quantized graph with ``INFERENCE_PRECISION_HINT=f32``
(``hardware.openvino_adapter.HINTS``), and OpenVINO's CPU plugin then executes every
``FullyConnected`` layer of that graph in f32 (its runtime model says so: distilbert's 36
FullyConnected layers have runtime precision f32 in both the int8 and the fp32 graph; the int8
graph only adds the activations' quantize/dequantize ops). So an openvino/int8 pass runs all its
FLOPs at the fp32 peak. The shipped runs agree: openvino/int8 took a median 1.07x openvino/fp32's
time (12 matched configurations), and with the int8 peak the roofline under-predicted them by
e^0.93 (2.5x), the largest bias of any software path; with the fp32 peak by e^-0.11.

ONNX Runtime has one exception of its own (:func:`tied_head_precision`): an LM head whose weight is
the input embedding (gpt2, t5-small, whisper-tiny; the descriptors' ``tied_head_flops``) is not
quantized to a ``MatMulInteger`` but dequantized for an fp32 ``MatMul`` (read from the int8 ONNX
graphs), so those FLOPs run at the fp32 peak there. They are 27-31% of gpt2's and t5-small's linear
FLOPs, and the roofline under-predicted their onnxruntime/int8 runs by e^0.5-0.7 without this.

OpenVINO also decides bf16 for itself (:func:`executed_precision`): its CPU plugin honours the
bf16 inference hint only on CPUs with native bf16 (AVX512_BF16, AMX) and runs f32 elsewhere. On an
AVX2-only AMD EPYC (Zen 3, session 18) the compiled model reported f32 for the bf16 hint, while that
CPU's bf16 GEMM peak was ~190x below its fp32 one (0.98 against 185 GFLOP/s): priced at the bf16
peak, such a pass was predicted e^5.4 ~ 200x too slow by the roofline (e^5.1 by the GP). A CPU
without a bf16 kernel is one whose measured bf16 peak is below its fp32 peak, so that is the test,
and such a pass is described and priced as fp32 throughout.

FEATURES_VERSION is part of every fitted model's cache key: bump it when what a predictor sees of
a configuration changes, so no fit made with the old features is reused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

from engine.catalog import FAMILIES, PEAK_FALLBACK, PLATFORMS, get_model
from engine.config import CONFIG_COLUMNS, MODES, PRECISIONS, RUNTIMES, Config

if TYPE_CHECKING:
    import pandas as pd


# 2: int8 compute time from linear_flops; 3: openvino/int8 at the fp32 peak; 4: onnxruntime/int8's tied LM
# head at the fp32 peak; 5: openvino/bf16 as fp32 on a device whose bf16 peak is below its fp32 peak
# (module docstring); 6: ``live_bytes`` (the live working set) for the memory model; 7: the descriptors'
# widths as the adapters run them (int8 activations fp32, torch int8 weights Linear only, half-precision
# training state; no KV cache on an exported graph; pass-through outputs not counted); 8: ``build_bytes``
# (the weights held while a run's model is built; the memory models' peak is the larger of it and the run's);
# 9: inference's ``live_bytes`` is the counted peak of live activations, not twice the largest one
FEATURES_VERSION = 9

#: Continuous feature columns (log scale where the quantity is multiplicative).
CONTINUOUS: tuple[str, ...] = (
    "log_flops", "log_bytes", "log_params", "log_batch", "log_seq1", "log_threads",
    "log_peak", "log_bw", "log_t_compute", "log_t_memory", "log_t_roof", "log_intensity",
)
#: One-hot columns, in order.
ONE_HOT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("precision", PRECISIONS), ("mode", MODES), ("runtime", RUNTIMES), ("family", FAMILIES),
    ("kind", PLATFORMS),
)
FEATURE_NAMES: tuple[str, ...] = CONTINUOUS + tuple(f"{col}={v}" for col, vals in ONE_HOT for v in vals)

_WORKLOAD_COLS = ("model", "batch_size", "seq_len", "precision", "mode", "runtime")


@dataclass(frozen=True)
class HardwareFacts:
    """What the models need to know about a device (from the catalog / detected spec)."""

    id: str
    kind: str
    peak_flops: dict[str, float]  # precision -> FLOP/s (whole device, all cores)
    bandwidth_bytes_s: float
    memory_mib: Optional[float]
    cores: int

    @classmethod
    def from_entry(cls, entry: Any) -> "HardwareFacts":
        """Build from an ``engine.catalog.HardwareEntry``."""
        peaks: dict[str, float] = {}
        for p in PRECISIONS:
            try:
                peaks[p] = float(entry.peak_flops(p))
            except (ValueError, KeyError, TypeError):
                continue
        if not peaks:
            raise ValueError(f"hardware {entry.id} has no peak throughput figure")
        bw = entry.memory_bandwidth_gbs
        if not bw:
            raise ValueError(f"hardware {entry.id} has no memory bandwidth figure")
        mem = entry.memory_gib
        return cls(entry.id, entry.kind, peaks, float(bw) * 1e9, float(mem) * 1024 if mem else None,
                   entry_cores(entry))

    def peak(self, precision: str) -> float:
        for p in PEAK_FALLBACK[precision]:
            if p in self.peak_flops:
                return self.peak_flops[p]
        return next(iter(self.peak_flops.values()))


def linear_precision(runtime: str, precision: str) -> str:
    """The precision a pass's weight matmuls (``linear_flops``) really execute at on ``runtime``.

    int8 is dynamic quantization: the weight matmuls run in int8, except on OpenVINO, which compiles
    the quantized graph at the f32 inference hint and runs those layers in f32 (module docstring).
    Every other FLOP of an int8 pass runs at the fp32 peak on every runtime."""
    if precision == "int8" and runtime == "openvino":
        return "fp32"
    return precision


def executed_precision(runtime: str, precision: str, hardware: HardwareFacts) -> str:
    """The precision a pass really runs at on a device, where the runtime chooses for itself.

    OpenVINO's CPU plugin runs the bf16 hint in f32 on a CPU without native bf16 (module docstring);
    such a CPU's measured bf16 GEMM peak is below its fp32 one. Every other case runs as asked."""
    if (runtime == "openvino" and precision == "bf16"
            and hardware.peak_flops.get("bf16", np.inf) < hardware.peak_flops.get("fp32", 0.0)):
        return "fp32"
    return precision


def tied_head_precision(runtime: str, precision: str) -> str:
    """The precision an LM head tied to the input embedding (``tied_head_flops``) runs at on ``runtime``.

    ONNX Runtime's dynamic quantization leaves that shared weight to a ``DequantizeLinear`` and an
    fp32 ``MatMul`` (module docstring); every other runtime runs it like the other weight matmuls."""
    if precision == "int8" and runtime == "onnxruntime":
        return "fp32"
    return linear_precision(runtime, precision)


def _default_resolve_hardware(hardware_id: str) -> Any:
    """``engine.catalog.resolve_hardware`` (catalog + detected devices)."""
    from engine import catalog

    resolve = getattr(catalog, "resolve_hardware", None)
    if resolve is not None:
        return resolve(hardware_id)
    hw = catalog.catalog_hardware()
    if hardware_id in hw:
        return hw[hardware_id]
    from engine.errors import UnknownNameError

    raise UnknownNameError("hardware", hardware_id, hw.keys())


def _default_describe_many(configs: Sequence[Config]) -> "pd.DataFrame":
    from engine.descriptors import describe_many

    return describe_many(configs)


@dataclass
class FeatureFrame:
    """Featurised configurations: the matrix ``X`` plus the physics and categorical columns.

    Physics columns (arrays of length n): ``flops``, ``linear_flops`` (of them, weight matmuls),
    ``tied_head_flops`` (of those, an LM head tied to the input embedding),
    ``bytes`` (per pass), ``params``,
    ``weight_bytes``, ``activation_bytes`` (activation traffic, summed over the pass), ``live_bytes``
    (resident besides weights and optimizer state: the live activations and the KV cache, what the
    memory model scales), ``floor_bytes`` (what must be resident at once at the peak, the memory
    posterior's floor: :func:`engine.descriptors.describe_many`'s), ``build_bytes`` (the weights held
    while the run's model is built: :func:`engine.descriptors.construction_bytes`;
    ``legacy_build_bytes`` as a run before 2026-12-07 built it), ``peak`` (FLOP/s at the precision, scaled to the threads
    used on a CPU), ``bandwidth`` (bytes/s), ``memory_capacity_mib`` (nan if unknown), ``batch``,
    ``t_compute_ms`` and ``t_memory_ms`` (ideal roofline times at efficiency 1, in ms; int8's
    non-linear FLOPs at the fp32 peak, see the module docstring).
    Categorical columns (object arrays): ``model``, ``hardware``, ``kind``, ``family``,
    ``precision``, ``runtime``, ``mode``.
    """

    X: np.ndarray
    names: tuple[str, ...]
    phys: dict[str, np.ndarray] = field(default_factory=dict)
    cats: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.X.shape[0]

    def column(self, name: str) -> np.ndarray:
        return self.X[:, self.names.index(name)]


def with_legacy_builds(ff: FeatureFrame, legacy: Optional[np.ndarray]) -> FeatureFrame:
    """``ff`` with ``build_bytes`` as the adapters built the ``legacy`` rows' models (measured before
    the build protocol changed: :func:`engine.descriptors.construction_bytes`). A fit's measured peak
    memory is set by how its run was built; a prediction is for a run built today (the default)."""
    if legacy is None or not np.asarray(legacy, dtype=bool).any():
        return ff
    phys = dict(ff.phys)
    phys["build_bytes"] = np.where(np.asarray(legacy, dtype=bool), ff.phys["legacy_build_bytes"], ff.phys["build_bytes"])
    return replace(ff, phys=phys)


def configs_frame(configs: Sequence[Config] | "pd.DataFrame") -> "pd.DataFrame":
    """Config columns as a DataFrame (accepts a list of Config or a measurements frame)."""
    import pandas as pd

    if isinstance(configs, pd.DataFrame):
        df = configs.loc[:, list(CONFIG_COLUMNS)].reset_index(drop=True)
    else:
        df = pd.DataFrame([(c.model, c.hardware, c.batch_size, c.seq_len, c.precision, c.mode, c.runtime,
                            c.threads) for c in configs], columns=list(CONFIG_COLUMNS))
    for k in ("batch_size", "seq_len", "threads"):
        df[k] = df[k].astype(np.int64)
    return df


def configs_from_frame(df: "pd.DataFrame") -> list[Config]:
    """Config records of a measurements frame, in row order."""
    cols = [df[c].tolist() for c in CONFIG_COLUMNS]
    return [Config(m, h, int(b), int(s), p, mo, r, int(t)) for m, h, b, s, p, mo, r, t in zip(*cols)]


def _factorize_rows(df: "pd.DataFrame", cols: list[str]) -> tuple[np.ndarray, "pd.DataFrame"]:
    """(row → distinct-combination code, the distinct combinations) of ``df[cols]``.

    Each column is factorised on its own and the codes combined in mixed radix: for 100k rows this
    is ~5× faster than ``MultiIndex.factorize`` and keeps first-appearance order."""
    import pandas as pd

    key = np.zeros(len(df), dtype=np.int64)
    for c in cols:
        codes, uniq = pd.factorize(df[c], sort=False)
        key = key * max(len(uniq), 1) + codes
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # renumber by first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inv.reshape(-1)], df.loc[first[order], cols].reset_index(drop=True)


class Featurizer:
    """Turns configurations into a :class:`FeatureFrame`, caching descriptors and hardware.

    ``describe_many`` and ``resolve_hardware`` default to :func:`engine.descriptors.describe_many`
    and :func:`engine.catalog.resolve_hardware`; tests and synthetic benchmarks inject their own.
    ``matmul_precision`` (runtime, precision → the precision weight matmuls run at) defaults to the
    real adapters' rule, :func:`linear_precision`; an injected world whose physics differs (bench/
    synthetic.py runs int8 at the int8 peak on every runtime) passes its own, and then an LM head
    tied to the input embedding follows that rule too (with the default, :func:`tied_head_precision`).
    """

    def __init__(self, describe_many: Optional[Callable[[Sequence[Config]], "pd.DataFrame"]] = None,
                 resolve_hardware: Optional[Callable[[str], Any]] = None,
                 matmul_precision: Optional[Callable[[str, str], str]] = None) -> None:
        self._describe_many = describe_many or _default_describe_many
        self._resolve = resolve_hardware or _default_resolve_hardware
        self._matmul_precision = matmul_precision or linear_precision
        self._tied_precision = matmul_precision or tied_head_precision
        #: whether model names are catalog names (the real descriptors), not an injected world's
        self.uses_catalog = describe_many is None
        self._catalog_state: Any = None  # the user catalogs the caches below were filled from
        self._desc: dict[tuple, tuple[Any, ...]] = {}
        self._hw: dict[str, HardwareFacts] = {}

    # -- cached look-ups ----------------------------------------------------------------------
    def hardware(self, hardware_id: str) -> HardwareFacts:
        facts = self._hw.get(hardware_id)
        if facts is None:
            obj = self._resolve(hardware_id)
            facts = obj if isinstance(obj, HardwareFacts) else HardwareFacts.from_entry(obj)
            self._hw[hardware_id] = facts
        return facts

    def _descriptors(self, wl: "pd.DataFrame") -> None:
        """Fill the cache for workloads (unique rows of _WORKLOAD_COLS) not seen before."""
        missing = [tuple(r) for r in wl.itertuples(index=False, name=None) if tuple(r) not in self._desc]
        if not missing:
            return
        configs = [Config(m, "descriptor", int(b), int(s), p, mo, rt, 0) for m, b, s, p, mo, rt in missing]
        d = self._describe_many(configs).reset_index(drop=True)
        if "family" in d.columns:
            fams = d["family"].tolist()
        else:
            fams = [get_model(c.model).family for c in configs]
        # an injected world without a linear/other split runs all its FLOPs at the precision's peak,
        # and one without tied heads has none
        linear = d["linear_flops"] if "linear_flops" in d.columns else d["flops"]
        tied = d["tied_head_flops"] if "tied_head_flops" in d.columns else 0.0 * linear
        # what is resident besides the weights (and optimizer state): live activations and the KV
        # cache; a world without a memory split uses the activations it has
        live = (d["memory_bytes"] - d["weight_bytes"] - d.get("state_bytes", 0.0)
                if "memory_bytes" in d.columns else d["activation_bytes"])
        # what cannot be freed at the peak (the memory posterior's floor): a world without it has only
        # its weights (the descriptors leave out the KV cache an exported graph does not keep)
        floor = d["floor_bytes"] if "floor_bytes" in d.columns else d["weight_bytes"]
        # the weights held while the model is built (today, and as a legacy run built it); a world
        # without them builds its weights as run
        build = d["build_bytes"] if "build_bytes" in d.columns else d["weight_bytes"]
        legacy = d["legacy_build_bytes"] if "legacy_build_bytes" in d.columns else build
        for i, key in enumerate(missing):
            resident = float(floor.iat[i])
            self._desc[key] = (float(d["flops"].iat[i]), float(d["bytes_moved"].iat[i]), float(d["params"].iat[i]),
                               float(d["weight_bytes"].iat[i]), float(d["activation_bytes"].iat[i]),
                               float(linear.iat[i]), float(tied.iat[i]), float(live.iat[i]), resident,
                               float(build.iat[i]), float(legacy.iat[i]), str(fams[i]))

    # -- main entry -----------------------------------------------------------------------------
    def _forget_edited_catalogs(self) -> None:
        """Empty the descriptor and hardware caches (and the counts') when a user catalog was set,
        unset or edited since they were filled: an entry edited in a running notebook (more layers,
        another peak) is counted again, not answered from its old figures."""
        if not (self.uses_catalog or self._resolve is _default_resolve_hardware):
            return
        from engine.catalog import catalog_state

        state = catalog_state()
        if state != self._catalog_state:
            if self._catalog_state is not None:
                from engine.descriptors.counting import pass_counts

                self._desc.clear()
                self._hw.clear()
                pass_counts.cache_clear()
            self._catalog_state = state

    def __call__(self, configs: Sequence[Config] | "pd.DataFrame") -> FeatureFrame:
        self._forget_edited_catalogs()
        df = configs_frame(configs)
        # the precision each pass really runs at (OpenVINO chooses on a CPU without bf16); the
        # precision one-hot below keeps the one asked for
        ran = df
        ov_bf16 = ((df["runtime"] == "openvino") & (df["precision"] == "bf16")).to_numpy()
        if ov_bf16.any():
            as_f32 = [h for h in df.loc[ov_bf16, "hardware"].unique()
                      if executed_precision("openvino", "bf16", self.hardware(h)) != "bf16"]
            if as_f32:
                ran = df.copy()
                ran.loc[ov_bf16 & df["hardware"].isin(as_f32).to_numpy(), "precision"] = "fp32"
        # descriptors per distinct workload
        wl_codes, wl_df = _factorize_rows(ran, list(_WORKLOAD_COLS))
        self._descriptors(wl_df)
        table = np.array([self._desc[tuple(r)][:11] for r in wl_df.itertuples(index=False, name=None)],
                         dtype=float).reshape(-1, 11)
        fam_u = np.array([self._desc[tuple(r)][11] for r in wl_df.itertuples(index=False, name=None)], dtype=object)
        flops, nbytes, params, wbytes, abytes, linear, tied, live, resident, build, legacy_build = (
            table[wl_codes, j] for j in range(11))
        family = fam_u[wl_codes]

        # hardware per distinct (hardware, precision, runtime, threads)
        hw_cols = ["hardware", "precision", "runtime", "threads"]
        hw_codes, hw_uniques = _factorize_rows(ran, hw_cols)
        rows = []
        kinds = []
        for hid, prec, rt, thr in hw_uniques.itertuples(index=False, name=None):
            f = self.hardware(hid)
            used = f.cores if (thr == 0 or f.kind != "cpu") else min(int(thr), f.cores)
            scale = used / f.cores if f.kind == "cpu" else 1.0
            # weight matmuls (and a tied LM head) at the precision they really run at; int8's other
            # FLOPs at the fp32 peak (module docstring)
            linear_peak = f.peak(self._matmul_precision(rt, prec))
            tied_peak = f.peak(self._tied_precision(rt, prec))
            other = f.peak("fp32") if prec == "int8" else f.peak(prec)
            rows.append((linear_peak * scale, f.bandwidth_bytes_s, f.memory_mib or np.nan, used, other * scale,
                         tied_peak * scale))
            kinds.append(f.kind)
        hw_table = np.array(rows, dtype=float).reshape(-1, 6)
        peak, bw, cap, threads_used, peak_other, peak_tied = (hw_table[hw_codes, j] for j in range(6))
        kind = np.array(kinds, dtype=object)[hw_codes]

        batch = df["batch_size"].to_numpy(dtype=float)
        seq = df["seq_len"].to_numpy(dtype=float)
        t_c = ((linear - tied) / peak + tied / peak_tied + (flops - linear) / peak_other) * 1e3
        t_m = nbytes / bw * 1e3
        cont = np.column_stack([
            np.log(flops), np.log(nbytes), np.log(params), np.log(batch), np.log1p(seq), np.log(threads_used),
            np.log(peak), np.log(bw), np.log(t_c), np.log(t_m), np.log(np.maximum(t_c, t_m)),
            np.log(flops / nbytes),
        ])
        cats = {"model": df["model"].to_numpy(dtype=object), "hardware": df["hardware"].to_numpy(dtype=object),
                "kind": kind, "family": family, "precision": df["precision"].to_numpy(dtype=object),
                "runtime": df["runtime"].to_numpy(dtype=object), "mode": df["mode"].to_numpy(dtype=object)}
        onehots = []
        for col, vals in ONE_HOT:
            arr = cats[col]
            onehots.append(np.column_stack([(arr == v) for v in vals]).astype(float))
        X = np.concatenate([cont, *onehots], axis=1)
        phys = {"flops": flops, "linear_flops": linear, "tied_head_flops": tied, "bytes": nbytes, "params": params,
                "weight_bytes": wbytes, "activation_bytes": abytes, "live_bytes": live, "floor_bytes": resident,
                "build_bytes": build, "legacy_build_bytes": legacy_build,
                "peak": peak, "bandwidth": bw,
                "memory_capacity_mib": cap, "batch": batch, "seq_len": seq, "threads_used": threads_used,
                "t_compute_ms": t_c, "t_memory_ms": t_m}
        return FeatureFrame(X=X, names=FEATURE_NAMES, phys=phys, cats=cats)


def entry_cores(entry: Any) -> int:
    """The cores a catalog entry's threads run on: ``details`` (cores, logical or physical), else
    the ``-Nc`` suffix of a CPU id, else 1."""
    details = dict(getattr(entry, "details", None) or {})
    cores = details.get("cores") or details.get("logical_cores") or details.get("physical_cores")
    if not cores:
        m = re.search(r"-(\d+)c$", entry.id)
        cores = int(m.group(1)) if m else 1
    return int(cores)


# device kinds whose adapters take a thread count: torch/ONNX Runtime on a CPU, and OpenVINO
# (INFERENCE_NUM_THREADS); on every other kind the runtime ignores it
THREADED_KINDS: tuple[str, ...] = ("cpu", "openvino")


def takes_threads(kind: Optional[str]) -> bool:
    """Whether a device of ``kind`` runs with a thread count (:data:`THREADED_KINDS`)."""
    return kind in THREADED_KINDS


def threads_on_several(kinds: Sequence[Optional[str]], threads: int) -> list[int]:
    """Per device, the thread count a command naming several devices gives it (compare-hardware,
    matrix, the API's compare_hardware): ``threads`` on the devices that take threads and 0 on the
    others, so ``compare-hardware --threads 2`` over every device compares the CPUs at t2 and the GPUs
    as they run. Where none takes threads, ``threads`` stays on each, for :func:`check_threads` to
    refuse in its one line."""
    if not threads or not any(takes_threads(k) for k in kinds):
        return [threads] * len(kinds)
    return [threads if takes_threads(k) else 0 for k in kinds]


def check_threads(entry: Any, threads: int) -> None:
    """More threads than a CPU has cores is an error naming the range: the roofline caps threads at
    the cores, so t64 on a 2-core CPU was predicted exactly as t2 and an optimiser could rank it
    best (a key no run can have). Threads on a GPU are refused too: they are CPU intra-op threads,
    yet ``predict --hardware a10 --threads 4`` answered "4 threads" and ``benchmark`` stored a t4
    key for a run identical to t0."""
    if not threads:
        return
    from engine.errors import InvalidValueError

    kind = getattr(entry, "kind", None)
    if not takes_threads(kind):
        raise InvalidValueError("threads", threads, f"0 on {entry.id}, a {kind} device (threads are CPU intra-op "
                                                    "threads: they apply to CPU devices only)")
    if kind != "cpu":
        return
    cores = entry_cores(entry)
    if threads > cores:
        raise InvalidValueError("threads", threads, f"0 to {cores} on {entry.id} (its cores; 0 = the runtime's "
                                                    "default)")


_DEFAULT: Optional[Featurizer] = None


def default_featurizer() -> Featurizer:
    """The process-wide featuriser (real descriptors and catalog), so caches are shared."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Featurizer()
    return _DEFAULT


def uses_catalog(featurizer: Optional[Featurizer]) -> bool:
    """Whether a predictor with this featuriser (None: the default) describes models from the catalog."""
    return featurizer is None or featurizer.uses_catalog


def featurize(configs: Sequence[Config] | "pd.DataFrame", featurizer: Optional[Featurizer] = None) -> FeatureFrame:
    return (featurizer or default_featurizer())(configs)

