"""What the user asks the optimiser: objectives, constraints and the search space, validated.

Everything here is checked *before* a model is fitted or a benchmark is run, so a typo costs a
one-line error, not ten minutes of benchmarks. Metrics are the predictors' metrics plus the cost
of a million items at the catalog's hourly price::

    latency_ms        median latency of one batch             minimise
    latency_p90_ms    90th percentile latency of one batch    minimise
    throughput        items per second                        maximise
    memory_mib        peak resident memory                    minimise
    cost_per_1m_usd   hourly price / throughput, per 1e6 items minimise

A constraint is an upper bound (``{"latency_p90_ms": 50}``: p90 latency <= 50 ms), except on
throughput where it is a lower bound (``{"throughput": 100}``: at least 100 items/s).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from engine.config import PRECISIONS, RUNTIMES, Config, as_count, split_names
from engine.errors import InvalidValueError, UnknownNameError
# what the adapters refuse outright lives with the adapters, which also say why
from hardware.registry import adapter_refuses

METRICS: tuple[str, ...] = ("throughput", "latency_ms", "latency_p90_ms", "memory_mib", "cost_per_1m_usd")
MAXIMISE: frozenset[str] = frozenset({"throughput"})
ALIASES: dict[str, str] = {
    "latency": "latency_ms", "latency_median_ms": "latency_ms", "p90": "latency_p90_ms",
    "latency_p90": "latency_p90_ms", "memory": "memory_mib", "cost": "cost_per_1m_usd",
    "cost_per_1m": "cost_per_1m_usd", "throughput_items_s": "throughput",
}
UNITS: dict[str, str] = {"throughput": "items/s", "latency_ms": "ms", "latency_p90_ms": "ms", "memory_mib": "MiB",
                         "cost_per_1m_usd": "USD/1M items"}

SPACE_KEYS: tuple[str, ...] = ("hardware", "batch_size", "precision", "threads", "runtime", "seq_len", "mode")
DEFAULT_SPACE: dict[str, list[Any]] = {
    "hardware": ["cpu"], "batch_size": [1, 2, 4, 8, 16, 32, 64], "precision": ["fp32", "bf16", "int8"],
    "threads": [1, 2], "runtime": ["torch", "onnxruntime", "openvino"], "seq_len": [128], "mode": ["inference"],
}


def canonical_metric(name: str, what: str = "metric") -> str:
    """'latency' -> 'latency_ms'; an unknown name raises with the valid ones listed."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in METRICS:
        raise UnknownNameError(what, str(name), [*METRICS, *ALIASES])
    return key


@dataclass(frozen=True)
class Constraint:
    """``metric <= bound`` (or ``>=`` for throughput), in the metric's natural units."""

    metric: str
    bound: float

    @property
    def upper(self) -> bool:
        return self.metric not in MAXIMISE

    def satisfied(self, value: Optional[float]) -> bool:
        if value is None or not math.isfinite(value):
            return False
        return value <= self.bound if self.upper else value >= self.bound

    def describe(self) -> str:
        return f"{self.metric} {'<=' if self.upper else '>='} {self.bound:g} {UNITS[self.metric]}"


@dataclass(frozen=True)
class Problem:
    """A validated optimisation problem: objectives (1 = single, >1 = Pareto) and constraints."""

    model: str
    objectives: tuple[str, ...]
    constraints: tuple[Constraint, ...]
    candidates: tuple[Config, ...]
    space: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric the problem needs a posterior for, objectives first."""
        out = list(self.objectives)
        for c in self.constraints:
            if c.metric not in out:
                out.append(c.metric)
        return tuple(out)

    def sign(self, metric: str) -> float:
        """+1 where larger is better, -1 where smaller is better (log-scale utility = sign * log)."""
        return 1.0 if metric in MAXIMISE else -1.0

    def feasible(self, values: Mapping[str, Optional[float]]) -> bool:
        return all(c.satisfied(values.get(c.metric)) for c in self.constraints)


def parse_objectives(objective: Union[str, Sequence[str]]) -> tuple[str, ...]:
    items = [p for o in ([objective] if isinstance(objective, str) else list(objective))
             for p in split_names(str(o))]
    if not items:
        raise InvalidValueError("objective", objective, ", ".join(METRICS))
    out: list[str] = []
    for o in items:
        m = canonical_metric(o, "objective")
        if m in out:
            raise InvalidValueError("objective", o, "each metric at most once")
        out.append(m)
    return tuple(out)


def parse_constraints(constraints: Optional[Mapping[str, Any]]) -> tuple[Constraint, ...]:
    if constraints is not None and not isinstance(constraints, Mapping):
        # constraints=[100] was an AttributeError ('list' object has no attribute 'items')
        raise InvalidValueError("constraints", constraints, "a mapping of metric to bound, e.g. "
                                "{'latency_p90_ms': 100, 'memory_mib': 8000}")
    out: list[Constraint] = []
    seen: set[str] = set()
    for name, bound in (constraints or {}).items():
        m = canonical_metric(name, "constraint metric")
        if m in seen:
            raise InvalidValueError("constraint", name, f"one bound per metric ({m} given twice)")
        seen.add(m)
        try:
            b = float(bound)
        except (TypeError, ValueError):
            raise InvalidValueError(f"bound for {m}", bound, f"a positive number in {UNITS[m]}") from None
        if not math.isfinite(b) or b <= 0:
            raise InvalidValueError(f"bound for {m}", bound, f"a positive, finite number in {UNITS[m]} "
                                    "(no configuration can satisfy this)")
        out.append(Constraint(m, b))
    return tuple(out)


def _as_list(key: str, value: Any) -> list[Any]:
    value = as_count(value)
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]
    try:
        vals = list(value)
    except TypeError:
        raise InvalidValueError(f"space['{key}']", value, "a list of values") from None
    if not vals:
        raise InvalidValueError(f"space['{key}']", vals, "a non-empty list (an empty dimension leaves no "
                                "configuration to try)")
    return vals


#: What 0 means where an axis takes it (the error for a negative value says so).
ZERO_MEANS: dict[str, str] = {"threads": "the runtime's default", "seq_len": "the model's default sequence length"}


def _ints(key: str, vals: Iterable[Any], minimum: int) -> list[int]:
    out = []
    for v in vals:
        v = as_count(v)  # np.arange(...) or a DataFrame column
        ok = isinstance(v, int) and not isinstance(v, bool)
        if isinstance(v, str) and v.strip().isdigit():
            v, ok = int(v.strip()), True
        if not ok or v < minimum:
            zero = f" (0: {ZERO_MEANS[key]})" if minimum == 0 and key in ZERO_MEANS else ""
            raise InvalidValueError(key, v, f"an integer >= {minimum}{zero}")
        out.append(int(v))
    return sorted(set(out))


def normalise_space(space: Optional[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Fill defaults, reject unknown keys and empty or invalid dimensions."""
    if space is not None and not isinstance(space, Mapping):
        # space=["cpu"] was dict()'s "dictionary update sequence element #0 has length 3"
        raise InvalidValueError("space", space, "a mapping of " + ", ".join(SPACE_KEYS) + " to lists of values")
    space = dict(space) if space is not None else dict(DEFAULT_SPACE)
    if not space:
        raise InvalidValueError("space", {}, "a mapping with at least one of " + ", ".join(SPACE_KEYS))
    unknown = [k for k in space if k not in SPACE_KEYS]
    if unknown:
        raise UnknownNameError("space key", str(unknown[0]), SPACE_KEYS)
    out: dict[str, list[Any]] = {}
    for key in SPACE_KEYS:
        raw = space.get(key, DEFAULT_SPACE[key])
        vals = _as_list(key, raw)
        if key == "batch_size":
            vals = _ints(key, vals, 1)
        elif key in ("threads", "seq_len"):
            vals = _ints(key, vals, 0)
        elif key == "precision":
            for v in vals:
                if v not in PRECISIONS:
                    raise InvalidValueError("precision", v, ", ".join(PRECISIONS))
        elif key == "runtime":
            for v in vals:
                if v not in RUNTIMES:
                    raise InvalidValueError("runtime", v, ", ".join(RUNTIMES))
        elif key == "mode":
            for v in vals:
                if v not in ("inference", "training"):
                    raise InvalidValueError("mode", v, "inference, training")
        out[key] = list(dict.fromkeys(vals))
    return out


def resolve_space_hardware(names: Sequence[str], store: Any = None) -> list[str]:
    """Platform names or ids -> hardware ids (``cpu`` -> this machine's CPU id)."""
    from engine.catalog import resolve_hardware

    return list(dict.fromkeys(resolve_hardware(str(h), store).id for h in names))


#: Adapters that detect their device but cannot measure on it (hardware/qnn.py).
DETECTION_ONLY: frozenset[str] = frozenset({"qnn"})


def adapter_platform(kind: str) -> str:
    """The platform whose adapters run a device of ``kind``: an OpenVINO device is run by the
    CPU-side openvino adapter, every other kind by its own platform's."""
    return "cpu" if kind == "openvino" else kind


def adapter_measures(kind: str, runtime: str, precision: str, mode: str) -> bool:
    """Whether a perfcast adapter can benchmark this on a device of ``kind``. Stricter than
    :func:`runtime_runs_on`: WebNN on a WebNN laptop is a real deployment (so it is ranked and
    predicted) that no perfcast adapter measures (so a prediction of it says so)."""
    from hardware.registry import RUNTIME_ADAPTERS

    adapter = RUNTIME_ADAPTERS.get((adapter_platform(kind), runtime))
    return adapter is not None and adapter not in DETECTION_ONLY and not adapter_refuses(kind, runtime, precision, mode)


def runtime_runs_on(kind: str, runtime: str) -> bool:
    """Whether a runtime can run on a device kind (the adapters' (platform, runtime) table, and the
    deployments no adapter measures: ONNX Runtime on CUDA)."""
    from hardware.registry import RUNTIME_ADAPTERS, UNMEASURED_DEPLOYMENTS

    if kind in ("openvino", "qnn", "webgpu", "webnn"):
        return runtime == kind
    return (kind, runtime) in RUNTIME_ADAPTERS or (kind, runtime) in UNMEASURED_DEPLOYMENTS


def enumerate_space(model: str, space: Mapping[str, list[Any]], hardware_ids: Sequence[str]) -> list[Config]:
    """The Cartesian product as canonical configurations.

    Sequence lengths are made effective for the model; threads only vary on CPUs (0 = the
    runtime's default elsewhere); runtimes that cannot run on a device kind are left out.
    """
    from engine.catalog import get_model, resolve_hardware
    from engine.models.features import check_threads, entry_cores
    from engine.workloads import effective_seq_len

    entry = get_model(model)
    devices = {h: resolve_hardware(h) for h in hardware_ids}
    kinds = {h: d.kind for h, d in devices.items()}
    cores = {h: entry_cores(d) for h, d in devices.items() if d.kind == "cpu"}
    if cores:  # a thread count no CPU of the space has is an error; one some CPUs lack skips those
        widest = devices[max(cores, key=cores.get)]
        for t in space["threads"]:
            check_threads(widest, int(t))
    seen: dict[str, Config] = {}
    for hw, b, s, p, mode, rt, t in itertools.product(hardware_ids, space["batch_size"], space["seq_len"],
                                                      space["precision"], space["mode"], space["runtime"],
                                                      space["threads"]):
        if not runtime_runs_on(kinds[hw], rt) or adapter_refuses(kinds[hw], rt, p, mode):
            continue
        if hw in cores and int(t) > cores[hw]:
            continue
        threads = int(t) if kinds[hw] in ("cpu", "openvino") else 0
        c = Config(entry.name, hw, int(b), effective_seq_len(entry, int(s)), p, mode, rt, threads)
        seen.setdefault(c.key, c)
    if not seen:
        pairs = ", ".join(f"{h} ({kinds[h]})" for h in hardware_ids)
        raise InvalidValueError("space", f"runtimes {','.join(space['runtime'])} x precisions "
                                f"{','.join(space['precision'])} x modes {','.join(space['mode'])}",
                                f"a combination the adapters run on {pairs} (e.g. torch fp32 on cpu/cuda; "
                                "onnxruntime: fp32/int8 inference; openvino: inference)")
    return list(seen.values())


def build_problem(model: str, objective: Union[str, Sequence[str]] = "throughput",
                  constraints: Optional[Mapping[str, Any]] = None, space: Optional[Mapping[str, Any]] = None,
                  store: Any = None, candidates: Optional[Sequence[Config]] = None,
                  prices: Optional[Mapping[str, float]] = None) -> Problem:
    """Validate everything and enumerate the candidates; raises a one-line PerfcastError."""
    from engine.catalog import get_model

    entry = get_model(model)
    objectives = parse_objectives(objective)
    cons = parse_constraints(constraints)
    norm = normalise_space(space)
    if candidates is None:
        hw_ids = resolve_space_hardware(norm["hardware"], store)
        cands = enumerate_space(entry.name, norm, hw_ids)
    else:
        cands = list(candidates)
    if not cands:
        raise InvalidValueError("space", space, "at least one configuration")
    problem = Problem(entry.name, objectives, cons, tuple(cands), norm)
    _check_cost(problem, store, prices or {})
    _check_memory_bound(problem)
    return problem


def resolve_prices(prices: Optional[Mapping[str, Any]], store: Any = None) -> dict[str, float]:
    """User hourly prices keyed by hardware id or platform name -> {hardware id: USD/h} (validated)."""
    out: dict[str, float] = {}
    for name, value in (prices or {}).items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InvalidValueError(f"hourly price for {name}", value, "a positive number of USD per hour") from None
        if not math.isfinite(v) or v <= 0:
            raise InvalidValueError(f"hourly price for {name}", value, "a positive number of USD per hour")
        out[resolve_space_hardware([name], store)[0]] = v
    return out


def hourly_price(hardware_id: str, store: Any = None, prices: Optional[Mapping[str, float]] = None) -> Optional[float]:
    """The user's price for this hardware id if given, else the catalog's (None when unknown)."""
    from engine.catalog import resolve_hardware

    if prices and hardware_id in prices:
        return float(prices[hardware_id])
    try:
        return resolve_hardware(hardware_id, store).price_per_hour_usd
    except UnknownNameError:
        return None


def _check_cost(problem: Problem, store: Any, prices: Mapping[str, float]) -> None:
    if "cost_per_1m_usd" not in problem.metrics:
        return
    missing = sorted({c.hardware for c in problem.candidates if not hourly_price(c.hardware, store, prices)})
    if missing:
        from engine.catalog import catalog_hardware

        space_hw = {c.hardware for c in problem.candidates}
        unused = sorted(h for h in prices if h not in space_hw)
        if unused:  # audit O: `--price-per-hour cpu=0.1` priced this machine's CPU, not the space's
            raise InvalidValueError("hardware for a cost objective/constraint", missing[0],
                                    f"a price for it: the price given for {', '.join(unused)} names no device of "
                                    f"this space (a platform name means this machine's device); give it as "
                                    f"--price-per-hour {missing[0]}=USD")
        priced = [h for h, e in catalog_hardware().items() if e.price_per_hour_usd]
        raise InvalidValueError("hardware for a cost objective/constraint", missing[0],
                                "hardware with an hourly price in configs/hardware.yaml (" + ", ".join(priced)
                                + "), or give one (prices={...} / --price-per-hour)")


def _check_memory_bound(problem: Problem) -> None:
    """A memory bound below the smallest weight footprint in the space can never be met."""
    bound = next((c.bound for c in problem.constraints if c.metric == "memory_mib"), None)
    if bound is None:
        return
    try:
        from engine.descriptors import describe_many

        d = describe_many(list(problem.candidates))
    except Exception:  # noqa: BLE001 - descriptors unavailable: the posterior will speak instead
        return
    smallest = float(d["weight_bytes"].min()) / 2**20
    if smallest > bound:
        raise InvalidValueError("bound for memory_mib", bound,
                                f"more than {smallest:.0f} MiB: the weights alone need that much in the "
                                "smallest configuration of the space")
