"""Which image raters should label next: the active-learning order. Pure numpy, no Django.

The model gives each unlabelled image an uncertainty, and every image has an embedding (its feature
vector). Sorting by uncertainty alone sends raters to clusters of near-identical hard images (ten crops
of one dark concert photo), which teach the model the same thing ten times. Spreading the batch as far
apart as possible (k-center greedy) avoids that but picks the most isolated images, outliers that stand
for nobody else: in the simulation of benchmarks/active_learning.py that made the model worse than a
random order.

So the "active" strategy starts with a batch that *covers* the unlabelled photos: greedy facility
location (the submodular "representativeness" objective of Wei, Iyer and Bilmes 2015). Every unlabelled
photo is as far from coverage as its nearest labelled photo; a pick's gain is how much nearer it brings
the photos around it, summed over them, so a photo in a dense region far from any label gains most and
an odd one out gains little more than itself. Distances enter as their square root: a concave cost
values bringing a far photo in more than polishing the neighbourhood of a labelled one. The batch is in
pick order, so raters who only get through its first part still cover the most. Images beyond the batch
follow by uncertainty.

The model's uncertainty does not shape the batch, on purpose. In the simulation (known truth, the
platform's CPU scorer and cadence, BENCHMARKS.md) the scorer's ensemble spread correlates only about
0.2 with its actual error, and every way of letting it weigh in (prefiltering to the most uncertain
images, weighting the coverage by it, the earlier uncertainty-weighted k-means batch) saved fewer labels
than coverage alone. In the benchmark coverage needs 0.28-0.41 fewer labels than random to reach
random's SRCC at 300-750 labels, but only 0.15-0.16 at the full 900, where both curves flatten. A
project whose scorer has a better-calibrated confidence can use "uncertainty".

"random" is the control: a fixed pseudo-random order from a seed, so that a project can measure what
the model-driven order buys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

STRATEGIES = ("active", "uncertainty", "random")
# Priorities live in [0, 2]: the covering batch gets (1, 2], the rest [0, 1]. Higher goes first.
BATCH_FLOOR = 1.0
# Coverage is measured on at most this many unlabelled images (a random sample, which also supplies the
# batch): the greedy keeps a sample x sample distance matrix, 36 MB at 3,000.
COVER_SAMPLE = 3000


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


def _standardiser(embeddings: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Standardise rows with the column means and deviations of ``embeddings`` (labelled and unlabelled alike)."""
    x = np.asarray(embeddings, dtype=np.float64)
    mean, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd == 0] = 1.0
    return lambda rows: (np.asarray(rows, dtype=np.float64) - mean) / sd


def _squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = (x**2).sum(axis=1)[:, None] - 2.0 * x @ centres.T + (centres**2).sum(axis=1)[None, :]
    return np.maximum(d, 0.0)


def _cost(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The coverage cost between rows: the square root of their Euclidean distance."""
    return np.sqrt(np.sqrt(_squared_distances(x, y)))


def _coverage_batch(x: np.ndarray, labelled: np.ndarray, k: int) -> list[tuple[int, int]]:
    """Up to k (row of x, rows it covers) pairs in greedy facility-location order.

    Lazy greedy (Minoux): a gain can only shrink as picks accumulate, so a candidate whose fresh gain
    still beats every other's stale bound is the true best, and most candidates are never re-scored.
    Stops early once no pick brings any row nearer (a pool of identical photos)."""
    cost = _cost(x, x).astype(np.float32)
    if len(labelled):
        gap = np.empty(len(x), dtype=np.float32)
        for start in range(0, len(x), 1024):
            block = x[start : start + 1024]
            gap[start : start + 1024] = np.min(
                [_cost(block, labelled[j : j + 2048]).min(axis=1) for j in range(0, len(labelled), 2048)], axis=0
            )
    else:  # nothing covered yet: every row is as far as the farthest pair
        gap = np.full(len(x), cost.max(), dtype=np.float32)
    bound = np.maximum(gap[:, None] - cost, 0.0).sum(axis=0, dtype=np.float64)
    picks: list[int] = []
    while len(picks) < k:
        best = int(np.argmax(bound))
        if bound[best] <= 0:
            break
        fresh = float(np.maximum(gap - cost[:, best], 0.0).sum(dtype=np.float64))
        bound[best] = fresh
        if fresh < bound.max():
            continue
        picks.append(best)
        bound[best] = -np.inf
        gap = np.minimum(gap, cost[:, best])
    if not picks:
        return []
    # Whom each pick stands for: the rows nearer to it than to any labelled photo or other pick.
    nearest = cost[:, picks].argmin(axis=1)
    covered = cost[np.arange(len(x)), np.asarray(picks)[nearest]] <= gap
    counts = np.bincount(nearest[covered], minlength=len(picks))
    return [(row, int(count)) for row, count in zip(picks, counts)]


def rank_images(
    *,
    strategy: str,
    uncertainty: np.ndarray,
    embeddings: np.ndarray | None,
    labelled_embeddings: np.ndarray | None = None,
    batch_size: int = 200,
    seed: int = 0,
) -> Ranking:
    """Priorities and a human-readable reason for N candidate (unlabelled) images.

    ``uncertainty`` (N,): higher is less sure (nan: no prediction yet, treated as the median; all nan:
    no model yet); ``embeddings`` (N, D) or None (then "active" falls back to uncertainty order);
    ``labelled_embeddings`` (M, D): the project's labelled images, which already cover their neighbours.
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

    x = np.asarray(embeddings, dtype=np.float64)
    labelled = np.zeros((0, x.shape[1])) if labelled_embeddings is None else np.asarray(labelled_embeddings, dtype=np.float64)
    if labelled.ndim != 2 or labelled.shape[1] != x.shape[1]:
        raise ValueError(f"labelled embeddings of shape {labelled.shape} for embeddings of width {x.shape[1]}")
    standardise = _standardiser(np.vstack([x, labelled]))
    k = min(batch_size, n)
    sample = np.arange(n) if n <= COVER_SAMPLE else np.sort(np.random.default_rng(seed).choice(n, size=COVER_SAMPLE, replace=False))
    picked = _coverage_batch(standardise(x[sample]), standardise(labelled), k)
    scale = n / len(sample)
    batch = [(int(sample[row]), f"nearest photo for {round(count * scale)} unlabelled photos") for row, count in picked]
    chosen = {i for i, _ in batch}
    # Fewer distinct photos than the batch: the batch is topped up by uncertainty.
    extra = [int(i) for i in np.argsort(-u, kind="stable") if int(i) not in chosen][: k - len(batch)]
    priority = base.copy()
    for position, (i, why) in enumerate(batch + [(i, "topped up by uncertainty") for i in extra]):
        priority[i] = BATCH_FLOOR + (k - position) / k
        reasons[i] = f"{reasons[i]}; covering batch #{position + 1}, {why}"
    return Ranking(priority, reasons)


@dataclass(frozen=True)
class Comparable:
    """A field on which a model's guess and the raters' consensus can be compared.

    ``span``: a score field's range (max - min). ``ranks``: an ordinal field's on-scale position per choice
    (None for a not-applicable choice such as "no horizon"). Neither: a nominal field."""

    key: str
    span: float | None = None
    ranks: Mapping[str, int | None] | None = None


def disagreement_by_field(*, predicted: Mapping, consensus: Mapping, fields: list[Comparable]) -> dict[str, float]:
    """How far a model's guess is from the consensus on each field both answered, in [0, 1].

    A score: the difference as a share of the range. An ordinal choice: the levels between the two as a
    share of the scale's steps, so that "good" against "excellent" is a small disagreement and "bad" against
    "excellent" a full one. A nominal choice, or an ordinal one where one side is off the scale: 0 or 1."""
    parts: dict[str, float] = {}
    for field in fields:
        guess, truth = predicted.get(field.key), consensus.get(field.key)
        if guess is None or truth is None:
            continue
        if field.span is not None:
            parts[field.key] = min(1.0, abs(float(guess) - float(truth)) / field.span) if field.span > 0 else 0.0
            continue
        ranks = field.ranks or {}
        a, b = ranks.get(guess), ranks.get(truth)
        steps = max((r for r in ranks.values() if r is not None), default=0)
        if a is not None and b is not None and steps > 0:
            parts[field.key] = abs(a - b) / steps
        else:
            parts[field.key] = 0.0 if guess == truth else 1.0
    return parts

