"""Typed records that cross module boundaries: measurements in, predictions out.

Adapters build :class:`Measurement`; the store persists it as one ``benchmark_runs`` row, one
``benchmark_results`` row (when the run succeeded) and one ``raw_samples`` row per timed
iteration.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional, Sequence

from engine.config import Config

RUN_STATUSES: tuple[str, ...] = ("ok", "failed", "timeout", "oom")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def utc_iso(t: datetime) -> str:
    """ISO 8601 with the zone for JSON (``2026-12-07T02:36:06.454272+00:00``): the store keeps naive
    UTC times, which printed as ``2026-12-07 02:36:06.454272`` and read as local time in scripts."""
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).isoformat()


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-iteration latencies in milliseconds."""

    mean_ms: float
    median_ms: float
    min_ms: float
    max_ms: float
    p90_ms: float
    p99_ms: float
    std_ms: float

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> "LatencyStats":
        if not samples_ms:
            raise ValueError("no latency samples")
        xs = sorted(float(x) for x in samples_ms)

        def pct(q: float) -> float:
            # linear interpolation, same as numpy's default
            pos = (len(xs) - 1) * q
            lo, hi = math.floor(pos), math.ceil(pos)
            return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

        return cls(
            mean_ms=statistics.fmean(xs),
            median_ms=pct(0.5),
            min_ms=xs[0],
            max_ms=xs[-1],
            p90_ms=pct(0.9),
            p99_ms=pct(0.99),
            std_ms=statistics.stdev(xs) if len(xs) > 1 else 0.0,
        )


@dataclass
class Measurement:
    """What one benchmark run produced (successful or not)."""

    config: Config
    status: str = "ok"
    error: Optional[str] = None
    latency: Optional[LatencyStats] = None
    samples_ms: list[float] = field(default_factory=list)
    throughput: Optional[float] = None  # items / second = batch / median latency
    memory_peak_mib: Optional[float] = None
    memory_avg_mib: Optional[float] = None
    first_token_ms: Optional[float] = None
    decode_token_ms: Optional[float] = None
    load_time_s: Optional[float] = None
    power_w: Optional[float] = None
    iterations: int = 0
    warmup: int = 0
    wall_time_s: Optional[float] = None  # whole benchmark incl. build/export: the cost of a run
    started_at: datetime = field(default_factory=utcnow)
    host: str = ""
    adapter: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    device_name: str = ""
    source: str = "measured"  # measured | imported | shipped
    # CPU cores that OTHER processes kept busy while the timed iterations ran (None: not measured);
    # see hardware.protocol.time_iterations and busy_machine()
    foreign_cpu_cores: Optional[float] = None

    def __post_init__(self) -> None:
        if self.status not in RUN_STATUSES:
            raise ValueError(f"invalid status {self.status!r}; valid: {', '.join(RUN_STATUSES)}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_samples(cls, config: Config, samples_ms: Sequence[float], **kw: Any) -> "Measurement":
        stats = LatencyStats.from_samples(samples_ms)
        # hardware.protocol.TimedSamples carries the machine's load during the timed iterations
        kw.setdefault("foreign_cpu_cores", getattr(samples_ms, "foreign_cpu_cores", None))
        return cls(
            config=config,
            status="ok",
            latency=stats,
            samples_ms=list(map(float, samples_ms)),
            throughput=config.batch_size / (stats.median_ms / 1000.0),
            iterations=len(samples_ms),
            **kw,
        )

    @classmethod
    def failed(cls, config: Config, status: str, error: str, **kw: Any) -> "Measurement":
        return cls(config=config, status=status, error=error[-4000:], **kw)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["started_at"] = self.started_at.isoformat()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Measurement":
        d = dict(d)
        d["config"] = Config(**d["config"])
        if d.get("latency"):
            d["latency"] = LatencyStats(**d["latency"])
        if isinstance(d.get("started_at"), str):
            d["started_at"] = datetime.fromisoformat(d["started_at"])
        return cls(**d)
