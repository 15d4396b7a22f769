"""Import speed of 12-megapixel phone JPEGs against Pillow's plain full-size decode of the same files,
measured in the same run on the same machine.

    make bench-import            # or: python -m benchmarks.import_speed --files 24

Ingesting a file means the whole import path of the product: read, sha256, decode (reduced-scale for
upright JPEGs), EXIF orientation, thumbnail, perceptual hash, near-duplicate lookup, content-addressed
storage and the database row. Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def _decode_ms(paths: list[Path]) -> list[float]:
    times = []
    for path in paths:
        start = time.perf_counter()
        with Image.open(path) as im:
            im.load()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=24, help="12 MP JPEGs per set (default 24)")
    parser.add_argument("--workdir", default=None, help="where photos, database and media go (default: a temp dir)")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="realqa-bench-import-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings.dev")
    # A fresh database and media folder every run; only the generated photos are reused.
    shutil.rmtree(workdir / "var", ignore_errors=True)
    os.environ["REALQA_VAR_DIR"] = str(workdir / "var")
    # A fresh SQLite file in the work dir: the database row is a sliver of the cost of a file.
    os.environ.pop("DATABASE_URL", None)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from annotation_site.images.services import images_import
    from annotation_site.images.sources import FileSource
    from annotation_site.projects.services import project_create
    from annotation_site.schemas.spec import load_schema_file
    from benchmarks.phone_photos import make_phone_jpegs

    print(f"building 3 x {args.files} 12 MP JPEGs in {workdir} (kept for the next run)", file=sys.stderr)
    upright = make_phone_jpegs(workdir / "upright", args.files, seed=1)
    rotated = make_phone_jpegs(workdir / "rotated", args.files, seed=2, rotated_share=1.0)
    # Its own files: storage is content-addressed, so re-importing the first set would write nothing.
    parallel = make_phone_jpegs(workdir / "parallel", args.files, seed=3)
    call_command("migrate", verbosity=0)
    schema = load_schema_file(settings.REALQA_SCHEMA_PATH).to_dict()

    def ingest_ms(slug: str, paths: list[Path], workers: int = 1) -> tuple[list[float], float]:
        project = project_create(slug=slug, schema_definition=schema)
        times: list[float] = []
        started = last = time.perf_counter()

        def on_line(line: object) -> None:
            nonlocal last
            now = time.perf_counter()
            times.append((now - last) * 1000)
            last = now

        report = images_import(
            project=project, sources=[FileSource(p.name, str(p)) for p in paths], workers=workers, on_line=on_line
        )
        assert report.imported == len(paths), report.summary()
        return times, time.perf_counter() - started

    _decode_ms(upright[:2])  # warm the page cache and Pillow's imports
    decode_before = _decode_ms(upright)
    ingest, _ = ingest_ms("bench-upright", upright)
    decode_after = _decode_ms(upright)
    decode = statistics.median(decode_before + decode_after)
    ingest_rotated, _ = ingest_ms("bench-rotated", rotated)
    _, parallel_s = ingest_ms("bench-parallel", parallel, workers=os.cpu_count() or 1)

    result = {
        "files": len(upright),
        "megapixels": 12.0,
        "mean_file_mb": round(sum(p.stat().st_size for p in upright) / len(upright) / 1e6, 2),
        "decode_ms_per_file": round(decode, 1),
        "ingest_ms_per_file": round(statistics.median(ingest), 1),
        "ingest_vs_decode": round(statistics.median(ingest) / decode, 2),
        "rotated_ingest_ms_per_file": round(statistics.median(ingest_rotated), 1),
        "rotated_ingest_vs_decode": round(statistics.median(ingest_rotated) / decode, 2),
        "parallel_workers": os.cpu_count() or 1,
        "parallel_files_per_s": round(len(parallel) / parallel_s, 1),
        "decode_files_per_s": round(1000 / decode, 1),
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
