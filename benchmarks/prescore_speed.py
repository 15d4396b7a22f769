"""Pre-scoring speed of 12-megapixel phone JPEGs against Pillow's plain full-size decode of the same
files, measured in the same run on the same machine, one image at a time on one core.

    python -m benchmarks.prescore_speed [--count 16] [--repeats 3] [--workdir DIR]

Pre-scoring is what a worker does for every imported photo: the features (DCT-scaled JPEG decode,
EXIF orientation, hand-crafted quality features) and the cpu-multihead scorer's prediction from them
(default configuration: a 5-member ensemble). The requirement is a rate of at least half the plain
decode's. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["main", "make_12mp_jpegs", "measure"]


def make_12mp_jpegs(folder: Path, n: int, *, seed: int = 0) -> list[Path]:
    """n phone-like 4000x3000 JPEGs (a real scene, sensor noise and texture, quality 90, 4:2:0, a quarter
    of them portrait shots stored sideways with EXIF orientation 6); reused when already there."""
    from benchmarks.phone_photos import make_phone_jpegs

    return make_phone_jpegs(Path(folder), n, seed=seed, rotated_share=0.25)


def _decode(paths: list[Path]) -> None:
    for path in paths:
        with Image.open(path) as im:
            im.load()


def measure(paths: list[Path], scorer: Any, *, repeats: int = 3) -> dict[str, float]:
    """Images per second of (a) a plain full decode and (b) pre-scoring (extract + score_features), each
    the median of ``repeats`` passes over ``paths`` after one warm-up pass."""
    from realqa_model import features

    if not paths:
        raise ValueError("measure needs at least one image")
    paths = [Path(p) for p in paths]

    def prescore(batch: list[Path]) -> None:
        scorer.score_features(np.stack([features.extract(path) for path in batch]))

    timings: dict[str, list[float]] = {"decode": [], "prescore": [], "extract": [], "score_features": []}
    _decode(paths[:2])  # warm the file cache and Pillow's plugins
    prescore(paths[:2])
    for _ in range(repeats):
        start = time.perf_counter()
        _decode(paths)
        timings["decode"].append(time.perf_counter() - start)
        start = time.perf_counter()
        vectors = np.stack([features.extract(path) for path in paths])
        extracted = time.perf_counter()
        scorer.score_features(vectors)
        done = time.perf_counter()
        timings["prescore"].append(done - start)
        timings["extract"].append(extracted - start)
        timings["score_features"].append(done - extracted)
    count = len(paths)
    decode_per_s = count / statistics.median(timings["decode"])
    prescore_per_s = count / statistics.median(timings["prescore"])
    return {
        "images": count,
        "decode_per_s": round(decode_per_s, 2),
        "prescore_per_s": round(prescore_per_s, 2),
        "prescore_vs_decode": round(prescore_per_s / decode_per_s, 3),
        "decode_ms": round(1000 / decode_per_s, 1),
        "extract_ms": round(1000 * statistics.median(timings["extract"]) / count, 1),
        "score_features_ms": round(1000 * statistics.median(timings["score_features"]) / count, 2),
    }


def _benchmark_scorer(paths: list[Path]) -> Any:
    """A default-configuration scorer trained on made-up labels for every field of the RealQA schema:
    prediction cost depends on the network's shape, not on what it learnt."""
    from realqa_model import cpu_scorer, features

    schema = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "realqa_schema.json").read_text())
    base = features.extract_many(paths[:8], workers=1)
    rng = np.random.default_rng(0)
    matrix = np.concatenate([base + rng.normal(0, 0.05, base.shape).astype(np.float32) for _ in range(8)])
    labels = []
    for _ in range(len(matrix)):
        row: dict[str, Any] = {}
        for field in schema["fields"]:
            if field["kind"] in ("ordinal", "nominal"):
                row[field["key"]] = field["choices"][int(rng.integers(len(field["choices"])))]["value"]
            elif field["kind"] == "integer":
                row[field["key"]] = int(rng.integers(field["min"], field["max"] + 1))
            elif field["kind"] == "continuous":
                row[field["key"]] = round(float(rng.uniform(field["min"], field["max"])), 1)
        labels.append(row)
    return cpu_scorer.train(schema, matrix, labels, cpu_scorer.CpuScorerConfig(epochs=20))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.prescore_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=16, help="12 MP JPEGs to time (default 16)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--workdir", default=None, help="where the photos go (default: a temp dir); reused between runs"
    )
    args = parser.parse_args(argv)
    if args.count < 2 or args.repeats < 1:
        parser.error("--count must be at least 2 and --repeats at least 1")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="realqa-bench-prescore-"))
    print(f"building {args.count} 12 MP JPEGs in {workdir} (kept for the next run)", file=sys.stderr)
    paths = make_12mp_jpegs(workdir / "photos", args.count)
    scorer = _benchmark_scorer(paths)
    result = measure(paths, scorer, repeats=args.repeats)
    result["scorer"] = scorer.version
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
