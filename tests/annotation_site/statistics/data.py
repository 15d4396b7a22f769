"""Shared test data for the statistics tests: simulated rating matrices and sureal dataset adapters."""

from __future__ import annotations

import types

import numpy as np

nan = np.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability" (https://repository.upenn.edu/asc_papers/43), the
# worked example for any number of observers with missing values: observers A, B, C, D x 12 units, values 1-5.
# protocols.md does not carry the data; it was reconstructed from the paper and equals the doctest data of the
# `krippendorff` package (krippendorff/krippendorff.py, "extracted from ... fulltext.pdf, page 8").
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],  # A
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],  # B
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],  # C
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],  # D
    ]
)
KRIPPENDORFF_2011_PUBLISHED = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}


def overlap_design(
    rng: np.random.Generator,
    *,
    raters: int,
    units: int,
    per_unit: int,
    values: str = "continuous",
) -> np.ndarray:
    """(raters, units) ratings where each unit is rated by `per_unit` raters drawn at random from the pool, as a
    crowd release with overlap is: true quality + rater bias + noise, rounded onto the scale.

    values="continuous": 1..10 in steps of 0.1 (91 values); "likert": integers 1..5.
    """
    quality = rng.uniform(0.2, 0.9, units)
    bias = rng.normal(0.0, 0.05, raters)
    chosen = np.argsort(rng.random((raters, units)), axis=0) < per_unit  # per_unit random raters per unit
    latent = quality[None, :] + bias[:, None] + rng.normal(0.0, 0.1, (raters, units))
    if values == "continuous":
        x = np.clip(np.round(1.0 + 9.0 * latent, 1), 1.0, 10.0)
    else:
        x = np.clip(np.round(1.0 + 4.0 * latent), 1.0, 5.0)
    return np.where(chosen, x, nan)


def sureal_reader(ratings: np.ndarray, content_ids: np.ndarray | None = None):  # type: ignore[no-untyped-def]
    """A sureal RawDatasetReader over a (raters, images) matrix; missing ratings are left out of 'os'.

    Observer names are zero-padded so that sureal's sorted observer list keeps the row order."""
    from sureal.dataset_reader import RawDatasetReader

    raters, images = ratings.shape
    cids = np.arange(images) if content_ids is None else np.asarray(content_ids)
    dataset = types.SimpleNamespace()
    dataset.ref_videos = [
        {"content_id": int(c), "content_name": f"content{c}", "path": f"ref{c}"} for c in np.unique(cids)
    ]
    dataset.dis_videos = [
        {
            "content_id": int(cids[e]),
            "asset_id": e,
            "path": f"dis{e}",
            "os": {f"s{s:04d}": float(ratings[s, e]) for s in range(raters) if not np.isnan(ratings[s, e])},
        }
        for e in range(images)
    ]
    return RawDatasetReader(dataset)
