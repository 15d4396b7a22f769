"""Train/validation/test splits of a release: seeded, stratified by score, near-duplicates kept together, stable
between releases.

Pure Python and numpy. Every decision depends on the seed and on the image keys themselves, never on the order
the images arrive in, so the same project gives the same splits on any machine and in any query order.

How it works: images are gathered into units (a near-duplicate group, or an image on its own); units are sorted
by score stratum (quantile bins of the overall score, unscored images last as a stratum of their own) and, inside
a stratum, by a seeded hash of the unit's key. Walking that order, each unit goes to the split that is furthest
below its share of everything placed so far (largest-deficit apportionment). Because every stretch of the walk is
shared out by the ratios, each stratum is split in the ratios and so is the whole, to within one unit per split
and stratum. Units holding previously assigned images are walked too but keep their split, so new images fill
whatever the earlier releases left short.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

RATIO_TOLERANCE = 1e-9


def validate_ratios(ratios: Mapping[str, float]) -> dict[str, float]:
    """The ratios as a plain dict; ValueError naming the problem for an empty name, a non-positive or non-finite
    ratio, or ratios that do not sum to 1 (within 1e-9)."""
    if not isinstance(ratios, Mapping) or not ratios:
        raise ValueError("ratios must be a non-empty mapping of split name to fraction, e.g. {'train': 0.8, ...}")
    clean: dict[str, float] = {}
    for name, value in ratios.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"split names must be non-empty strings, got {name!r}")
        try:
            fraction = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"the ratio of split {name!r} must be a number, got {value!r}") from None
        if not math.isfinite(fraction) or fraction <= 0.0:
            raise ValueError(f"the ratio of split {name!r} must be positive and finite, got {value!r}")
        clean[name] = fraction
    total = math.fsum(clean.values())
    if abs(total - 1.0) > RATIO_TOLERANCE:
        raise ValueError(f"split ratios must sum to 1, got {total!r} for {clean!r}")
    return clean


def near_duplicate_groups(links: Mapping[str, str | None]) -> dict[str, str]:
    """Group key of every image named in `links` (image -> the image it is a near-duplicate of, or None).

    Links are followed transitively (union-find), so chains and stars end up in one group. The group key is the
    smallest image key of the group, which does not depend on the order of `links`. Images without any link get
    their own key, so the result can be passed to `assign_splits` as it is.
    """
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        root = key
        while parent[root] != root:
            root = parent[root]
        while parent[key] != root:  # path compression keeps long chains cheap
            parent[key], key = root, parent[key]
        return root

    for image, other in links.items():
        a = find(image)
        if other is not None:
            b = find(other)
            if a != b:
                # The smaller key becomes the root, so every root is its group's minimum.
                parent[max(a, b)] = min(a, b)
    return {key: find(key) for key in parent}


def _priority(seed: int, kind: str, name: str) -> bytes:
    """A seeded pseudo-random sort key for one unit, stable across processes (unlike hash())."""
    return hashlib.blake2b(f"{seed}\x00{kind}\x00{name}".encode(), digest_size=16).digest()


def _finite_or_none(value: float | None, key: str) -> float | None:
    if value is None:
        return None
    number = float(value)
    if math.isnan(number):
        return None
    if math.isinf(number):
        raise ValueError(f"the score of image {key!r} is infinite; use None for an image without a score")
    return number


def assign_splits(
    *,
    image_keys: list[str],
    strata_scores: list[float | None],
    groups: list[str | None],
    ratios: dict[str, float],
    seed: int,
    previous: dict[str, str] | None = None,
    strata: int = 10,
) -> dict[str, str]:
    """The split name of every image key.

    image_keys     unique keys (e.g. sha256 or primary keys as strings); the result has exactly these keys.
    strata_scores  the overall score per image, None (or nan) when it has none; those form a stratum of their own.
    groups         near-duplicate group per image (see `near_duplicate_groups`), None for an image on its own;
                   images of one group always share a split.
    ratios         split name -> fraction, positive, summing to 1.
    seed           the same seed and images give the same splits, whatever the input order.
    previous       image key -> split from an earlier release; those images keep their split (keys of images that
                   are gone are ignored), and a new image joins its group's earlier split. A group that earlier
                   releases already spread over several splits stays as it was; its new images join the split most
                   of its earlier images are in.
    strata         number of quantile bins of the score (fewer when there are too few scored images).
    """
    split_ratios = validate_ratios(ratios)
    names = list(split_ratios)
    n = len(image_keys)
    if len(strata_scores) != n or len(groups) != n:
        raise ValueError(
            f"image_keys, strata_scores and groups must have the same length, got {n}, {len(strata_scores)} "
            f"and {len(groups)}"
        )
    if len(set(image_keys)) != n:
        duplicates = sorted(key for key, count in Counter(image_keys).items() if count > 1)
        raise ValueError(f"image keys must be unique; repeated: {duplicates[:10]}")
    if not isinstance(strata, int) or strata < 1:
        raise ValueError(f"strata must be a positive integer, got {strata!r}")
    present = set(image_keys)
    earlier = {key: split for key, split in (previous or {}).items() if key in present}
    unknown = sorted({split for split in earlier.values()} - set(split_ratios))
    if unknown:
        raise ValueError(
            f"previous assignments use splits {unknown} that are not in the ratios {names}; pass previous=None "
            "to split the project afresh"
        )
    if n == 0:
        return {}

    # Units: one per group, one per ungrouped image. Members are kept in key order so that nothing below depends
    # on the input order.
    scores = [_finite_or_none(score, key) for key, score in zip(image_keys, strata_scores)]
    units: dict[tuple[str, str], list[int]] = {}
    for index, (key, group) in enumerate(zip(image_keys, groups)):
        unit = ("group", str(group)) if group is not None else ("image", key)
        units.setdefault(unit, []).append(index)
    unit_keys = sorted(units)

    # Quantile bin edges over the images' scores; a bin should hold a few units of every split, so small projects
    # get fewer bins.
    scored = np.array([s for s in scores if s is not None], dtype=np.float64)
    bins = max(1, min(strata, len(scored) // (4 * len(names)))) if len(scored) else 1
    edges = np.quantile(scored, np.linspace(0.0, 1.0, bins + 1)[1:-1]) if bins > 1 else np.empty(0)

    means = []
    for unit in unit_keys:
        member_scores = [scores[i] for i in units[unit] if scores[i] is not None]
        means.append(math.fsum(member_scores) / len(member_scores) if member_scores else math.nan)
    # nan (no score) sorts after every edge: the unscored stratum comes after every scored one.
    strata_of = np.searchsorted(edges, np.array(means, dtype=np.float64), side="right").tolist()
    walk = sorted(
        (bins if math.isnan(mean) else stratum, _priority(seed, *unit), unit)
        for stratum, mean, unit in zip(strata_of, means, unit_keys)
    )

    # Largest-deficit apportionment along the walk. Ties go to the split listed first in the ratios. (Plain
    # floats: the same IEEE products and differences as on numpy arrays, without the per-unit array overhead.)
    fractions = [float(split_ratios[name]) for name in names]
    position = {name: k for k, name in enumerate(names)}
    counts = [0.0] * len(names)
    placed = 0
    result_by_index: dict[int, str] = {}
    for _, _, unit in walk:
        members = units[unit]
        fixed = [earlier[image_keys[i]] for i in members if image_keys[i] in earlier]
        if fixed:
            tally = Counter(fixed)
            # Most common earlier split of the group; ties by the ratios' order.
            target = max(names, key=lambda name: (tally.get(name, 0), -names.index(name)))
        else:
            size = placed + len(members)
            deficits = [fraction * size - count for fraction, count in zip(fractions, counts)]
            target = names[deficits.index(max(deficits))]  # the first largest, as argmax
        for i in members:
            split = earlier.get(image_keys[i], target)
            result_by_index[i] = split
            counts[position[split]] += 1
        placed += len(members)
    return {key: result_by_index[index] for index, key in enumerate(image_keys)}


def split_counts(assignment: Mapping[str, str], names: Iterable[str] = ()) -> dict[str, int]:
    """Images per split, with every name in `names` present even when empty (for reports and datasheets)."""
    counts = {name: 0 for name in names}
    for split in assignment.values():
        counts[split] = counts.get(split, 0) + 1
    return counts
