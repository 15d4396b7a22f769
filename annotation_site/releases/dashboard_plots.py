"""SVG bar charts for the staff dashboard, drawn as text on the server like predictions/plots.py: no plotting
library in the web process (matplotlib alone takes longer to import than the page takes to compute)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from annotation_site.predictions.plots import H, PAD, W, _scale

BAR = 'fill="#2060c0" fill-opacity=".75"'


def _frame(label: str, body: str, x_label: str, top: int) -> str:
    return (
        f'<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{escape(label)}">'
        f'<rect x="{PAD}" y="8" width="{W - PAD - 8}" height="{H - PAD - 8}" class="frame"/>'
        f"{body}"
        f'<text x="{(W + PAD) / 2:.0f}" y="{H - 4}" text-anchor="middle">{escape(x_label)}</text>'
        f'<text x="{PAD - 3}" y="14" text-anchor="end" class="tick">{top}</text>'
        f'<text x="{PAD - 3}" y="{H - PAD}" text-anchor="end" class="tick">0</text>'
        "</svg>"
    )


def histogram_svg(counts: Sequence[int], edges: Sequence[float], *, x_label: str) -> str:
    """Counts per bin between the edges (one more edge than counts), on the field's own range."""
    if not counts:
        return ""
    top = max(max(counts), 1)
    low, high = edges[0], edges[-1]
    bars = []
    for count, left, right in zip(counts, edges[:-1], edges[1:]):
        x0 = _scale(left, low, high, PAD, W - 8)
        x1 = _scale(right, low, high, PAD, W - 8)
        y = _scale(count, 0, top, H - PAD, 8)
        bars.append(
            f'<rect x="{x0 + 0.5:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 0.5):.1f}" height="{H - PAD - y:.1f}" {BAR}>'
            f"<title>{left:g}–{right:g}: {count}</title></rect>"
        )
    ticks = (
        f'<text x="{PAD}" y="{H - PAD + 12}" class="tick">{low:g}</text>'
        f'<text x="{W - 8}" y="{H - PAD + 12}" text-anchor="end" class="tick">{high:g}</text>'
    )
    return _frame(f"histogram of {x_label}", "".join(bars) + ticks, x_label, top)


def bars_svg(counts: Sequence[int], labels: Sequence[str], *, x_label: str) -> str:
    """One bar per choice, in the schema's order, labelled below (names shortened to fit)."""
    if not counts:
        return ""
    top = max(max(counts), 1)
    width = (W - PAD - 8) / len(counts)
    bars = []
    for i, (count, name) in enumerate(zip(counts, labels)):
        x0 = PAD + i * width
        y = _scale(count, 0, top, H - PAD, 8)
        short = name if len(name) <= max(3, int(width / 6)) else name[: max(2, int(width / 6) - 1)] + "…"
        bars.append(
            f'<rect x="{x0 + 1:.1f}" y="{y:.1f}" width="{max(width - 2, 0.5):.1f}" height="{H - PAD - y:.1f}" {BAR}>'
            f"<title>{escape(name)}: {count}</title></rect>"
            f'<text x="{x0 + width / 2:.1f}" y="{H - PAD + 12}" text-anchor="middle" class="tick">{escape(short)}</text>'
        )
    return _frame(f"{x_label} per choice", "".join(bars), x_label, top)
