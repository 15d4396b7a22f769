"""Which image raters should label next: the active-learning order. Pure numpy, no Django.

The model gives each unlabelled image an uncertainty and an embedding. Sorting by uncertainty alone
sends raters to clusters of near-identical hard images (ten crops of one dark concert photo), which
teach the model the same thing ten times. Spreading the batch as far apart as possible (k-center
greedy) avoids that but picks the most isolated images, outliers that stand for nobody else: in the
simulation of benchmarks/active_learning.py that made the model worse than a random order.

So the "active" strategy is diverse mini-batch active learning (Zhdanov 2019, arXiv:1901.05954): take
the ``PREFILTER * batch_size`` most uncertain images, cluster them into ``batch_size`` groups with
k-means weighted by uncertainty, and pick in each group the image nearest its centre. K-means centres
sit where images are dense, so each pick stands for many images like it, and the weights pull the
centres towards what the model is least sure of. The batch is ordered by how much uncertainty its
group holds, so that raters who only get through the first part of it still cover the largest unsure
groups. Images beyond the batch follow by uncertainty alone. Before any model exists there is no
uncertainty: the batch is then plain k-means over all images, a first set of labels that covers the
photos in proportion to how common they are. K-means would still give a centre to a photo far from all
others (its squared distance weighs a lot), so odd ones out are down-weighted by how sparse their
neighbourhood is (:func:`_typicality`); they still come after the batch by their uncertainty.

In that simulation (known truth, the platform's CPU scorer and cadence, BENCHMARKS.md) this order needs
0.13-0.17 fewer labels than random to reach random's SRCC after 900 labels, and about 0.3 fewer at 300-450
labels. What limits it is the uncertainty it is given: the scorer's ensemble spread correlates only about
0.2 with its actual error.

"random" is the control: a fixed pseudo-random order from a seed, so that a project can measure what
the model-driven order buys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRATEGIES = ("active", "uncertainty", "random")
# Priorities live in [0, 2]: the diverse batch gets (1, 2], the rest [0, 1]. Higher goes first.
BATCH_FLOOR = 1.0
# The batch is drawn from this many times its size of the most uncertain images (Zhdanov's beta).
PREFILTER = 3
# K-means fits on at most this many images (a random sample); every image is then given its nearest centre.
KMEANS_SAMPLE = 4000
KMEANS_ITERATIONS = 25


@dataclass(frozen=True)
class Ranking:
    priority: np.ndarray  # (N,) higher first
    reasons: list[str]


def _normalised_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks scaled to [0, 1] (ties share their mean rank): robust to an uncertainty's scale."""
    n = len(values)
    if n == 1:
        return np.ones(1)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(n)
    # Equal values get their mean rank, so "all equal" maps to all 0.5 rather than an arbitrary order.
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse] / (n - 1)


def _standardised(embeddings: np.ndarray) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    return (x - x.mean(axis=0)) / sd


def _squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = (x**2).sum(axis=1)[:, None] - 2.0 * x @ centres.T + (centres**2).sum(axis=1)[None, :]
    return np.maximum(d, 0.0)


def _nearest_centre(x: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and squared distance to each row's nearest centre, in blocks so a big pool fits in memory."""
    index = np.empty(len(x), dtype=np.int64)
    distance = np.empty(len(x))
    for start in range(0, len(x), 2048):
        d = _squared_distances(x[start : start + 2048], centres)
        index[start : start + 2048] = d.argmin(axis=1)
        distance[start : start + 2048] = d[np.arange(len(d)), index[start : start + 2048]]
    return index, distance


def _weighted_kmeans(x: np.ndarray, weight: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Centres of k-means weighted by ``weight``, seeded k-means++ style (fewer when x has fewer distinct rows)."""
    centres = [x[rng.choice(len(x), p=weight / weight.sum())]]
    nearest = ((x - centres[0]) ** 2).sum(axis=1)
    while len(centres) < k:
        mass = weight * nearest
        if mass.sum() <= 0:  # every row already sits on a centre
            break
        centres.append(x[rng.choice(len(x), p=mass / mass.sum())])
        nearest = np.minimum(nearest, ((x - centres[-1]) ** 2).sum(axis=1))
    c = np.array(centres)
    for _ in range(KMEANS_ITERATIONS):
        assignment, _ = _nearest_centre(x, c)
        mass = np.bincount(assignment, weights=weight, minlength=len(c))
        sums = np.zeros_like(c)
        np.add.at(sums, assignment, weight[:, None] * x)
        moved = np.where(mass[:, None] > 0, sums / np.maximum(mass, 1e-300)[:, None], c)
        if np.allclose(moved, c):
            break
        c = moved
    return c


def _typicality(x: np.ndarray, neighbours: int = 5) -> np.ndarray:
    """min(1, (r_median / r)^2) per row, r its distance to its ``neighbours``-th nearest other row. K-means
    minimises squared distances, so one photo far from all others can claim a centre of its own; scaled by
    this weight an odd one out counts about as much as one ordinary photo, and typical photos keep weight 1."""
    m = min(neighbours, len(x) - 1)
    if m < 1:
        return np.ones(len(x))
    radius = np.empty(len(x))
    for start in range(0, len(x), 1024):
        d = _squared_distances(x[start : start + 1024], x)
        d[np.arange(len(d)), np.arange(start, start + len(d))] = np.inf  # not its own neighbour
        radius[start : start + 1024] = np.sqrt(np.partition(d, m - 1, axis=1)[:, m - 1])
    typical = float(np.median(radius))
    if typical == 0:
        return np.where(radius == 0, 1.0, 0.0) + 1e-6
    return np.minimum(1.0, (typical / np.maximum(radius, 1e-6 * typical)) ** 2)


def _diverse_batch(x: np.ndarray, weight: np.ndarray, k: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Up to k (row, group size) pairs: per k-means group, the row nearest its centre, the heaviest group first."""
    sample = np.arange(len(x)) if len(x) <= KMEANS_SAMPLE else rng.choice(len(x), size=KMEANS_SAMPLE, replace=False)
    centres = _weighted_kmeans(x[sample], weight[sample] * _typicality(x[sample]), k, rng)
    group, distance = _nearest_centre(x, centres)
    mass = np.bincount(group, weights=weight, minlength=len(centres))
    size = np.bincount(group, minlength=len(centres))
    picks = []
    for g in np.argsort(-mass, kind="stable"):
        members = np.flatnonzero(group == g)
        if len(members):
            picks.append((int(members[np.argmin(distance[members])]), int(size[g])))
    return picks


def rank_images(
    *,
    strategy: str,
    uncertainty: np.ndarray,
    embeddings: np.ndarray | None,
    batch_size: int = 200,
    seed: int = 0,
) -> Ranking:
    """Priorities and a human-readable reason for N candidate images.

    ``uncertainty`` (N,): higher is less sure (nan: no prediction yet, treated as the median; all nan:
    no model yet); ``embeddings`` (N, D) or None (then "active" falls back to uncertainty order).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    u = np.asarray(uncertainty, dtype=np.float64)
    n = len(u)
    if n == 0:
        return Ranking(np.zeros(0), [])
    if embeddings is not None and len(embeddings) != n:
        raise ValueError(f"{len(embeddings)} embeddings for {n} images")
    if strategy == "random":
        rng = np.random.default_rng(seed)
        priority = rng.random(n)
        return Ranking(priority, [f"random order (control), draw {p:.3f}" for p in priority])

    cold = bool(np.isnan(u).all())
    u = np.zeros(n) if cold else np.where(np.isnan(u), np.nanmedian(u), u)
    base = _normalised_ranks(u)
    if cold:
        reasons = ["no model yet"] * n
    else:
        reasons = [f"uncertainty {value:.3g}, higher than {100 * b:.0f}% of the pool" for value, b in zip(u, base)]
    if strategy == "uncertainty" or embeddings is None or n == 1:
        return Ranking(base, reasons)

    x = _standardised(embeddings)
    k = min(batch_size, n)
    rng = np.random.default_rng(seed)
    if cold:
        candidates = np.arange(n)
        weight = np.ones(n)
    else:
        candidates = np.argsort(-u, kind="stable")[: min(n, PREFILTER * k)]
        # A floor keeps every weight positive when the model is sure of everything (all zero).
        weight = np.maximum(u[candidates], 0.0) + 1e-9 * max(float(u.max()), 1.0)
    alike = "similar images" if cold else "similar uncertain images"
    priority = base.copy()
    picked = _diverse_batch(x[candidates], weight, k, rng)
    batch = [(int(candidates[row]), f"the most typical of {size} {alike}") for row, size in picked]
    chosen = {i for i, _ in batch}
    # Too few distinct embeddings for k groups: the batch is topped up by uncertainty.
    extra = [int(i) for i in np.argsort(-u, kind="stable") if int(i) not in chosen][: k - len(batch)]
    for position, (i, why) in enumerate(batch + [(i, "topped up by uncertainty") for i in extra]):
        priority[i] = BATCH_FLOOR + (k - position) / k
        reasons[i] = f"{reasons[i]}; diverse batch #{position + 1}, {why}"
    return Ranking(priority, reasons)


def disagreement(*, predicted: dict, consensus: dict, fields: list[tuple[str, str, float]]) -> float | None:
    """How far a model's guess is from the raters' consensus, in [0, 1]: the mean over fields of the
    score difference as a share of the field's range, or 0/1 for a choice that differs.

    ``fields``: (key, "score" | "choice", range) per field to compare."""
    parts = []
    for key, kind, span in fields:
        if key not in predicted or key not in consensus or predicted[key] is None or consensus[key] is None:
            continue
        if kind == "score":
            parts.append(min(1.0, abs(float(predicted[key]) - float(consensus[key])) / span) if span > 0 else 0.0)
        else:
            parts.append(0.0 if predicted[key] == consensus[key] else 1.0)
    return float(np.mean(parts)) if parts else None
