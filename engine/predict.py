"""The prediction facade: names in, typed posteriors out.

``PerformancePredictor`` is the Python API the old system's users know
(``predict(model_name=..., hardware=..., batch_size=...)``) on top of the Bayesian predictors in
:mod:`engine.models`. Its one job is translation: it validates names, resolves a platform name
(``cuda``) to the device that answers for it, builds canonical :class:`Config` records, asks a
fitted predictor (reused from the cache until the store's data change) for a vectorised
:class:`PredictionSet`, and attaches what a person needs to read the answer: which device
answered, how many measurements sit near the configuration and whether the memory fits.
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from engine.config import RUNTIMES, Config, split_names
from engine.errors import InvalidValueError, RefusedConfigError, UnknownNameError
from engine.models.base import Prediction, PredictionSet

if TYPE_CHECKING:
    from engine.store import Store

PREDICTOR_NAMES: tuple[str, ...] = ("gp", "hierarchical", "roofline")
SUMMARY_QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)


def _refuse_unrunnable(cfg: Config, hw: "ResolvedHardware") -> None:
    """Refuse a configuration the adapters refuse (:func:`hardware.registry.refusal_reason`): int8
    training was answered, with a caution that suggested a benchmark no adapter runs."""
    from hardware.registry import refusal_reason

    why = refusal_reason(hw.kind, cfg.runtime, cfg.precision, cfg.mode)
    if why:
        raise RefusedConfigError(f"{cfg.model} {cfg.precision} {cfg.mode} with {cfg.runtime} on {hw.id}: {why}")


@dataclass(frozen=True)
class ResolvedHardware:
    """What a ``--hardware`` value meant: the device that answers and the runtime it implies."""

    requested: str
    id: str
    name: str
    kind: str
    memory_gib: Optional[float] = None
    runtime: Optional[str] = None  # implied runtime (``openvino`` -> openvino on the CPU)

    @property
    def was_platform(self) -> bool:
        return self.requested != self.id

    @property
    def memory_capacity_mib(self) -> Optional[float]:
        return self.memory_gib * 1024.0 if self.memory_gib else None

    def describe(self) -> str:
        """'cuda -> a100-80gb (NVIDIA A100 80GB SXM4)' or 'h100-sxm (NVIDIA H100 SXM5 80GB)'."""
        head = f"{self.requested} -> {self.id}" if self.was_platform else self.id
        return f"{head} ({self.name})" if self.name and self.name != self.id else head


def resolve(hardware: str, store: Optional["Store"] = None) -> ResolvedHardware:
    """A catalog id (``h100-sxm``) or a platform name (``cuda``, ``openvino``, ...) -> device.

    ``store`` lets ids that exist only in the store's ``hardware`` table resolve too.
    """
    from engine import catalog

    if not hardware:
        raise InvalidValueError("hardware", hardware, "a catalog hardware id or one of " + ", ".join(catalog.PLATFORMS))
    entry = catalog.resolve_hardware(hardware, store)
    platform = hardware.strip().lower()
    # a platform that is also a runtime (openvino, qnn, webgpu, webnn) implies that runtime:
    # `openvino` answers with the CPU running OpenVINO; a QNN/WebGPU/WebNN device runs its own runtime
    if platform in catalog.PLATFORMS and platform in RUNTIMES:
        runtime: Optional[str] = platform
    else:
        runtime = entry.kind if entry.kind in RUNTIMES else None
    return ResolvedHardware(requested=hardware.strip(), id=entry.id, name=entry.name or entry.id, kind=entry.kind,
                            memory_gib=entry.memory_gib, runtime=runtime)


def make_predictor(name: str, allow_bad_diagnostics: bool = False) -> Any:
    """A fresh, unfitted predictor from the models registry."""
    if name not in PREDICTOR_NAMES:
        raise InvalidValueError("predictor", name, ", ".join(PREDICTOR_NAMES))
    from engine.models.registry import get_predictor

    return get_predictor(name, **predictor_kwargs(name, allow_bad_diagnostics=allow_bad_diagnostics))


def predictor_kwargs(name: str, **kwargs: Any) -> dict[str, Any]:
    """The options a predictor's constructor accepts (e.g. only the hierarchical model takes
    ``allow_bad_diagnostics``); the others are dropped rather than failing."""
    from engine.errors import NotAvailableError
    from engine.models.registry import predictor_class

    try:
        cls = predictor_class(name)
    except ImportError as e:
        raise NotAvailableError(f"predictor {name!r} is not available here ({e})") from None
    return _supported_kwargs(cls.__init__, **kwargs)


def _supported_kwargs(fn: Any, **kwargs: Any) -> dict[str, Any]:
    """Pass only the keyword arguments ``fn`` accepts (the models' signatures may grow)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def _load_or_fit_fn() -> Any:
    try:
        from engine.models.cache import load_or_fit
    except ImportError:
        from engine.models.registry import load_or_fit  # type: ignore[no-redef]
    return load_or_fit


ConfigLike = Union[Config, Mapping[str, Any]]


def unmeasured_kinds_caution(kinds: Iterable[str], rows: str, consequence: str = "") -> Optional[str]:
    """One line for the commands that answer for several devices at once (``compare-hardware``,
    ``recommend-hardware``) when some of them are of a kind the store has never measured; the
    full reason is :meth:`PerformancePredictor.extrapolation_warning`. ``rows`` names what those
    devices are in the command's answer; ``consequence`` continues the sentence. None if all measured."""
    kinds = sorted(set(kinds))
    if not kinds:
        return None
    return (f"no {', '.join(kinds)} device has been measured: those {rows} extrapolate a roofline fitted on other "
            f"kinds of device and can be far off (small, launch-bound workloads in particular){consequence}")


def unrunnable_caution(cfg: Config, hw: ResolvedHardware) -> Optional[str]:
    """One line when no adapter runs ``cfg`` on its device (openvino on an H100, torch int8 on a
    GPU, ONNX Runtime training, anything on a WebNN laptop or a Hexagon NPU): the posterior still
    answers, but for nothing perfcast can measure."""
    from engine.optimize.spec import adapter_measures

    if adapter_measures(hw.kind, cfg.runtime, cfg.precision, cfg.mode):
        return None
    return (f"no perfcast adapter runs {cfg.runtime} {cfg.precision} {cfg.mode} on {hw.id} ({hw.kind}): this "
            "prediction describes a configuration that cannot be benchmarked here")


def borrowed_peak_caution(cfg: Config, store: Optional["Store"] = None) -> Optional[str]:
    """One line when an accelerator lists no peak for ``cfg``'s precision (a T4 has no bf16): the
    roofline then assumes another precision's peak (:data:`engine.catalog.PEAK_FALLBACK`; bf16 ->
    fp32), a guess no run on such a device has checked. CPUs are left out: their missing peaks are
    measured or deliberately mapped (see the features module)."""
    from engine.catalog import PEAK_FALLBACK, resolve_hardware

    entry = resolve_hardware(cfg.hardware, store)
    if entry.kind == "cpu" or entry.peak_tflops.get(cfg.precision):
        return None
    listed = [p for p, v in entry.peak_tflops.items() if v]
    if not listed:
        return None  # no peak at all: the roofline refuses before this caution matters
    # the fallback order, else the first peak listed, as the featuriser's HardwareFacts.peak takes it
    # (audit P: a Snapdragon NPU with no fp32 peak was answered at its fp16 peak without a word)
    used = next((p for p in PEAK_FALLBACK[cfg.precision] if p in listed), listed[0])
    return (f"{entry.id} lists no {cfg.precision} peak (it lists {', '.join(listed)}): this answer assumes "
            f"{cfg.precision} runs at its {used} peak, which no measurement on such a device has checked, "
            "so it can be off either way")


def busy_peak_caution(hardware_id: str, store: Optional["Store"] = None) -> Optional[str]:
    """One line when this machine's CPU peaks in use were measured while it was busy: a
    micro-benchmark sharing the cores reads low (audit P: 0.036 against 0.40 fp32 TFLOP/s at a load
    of 6 on 2 cores, every answer for the CPU 4.6x slow). It needs a load above the core count (the
    cores were oversubscribed) and a figure below half the spec-sheet estimate (itself rough: 0.27
    against 0.40 measured on an idle Xeon). Detection measures again once the machine is idle, from
    half that load (:func:`hardware.detect.detect_local`); ``hardware detect --refresh`` does it now."""
    from engine.catalog import resolve_hardware

    entry = resolve_hardware(hardware_id, store)
    m = entry.details.get("measured") if entry.kind == "cpu" and entry.detected else None
    if not m:
        return None
    load, cores = m.get("loadavg_1m_before"), int(entry.details.get("usable_cores") or 1)
    fp32 = (m.get("matmul_gflops") or {}).get("fp32")
    in_use = entry.peak_tflops.get("fp32")
    spec = (entry.details.get("spec_estimate_tflops") or {}).get("fp32")
    if load is None or load <= cores or not fp32 or not in_use or in_use * 1000 > 1.01 * fp32:
        return None  # idle, or a better figure (an earlier measurement, the catalog's) is in use
    if spec and in_use >= 0.5 * spec:
        return None  # busy, but the figure is still within 2x of the spec sheet's estimate
    return (f"{entry.id}'s peaks were measured while the machine was busy (load {load:g} on {cores} cores): "
            "they read low, so this answer can be several times too slow; run `perfcast hardware detect "
            "--refresh` when the machine is idle")


#: share of a model's FLOPs in weight matmuls below which torch's int8 is cautioned as mostly fp32
INT8_LINEAR_SHARE = 0.5


def int8_share_caution(cfg: Config) -> Optional[str]:
    """One line when ``cfg`` is torch int8 on a model whose FLOPs are mostly outside weight matmuls:
    torch's dynamic quantization (hardware/torch_common.py) rewrites only ``nn.Linear``, so an "int8"
    resnet50 runs 0.1% of its FLOPs in int8 and the rest in fp32, which its name does not say.
    ONNX Runtime's quantizer also rewrites Conv (ConvInteger), so onnxruntime is not cautioned;
    openvino runs that graph in f32 (README), which this line would misstate. The share is the
    descriptor's ``linear_flops / flops`` (cached counts, free after a prediction); any failure to
    count means no caution, never a failed command."""
    if cfg.precision != "int8" or cfg.runtime != "torch":
        return None
    try:
        from engine.descriptors import describe

        d = describe(cfg)
        share = d.linear_flops / d.flops if d.flops else None
    except Exception:  # noqa: BLE001 - a caution must not fail the answer it comes with
        return None
    if share is None or share >= INT8_LINEAR_SHARE:
        return None
    return (f"int8 on {cfg.model} runs {share:.1%} of its FLOPs in int8 (torch's dynamic quantization rewrites "
            "only Linear layers); the rest runs in fp32")


def config_cautions(cfg: Config, hw: ResolvedHardware, store: Optional["Store"] = None) -> list[str]:
    """``predict``'s cautions about the configuration itself, for every command that answers for
    configurations (predict, compare-hardware, recommend-hardware, optimize): no adapter can
    measure it, or its device lists no peak at its precision. The device-level caution (a kind or
    a device without runs) is :meth:`PerformancePredictor.extrapolation_warning`."""
    return [w for w in (unrunnable_caution(cfg, hw), borrowed_peak_caution(cfg, store),
                        busy_peak_caution(cfg.hardware, store)) if w]


def answer_cautions(pp: "PerformancePredictor", pairs: Iterable[tuple[Config, ResolvedHardware]], rows: str,
                    consequence: str = "") -> list[str]:
    """Every caution ``predict`` would give, once each, for an answer covering several
    configurations: one line for device kinds never measured, one per device without runs of
    its own, :func:`config_cautions` per configuration and :func:`int8_share_caution` per model."""
    pairs = list(pairs)
    devices = {hw.id: hw for _, hw in pairs}
    kinds = pp.unmeasured_kinds(devices.values())
    out = [unmeasured_kinds_caution(kinds, rows, consequence)]
    out += [pp.extrapolation_warning(hw) for hw in devices.values() if hw.kind not in kinds]
    out += [w for cfg, hw in pairs for w in config_cautions(cfg, hw, pp.store)]
    out += [pp.new_path_caution(cfg, hw) for cfg, hw in pairs]
    out += [int8_share_caution(cfg) for cfg in {(c.model, c.runtime, c.precision): c for c, _ in pairs}.values()]
    nearby = pp._nearby_counts()
    out += [pp.size_caution(m, nearby) for m in dict.fromkeys(cfg.model for cfg, _ in pairs)]
    out.append(pp.fit_caution())
    return list(dict.fromkeys(w for w in out if w))


class PerformancePredictor:
    """Predict latency, throughput and memory with credible intervals.

    >>> pp = PerformancePredictor()                               # embedded default store, GP
    >>> p = pp.predict(model_name="bert-base-uncased", hardware="cuda", batch_size=4)
    >>> p.latency_ms.median, p.latency_ms.interval(0.9), p.device_name
    """

    def __init__(self, db: Union[None, str, "Store"] = None, predictor: str = "gp", *,
                 allow_bad_diagnostics: bool = False) -> None:
        if predictor not in PREDICTOR_NAMES:
            raise InvalidValueError("predictor", predictor, ", ".join(PREDICTOR_NAMES))
        self.predictor_name = predictor
        self.allow_bad_diagnostics = allow_bad_diagnostics
        self._db = db
        self._store: Optional["Store"] = None
        self._fitted: Optional[tuple[str, Any]] = None  # (data hash, predictor)
        self._nearby: Optional[tuple[str, dict[tuple[str, str], int]]] = None
        self._busy: dict[str, int] = {}  # runs per hardware id left out of fits for the load (busy_counts)
        self._params: dict[str, float] = {}  # parameter count per model (size_caution)
        self._run_paths: set[tuple[str, str, str, str]] = set()  # (hardware, runtime, precision, mode) of used runs
        # (counts they came from, runs per kind, software paths per kind): _kinds_and_paths
        self._kinds: Optional[tuple[dict[tuple[str, str], int], dict[str, int], set[tuple[str, str, str, str]]]] = None

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def store(self) -> "Store":
        if self._store is None:
            from engine.store import api_store

            self._store = api_store(self._db)
        return self._store

    def data_hash(self) -> str:
        return self.store.data_hash()

    def fitted(self) -> Any:
        """The fitted predictor for the store's current data and user catalog (fitted once, then
        cached): runs of an own model count only while its file is set, so setting
        ``PERFCAST_MODELS`` in a running notebook must refit."""
        from engine.catalog import user_catalog_digest

        h = f"{self.data_hash()}:{user_catalog_digest()}"
        if self._fitted is None or self._fitted[0] != h:
            load_or_fit = _load_or_fit_fn()
            kwargs = predictor_kwargs(self.predictor_name, allow_bad_diagnostics=self.allow_bad_diagnostics)
            self._fitted = (h, load_or_fit(self.predictor_name, self.store, **kwargs))
        return self._fitted[1]

    def _nearby_counts(self) -> dict[tuple[str, str], int]:
        """Successful runs per (model, hardware) that the fits use: runs timed on a busy machine
        are left out of fits (:func:`engine.models.targets.left_out_busy`), so a device known
        only from such runs has no runs here, and :meth:`busy_counts` says why."""
        h = self._fitted[0] if self._fitted is not None else self.data_hash()
        if self._nearby is None or self._nearby[0] != h:
            from engine.catalog import models
            from engine.models.targets import left_out_busy

            df = self.store.measurements()
            used: dict[tuple[str, str], int] = {}
            self._busy = {}
            self._run_paths = set()
            if len(df):
                left = left_out_busy(df)
                ok = df[~left]
                used = {(m, hw): int(n) for (m, hw), n in ok.groupby(["model", "hardware"]).size().items()}
                self._busy = {str(hw): int(n) for hw, n in df[left].groupby("hardware").size().items()}
                # (hardware, runtime, precision, mode) of runs of catalog models: measured_paths
                ok = ok[ok["model"].isin(list(models()))]
                self._run_paths = set(ok.groupby(["hardware", "runtime", "precision", "mode"]).size().index)
            self._nearby = (h, used)
        return self._nearby[1]

    def size_caution(self, model: str, nearby: dict[tuple[str, str], int]) -> Optional[str]:
        """One line when ``model`` has more than :data:`SIZE_EXTRAPOLATION` times the parameters of
        the largest model the fits have runs of: the answer then rests on the roofline's scaling
        alone (llama-7b, 19x gpt2-medium, answered x/÷1.4 with no word of it)."""
        from engine.config import Config
        from engine.descriptors import describe

        def params(m: str) -> float:
            if m not in self._params:
                try:
                    self._params[m] = float(describe(Config(m, "cpu")).params)
                except Exception:  # noqa: BLE001 - a model no longer in the catalog: not comparable
                    self._params[m] = float("nan")
            return self._params[m]

        measured = {m: params(m) for m, _ in nearby}
        measured = {m: p for m, p in measured.items() if p == p}
        if not measured or model in measured:
            return None
        top = max(measured, key=measured.__getitem__)
        ratio = params(model) / measured[top]
        if not ratio > SIZE_EXTRAPOLATION:
            return None
        return (f"{model} has {_count_text(params(model))} parameters, {ratio:.0f}x the largest model with runs here "
                f"({top}, {_count_text(measured[top])}): the answer extrapolates the roofline's scaling far beyond the "
                "data, and its interval does not widen for that")

    def fit_caution(self) -> Optional[str]:
        """The fitted model's own caution, said on every answer from it: a NUTS fit kept with
        ``allow_bad_diagnostics`` (or thin on effective draws), or a GP too small to calibrate.
        None before this object has answered anything: a facade made only for cautions (optimize
        ranks with its own model) must not fit a GP to caution about it."""
        if self._fitted is None:
            return None
        fitted = self.fitted()
        return "; ".join(filter(None, (getattr(fitted, name, lambda: None)() for name in
                                       ("diagnostics_caution", "calibration_caution", "memory_caution")))) or None

    def busy_counts(self) -> dict[str, int]:
        """Runs per hardware id that the fits leave out for the machine's load (see
        :meth:`_nearby_counts`)."""
        self._nearby_counts()
        return self._busy

    def measured_kinds(self) -> dict[str, int]:
        """Successful measurements per device kind (cpu, cuda, ...) in the store (summed from
        the per-(model, hardware) counts, recomputed when those are)."""
        return self._kinds_and_paths()[0]

    def measured_paths(self) -> set[tuple[str, str, str, str]]:
        """(device kind, runtime, precision, mode) of the runs the fits use: the software paths the
        store has seen on each kind of device (recomputed when the data change)."""
        return self._kinds_and_paths()[1]

    def _kinds_and_paths(self) -> tuple[dict[str, int], set[tuple[str, str, str, str]]]:
        """:meth:`measured_kinds` and :meth:`measured_paths`, from the runs :meth:`_nearby_counts`
        read, with one look at the hardware table; recomputed when those counts are."""
        counts = self._nearby_counts()
        if self._kinds is None or self._kinds[0] is not counts:
            from engine.catalog import all_hardware

            known = all_hardware(self.store, detect=False)

            def kind(hw_id: str) -> str:
                e = known.get(hw_id)
                return e.kind if e is not None else str(hw_id).split("-", 1)[0]

            kinds: dict[str, int] = {}
            for (_, hw_id), n in counts.items():
                k = kind(hw_id)
                kinds[k] = kinds.get(k, 0) + n
            paths = {(kind(hw_id), rt, prec, mode) for hw_id, rt, prec, mode in self._run_paths}
            self._kinds = (counts, kinds, paths)
        return self._kinds[1], self._kinds[2]

    def new_path_caution(self, cfg: Config, hw: "ResolvedHardware") -> Optional[str]:
        """One line when no device of ``hw``'s (measured) kind has a run of ``cfg``'s software path
        (runtime, precision, mode): the answer then rests on the roofline at the catalog's peak for
        that precision and on the GP's prior for a path it has never seen (audit: torch fp16 on a
        CPU, about 17 s for bert-base at batch 1, was answered without a word)."""
        if hw.kind not in self.measured_kinds():
            return None  # the unmeasured-kind caution says more
        if (hw.kind, cfg.runtime, cfg.precision, cfg.mode) in self.measured_paths():
            return None
        # no run to suggest where no adapter runs the path (qnn or webnn on a CPU): unrunnable_caution
        # says so, and this line's "a run of it checks it" contradicted it
        check = (f" A run of it (perfcast benchmark ... --precision {cfg.precision} --save) checks it."
                 if unrunnable_caution(cfg, hw) is None else "")
        return (f"no {hw.kind} run of {cfg.runtime} {cfg.precision} {cfg.mode} is in the store: this software path "
                f"has never been measured on such a device, so the answer rests on the roofline at the catalog's "
                f"{cfg.precision} peak and on the predictor's prior for an unseen path.{check}")

    def unmeasured_kinds(self, hws: Iterable["ResolvedHardware"]) -> set[str]:
        """The kinds among ``hws`` of which the store holds no successful measurement: the devices
        whose answers extrapolate (see :meth:`extrapolation_warning`)."""
        kinds = self.measured_kinds()
        return {hw.kind for hw in hws if hw.kind not in kinds}

    def extrapolation_warning(self, hw: "ResolvedHardware") -> Optional[str]:
        """A one-paragraph caution when no device of ``hw``'s kind has been measured, else None.

        The prior mean is a roofline whose efficiencies and fixed per-pass overhead are fitted on
        whatever devices the store holds. On the shipped data that is one 2-core CPU, whose fitted
        overhead (tens of ms of framework time per pass) would be far too large for a GPU, where a
        small model's pass is a few ms of kernel launches: such an answer can be several times too
        slow, with an interval that need not contain the truth. Saying so is part of the answer.

        A device of a measured kind that has no runs of its own gets a milder caution: its answers
        rest on its measured or spec peaks and on other devices' runs, which across perfcast's own
        CPUs left a 10-21% median error (bench/cross_cpu.py, three CPUs, 2026-12-07) where a few runs of the
        device help."""
        if any(n > 0 for (_, hw_id), n in self._nearby_counts().items() if hw_id == hw.id):
            return None  # the device has runs the fits use (so its kind is measured too)
        busy = self.busy_counts().get(hw.id, 0)
        if busy:  # measured, but only while other processes took its cores: left out of the fits
            return (f"{hw.id}'s {busy} run{'s were' if busy != 1 else ' was'} all timed while other processes "
                    f"kept its cores busy, so the fits leave {'them' if busy != 1 else 'it'} out: this answer "
                    f"rests on its peak figures and on runs of other {hw.kind} devices (median error 10-21% "
                    "from one CPU to another in bench/cross_cpu.py). Rerun on a quiet machine (perfcast "
                    "benchmark ... --save) to use them.")
        if not self.unmeasured_kinds([hw]):
            return (f"{hw.id} has no measurements in the store: this answer rests on its peak figures and on "
                    f"runs of other {hw.kind} devices (median error 10-21% from one CPU to another in "
                    f"bench/cross_cpu.py). A few runs of it (perfcast benchmark ... --save) narrow that down.")
        kinds = self.measured_kinds()
        seen = ", ".join(f"{k} ({n} runs)" for k, n in sorted(kinds.items())) or "nothing"
        overhead = ""
        fitted = self._fitted[1] if self._fitted is not None else None
        params = getattr(getattr(fitted, "roofline", None), "params", None)
        if params is not None and getattr(params, "overhead_ms", None) is not None:
            overhead = f", and a fixed overhead of {params.overhead_ms:.3g} ms per pass"
        return (f"no {hw.kind} device has been measured (the store holds {seen}): this answer extrapolates a "
                f"roofline fitted on other kinds of device (efficiencies{overhead}). Expect large errors; small, "
                f"launch-bound workloads in particular can run several times faster than predicted. One run on "
                f"the device (perfcast benchmark ... --save) brought the median error on a left-out GPU from 16.7% "
                f"to 8.4% on public data (bench/cross_hardware.py).")

    # -- configs ------------------------------------------------------------------------------------
    def config(self, model_name: str, hardware: str, batch_size: int = 1, precision: str = "fp32",
               seq_len: int = 128, mode: str = "inference", runtime: Optional[str] = None,
               threads: int = 0, *,
               memo: Optional[dict[tuple[str, str], Any]] = None) -> tuple[Config, ResolvedHardware]:
        """Validate names and build the canonical configuration (and say which device answers).
        ``memo``: one dict for the calls of one request (as :meth:`check_threads` takes it), so
        each hardware name is resolved once: compare-hardware over 4 devices and 5 batch sizes read
        the store's hardware table 20 times for 4 names."""
        return self._config({} if memo is None else memo, model_name, hardware, batch_size, precision, seq_len, mode,
                            runtime, threads)

    def _resolved(self, hardware: str, memo: dict[tuple[str, str], Any]) -> ResolvedHardware:
        """:func:`resolve`, once per name within one call: resolving reads the store's hardware
        table, which cost 45-90 ms per configuration of a sweep (the model itself ~1 ms)."""
        if ("resolved", hardware) not in memo:
            memo["resolved", hardware] = resolve(hardware, self.store)
        return memo["resolved", hardware]

    def _config(self, memo: dict[tuple[str, str], Any], model_name: str, hardware: str, batch_size: int = 1,
                precision: str = "fp32", seq_len: int = 128, mode: str = "inference", runtime: Optional[str] = None,
                threads: int = 0) -> tuple[Config, ResolvedHardware]:
        from engine.catalog import get_model
        from engine.workloads import effective_seq_len

        entry = get_model(model_name)
        if not isinstance(hardware, str):
            raise InvalidValueError("hardware", hardware, "one hardware id or platform name as a string")
        hw = self._resolved(hardware, memo)
        rt = runtime or hw.runtime or "torch"
        # every field checked by Config (types, ranges) before the sequence length is made effective
        cfg = Config(model=entry.name, hardware=hw.id, batch_size=batch_size, seq_len=seq_len, precision=precision,
                     mode=mode, runtime=rt, threads=threads)
        self.check_threads(memo, hw, threads)
        _refuse_unrunnable(cfg, hw)
        return cfg.with_(seq_len=effective_seq_len(entry, seq_len)), hw

    def check_threads(self, memo: dict[tuple[str, str], Any], hw: ResolvedHardware, threads: int) -> None:
        """More threads than the CPU has cores is refused (:func:`engine.models.features.check_threads`),
        for a request by names and a :class:`Config` alike (a Config with t64 on a 2-core CPU was
        answered as t2)."""
        if not threads:
            return
        from engine.catalog import resolve_hardware
        from engine.models.features import check_threads

        if ("entry", hw.id) not in memo:
            memo["entry", hw.id] = resolve_hardware(hw.id, self.store)
        check_threads(memo["entry", hw.id], threads)

    def _configs(self, configs: Iterable[ConfigLike],
                 memo: Optional[dict[tuple[str, str], Any]] = None) -> tuple[list[Config], list[ResolvedHardware]]:
        from engine.catalog import get_model
        from engine.workloads import effective_seq_len

        what = "an engine.Config or a mapping of predict()'s arguments (model_name, hardware, batch_size, ...)"
        if isinstance(configs, (str, bytes, Mapping, Config)) or not isinstance(configs, Iterable):
            # predict_many("gpt2") or one dict was read letter by letter / key by key (a dict() ValueError)
            raise InvalidValueError("configurations", configs, f"an iterable whose items are each {what}")
        keys = list(inspect.signature(self._config).parameters)[1:]  # predict()'s own argument names
        out: list[Config] = []
        hws: list[ResolvedHardware] = []
        memo = {} if memo is None else memo  # a caller's (compare_hardware): its names are resolved already
        for c in configs:
            if not isinstance(c, (Config, Mapping)):
                raise InvalidValueError("configuration", c, what)
            if isinstance(c, Config):
                hw = self._resolved(c.hardware, memo)
                cfg = c if hw.id == c.hardware else c.with_(hardware=hw.id)
                # as config() does: seq_len 0 on a text model meant s0 here and s128 there
                seq = effective_seq_len(get_model(cfg.model), cfg.seq_len)
                cfg = cfg if seq == cfg.seq_len else cfg.with_(seq_len=seq)
                self.check_threads(memo, hw, cfg.threads)
                _refuse_unrunnable(cfg, hw)
            else:
                kw = dict(c)
                if "model" in kw and "model_name" not in kw:
                    kw["model_name"] = kw.pop("model")
                # {"batch": 8} was a TypeError naming the private _config(); a missing hardware too
                unknown = [k for k in kw if k not in keys]
                if unknown:
                    raise UnknownNameError("configuration key", str(unknown[0]), keys)
                if not {"model_name", "hardware"} <= set(kw):
                    raise InvalidValueError("configuration", dict(c), "a mapping with at least model_name and hardware")
                cfg, hw = self._config(memo, **kw)
            out.append(cfg)
            hws.append(hw)
        return out, hws

    # -- predictions -------------------------------------------------------------------------------
    def predict_set(self, configs: Iterable[ConfigLike]) -> tuple[PredictionSet, list[ResolvedHardware]]:
        """Vectorised posterior for many configurations (one predictor call, no per-config loop)."""
        return self._predict_set(configs, {})

    def _predict_set(self, configs: Iterable[ConfigLike],
                     memo: dict[tuple[str, str], Any]) -> tuple[PredictionSet, list[ResolvedHardware]]:
        cfgs, hws = self._configs(configs, memo)
        if not cfgs:
            return PredictionSet(configs=[], predictor=self.predictor_name), []
        return self.fitted().predict(cfgs), hws

    def predict_many(self, configs: Iterable[ConfigLike]) -> list[Prediction]:
        """Typed predictions for many configurations (Config objects or keyword mappings)."""
        return self._predict_many(configs, {})

    def _predict_many(self, configs: Iterable[ConfigLike], memo: dict[tuple[str, str], Any]) -> list[Prediction]:
        """:meth:`predict_many` with the call's memo of resolved names (:meth:`_resolved`), which
        :meth:`compare_hardware` fills first."""
        pset, hws = self._predict_set(configs, memo)
        nearby = self._nearby_counts()
        device_caution = {hw.id: self.extrapolation_warning(hw) for hw in hws}
        fit_caution = self.fit_caution() if hws else None
        size_caution = {m: self.size_caution(m, nearby) for m in {p.model for p in pset.configs}}
        path_cautions: dict[tuple[str, ...], list[str]] = {}  # they read the store's hardware table: once each
        model_cautions: dict[tuple[str, ...], Optional[str]] = {}  # int8 on a model torch barely quantizes
        out = []
        for i, hw in enumerate(hws):
            p = pset[i]
            c = p.config
            key = (c.hardware, c.runtime, c.precision, c.mode)
            if key not in path_cautions:
                path_cautions[key] = [*config_cautions(c, hw, self.store),
                                      *filter(None, [self.new_path_caution(c, hw)])]
            mkey = (c.model, c.runtime, c.precision)
            if mkey not in model_cautions:
                model_cautions[mkey] = int8_share_caution(c)
            cautions = [*path_cautions[key], *filter(None, [model_cautions[mkey], device_caution[hw.id],
                                                            size_caution[c.model], fit_caution])]
            out.append(dataclasses.replace(
                p, device_name=hw.name, memory_capacity_mib=hw.memory_capacity_mib,
                n_nearby=nearby.get((p.config.model, p.config.hardware), 0), warnings=cautions))
        return out

    def predict(self, model_name: str, hardware: str, batch_size: int = 1, precision: str = "fp32",
                seq_len: int = 128, mode: str = "inference", runtime: Optional[str] = None,
                threads: int = 0) -> Prediction:
        """Posterior of latency, throughput and memory for one configuration."""
        return self.predict_many([dict(model_name=model_name, hardware=hardware, batch_size=batch_size,
                                       precision=precision, seq_len=seq_len, mode=mode, runtime=runtime,
                                       threads=threads)])[0]

    def compare_hardware(self, model_name: str, hardware: Sequence[str], batch_size: int = 1,
                         **kw: Any) -> list[Prediction]:
        """The same workload on several devices, one vectorised call. A comma-separated string is
        split (``"cpu,t4"``), rather than read letter by letter ("unknown hardware 'c'")."""
        from engine.models.features import threads_on_several

        hardware = split_names(hardware)
        if not hardware:
            raise InvalidValueError("hardware", "", "at least one hardware id or platform name")
        memo: dict[tuple[str, str], Any] = {}
        per_device = threads_on_several([self._resolved(h, memo).kind for h in hardware], kw.pop("threads", 0))
        # the same memo: each name was resolved twice, here for the threads rule and again in predict_many
        # (a read of the store's hardware table each), and the two could disagree if the table changed between
        return self._predict_many([dict(model_name=model_name, hardware=h, batch_size=batch_size, threads=t, **kw)
                                   for h, t in zip(hardware, per_device)], memo)

    def batch_scaling(self, model_name: str, hardware: str, batch_sizes: Sequence[int], **kw: Any) -> list[Prediction]:
        """How the posterior moves with the batch size on one device. ``batch_sizes`` may be any
        iterable of integers: a list, ``np.array([1, 2, 4])`` or a DataFrame column."""
        batch_sizes = [batch_sizes] if isinstance(batch_sizes, str) or np.ndim(batch_sizes) == 0 else list(batch_sizes)
        if not batch_sizes:
            raise InvalidValueError("batch sizes", "", "at least one integer >= 1")
        return self.predict_many([dict(model_name=model_name, hardware=hardware, batch_size=b, **kw)
                                  for b in batch_sizes])


#: parameter-count ratio to the largest measured model above which an answer is cautioned
SIZE_EXTRAPOLATION = 4.0


def _count_text(n: float) -> str:
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def summarize(pset: PredictionSet, metric: str) -> dict[str, np.ndarray]:
    """Vectorised median, mean and q05/q25/q75/q95 of one metric for every configuration."""
    q = pset.quantiles(metric, SUMMARY_QUANTILES)
    mean = pset.mean(metric)
    return {"median": q[2], "mean": mean, "q05": q[0], "q25": q[1], "q75": q[3], "q95": q[4]}


def prediction_record(pred: Prediction, hw: Optional[ResolvedHardware] = None,
                      latency_slo_ms: Optional[float] = None,
                      warnings: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """JSON-ready view of one prediction (for ``--json`` and for scripts), with its cautions
    (``pred.warnings`` unless ``warnings`` is given)."""
    metrics = {}
    for name, mp in pred.metrics.items():
        s = mp.summary()
        metrics[name] = {**s, "interval_90": [s["q05"], s["q95"]], "interval_50": [s["q25"], s["q75"]]}
    out: dict[str, Any] = {
        "config": pred.config.to_dict(),
        "predictor": pred.predictor,
        "device": {"requested": hw.requested if hw else pred.config.hardware, "id": pred.config.hardware,
                   "name": pred.device_name or (hw.name if hw else ""), "kind": hw.kind if hw else None,
                   "memory_gib": hw.memory_gib if hw else None},
        "n_nearby": pred.n_nearby,
        "metrics": metrics,
        "prob_fits_memory": pred.prob_fits_memory(),
        "warnings": list(pred.warnings if warnings is None else warnings),
    }
    if latency_slo_ms is not None:
        out["latency_slo"] = {"bound_ms": latency_slo_ms,
                              "prob_median_latency_below": pred.prob_latency_below(latency_slo_ms)}
        if "latency_p90_ms" in pred.metrics:
            out["latency_slo"]["prob_p90_latency_below"] = pred.prob_latency_below(latency_slo_ms, "latency_p90_ms")
    return out


__all__ = ["answer_cautions", "config_cautions", "int8_share_caution", "prediction_record", "PerformancePredictor",
           "ResolvedHardware", "resolve", "make_predictor", "summarize", "PREDICTOR_NAMES"]
