"""Does the model-driven queue save labels? A simulation with a known truth (`make bench-active`).

The set: crops of the photos that ship inside scikit-image, each with one or two graded distortions
(blur, noise, JPEG, under/over-exposure, desaturation) of random severity, so the true quality order
is known by construction. Simulated raters rate with their own bias and inconsistency, and each image
has its own ambiguity. Both strategies start from no labels, send raters to ``per_round`` images at a
time (``overlap`` ratings each) in the order the platform's queue gives, retrain the platform's CPU
scorer on the consensus (the mean rating) after every round, and are scored by how well the project's
best current estimate (the consensus where an image has labels, the model's guess elsewhere) ranks all
images against the truth (SRCC).

The defaults follow the platform: a project retrains after 50 new consensus images
(``Project.retrain_min_new_labels``), so a round is 50 images; the model is `realqa_model.cpu_scorer` in
its default configuration; the queue is `annotation_site.predictions.priority.rank_images` fed what
`priorities_recompute` feeds it: the unlabelled images' uncertainties and feature vectors, the labelled
images' feature vectors, and its covering batch of 200 (QUEUE_BATCH), of which raters get through the
first 50 before the next retrain. The project's ``max_overlap`` equals its overlap, so the platform's other
rule, one more rater where the consensus and the model's guess made before the labels disagree most, adds no
label (on these photos its picks have a consensus barely worse than the average one: Spearman 0.1 between the
disagreement and the consensus' own error).
"random" is the platform's control strategy.

label_savings = 1 - (labels the active queue needs to reach the SRCC random reaches with the whole
budget) / (the labels random needs for it), per seed, then the median over seeds. An active curve that
ends just short of the target is extended along its last step by at most one round (a small negative
saving); one that stays further short counts as a loss of unknown size (null in the per-seed list). Each seed
draws its own raters and rating noise, and both strategies see the same ratings for the same image
(common random numbers), so a difference between them comes from the order, not from luck.

It also measures pre-scoring throughput on 12-megapixel JPEGs against a plain decode of the same files
in the same run (benchmarks/prescore_speed.py). Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import stats

from annotation_site.demo.photos import apply_distortion, load_source
from annotation_site.predictions.priority import rank_images

SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "hubble_deep_field", "immunohistochemistry", "retina", "cat", "brick", "grass", "gravel", "coins", "clock")
SIZE = (384, 288)
SCHEMA = {
    "name": "bench",
    "fields": [{"key": "quality", "label": "Overall quality", "level": "overall", "kind": "continuous", "measurement": "interval", "min": 1, "max": 10, "step": 0.1}],
}
RATERS = 30
QUEUE_BATCH = 200  # priorities_recompute's batch_size
STRATEGIES = ("random", "active")


def _distort(image: Image.Image, kind: str, s: float, rng: np.random.Generator) -> Image.Image:
    if kind == "blur":
        return apply_distortion(image, "gaussian_blur", {"sigma": 0.2 + 4.0 * s}, rng)
    if kind == "noise":
        return apply_distortion(image, "gaussian_noise", {"sigma": 45.0 * s}, rng)
    if kind == "dark":
        return apply_distortion(image, "exposure", {"gain": 1.0 - 0.75 * s, "gamma": 1.0 + 1.2 * s}, rng)
    if kind == "bright":
        return apply_distortion(image, "exposure", {"gain": 1.0 + 1.6 * s, "gamma": 1.0 - 0.5 * s}, rng)
    if kind == "grey":
        return apply_distortion(image, "saturation", {"factor": 1.0 - s}, rng)
    if kind == "jpeg":
        return image  # applied at encoding
    raise ValueError(kind)


@dataclass
class Pool:
    jpegs: list[bytes]
    truth: np.ndarray  # true quality, 1..10
    ambiguity: np.ndarray  # per-image extra spread of ratings


def build_pool(n: int, seed: int = 7) -> Pool:
    rng = np.random.default_rng(seed)
    sources = {}
    for name in SOURCES:
        pixels = load_source(name)
        sources[name] = Image.fromarray(pixels if pixels.ndim == 3 else np.stack([pixels] * 3, -1)).convert("RGB")
    content = {name: rng.normal(0, 0.35) for name in SOURCES}
    # A distortion that cannot show on a source would make the truth a lie: no desaturating a grey photo.
    grey_sources = {name for name, image in sources.items() if np.ptp(np.asarray(image, dtype=np.int16).std(axis=2)) == 0}
    kinds = ("blur", "noise", "dark", "bright", "grey", "jpeg")
    jpegs, truth = [], []
    for _ in range(n):
        name = SOURCES[int(rng.integers(len(SOURCES)))]
        source = sources[name]
        keep = rng.uniform(0.55, 1.0)
        w, h = source.size
        cw, ch = int(w * keep), int(h * keep)
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        image = source.crop((x0, y0, x0 + cw, y0 + ch)).resize(SIZE, Image.Resampling.LANCZOS)
        allowed = [k for k in range(len(kinds)) if not (kinds[k] == "grey" and name in grey_sources)]
        chosen = rng.choice(allowed, size=1 + int(rng.random() < 0.3), replace=False)
        quality, keep_share = 95, 1.0
        for k in chosen:
            s = float(rng.uniform(0, 1))
            image = _distort(image, kinds[k], s, rng)
            if kinds[k] == "jpeg":
                quality = int(round(92 - 86 * s))
            keep_share *= 1.0 - 0.85 * s
        out = tempfile.SpooledTemporaryFile()
        image.save(out, "JPEG", quality=quality)
        out.seek(0)
        jpegs.append(out.read())
        truth.append(float(np.clip(1.5 + 7.5 * keep_share + content[name], 1.0, 10.0)))
    return Pool(jpegs, np.array(truth), rng.uniform(0.2, 0.9, n))


def draw_ratings(pool: Pool, overlap: int, seed: int) -> np.ndarray:
    """(N, overlap) ratings: a crowd of RATERS, each with a bias and an inconsistency, each image with its
    own ambiguity; ``overlap`` different raters per image. Drawn once per seed for every image, so that
    every strategy that asks for image i gets the same ratings for it."""
    rng = np.random.default_rng(seed + 1000)
    bias = rng.normal(0, 0.45, RATERS)
    spread = rng.uniform(0.4, 1.2, RATERS)
    n = len(pool.truth)
    who = np.argsort(rng.random((n, RATERS)), axis=1)[:, :overlap]  # distinct raters per image
    sd = np.sqrt(spread[who] ** 2 + pool.ambiguity[:, None] ** 2)
    return np.clip(pool.truth[:, None] + bias[who] + rng.standard_normal((n, overlap)) * sd, 1, 10)


def simulate(
    features: np.ndarray, pool: Pool, ratings: np.ndarray, *, strategy: str, seed: int, rounds: int, per_round: int, config: Any, queue_batch: int = QUEUE_BATCH
) -> list[tuple[int, float]]:
    """(labels spent, SRCC of the project's estimate against the truth) after each round."""
    from realqa_model import cpu_scorer

    rng = np.random.default_rng(seed)
    n, overlap = ratings.shape
    mos = np.full(n, np.nan)
    uncertainty = np.full(n, np.nan)  # no model before the first round
    curve = []
    for _ in range(rounds):
        unlabelled = np.flatnonzero(np.isnan(mos))
        ranking = rank_images(
            strategy=strategy,
            uncertainty=uncertainty[unlabelled],
            embeddings=features[unlabelled],
            labelled_embeddings=features[np.flatnonzero(~np.isnan(mos))],
            batch_size=queue_batch,
            seed=int(rng.integers(1 << 31)),
        )
        picked = unlabelled[np.argsort(-ranking.priority, kind="stable")[:per_round]]
        mos[picked] = ratings[picked].mean(axis=1)
        done = np.flatnonzero(~np.isnan(mos))
        scorer = cpu_scorer.train(SCHEMA, features[done], [{"quality": float(mos[i])} for i in done], config)
        predictions = scorer.score_features(features)
        guess = np.array([p.fields["quality"].value for p in predictions], dtype=float)
        uncertainty = np.array([p.uncertainty for p in predictions], dtype=float)
        estimate = np.where(np.isnan(mos), guess, mos)
        curve.append((len(done) * overlap, float(stats.spearmanr(estimate, pool.truth).statistic)))
    return curve


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> float:
    """Labels spent when the curve first reaches the target, interpolated between rounds. A curve that ends
    short of it but still rising is extended along its last step for at most one more round, so that
    falling short by a hair counts as a small loss, not as never; beyond that: inf."""
    previous: tuple[float, float] | None = None
    for labels, srcc in curve:
        if srcc >= target:
            if previous is None or srcc == previous[1]:
                return float(labels)
            share = (target - previous[1]) / (srcc - previous[1])
            return previous[0] + share * (labels - previous[0])
        previous = (labels, srcc)
    if len(curve) >= 2 and curve[-1][1] > curve[-2][1]:
        (l0, s0), (l1, s1) = curve[-2], curve[-1]
        share = (target - s1) / (s1 - s0)
        if share <= 1.0:
            return l1 + share * (l1 - l0)
    return float("inf")


def savings(random_curve: list[tuple[int, float]], active_curve: list[tuple[int, float]], target: float) -> float:
    """1 - labels active needs / labels random needs to first reach ``target`` (-inf: active never does)."""
    return 1.0 - labels_to_reach(active_curve, target) / labels_to_reach(random_curve, target)


def _median(values: list[float]) -> float | None:
    m = statistics.median(values)
    return None if not np.isfinite(m) else round(m, 3)


def run_active(args: argparse.Namespace, progress: Callable[[str], None] = lambda _: None) -> dict:
    from realqa_model import cpu_scorer, features as realqa_features

    progress(f"building {args.images} photos (pool seed {args.pool_seed})")
    pool = build_pool(args.images, seed=args.pool_seed)
    feats = np.stack([realqa_features.extract(data) for data in pool.jpegs])
    config = cpu_scorer.CpuScorerConfig(**json.loads(args.config)) if args.config else cpu_scorer.CpuScorerConfig()
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    curves: dict[str, list[list[tuple[int, float]]]] = {name: [] for name in STRATEGIES}
    per_seed: list[float] = []
    for seed in seeds:
        ratings = draw_ratings(pool, args.overlap, seed)
        for name in STRATEGIES:
            curves[name].append(simulate(feats, pool, ratings, strategy=name, seed=seed, rounds=args.rounds, per_round=args.per_round, config=config, queue_batch=args.queue_batch))
        random_curve, active_curve = curves["random"][-1], curves["active"][-1]
        per_seed.append(savings(random_curve, active_curve, random_curve[-1][1]))
        progress(f"seed {seed}: random {random_curve[-1][1]:.3f}, active {active_curve[-1][1]:.3f}, savings {per_seed[-1]:.3f}")
    labels = [labels for labels, _ in curves["random"][0]]
    # Savings against the SRCC random reaches after each round, not only the last: how they depend on the budget.
    by_budget = {
        str(labels[r]): _median([savings(rc, ac, rc[r][1]) for rc, ac in zip(curves["random"], curves["active"])])
        for r in range(len(labels))
    }
    return {
        "benchmark": "active_learning",
        "label_savings": _median(per_seed),
        "label_savings_per_seed": [round(s, 3) if np.isfinite(s) else None for s in per_seed],
        "label_savings_by_budget": by_budget,
        "labels": labels,
        "srcc_random": [round(statistics.median(c[r][1] for c in curves["random"]), 4) for r in range(len(labels))],
        "srcc_active": [round(statistics.median(c[r][1] for c in curves["active"]), 4) for r in range(len(labels))],
        "images": args.images,
        "per_round": args.per_round,
        "rounds": args.rounds,
        "overlap": args.overlap,
        "queue_batch": args.queue_batch,
        "labels_budget": labels[-1],
        "seeds": seeds,
        "pool_seed": args.pool_seed,
    }


def measure_prescore(count: int, workdir: Path) -> dict:
    """benchmarks/prescore_speed's measurement: pre-scoring vs a plain decode of the same 12 MP JPEGs."""
    from benchmarks import prescore_speed

    paths = prescore_speed.make_12mp_jpegs(workdir / "photos", count)
    scorer = prescore_speed._benchmark_scorer(paths)
    return {"benchmark": "prescore", **prescore_speed.measure(paths, scorer), "scorer": scorer.version}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.active_learning", description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1200, help="pool size (default 1200)")
    parser.add_argument("--rounds", type=int, default=6, help="retrains (default 6)")
    parser.add_argument("--per-round", type=int, default=50, help="images labelled between retrains (default 50)")
    parser.add_argument("--overlap", type=int, default=3, help="ratings per image (default 3)")
    parser.add_argument("--queue-batch", type=int, default=QUEUE_BATCH, help=f"the queue's covering batch (default {QUEUE_BATCH}, the platform's)")
    parser.add_argument("--seeds", type=int, default=11, help="simulations per strategy; the median is reported (default 11)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--pool-seed", type=int, default=7)
    parser.add_argument("--config", default="", help="JSON of CpuScorerConfig overrides (default: the platform's defaults)")
    parser.add_argument("--prescore-files", type=int, default=16, help="12-megapixel JPEGs for the throughput figure (0: skip)")
    parser.add_argument("--prescore-workdir", default=None, help="where those go (default: a temp dir); reused between runs")
    parser.add_argument("--skip-active", action="store_true")
    args = parser.parse_args(argv)
    if min(args.per_round, args.rounds, args.seeds, args.overlap, args.queue_batch) < 1:
        parser.error("--per-round, --rounds, --seeds, --overlap and --queue-batch must be at least 1")
    if args.per_round * args.rounds >= args.images:
        parser.error(f"--per-round x --rounds ({args.per_round * args.rounds}) must be fewer than --images ({args.images})")
    if args.overlap > RATERS:
        parser.error(f"--overlap is at most {RATERS}, the size of the simulated crowd")
    if args.prescore_files == 1:
        parser.error("--prescore-files must be 0 (skip) or at least 2")

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if not args.skip_active:
        started = time.perf_counter()
        result = run_active(args, progress)
        result["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(result), flush=True)
    if args.prescore_files:
        workdir = Path(args.prescore_workdir or tempfile.mkdtemp(prefix="realqa-bench-active-"))
        progress(f"pre-scoring {args.prescore_files} 12 MP JPEGs in {workdir}")
        print(json.dumps(measure_prescore(args.prescore_files, workdir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
