"""The release's PNG plots (matplotlib's Agg canvas, no display, no pyplot state), from plain arrays.

No Django: the builder draws them in a worker process of their own (see plotworker), so that matplotlib's import
and the drawing overlap with the statistics and the files the builder writes meanwhile. Each function takes what
its plot shows, pickles small, and returns whether it wrote the file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from annotation_site.schemas.spec import FieldSpec

    from .fieldstats import FieldStats

ALPHA_RELIABLE = 0.8  # Krippendorff's guidance: >= 0.8 reliable, >= 0.667 tentative conclusions only
ALPHA_TENTATIVE = 0.667

SCORE_HISTOGRAMS = "score_histograms.png"
ALPHA = "alpha.png"
RATERS = "rater_bias_inconsistency.png"


def _figure(width: float, height: float):  # type: ignore[no-untyped-def]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A fixed layout: matplotlib's constrained layout costs more than the drawing itself.
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> None:  # type: ignore[no-untyped-def]
    # No "Software" stamp: the same data gives the same bytes whatever matplotlib build drew it.
    figure.savefig(path, format="png", metadata={"Software": None})


def warm_up() -> None:
    """Import what the plots need (most of a plot worker's start-up time)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401


def score_histograms(path: Path, fields: list[tuple[FieldSpec, np.ndarray | None, np.ndarray | None]]) -> bool:
    """One panel per field with a MOS (its histogram) or choice counts (a bar per choice)."""
    shown = [f for f in fields if f[1] is not None or f[2] is not None]
    if not shown:
        return False
    columns = 3
    rows = math.ceil(len(shown) / columns)
    figure = _figure(4.0 * columns, 2.8 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    figure.subplots_adjust(left=0.05, right=0.98, top=0.95, bottom=0.08, hspace=0.75, wspace=0.25)
    for ax, (spec, mos, totals) in zip(axes, shown):
        if mos is not None:
            mos = mos[np.isfinite(mos)]
            ax.hist(mos, bins=np.linspace(spec.min, spec.max, 37), color="#3a6ea5")
            ax.set_xlabel("MOS")
            ax.set_title(f"{spec.label} (images: {mos.size:,})", fontsize=9)
        else:
            ax.bar(range(totals.size), totals, color="#6a8f3a")
            ax.set_xticks(range(totals.size), [c.value for c in spec.choices], rotation=30, ha="right", fontsize=7)
            ax.set_title(f"{spec.label} (labels)", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    _save(figure, path)
    return True


def alpha_inputs(stats: list[FieldStats]) -> list[tuple[str, float | None, float | None, float | None]]:
    """(label, alpha, low, high) per field with an alpha: plain values, so that the plot worker need not import
    the statistics package to read them."""
    return [
        (f"{s.field.label} ({s.measurement})", s.alpha.alpha, s.alpha.low, s.alpha.high) for s in stats if s.alpha is not None
    ]


def alpha_plot(path: Path, rows: list[tuple[str, float | None, float | None, float | None]]) -> bool:
    """Alpha per field with its bootstrap interval, against the reliable and tentative thresholds."""
    if not rows:
        return False
    height = 0.45 * len(rows) + 1.2
    figure = _figure(7.5, height)
    ax = figure.subplots()
    figure.subplots_adjust(left=0.38, right=0.97, top=1 - 0.2 / height, bottom=0.7 / height)
    for y, (_, alpha, low, high) in enumerate(rows):
        if alpha is None:
            ax.text(0.0, y, "undefined", va="center", fontsize=8, color="#a33")
            continue
        if low is not None:
            ax.plot([low, high], [y, y], color="#555", linewidth=2)
        ax.plot([alpha], [y], "o", color="#3a6ea5")
    ax.axvline(ALPHA_RELIABLE, color="#6a8f3a", linestyle="--", linewidth=1)
    ax.axvline(ALPHA_TENTATIVE, color="#c90", linestyle=":", linewidth=1)
    ax.set_yticks(range(len(rows)), [row[0] for row in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Krippendorff's alpha with bootstrap 95% interval")
    _save(figure, path)
    return True


def rater_inputs(score_field: FieldStats | None, residual_sd: np.ndarray | None) -> dict | None:
    """The rater plot's points: MLE bias against inconsistency, or without an MLE fit the bias against the
    leave-one-out MOS against the SD of (rating - MOS); None when the score field has no ratings."""
    if score_field is None or score_field.rater_n is None or score_field.mos is None:
        return None
    if score_field.rater_mle_bias is not None:
        x, y = score_field.rater_mle_bias, score_field.rater_mle_inconsistency
        labels = ("bias (MLE)", "inconsistency (MLE)")
    else:
        x, y = score_field.rater_bias, residual_sd
        labels = ("bias against the leave-one-out MOS", "SD of (rating - MOS)")
    return {"x": x, "y": y, "labels": labels, "rater_n": score_field.rater_n, "field_label": score_field.field.label}


def rater_plot(path: Path, points: dict | None) -> bool:
    if points is None:
        return False
    figure = _figure(5.5, 4.2)
    ax = figure.subplots()
    figure.subplots_adjust(left=0.14, right=0.97, top=0.92, bottom=0.12)
    ax.set_xlabel(points["labels"][0])
    ax.set_ylabel(points["labels"][1])
    x, y, rater_n = points["x"], points["y"], points["rater_n"]
    ok = np.isfinite(x) & np.isfinite(y)
    ax.scatter(x[ok], y[ok], s=12 + 40 * rater_n[ok] / max(1, rater_n.max()), alpha=0.7)
    ax.axvline(0.0, color="#888", linewidth=0.8)
    ax.set_title(f"Raters on {points['field_label']} (size: labels)", fontsize=9)
    _save(figure, path)
    return True


# The plots in the order the datasheet lists them: (file name, function).
PLOTS = {SCORE_HISTOGRAMS: score_histograms, ALPHA: alpha_plot, RATERS: rater_plot}
