"""Typed answers of the optimiser: assessed configurations, evaluations, the result."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional

from engine.config import Config
from engine.errors import InvalidValueError


def ninety_only(level: float, q05: float, q95: float) -> tuple[float, float]:
    """(q05, q95) for ``level`` 0.9, the one interval an optimiser or recommender answer keeps."""
    if level != 0.9:
        raise InvalidValueError("interval level", level, "0.9 (this answer keeps its 5% and 95% quantiles only; "
                                "PerformancePredictor.predict gives any level)")
    return q05, q95


@dataclass(frozen=True)
class MetricInterval:
    """Posterior predictive of one metric: median and 90% credible interval (natural units)."""

    metric: str
    median: float
    q05: float
    q95: float
    mean: float
    unit: str = ""

    def __repr__(self) -> str:  # as a prediction's metric reads (engine.models.base.MetricPrediction)
        u = self.unit
        return f"<{self.metric}: median {self.median:.4g} {u}, 90% interval {self.q05:.4g}–{self.q95:.4g} {u}>"

    def interval(self, level: float = 0.9) -> tuple[float, float]:
        """The 90% credible interval, called as on a prediction (``p.latency_ms.interval(0.9)``), so
        that one habit works on every answer; only that level is kept."""
        return ninety_only(level, self.q05, self.q95)


@dataclass(frozen=True)
class Assessment:
    """A configuration with the posterior of every metric and its probability of feasibility.

    ``score`` is what the ranking used: E[utility × 1{feasible}] online (the metrics sampled
    jointly), E[utility] × P(feasible) offline; utility = the objective where larger is better,
    1/objective where smaller is better (a rate: items per ms, per MiB, per $).
    ``measured`` holds the observed values when the configuration was evaluated.
    """

    config: Config
    metrics: dict[str, MetricInterval]
    prob_feasible: float
    score: float
    evaluated: bool = False
    measured: Optional[dict[str, Optional[float]]] = None

    def __getattr__(self, name: str) -> MetricInterval:
        metrics = self.__dict__.get("metrics", {})
        if name in metrics:
            return metrics[name]
        raise AttributeError(name)

    def __repr__(self) -> str:
        """``Assessment(gpt2|cpu-…|b8|…, P(feasible) 0.97)`` and one line per metric (a notebook
        printed the whole dataclass, every MetricInterval field)."""
        seen = " evaluated" if self.evaluated else ""
        body = "".join(f"\n  {m!r}" for m in self.metrics.values())
        return f"Assessment({self.config.key}, P(feasible) {self.prob_feasible:.3g}{seen}){body}"

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "config_key": self.config.key,
                "metrics": {k: {**asdict(v), "interval_90": [v.q05, v.q95]} for k, v in self.metrics.items()},
                "prob_feasible": self.prob_feasible, "score": self.score, "evaluated": self.evaluated,
                "measured": self.measured}


@dataclass(frozen=True)
class Evaluation:
    """One benchmark the optimiser ran (or looked up, in replay), successful or not."""

    step: int
    config: Config
    status: str
    measured: dict[str, Optional[float]]
    feasible: bool
    objective: Optional[float]  # the (first) objective's measured value; None when the run failed
    chosen_by: str  # prior | qLogNEI | qLogNEHVI
    acquisition_value: Optional[float] = None
    error: Optional[str] = None
    wall_time_s: Optional[float] = None
    run_id: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)  # recurses: the config is already a plain mapping
        d["config_key"] = self.config.key
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Evaluation":
        """Back from :meth:`to_dict` (a resumed optimisation's earlier evaluations, kept in its
        experiment's state)."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names and k != "config"}
        return cls(config=Config.from_key(d["config_key"]), **kw)


@dataclass
class OptimizationResult:
    """What ``optimize_deployment`` returns.

    ``best``: the recommended configuration (online: the evaluated configuration with the best
    posterior objective among those with P(feasible) >= 0.5; offline: the top of the ranking).
    When nothing is likely feasible, ``best`` is only the configuration closest to feasible and
    ``feasible`` is False: read ``feasible`` before deploying ``best`` (a script that read
    ``best`` alone deployed a configuration with P(feasible) 1e-21).
    ``pareto``: for several objectives, the non-dominated configurations. ``alternatives``: the
    next-best configurations of the final ranking. ``history``: every evaluation, in order; a
    resumed optimisation's starts with those of its earlier sessions (their steps come first).
    """

    model: str
    objectives: tuple[str, ...]
    constraints: dict[str, float]
    online: bool
    best: Optional[Assessment]
    pareto: list[Assessment] = field(default_factory=list)
    alternatives: list[Assessment] = field(default_factory=list)
    history: list[Evaluation] = field(default_factory=list)
    n_candidates: int = 0
    surrogate: str = ""
    notes: list[str] = field(default_factory=list)
    experiment_id: Optional[str] = None
    interrupted: bool = False  # online: stopped early by ``should_stop`` (Ctrl-C in the CLI)
    warnings: list[str] = field(default_factory=list)  # predict's cautions for the reported rows

    def __repr__(self) -> str:
        from engine.optimize.spec import Constraint

        cons = ", ".join(Constraint(k, v).describe() for k, v in self.constraints.items())
        head = (f"OptimizationResult({self.model}: {', '.join(self.objectives)}"
                f"{' subject to ' + cons if cons else ''}; {'online' if self.online else 'offline'}, "
                f"{self.n_candidates} candidates, {len(self.history)} evaluations, feasible={self.feasible})")
        best = "\nbest: " + repr(self.best).replace("\n", "\n  ") if self.best else "\nbest: none"
        more = (f"\n{len(self.pareto)} Pareto, {len(self.alternatives)} alternatives (.pareto, .alternatives)"
                if self.pareto or self.alternatives else "")
        notes = "".join(f"\ncaution: {w}" for w in self.warnings)
        return head + best + more + notes

    @property
    def objective(self) -> str:
        return self.objectives[0]

    @property
    def feasible(self) -> bool:
        """``best`` meets the constraints with probability >= 0.5."""
        return self.best is not None and self.best.prob_feasible >= 0.5

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "objectives": list(self.objectives), "constraints": self.constraints,
                "online": self.online, "n_candidates": self.n_candidates, "surrogate": self.surrogate,
                "best": self.best.to_dict() if self.best else None, "feasible": self.feasible,
                "pareto": [a.to_dict() for a in self.pareto],
                "alternatives": [a.to_dict() for a in self.alternatives],
                "history": [e.to_dict() for e in self.history], "notes": self.notes,
                "experiment_id": self.experiment_id, "interrupted": self.interrupted, "warnings": self.warnings}
