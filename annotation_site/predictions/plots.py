"""Small SVG plots for staff pages, drawn on the server with no plotting library in the web process."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

W, H, PAD = 260, 200, 30
# A scatter plot draws at most this many photos, evenly spread over the list: the model page of a RealQA-sized
# project drew 14,715 dots a plot (2.2 MB of SVG); more dots than this only darken the same 260 x 200 pixels.
SCATTER_MAX_POINTS = 1500


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    return start if high == low else start + (value - low) * (end - start) / (high - low)


def scatter_svg(points: Sequence[tuple[float, float]], *, low: float, high: float, x_label: str, y_label: str) -> str:
    """Consensus (x) against model (y) on the field's own range, with the diagonal of perfect agreement; at most
    SCATTER_MAX_POINTS of the points, evenly spaced in their order, and the label says how many were drawn."""
    total = len(points)
    if total > SCATTER_MAX_POINTS:
        step = total / SCATTER_MAX_POINTS
        points = [points[int(i * step)] for i in range(SCATTER_MAX_POINTS)]
        y_label_drawn = f"{y_label} ({SCATTER_MAX_POINTS:,} of {total:,} photos drawn)"
    else:
        y_label_drawn = y_label
    dots = "".join(
        f'<circle cx="{_scale(x, low, high, PAD, W - 8):.1f}" cy="{_scale(y, low, high, H - PAD, 8):.1f}" r="2.2"/>'
        for x, y in points
    )
    return (
        f'<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{escape(y_label_drawn)} against {escape(x_label)}">'
        f'<rect x="{PAD}" y="8" width="{W - PAD - 8}" height="{H - PAD - 8}" class="frame"/>'
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 8}" y2="8" class="diagonal"/>'
        f'<g class="dots">{dots}</g>'
        f'<text x="{(W + PAD) / 2:.0f}" y="{H - 6}" text-anchor="middle">{escape(x_label)}</text>'
        f'<text x="10" y="{H / 2:.0f}" transform="rotate(-90 10 {H / 2:.0f})" text-anchor="middle">{escape(y_label)}</text>'
        f'<text x="{PAD}" y="{H - PAD + 12}" class="tick">{low:g}</text><text x="{W - 8}" y="{H - PAD + 12}" text-anchor="end" class="tick">{high:g}</text>'
        "</svg>"
    )


def line_svg(points: Sequence[tuple[float, float]], *, x_label: str, y_label: str, y_low: float = 0.0, y_high: float = 1.0) -> str:
    """A learning curve: a figure (y) against labelled images (x)."""
    if not points:
        return ""
    xs = [p[0] for p in points]
    x_low, x_high = min(xs), max(xs)
    coords = [(_scale(x, x_low, x_high, PAD, W - 8), _scale(y, y_low, y_high, H - PAD, 8)) for x, y in points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"/>' for x, y in coords)
    return (
        f'<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{escape(y_label)} against {escape(x_label)}">'
        f'<rect x="{PAD}" y="8" width="{W - PAD - 8}" height="{H - PAD - 8}" class="frame"/>'
        f'<polyline points="{path}" class="curve"/><g class="dots">{dots}</g>'
        f'<text x="{(W + PAD) / 2:.0f}" y="{H - 6}" text-anchor="middle">{escape(x_label)}</text>'
        f'<text x="10" y="{H / 2:.0f}" transform="rotate(-90 10 {H / 2:.0f})" text-anchor="middle">{escape(y_label)}</text>'
        f'<text x="{PAD}" y="{H - PAD + 12}" class="tick">{x_low:g}</text><text x="{W - 8}" y="{H - PAD + 12}" text-anchor="end" class="tick">{x_high:g}</text>'
        f'<text x="{PAD - 3}" y="12" text-anchor="end" class="tick">{y_high:g}</text><text x="{PAD - 3}" y="{H - PAD}" text-anchor="end" class="tick">{y_low:g}</text>'
        "</svg>"
    )
