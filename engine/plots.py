"""Figures that show the uncertainty, not just the median (matplotlib figures without pyplot, saved as files).

Three pictures: bars with 90% interval whiskers across hardware, a line with 50%/90% bands for
batch-size scaling, and a heatmap of the prediction matrix (median, with the multiplicative 90%
interval factor written in each cell so an unsure cell is visibly unsure).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine.models.base import Prediction

LABELS: dict[str, str] = {"latency_ms": "latency (ms)", "latency_p90_ms": "p90 latency (ms)",
                          "throughput": "throughput (items/s)", "memory_mib": "peak memory (MiB)"}


def figure(**kw: Any) -> tuple[Any, Any]:
    """(figure, axes) drawn without pyplot: no backend is chosen or switched, so a notebook's inline
    plotting is left as it was (``matplotlib.use("Agg", force=True)`` switched it off), and no
    figure is kept open in pyplot's registry. ``savefig`` renders with Agg for PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=kw.pop("figsize", None))
    return fig, fig.subplots(**kw)


def save_figure(fig, path: str | Path) -> Path:
    """Lay out and write a figure (PNG at 120 dpi), legends included, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")  # a long device name in the legend is not cut off
    return path


def hardware_bars(preds: Sequence[Prediction], metric: str, path: str | Path, title: str = "",
                  labels: Sequence[str] | None = None) -> Path:
    """One bar per device at the posterior median, whiskers at the 90% credible interval."""
    labels = list(labels) if labels is not None else [p.config.hardware for p in preds]
    med = np.array([p.metrics[metric].median for p in preds])
    iv = np.array([p.metrics[metric].interval(0.9) for p in preds])
    err = np.vstack([med - iv[:, 0], iv[:, 1] - med])
    fig, ax = figure(figsize=(max(5.0, 0.8 * len(preds) + 2), 4))
    ax.bar(range(len(labels)), med, yerr=err, capsize=4, color="#4c72b0", ecolor="black")
    ax.set_ylabel(LABELS.get(metric, metric))
    if med.size and med.max() / max(med.min(), 1e-12) > 10:  # a CPU beside GPUs: linear bars squash the GPUs
        ax.set_yscale("log")
    ax.set_title(title or f"{LABELS.get(metric, metric)}: median and 90% credible interval")
    ax.set_xticks(range(len(labels)), labels=labels, rotation=30, ha="right")
    return save_figure(fig, path)


def batch_scaling(series: dict[str, Sequence[Prediction]], metric: str, path: str | Path, title: str = "") -> Path:
    """A median line per device over batch size, with 50% (dark) and 90% (light) bands."""
    fig, ax = figure(figsize=(6.5, 4.2))
    for label, preds in series.items():
        b = np.array([p.config.batch_size for p in preds])
        order = np.argsort(b)
        b = b[order]
        q = np.array([[p.metrics[metric].quantile(x) for x in (0.05, 0.25, 0.5, 0.75, 0.95)] for p in preds])[order]
        (line,) = ax.plot(b, q[:, 2], marker="o", label=label)
        ax.fill_between(b, q[:, 0], q[:, 4], color=line.get_color(), alpha=0.15, linewidth=0)
        ax.fill_between(b, q[:, 1], q[:, 3], color=line.get_color(), alpha=0.3, linewidth=0)
    ax.set_xscale("log", base=2)
    ticks = sorted({p.config.batch_size for preds in series.values() for p in preds})
    ax.set_xticks(ticks, labels=[str(t) for t in ticks])
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.set_title(title or f"{LABELS.get(metric, metric)}: median, 50% and 90% credible bands")
    # under the axes, where a long device name ("AMD EPYC (Zen 3, AVX2, 2 vCPUs, KVM guest)") has room;
    # the figure grows to hold it (bbox_inches="tight" in _save)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=1, frameon=False)
    return save_figure(fig, path)


def heatmap(rows: Sequence[str], cols: Sequence[str], median: np.ndarray, q05: np.ndarray, q95: np.ndarray,
            path: str | Path, metric: str, title: str = "", missing: str = "") -> Path:
    """Rows x cols of log10(median); each cell says 'median' and '×÷f', f = sqrt(q95 / q05).

    The multiplicative half-width suits a log-normal posterior: '×÷2' means the 90% interval runs
    from half to twice the median. NaN cells (not predicted) stay blank and say ``missing`` (the
    matrix's "n/a" for a cell no adapter runs, so it does not read as a gap in the data).
    """
    from matplotlib import patheffects

    fig, ax = figure(figsize=(max(5.0, 1.1 * len(cols) + 3), max(3.0, 0.45 * len(rows) + 1.5)))
    data = np.log10(np.where(median > 0, median, np.nan))
    im = ax.imshow(data, aspect="auto", cmap="viridis_r" if "latency" in metric else "viridis")
    ax.set_xticks(range(len(cols)), labels=list(cols), rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), labels=list(rows))
    factor = np.sqrt(q95 / q05)
    outline = [patheffects.withStroke(linewidth=1.5, foreground="black")]
    for i in range(len(rows)):
        for j in range(len(cols)):
            if np.isfinite(median[i, j]):
                ax.text(j, i, f"{median[i, j]:.3g}\n×÷{factor[i, j]:.2g}", ha="center", va="center", fontsize=8,
                        color="white", path_effects=outline)
            elif missing:
                ax.text(j, i, missing, ha="center", va="center", fontsize=8, color="gray")
    fig.colorbar(im, ax=ax, label=f"log10 {LABELS.get(metric, metric)}")
    ax.set_title(title or f"{LABELS.get(metric, metric)}: median and ×÷ 90% interval factor")
    return save_figure(fig, path)
