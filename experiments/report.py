"""Learning curves: held-out error and interval width vs benchmarks and vs benchmark-seconds.

A curve is read off the loop's step records: at each acquisition the posterior (fitted on what
had been measured) is scored — held-out median APE and the empirical coverage of its 50% and 90%
intervals where the truth is known, and the mean relative 90% interval width over the remaining
pool. Curves of several seeds are put on a common
grid (the value of the last step at or before each grid point) and averaged.

``compare`` puts the chosen acquisition beside ``random`` and ``max-variance`` on the same pool;
``print_report`` renders a Rich table, ``plot_report`` a 2×2 matplotlib figure.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    from experiments.loop import LoopResult

BASELINES: tuple[str, ...] = ("random", "max-variance")


@dataclass
class Curve:
    """One strategy's curves (averaged over seeds) on a grid of benchmarks and of seconds."""

    strategy: str
    n_grid: np.ndarray
    ape_by_n: np.ndarray  # mean over seeds of held-out median APE (nan where unknown)
    width_by_n: np.ndarray
    seconds_by_n: np.ndarray  # mean benchmark-seconds spent to reach n benchmarks
    s_grid: np.ndarray
    ape_by_s: np.ndarray
    width_by_s: np.ndarray
    seeds: int
    source: str = "replay"  # replay | real run (prequential)
    extra: dict[str, Any] = field(default_factory=dict)
    #: mean over seeds of the held-out pool's empirical coverage of the 50% / 90% intervals (nan
    #: where unknown: a real run knows no held-out truth)
    cover50_by_n: Optional[np.ndarray] = None
    cover90_by_n: Optional[np.ndarray] = None

    def to_dict(self) -> dict[str, Any]:
        def lst(a: np.ndarray) -> list[Optional[float]]:
            return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=float)]

        # a real run has no held-out set: its "heldout_*" columns hold the prequential error (`error`)
        return {"strategy": self.strategy, "seeds": self.seeds, "source": self.source,
                "error": "prequential" if "prequential" in self.source else "held-out",
                "n_benchmarks": lst(self.n_grid), "heldout_median_ape": lst(self.ape_by_n),
                "mean_rel_width90": lst(self.width_by_n), "benchmark_seconds_at_n": lst(self.seconds_by_n),
                "seconds_grid": lst(self.s_grid), "heldout_median_ape_by_seconds": lst(self.ape_by_s),
                "mean_rel_width90_by_seconds": lst(self.width_by_s),
                "heldout_cover50": lst(self.cover50_by_n) if self.cover50_by_n is not None else None,
                "heldout_cover90": lst(self.cover90_by_n) if self.cover90_by_n is not None else None,
                **self.extra}


def _step_fn(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Value of the last point with x <= g for each grid point g (nan before the first)."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    idx = np.searchsorted(x, grid, side="right") - 1
    out = np.where(idx >= 0, y[np.clip(idx, 0, None)], np.nan)
    return out


def _points(r: "LoopResult", key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    steps = [s for s in r.steps if getattr(s, key) is not None]
    return (np.array([s.n_benchmarks for s in steps], dtype=float),
            np.array([s.benchmark_seconds for s in steps], dtype=float),
            np.array([getattr(s, key) for s in steps], dtype=float))


def curve_of(strategy: str, results: Sequence["LoopResult"], n_max: Optional[int] = None,
             s_max: Optional[float] = None, n_s: int = 60) -> Curve:
    """Average the seeds' learning curves of one strategy onto common grids."""
    n_max = n_max or max(r.n_benchmarks for r in results)
    s_max = s_max or max(r.benchmark_seconds for r in results)
    n_grid = np.arange(0, n_max + 1, dtype=float)
    s_grid = np.linspace(0.0, max(s_max, 1e-9), n_s)
    ape_n, wid_n, sec_n, ape_s, wid_s, c50_n, c90_n = [], [], [], [], [], [], []
    for r in results:
        for key, rows in (("heldout_cover50", c50_n), ("heldout_cover90", c90_n)):
            n, _, c = _points(r, key)
            rows.append(_step_fn(n, c, n_grid) if len(n) else np.full(len(n_grid), np.nan))
        n, s, a = _points(r, "heldout_median_ape")
        ape_n.append(_step_fn(n, a, n_grid) if len(n) else np.full(len(n_grid), np.nan))
        ape_s.append(_step_fn(s, a, s_grid) if len(s) else np.full(len(s_grid), np.nan))
        n, s, w = _points(r, "mean_rel_width90")
        wid_n.append(_step_fn(n, w, n_grid) if len(n) else np.full(len(n_grid), np.nan))
        wid_s.append(_step_fn(s, w, s_grid) if len(s) else np.full(len(s_grid), np.nan))
        ns = np.array([st.n_benchmarks for st in r.steps], dtype=float)
        ss = np.array([st.benchmark_seconds for st in r.steps], dtype=float)
        sec_n.append(np.interp(n_grid, ns, ss, right=np.nan) if len(ns) else np.full(len(n_grid), np.nan))

    def mean(rows: list[np.ndarray]) -> np.ndarray:
        arr = np.vstack(rows)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmean(arr, axis=0)

    return Curve(strategy, n_grid, mean(ape_n), mean(wid_n), mean(sec_n), s_grid, mean(ape_s), mean(wid_s),
                 len(results), cover50_by_n=mean(c50_n), cover90_by_n=mean(c90_n))


def benchmarks_to_reach(curve: Curve, target: float) -> Optional[int]:
    """Fewest benchmarks after which the (seed-averaged) held-out error is at or below ``target``."""
    ok = np.nonzero(np.isfinite(curve.ape_by_n) & (curve.ape_by_n <= target))[0]
    return int(curve.n_grid[ok[0]]) if len(ok) else None


def seconds_to_reach(curve: Curve, target: float) -> Optional[float]:
    n = benchmarks_to_reach(curve, target)
    if n is None:
        return None
    v = curve.seconds_by_n[n]
    return float(v) if np.isfinite(v) else None


@dataclass
class RatioEstimate:
    """How many times fewer benchmarks (and benchmark-seconds) a strategy needs than a baseline
    to reach the baseline's error at ``target_n``, with a seed-bootstrap interval."""

    ratio: float
    seconds_ratio: float
    ratio_ci90: tuple[float, float]
    seconds_ratio_ci90: tuple[float, float]
    p_ratio_ge_2: float  # share of bootstrap resamples with ratio >= 2
    n_boot: int


def ratios_to_reach(base: Sequence["LoopResult"], other: Sequence["LoopResult"], target_n: int,
                    n_max: int) -> tuple[float, float]:
    """(ratio, seconds_ratio): how many times fewer benchmarks and benchmark-seconds ``other``
    needs than ``base`` to reach ``base``'s seed-averaged error at ``target_n``. 0 when ``other``
    never reaches it (no saving), nan when ``base`` never does. The one rule behind the bench's
    last line, the replay's ``savings_vs_random`` and every bootstrap resample."""
    b, o = curve_of("base", base, n_max=n_max), curve_of("other", other, n_max=n_max)
    target = float(b.ape_by_n[target_n])
    bn, on = benchmarks_to_reach(b, target), benchmarks_to_reach(o, target)
    bs, os_ = seconds_to_reach(b, target), seconds_to_reach(o, target)
    ratio = bn / on if bn and on else (0.0 if bn else float("nan"))  # never reached: no saving
    sratio = bs / os_ if bs and os_ else (0.0 if bs else float("nan"))
    return ratio, sratio


def ratio_with_interval(base: Sequence["LoopResult"], other: Sequence["LoopResult"], target_n: int, n_max: int,
                        n_boot: int = 1000, seed: int = 0) -> RatioEstimate:
    """The bench's ratio and seconds_ratio, and 90% intervals from resampling the seeds.

    Seeds are paired (the same initial design for both strategies), so one resample of seed
    indices is applied to both lists. The interval says how much of a ratio is seed luck: the
    crossing point of two flat curves jumps, and a ratio from 12 seeds is itself uncertain.
    """
    if len(base) != len(other):
        raise ValueError("paired seeds: both strategies need the same number of replays")
    ratio, sratio = ratios_to_reach(base, other, target_n, n_max)
    if n_boot <= 0:  # a point estimate only (one seed has nothing to resample)
        nan2 = (float("nan"), float("nan"))
        return RatioEstimate(ratio, sratio, nan2, nan2, float("nan"), 0)
    rng = np.random.default_rng(seed)
    boots = np.array([ratios_to_reach([base[i] for i in idx], [other[i] for i in idx], target_n, n_max)
                      for idx in (rng.integers(0, len(base), len(base)) for _ in range(n_boot))])

    def ci(col: np.ndarray) -> tuple[float, float]:
        col = col[np.isfinite(col)]
        return (float(np.quantile(col, 0.05)), float(np.quantile(col, 0.95))) if len(col) else (float("nan"),) * 2

    return RatioEstimate(ratio, sratio, ci(boots[:, 0]), ci(boots[:, 1]), float(np.mean(boots[:, 0] >= 2.0)), n_boot)


@dataclass
class PairedGap:
    """How much lower one strategy's held-out error is than a baseline's, seed by seed.

    ``mean_gap``: the mean over seeds of (other − base), each seed's error first averaged over
    benchmarks ``lo``..``hi``; negative = ``other`` is better. Unlike the benchmarks-to-target ratio,
    which reads where two flat, seed-averaged curves cross and so jumps by a batch at a time, this
    uses every seed's whole curve, and its standard error says whether a change is more than seed
    luck (the ratio's 90% interval spans ±0.3 on 12 seeds)."""

    mean_gap: float
    se: float
    share_better: float  # seeds on which ``other``'s mean error is lower
    seeds: int
    lo: int
    hi: int


#: The paired gap starts at this share of the budget (20 of 100 benchmarks): before it every
#: strategy is still mostly its random initial design.
GAP_FROM = 0.2


def gap_range(n_max: int, target_n: int) -> tuple[int, int]:
    """Benchmarks over which the paired gap is averaged: :data:`GAP_FROM` of the budget up to the
    ratio's target (20-60 of 100; never an empty range when the target is early)."""
    return min(int(round(GAP_FROM * n_max)), target_n), target_n


def paired_gap(base: Sequence["LoopResult"], other: Sequence["LoopResult"], lo: int = 20, hi: int = 60,
               n_max: Optional[int] = None) -> PairedGap:
    """Paired per-seed difference in mean held-out error over ``lo``..``hi`` benchmarks (see PairedGap)."""
    if len(base) != len(other):
        raise ValueError("paired seeds: both strategies need the same number of replays")
    if not 0 <= lo <= hi:
        raise ValueError(f"invalid benchmark range {lo}..{hi}; need 0 <= lo <= hi")
    n_max = n_max or max(r.n_benchmarks for r in [*base, *other])

    def per_seed(r: "LoopResult") -> float:
        a = curve_of("x", [r], n_max=n_max).ape_by_n[lo: hi + 1]
        a = a[np.isfinite(a)]
        return float(np.mean(a)) if len(a) else float("nan")

    d = np.array([per_seed(o) - per_seed(b) for b, o in zip(base, other)])
    d = d[np.isfinite(d)]
    if not len(d):
        return PairedGap(float("nan"), float("nan"), float("nan"), 0, lo, hi)
    se = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return PairedGap(float(np.mean(d)), se, float(np.mean(d < 0)), len(d), lo, hi)


def savings_vs_random(results: dict[str, Sequence["LoopResult"]], target_fraction: float = 0.6,
                      n_boot: int = 1000, start_n: int = 0) -> dict[str, dict[str, Any]]:
    """For each strategy beside ``random``: how many times fewer benchmarks (and seconds) it needs
    to reach random's held-out error at ``target_fraction`` of the budget — ``bench/active_learning.py``'s
    ratio (60 of 100 there) — with a seed-bootstrap 90% interval when there are two or more seeds,
    and its paired gap to random over 20% .. ``target_fraction`` of the budget (see PairedGap):
    ``mean_gap`` (negative = lower error than random), ``gap_se``, ``share_better``, ``gap_range``.

    ``start_n``: the random start every strategy shares (``replay.initial_runs``). Where random
    reaches its target within it, all strategies do so identically and the ratio says nothing: the
    row carries ``ratio`` None and a ``note`` instead (cpu-quick's 7-run budget after a 3-run start).
    The paired gap is averaged from the first benchmark after the start."""
    if "random" not in results:
        return {}
    n_max = max(r.n_benchmarks for v in results.values() for r in v)
    target_n = max(1, int(round(target_fraction * n_max)))
    rcurve = curve_of("random", results["random"], n_max=n_max)
    target = float(rcurve.ape_by_n[target_n])
    if not np.isfinite(target):
        return {}
    reached = benchmarks_to_reach(rcurve, target)
    inside_start = target_n <= start_n or (reached is not None and reached <= start_n)
    out: dict[str, dict[str, Any]] = {}
    for name, runs in results.items():
        if name == "random" or len(runs) != len(results["random"]):
            continue
        if inside_start:
            out[name] = {"target_n": target_n, "target_ape": target, "ratio": None, "seconds_ratio": None,
                         "seeds": len(runs), "mean_gap": None, "gap_se": None, "share_better": None,
                         "gap_range": None,
                         "note": f"random's held-out error at {target_n} benchmarks ({target:.1%}) is already "
                                 f"reached within the {start_n} random runs every strategy starts with: no saving "
                                 "can be read at this budget"}
            continue
        est = ratio_with_interval(results["random"], runs, target_n, n_max, n_boot=n_boot if len(runs) > 1 else 0)
        # the counts the ratio divides: where each seed-averaged curve FIRST reaches the target
        # (random's flat curve often does well before target_n)
        row: dict[str, Any] = {"target_n": target_n, "target_ape": target, "ratio": est.ratio,
                               "seconds_ratio": est.seconds_ratio, "seeds": len(runs), "random_n": reached,
                               "n": benchmarks_to_reach(curve_of(name, runs, n_max=n_max), target)}
        if len(runs) > 1:
            row.update(ratio_ci90=list(est.ratio_ci90), seconds_ratio_ci90=list(est.seconds_ratio_ci90))
        lo, hi = gap_range(n_max, target_n)
        lo = min(max(lo, start_n + 1), hi)  # nothing differs before the first pick after the start
        gap = paired_gap(results["random"], runs, lo=lo, hi=hi, n_max=n_max)
        row.update(mean_gap=None if gap.mean_gap != gap.mean_gap else gap.mean_gap,
                   gap_se=None if gap.se != gap.se else gap.se,
                   share_better=gap.share_better, gap_range=[gap.lo, gap.hi])
        out[name] = row
    return out


def compare(cfg: Any, data: Any, strategies: Sequence[str], seeds: Sequence[int], *, on_event: Any = None,
            predictor_factory: Any = None, score_factory: Any = None) -> dict[str, list["LoopResult"]]:
    """Replay each strategy with each seed on the same pool (same initial design per seed)."""
    from experiments.replay import run_replay

    out: dict[str, list["LoopResult"]] = {}
    for strat in dict.fromkeys(strategies):
        for seed in seeds:
            out.setdefault(strat, []).append(run_replay(cfg, data, acquisition=strat, seed=seed, on_event=on_event,
                                                        predictor_factory=predictor_factory,
                                                        score_factory=score_factory))
    return out


def real_run_curve(result: "LoopResult") -> Curve:
    """A real run's curve: prequential error (each benchmark scored against the prediction made
    before it ran, running median) and pool width, against benchmarks and benchmark-seconds."""
    steps = [s for s in result.steps if s.mean_rel_width90 is not None]
    pre = [p for p in result.prequential if p.get("ape") is not None]
    n_grid = np.arange(0, result.n_benchmarks + 1, dtype=float)
    s_max = max(result.benchmark_seconds, 1e-9)
    s_grid = np.linspace(0.0, s_max, 60)
    if pre:
        n = np.array([p["n_benchmarks"] for p in pre], dtype=float)
        s = np.array([p["benchmark_seconds"] for p in pre], dtype=float)
        a = np.array([np.median([q["ape"] for q in pre[: i + 1]]) for i in range(len(pre))])
        ape_n, ape_s = _step_fn(n, a, n_grid), _step_fn(s, a, s_grid)
    else:
        ape_n, ape_s = np.full(len(n_grid), np.nan), np.full(len(s_grid), np.nan)
    if steps:
        n = np.array([st.n_benchmarks for st in steps], dtype=float)
        s = np.array([st.benchmark_seconds for st in steps], dtype=float)
        w = np.array([st.mean_rel_width90 for st in steps], dtype=float)
        wid_n, wid_s = _step_fn(n, w, n_grid), _step_fn(s, w, s_grid)
    else:
        wid_n, wid_s = np.full(len(n_grid), np.nan), np.full(len(s_grid), np.nan)
    ns = np.array([st.n_benchmarks for st in result.steps], dtype=float)
    ss = np.array([st.benchmark_seconds for st in result.steps], dtype=float)
    sec_n = np.interp(n_grid, ns, ss) if len(ns) else np.full(len(n_grid), np.nan)
    return Curve(result.acquisition, n_grid, ape_n, wid_n, sec_n, s_grid, ape_s, wid_s, 1,
                 source="real run (prequential error)")


# -- rendering --------------------------------------------------------------------------------------
def _fmt(v: Optional[float], pct: bool = True) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    return f"{v:.1%}" if pct else f"{v:,.0f}"


def report_rows(curves: Sequence[Curve], checkpoints: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    for c in curves:
        row: dict[str, Any] = {"strategy": c.strategy, "source": c.source, "seeds": c.seeds}
        for k in checkpoints:
            i = min(int(k), len(c.n_grid) - 1)
            row[f"ape@{k}"] = None if not np.isfinite(c.ape_by_n[i]) else float(c.ape_by_n[i])
        fin = np.nonzero(np.isfinite(c.ape_by_n))[0]
        row["final_ape"] = float(c.ape_by_n[fin[-1]]) if len(fin) else None
        finw = np.nonzero(np.isfinite(c.width_by_n))[0]
        row["final_width90"] = float(c.width_by_n[finw[-1]]) if len(finw) else None
        fins = np.nonzero(np.isfinite(c.seconds_by_n))[0]
        row["benchmark_seconds"] = float(c.seconds_by_n[fins[-1]]) if len(fins) else None
        for level, arr in ((50, c.cover50_by_n), (90, c.cover90_by_n)):
            # averaged over the benchmarks the curve has a value at (one figure per strategy: the
            # coverage of its posterior on what it left out, along the whole run)
            fin = np.isfinite(arr) if arr is not None else None
            row[f"heldout_cover{level}"] = float(np.mean(arr[fin])) if fin is not None and fin.any() else None
        rows.append(row)
    return rows


def print_report(console: Any, curves: Sequence[Curve], title: str = "Learning curves") -> list[dict[str, Any]]:
    from rich.table import Table

    if not curves:
        return []
    n_max = int(max(c.n_grid[-1] for c in curves))
    checkpoints = sorted({max(1, round(n_max * f)) for f in (0.25, 0.5, 0.75, 1.0)})
    rows = report_rows(curves, checkpoints)
    t = Table(title=title)
    # strategy and source share a column and headers break over two lines: 80 columns suffice
    t.add_column("strategy\n(source)", overflow="fold")
    for k in checkpoints:
        t.add_column(f"APE\n@{k}", justify="right", no_wrap=True)
    t.add_column("final\n90% width", justify="right", no_wrap=True)
    covered = any(r["heldout_cover90"] is not None for r in rows)
    if covered:
        t.add_column("cover\n50/90", justify="right", no_wrap=True)  # held-out, mean along the curve
    t.add_column("bench-\nmark-s", justify="right", no_wrap=True)
    for r in rows:
        cover = ([f"{100 * (r['heldout_cover50'] or 0):.0f}/{100 * r['heldout_cover90']:.0f}%"
                  if r["heldout_cover90"] is not None else "–"] if covered else [])
        t.add_row(f"{r['strategy']}\n[dim]{r['source']} ×{r['seeds']}[/dim]",
                  *[_fmt(r[f"ape@{k}"]) for k in checkpoints], _fmt(r["final_width90"]), *cover,
                  _fmt(r["benchmark_seconds"], pct=False))
    console.print(t)
    return rows


def plot_report(path: str, curves: Sequence[Curve], title: str = "") -> str:
    """Held-out error and mean 90% width vs benchmarks (left) and vs benchmark-seconds (right)."""
    from engine.plots import figure, save_figure

    fig, ax = figure(nrows=2, ncols=2, figsize=(11, 7.5), sharex="col")
    for c in curves:
        label = f"{c.strategy} ({c.source}, {c.seeds} seed{'s' if c.seeds != 1 else ''})"
        # a marker per point where there are few: a curve of one point had no line to draw and was invisible
        style = {"label": label, "drawstyle": "steps-post",
                 "marker": "o" if np.isfinite(np.asarray(c.ape_by_n, dtype=float)).sum() <= 20 else None,
                 "markersize": 3}
        ax[0, 0].plot(c.n_grid, c.ape_by_n, **style)
        ax[0, 1].plot(c.s_grid, c.ape_by_s, **style)
        ax[1, 0].plot(c.n_grid, c.width_by_n, **style)
        ax[1, 1].plot(c.s_grid, c.width_by_s, **style)
    # a real run has no held-out set: its curve is the prequential error (each run against its forecast)
    real = any("prequential" in c.source for c in curves)
    replayed = any("prequential" not in c.source for c in curves)
    ax[0, 0].set_ylabel(" / ".join([*(["held-out median APE"] if replayed else []),
                                    *(["prequential median APE (real run)"] if real else [])]))
    ax[1, 0].set_ylabel("mean relative 90% interval width")
    ax[1, 0].set_xlabel("benchmarks run")
    from matplotlib.ticker import MaxNLocator

    ax[1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))  # benchmarks are counted: no 3.5
    ax[1, 1].set_xlabel("benchmark-seconds spent")
    for a in ax.ravel():
        a.grid(alpha=0.3)
    ax[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    return path
