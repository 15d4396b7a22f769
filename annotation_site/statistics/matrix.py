"""The one input shape of this package: a (raters, units) float matrix with nan for a missing rating."""

from __future__ import annotations

import numpy as np


def as_ratings(data: object, *, units: str = "images") -> np.ndarray:
    """The data as a float matrix; ValueError naming the problem for a wrong shape or an infinity."""
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"ratings must be 2-D (raters, {units}), got shape {x.shape}")
    if np.isinf(x).any():
        raise ValueError("ratings must not contain infinities; use nan for a missing rating")
    return x
