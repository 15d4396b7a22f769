"""Active pair selection against random pairs: how many comparisons each needs for the same rank correlation.

    make bench-pairs            # or: python -m benchmarks.pair_selection --spread 2 --items 60

Simulation. Each seed draws a true scale for --items photos, s ~ N(0, spread^2), in units of one rater's noise:
a rater shown (first, second) perceives x = s_second - s_first + N(0, noise^2) and answers at five levels,
similar for |x| < 0.5, better / worse for 0.5 <= |x| < 1.5, superior / inferior beyond (which photo is shown
first is random). With the default spread 3 a single rater orders 93% of random pairs as the truth does: a
collection that spans the quality range. Both strategies get --per-image comparisons per photo on average
(budget B = items * per_image / 2) from the same simulated raters, and the scale is re-fitted (Thurstone MAP,
soft levels, `pair_scale`) every --step comparisons; SRCC is against the truth.

- random: the app's control, balanced random matchings (each photo once per round, least compared first, no
  pair twice) (`select_pairs_random`);
- active: the app's active strategy: batches of sqrt(items) pairs with the highest expected information gain under
  the current posterior, each photo at most once per batch, no pair twice (`select_pairs_active`), re-fitted
  after each batch.

Per seed the target is the SRCC random reaches with the whole budget; active needs the comparisons from which
its SRCC stays at or above that target. comparison_savings = median over seeds of 1 - needed / B (a seed where
active never gets there counts as no saving). srcc_recovered is the median SRCC of active with the whole
budget; srcc_random the median target. Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from scipy.stats import spearmanr

from annotation_site.statistics.pairs import (
    pair_scale,
    select_pairs_active,
    select_pairs_random,
)

CUTS = [-1.5, -0.5, 0.5, 1.5]
PREFERENCE = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


def _curve(
    strategy: str, truth: np.ndarray, budget: int, noise: float, step: int, batch: str, seed: int, size: int
) -> list[tuple[int, float]]:
    n = len(truth)
    rng = np.random.default_rng([seed, 1])  # the raters and the tie-breaks; the same stream for both strategies
    first: list[int] = []
    second: list[int] = []
    pref: list[float] = []
    counts = np.zeros(n)
    asked: set[tuple[int, int]] = set()
    queue: list[tuple[int, int]] = []
    curve = []
    while len(pref) < budget:
        if not queue:
            if strategy == "random":
                queue = select_pairs_random(counts, exclude=asked, seed=rng)
            else:
                scale = pair_scale(n, second, first, pref)
                queue = select_pairs_active(scale, batch=batch, size=size, exclude=asked, seed=rng)
            if not queue:  # every pair asked: start over
                asked.clear()
                continue
        u, v = queue.pop(0)
        a, b = (u, v) if rng.random() < 0.5 else (v, u)
        level = np.digitize(truth[b] - truth[a] + rng.normal(0.0, noise), CUTS)
        first.append(a)
        second.append(b)
        pref.append(PREFERENCE[level])
        counts[[a, b]] += 1
        asked.add((u, v))
        if len(pref) % step == 0 or len(pref) == budget:
            fitted = pair_scale(n, second, first, pref).score
            curve.append((len(pref), float(spearmanr(fitted, truth)[0])))
    return curve


def _needed(curve: list[tuple[int, float]], target: float) -> float:
    """The comparisons from which the curve stays at or above the target (inf if it ends below)."""
    needed = np.inf
    for count, srcc in reversed(curve):
        if srcc < target:
            break
        needed = count
    return needed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--per-image", type=int, default=10, help="comparisons per photo (budget = items * this / 2)")
    parser.add_argument("--spread", type=float, default=3.0, help="sd of the true scale in rater-noise units")
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, default=15)
    parser.add_argument("--step", type=int, default=10)
    parser.add_argument("--batch", choices=["greedy", "mst"], default="greedy")
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per active batch (default: the square root of items, as the app)")
    args = parser.parse_args()

    start = time.perf_counter()
    budget = args.items * args.per_image // 2
    size = args.batch_size or max(2, round(math.sqrt(args.items)))
    savings, targets, recovered = [], [], []
    for seed in range(args.seeds):
        truth = np.random.default_rng([seed, 0]).normal(0.0, args.spread, args.items)
        random_curve = _curve("random", truth, budget, args.noise, args.step, args.batch, seed, size)
        active_curve = _curve("active", truth, budget, args.noise, args.step, args.batch, seed, size)
        target = random_curve[-1][1]
        needed = _needed(active_curve, target)
        savings.append(max(0.0, 1.0 - needed / budget) if np.isfinite(needed) else 0.0)
        targets.append(target)
        recovered.append(active_curve[-1][1])
    print(
        json.dumps(
            {
                "comparison_savings": round(float(np.median(savings)), 3),
                "srcc_recovered": round(float(np.median(recovered)), 4),
                "srcc_random": round(float(np.median(targets)), 4),
                "savings_per_seed": [round(s, 2) for s in savings],
                "items": args.items,
                "comparisons_budget": budget,
                "spread": args.spread,
                "noise": args.noise,
                "batch": args.batch,
                "batch_size": size,
                "seeds": args.seeds,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
