"""How every cost grows with the project: RealQA at 1x, 10x (and 100x where it fits, else extrapolated), issue #13.

    make bench-scale        # or: python -m benchmarks.scale --sizes 1 10 [--stages ...] [--workdir var/bench-scale]
    python -m benchmarks.scale --sizes 0.02 0.1        # a quick run

At each size (a multiple of RealQA's 14,715 photos, 5 labels each) a fresh PostgreSQL database of its own
(realqa_bench_scale_<size>) and Redis (db 12, flushed) get a project seeded the way benchmarks/release_speed.py
seeds its one (rows COPY-written, every photo a row pointing at one small stored placeholder, so this measures the
platform rather than the disk), with a submitted assignment per label as import_ratings gives one, and stored
feature vectors for the seeded photos (what the workers' pre-scoring would have left; the 10,000 photos imported
at each size are really decoded and scored). Then, each stage timed on that project:

- rater_loop: 20 simulated raters through the real API against gunicorn (production settings, Redis cache), the
  loop of benchmarks/rater_load.py, on the whole project (overlap raised so that every photo takes every rater);
- adaptive_overlap: the service a submit calls once an image has its overlap (labeling.assignments._adapt_overlap),
  on sampled labelled photos; lease_sweep: the beat task (labeling.expire_leases) over 1,000 expired leases, and
  with none expired;
- import_images: 10,000 new small synthetic photos through images_import (the command's service, 2 workers);
- retrain: the CPU model's retrain service (workers.modeling.retrain_project; train, score the project, reorder),
  with a small training configuration (--training) so that the epochs do not hide the platform's own cost;
- prescore: the workers' pre-scoring service on a fixed sample of the new photos (features and the CPU scorer);
- priorities: predictions.services.priorities_recompute;
- dashboard_job (releases.dashboard_stats's service, in a process of its own: time and peak RSS), then the staff dashboard page, the rater quality page and
  the model page (Django's test client logged in as staff, production settings, full request; median of 3 after
  one warm-up request, which is reported as first_ms);
- release: the export_release path in a child process (time, peak RSS of that process and its workers, size of the
  folder).

One JSON line per stage and size as it is measured; then one per stage and metric with the fitted exponent k
(time ~ size^k, log-log least squares over the sizes run) and, where 100x was not run, the 100x figure
extrapolated with it (marked "extrapolated": true); then the issue's targets, met or not; and a log-log plot of
every stage (var/bench-scale/scale.png)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REALQA_PHOTOS = 14_715
LABELS_PER_IMAGE = 5
SLUG = "bench-scale"
DATABASE_PREFIX = "realqa_bench_scale"
REDIS_URL = "redis://127.0.0.1:6379/12"
PAGE_BUDGET_S = 20.0  # a page's repeats stop once its requests took this long (at least one timed after the warm-up)
STAGE_BUDGET_S = 15.0  # adaptive overlap: calls stop after this long (at least 20)
STAGES = (
    "rater_loop", "adaptive_overlap", "lease_sweep", "import_images", "retrain", "prescore", "priorities",
    "dashboard_job", "dashboard_page", "quality_page", "model_page", "release",
)
# The metrics fitted per stage (seconds or milliseconds unless named otherwise); the first one is the one plotted.
FIT_METRICS: dict[str, tuple[str, ...]] = {
    "seed": ("seconds",),
    "rater_loop": ("loop_p99_ms", "loop_p50_ms"),
    "adaptive_overlap": ("median_ms",),
    "lease_sweep": ("expire_s", "none_expired_ms"),
    "import_images": ("seconds",),
    "retrain": ("seconds",),
    "prescore": ("seconds",),
    "priorities": ("seconds",),
    "dashboard_job": ("seconds", "peak_rss_mb"),
    "dashboard_page": ("median_ms",),
    "quality_page": ("median_ms",),
    "model_page": ("median_ms",),
    "release": ("seconds", "peak_rss_mb"),
}


# What these stages do depends on the model the retrain leaves: without one they run another, cheaper path.
NEED_MODEL = ("prescore", "priorities", "model_page")

# ------------------------------------------------------------------------------------------------ arithmetic


def photos_at(size: float) -> int:
    """Photos of a project `size` times RealQA's (at least 12, what a retrain needs)."""
    return max(12, round(REALQA_PHOTOS * size))


def size_tag(size: float) -> str:
    """A name for a size that fits a database name: 1 -> '1x', 0.05 -> '0p05x'."""
    return f"{size:g}".replace(".", "p").replace("-", "m") + "x"


def fit_exponent(sizes: Sequence[float], values: Sequence[float]) -> tuple[float, float] | None:
    """(k, c) of value = c * size^k by least squares on log(value) against log(size); None without two distinct
    sizes with positive values."""
    pairs = [(math.log(s), math.log(v)) for s, v in zip(sizes, values) if s > 0 and v is not None and v > 0]
    if len({x for x, _ in pairs}) < 2:
        return None
    mean_x = sum(x for x, _ in pairs) / len(pairs)
    mean_y = sum(y for _, y in pairs) / len(pairs)
    k = sum((x - mean_x) * (y - mean_y) for x, y in pairs) / sum((x - mean_x) ** 2 for x, _ in pairs)
    return k, math.exp(mean_y - k * mean_x)


def extrapolate(sizes: Sequence[float], values: Sequence[float], size: float) -> float | None:
    """The value at `size` on the fitted power law; None where no exponent can be fitted."""
    fit = fit_exponent(sizes, values)
    if fit is None:
        return None
    k, c = fit
    return c * size**k


def percentile(values: Sequence[float], p: float) -> float:
    """The p-quantile (0..1) by the nearest lower rank, as benchmarks/rater_load.py takes its p50/p99."""
    ordered = sorted(values)
    return ordered[int(p * (len(ordered) - 1))]


def exponent_lines(results: list[dict], target: float = 100.0) -> list[dict]:
    """One line per stage and fitted metric: k over the sizes measured, and the value at `target` (measured when that
    size was run, else extrapolated and marked so)."""
    lines = []
    for stage, metrics in FIT_METRICS.items():
        rows = sorted((r for r in results if r.get("stage") == stage and not r.get("incomparable")), key=lambda r: r["size"])
        for metric in metrics:
            points = [(r["size"], r[metric]) for r in rows if isinstance(r.get(metric), (int, float)) and r[metric] > 0]
            if not points:
                continue
            sizes, values = [p[0] for p in points], [p[1] for p in points]
            fit = fit_exponent(sizes, values)
            line = {"stage": stage, "metric": metric, "k": None if fit is None else round(fit[0], 3), "sizes": sizes, "values": values}
            measured = dict(points).get(target)
            if measured is not None:
                line.update({f"at_{target:g}x": measured, "extrapolated": False})
            else:
                guess = extrapolate(sizes, values, target)
                line.update({f"at_{target:g}x": None if guess is None else round(guess, 3), "extrapolated": True})
            lines.append(line)
    return lines


def targets_check(results: list[dict], small: float = 1.0, large: float = 10.0) -> list[dict]:
    """The issue's targets between sizes `small` and `large`; a target whose figures are missing is left out, a stage
    that failed at `large` is a target missed."""
    failed: list[dict] = []
    at = {(r["stage"], r["size"]): r for r in results if "stage" in r and "size" in r and not r.get("incomparable")}
    for r in results:  # a stage that failed at the larger size misses its targets
        if "error" in r and r.get("size") == large:
            failed.append({"target": f"{r['stage']} runs at {large:g}x", "error": r["error"], "met": False})

    def get(stage: str, size: float, key: str) -> float | None:
        value = at.get((stage, size), {}).get(key)
        return value if isinstance(value, (int, float)) else None

    out: list[dict] = []
    if small == large:
        return out
    out += failed

    def k_of(a: float, b: float) -> float:
        return math.log(b / a) / math.log(large / small)

    def add(target: str, figures: dict, met: bool) -> None:
        out.append({"target": target, **figures, "met": met})

    p99_small, p99_large = get("rater_loop", small, "loop_p99_ms"), get("rater_loop", large, "loop_p99_ms")
    if p99_small and p99_large:
        add("rater loop p99 at 10x within 1.2x of 1x and under 150 ms", {"p99_1x_ms": p99_small, "p99_10x_ms": p99_large,
            "ratio": round(p99_large / p99_small, 2)}, p99_large <= 1.2 * p99_small and p99_large < 150)
    for stage in ("dashboard_page", "quality_page", "model_page"):
        ms = get(stage, large, "median_ms")
        if ms is not None:
            add(f"{stage} under 1 s at 10x", {"ms_10x": ms}, ms < 1000)
    rss = get("release", large, "peak_rss_mb")
    s_small, s_large = get("release", small, "seconds"), get("release", large, "seconds")
    if rss is not None and s_small and s_large:
        k = k_of(s_small, s_large)
        add("10x release under 1 GB peak memory, k <= 1.1 between 1x and 10x", {"peak_rss_mb_10x": rss, "k": round(k, 3)},
            rss < 1024 and k <= 1.1)
    r_small, r_large = get("import_images", small, "photos_per_s"), get("import_images", large, "photos_per_s")
    if r_small and r_large:
        add("import rate at 10x within 0.8x of 1x", {"photos_per_s_1x": r_small, "photos_per_s_10x": r_large,
            "ratio": round(r_large / r_small, 2)}, r_large >= 0.8 * r_small)
    for stage in ("adaptive_overlap", "lease_sweep", "retrain", "prescore", "priorities", "dashboard_job", "release"):
        metric = FIT_METRICS[stage][0]
        a, b = get(stage, small, metric), get(stage, large, metric)
        if a and b:
            k = k_of(a, b)
            add(f"batch stage {stage} k <= 1.1", {"metric": metric, "k": round(k, 3)}, k <= 1.1)
    return out


# ------------------------------------------------------------------------------------------------ orchestration


def _env(size: float, workdir: Path) -> dict[str, str]:
    from benchmarks.rater_load import _server_env

    var_dir = workdir / size_tag(size)
    env = _server_env(var_dir)
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DATABASE_PREFIX}_{size_tag(size)}",
        REDIS_URL=REDIS_URL,
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        STATIC_ROOT=str(workdir / "static"),
        OPENBLAS_NUM_THREADS="1",
        MEDIA_X_ACCEL_REDIRECT="",
    )
    return env


def _fresh_database(name: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def run_size(size: float, args: argparse.Namespace, workdir: Path) -> list[dict]:
    env = _env(size, workdir)
    shutil.rmtree(workdir / size_tag(size), ignore_errors=True)
    (workdir / size_tag(size)).mkdir(parents=True)
    _fresh_database(f"{DATABASE_PREFIX}_{size_tag(size)}")
    _flush_redis()
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    command = [sys.executable, "-m", "benchmarks.scale", "--child-size", str(size), "--workdir", str(workdir),
               "--stages", *args.stages, "--rater-seconds", str(args.rater_seconds), "--raters", str(args.raters),
               "--import-photos", str(args.import_photos), "--prescore-photos", str(args.prescore_photos),
               "--training", args.training]
    lines = []
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        for raw in child.stdout:
            line = None
            with contextlib.suppress(json.JSONDecodeError):
                line = json.loads(raw)
            if isinstance(line, dict) and "stage" in line:
                print(raw, end="", flush=True)
                lines.append(line)
            else:  # the platform's own log lines (the request log of the test client's requests)
                sys.stderr.write(raw)
    if child.returncode != 0:
        raise SystemExit(f"size {size:g}: the child failed with status {child.returncode}")
    return lines


def plot(results: list[dict], exponents: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in FIT_METRICS if any(r.get("stage") == s for r in results)]
    columns = 4
    rows = max(1, math.ceil(len(stages) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.ravel()[len(stages):]:
        ax.axis("off")
    for ax, stage in zip(axes.ravel(), stages):
        for metric in FIT_METRICS[stage][:2]:
            line = next((e for e in exponents if e["stage"] == stage and e["metric"] == metric), None)
            if line is None:
                continue
            label = f"{metric} (k={line['k']})" if line["k"] is not None else metric
            (drawn,) = ax.plot(line["sizes"], line["values"], "o-", label=label)
            key = next(k for k in line if k.startswith("at_"))
            if line["extrapolated"] and line[key] is not None:
                target = float(key[3:-1])
                ax.plot([line["sizes"][-1], target], [line["values"][-1], line[key]], "--", color=drawn.get_color())
                ax.plot([target], [line[key]], "o", mfc="none", color=drawn.get_color(), label="extrapolated")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(stage)
        ax.set_xlabel("size (x RealQA)")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    figure.suptitle("Cost against project size (log-log; hollow: extrapolated)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1.0, 10.0], help="multiples of RealQA (14,715 photos)")
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES, metavar="STAGE",
                        help=f"stages to run (default all: {' '.join(STAGES)})")
    parser.add_argument("--workdir", default="var/bench-scale")
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--rater-seconds", type=float, default=15.0)
    parser.add_argument("--import-photos", type=int, default=10_000)
    parser.add_argument("--prescore-photos", type=int, default=1_000, help="a fixed sample of the imported photos")
    parser.add_argument("--training", default='{"epochs": 3, "ensemble_size": 1}',
                        help="MODEL_TRAINING for the retrain (the platform's default: 300 epochs, 5 members)")
    parser.add_argument("--child-size", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--child-release", nargs=1, metavar="OUT", help=argparse.SUPPRESS)
    parser.add_argument("--child-dashboard", type=int, metavar="PROJECT_ID", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workdir = (REPO / args.workdir).resolve() if not Path(args.workdir).is_absolute() else Path(args.workdir)
    if args.child_release:
        child_release(Path(args.child_release[0]))
        return 0
    if args.child_dashboard is not None:
        child_dashboard(args.child_dashboard)
        return 0
    if args.child_size is not None:
        child_size(args.child_size, args, workdir)
        return 0

    workdir.mkdir(parents=True, exist_ok=True)
    env = _env(args.sizes[0], workdir)
    # Production settings serve hashed static names: the staff pages need the manifest.
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    results: list[dict] = []
    for size in sorted(args.sizes):
        results += run_size(size, args, workdir)
    exponents = exponent_lines(results)
    for line in exponents:
        print(json.dumps(line), flush=True)
    large = max(args.sizes)
    small = 1.0 if 1.0 in args.sizes else min(args.sizes)
    for line in targets_check(results, small=small, large=large):
        print(json.dumps({"targets": f"{small:g}x -> {large:g}x", **line}), flush=True)
    plot(results, exponents, workdir / "scale.png")
    print(json.dumps({"plot": str(workdir / "scale.png")}), flush=True)
    return 0


# ------------------------------------------------------------------------------------------------ the child


def _emit(stage: str, size: float, **figures: object) -> dict:
    line = {"stage": stage, "size": size, **figures, "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(line), flush=True)
    return line


@contextlib.contextmanager
def _timed() -> Iterator[list[float]]:
    box = [0.0]
    start = time.perf_counter()
    yield box
    box[0] = time.perf_counter() - start


def child_size(size: float, args: argparse.Namespace, workdir: Path) -> None:
    os.environ["MODEL_TRAINING"] = args.training
    import django

    django.setup()
    from tqdm import tqdm

    var_dir = workdir / size_tag(size)
    project, seeded = seed(size)
    _emit("seed", size, **seeded)
    bar = tqdm(args.stages, desc=f"{size:g}x stages", file=sys.stderr, unit="stage")
    state: dict = {}
    for stage in bar:
        bar.set_postfix_str(stage)
        start = time.perf_counter()
        try:
            figures = STAGE_FUNCTIONS[stage](project, args, var_dir, state)
        except Exception as exc:  # a stage the platform fails at this size is a finding: say so, go on
            import traceback

            from django.db import connection

            traceback.print_exc(file=sys.stderr)
            connection.close()  # a failed query may leave the connection unusable
            state.setdefault("failed", set()).add(stage)
            figures = {"error": f"{type(exc).__name__}: {exc}"[:500], "failed_after_s": round(time.perf_counter() - start, 2)}
        if "retrain" in state.get("failed", set()) and stage in NEED_MODEL:
            figures["incomparable"] = "no model at this size: the retrain failed"
        _emit(stage, size, **figures)
        project.refresh_from_db()


def seed(size: float) -> tuple[object, dict]:
    """The project at this size, written the way benchmarks/release_speed.py writes its one."""
    import numpy as np
    from django.db import connection, transaction
    from django.utils import timezone

    from annotation_site.core.dbstats import tables_analyze
    from annotation_site.images.models import Image
    from annotation_site.labeling.models import Annotation, Assignment
    from annotation_site.predictions.models import ImageFeatures
    from annotation_site.projects.models import Project
    from annotation_site.raters.models import Membership
    from benchmarks import release_speed
    from realqa_model import features

    images = photos_at(size)
    sim_args = argparse.Namespace(images=images, raters=60, per_image=LABELS_PER_IMAGE, seed=0)
    start = time.perf_counter()
    sim = release_speed.simulate(images, sim_args.raters, LABELS_PER_IMAGE, sim_args.seed)
    seeded = release_speed.seed_project(sim_args, sim, slug=SLUG, assignments=True, analyze=False)
    # The features the workers' pre-scoring would have stored for every seeded photo: the placeholder's own, with a
    # little noise per photo so that the model has something to fit.
    from django.core.files.storage import default_storage

    placeholder = Image.objects.filter(project_id=seeded["project_id"]).values_list("original", flat=True).first()
    with default_storage.open(placeholder, "rb") as handle:
        base = features.extract(handle.read())
    rng = np.random.default_rng(1)
    scale = features.NOMINAL_SCALE * 0.3
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        table = ImageFeatures._meta.db_table
        with cursor.cursor.copy(f"COPY {table} (image_id, version, vector, created_at) FROM STDIN") as copy:
            for start_row in range(0, len(seeded["image_ids"]), 10_000):
                ids = seeded["image_ids"][start_row : start_row + 10_000]
                vectors = (base + rng.normal(0, 1, (len(ids), base.size)) * scale).astype("<f4")
                for image_id, vector in zip(ids, vectors):
                    copy.write_row([int(image_id), features.FEATURES_VERSION, vector.tobytes(), now])
    # This seeding bypasses the platform's services, so it calls tables_analyze once after it, as seed_benchmark,
    # import_images and import_ratings do after their bulk writes. Nothing else is analysed or tuned.
    tables_analyze(Image, Assignment, Annotation, Membership, ImageFeatures)
    seconds = time.perf_counter() - start
    project = Project.objects.get(pk=seeded["project_id"])
    return project, {"seconds": round(seconds, 2), "images": images, "labels": int(sim["image"].size),
                     "raters": sim_args.raters, "insert_labels_s": round(seeded["insert_s"], 2)}


def stage_rater_loop(project, args, var_dir: Path, state: dict) -> dict:  # noqa: ANN001
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotation_site.projects.models import Project
    from annotation_site.raters.models import RaterProfile
    from benchmarks.rater_load import _load, server_running

    # Every photo can take every rater: the pool is the whole project and never runs dry. No gold, no qualification,
    # and no adaptive overlap on the loop (max_overlap = overlap), as in seed_benchmark.
    overlap = LABELS_PER_IMAGE + args.raters
    Project.objects.filter(pk=project.pk).update(
        overlap=overlap, max_overlap=overlap, gold_rate=0, qualification_size=0, lease_minutes=60
    )
    User = get_user_model()
    tokens = []
    for i in range(args.raters):
        user, _ = User.objects.get_or_create(username=f"bench-rater-{i}")
        RaterProfile.objects.get_or_create(user=user)
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    with server_running(dict(os.environ), var_dir, workers=3, threads=1) as port:
        result = _load(port, tokens, args.rater_seconds, overlap, slug=project.slug)
    acknowledged = result.pop("_acknowledged")
    from annotation_site.labeling.models import Annotation

    stored = Annotation.objects.filter(pk__in=acknowledged).count()
    Project.objects.filter(pk=project.pk).update(overlap=LABELS_PER_IMAGE, max_overlap=LABELS_PER_IMAGE)
    result.pop("system", None)
    return {**result, "lost": len(acknowledged) - stored}


def stage_adaptive_overlap(project, args, var_dir: Path, state: dict) -> dict:  # noqa: ANN001
    import random

    from django.db import transaction

    from annotation_site.labeling import assignments as engine
    from annotation_site.labeling.models import Assignment

    ids = list(Assignment.objects.filter(project=project, status=Assignment.Status.SUBMITTED, rater__username__startswith="bench-release-rater-")
               .order_by("pk").values_list("pk", flat=True)[:50_000])
    sample = random.Random(0).sample(ids, min(200, len(ids)))
    times: list[float] = []
    deadline = time.monotonic() + STAGE_BUDGET_S
    for pk in sample:
        if time.monotonic() > deadline and len(times) >= 20:
            break
        assignment = Assignment.objects.select_related("project", "schema_version").get(pk=pk)
        # The project asks for up to two more raters while the overall scores are uncertain (adaptive overlap on).
        assignment.project.max_overlap = assignment.project.overlap + 2
        with transaction.atomic():
            start = time.perf_counter()
            engine._adapt_overlap(assignment)
            times.append(time.perf_counter() - start)
            transaction.set_rollback(True)  # leave wanted_count as it was
    return {"calls": len(times), "median_ms": round(statistics.median(times) * 1000, 2),
            "p99_ms": round(percentile(times, 0.99) * 1000, 2)}


def stage_lease_sweep(project, args, var_dir: Path, state: dict) -> dict:  # noqa: ANN001
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from annotation_site.images.models import Image
    from annotation_site.labeling.models import Assignment
    from workers.tasks import expire_leases

    with _timed() as none_expired:
        expire_leases()  # the beat task with nothing to do (the rater loop's leases are an hour long)
    user, _ = get_user_model().objects.get_or_create(username="bench-scale-abandoner")
    past = timezone.now() - timedelta(hours=2)
    images = list(Image.objects.filter(project=project).order_by("?").values_list("pk", flat=True)[:1000])
    Assignment.objects.bulk_create(
        Assignment(project=project, image_id=i, rater=user, schema_version_id=project.current_schema_id, created_at=past, expires_at=past)
        for i in images
    )
    with _timed() as expire:
        expired = expire_leases()
    return {"expired": expired, "expire_s": round(expire[0], 4), "none_expired_ms": round(none_expired[0] * 1000, 2)}


def _synthetic_photos(folder: Path, n: int) -> list[Path]:
    """n small distinct JPEGs (96x72, smooth random colour fields); reused when already there."""
    import numpy as np
    from PIL import Image as PILImage
    from tqdm import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo-{i:05d}.jpg" for i in range(n)]
    missing = [p for p in paths if not p.exists()]
    for path in tqdm(missing, desc="synthetic photos", file=sys.stderr, disable=not missing):
        i = int(path.stem.split("-")[1])
        rng = np.random.default_rng(i)
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        image = PILImage.fromarray(small).resize((96, 72), PILImage.BICUBIC)
        image.save(path, "JPEG", quality=88)
    return paths


def stage_import_images(project, args, var_dir: Path, state: dict) -> dict:  # noqa: ANN001
    from tqdm import tqdm

    from annotation_site.images.services import images_import
    from annotation_site.images.sources import collect_sources

    paths = _synthetic_photos(var_dir.parent / "photos", args.import_photos)
    bar = tqdm(total=len(paths), desc="import_images", file=sys.stderr, unit="photo")
    start = time.perf_counter()
    report = images_import(project=project, sources=collect_sources([str(p) for p in paths]), workers=2,
                           on_line=lambda line: bar.update(1))
    seconds = time.perf_counter() - start
    bar.close()
    outcomes: dict[str, int] = {}
    for line in report.lines:
        outcomes[line.outcome] = outcomes.get(line.outcome, 0) + 1
    state["imported"] = [line.image_id for line in report.lines if line.outcome == "imported"]
    return {"photos": len(paths), "seconds": round(seconds, 2), "photos_per_s": round(len(paths) / seconds, 1), **outcomes}


def stage_retrain(project, args, var_dir: Path, state: dict) -> dict:  # noqa: ANN001
    from workers.modeling import retrain_project

    with _timed() as took:
        result = retrain_project(project_id=project.pk, force=True)
    return {"seconds": round(took[0], 2), "images_used": result.get("images_used"), "scored": result.get("scored"),
            "ordered": result.get("ordered"), "training": json.loads(args.training)}


def stage_prescore(project, args, var_dir: Path, state: dict) -> dict:  # noqa: ANN001
    from tqdm import tqdm

    from annotation_site.images.models import Image
    from annotation_site.predictions.models import ImageFeatures
    from workers.modeling import prescore_images

    ids = state.get("imported") or []
    if not ids:  # without the import stage: seeded photos, their stored features removed
        ids = list(Image.objects.filter(project=project).order_by("pk").values_list("pk", flat=True)[: args.prescore_photos])
        ImageFeatures.objects.filter(image_id__in=ids).delete()
    ids = ids[: args.prescore_photos]
    totals = {"features": 0, "predictions": 0}
    start = time.perf_counter()
    for batch in tqdm([ids[i : i + 32] for i in range(0, len(ids), 32)], desc="prescore", file=sys.stderr, unit="batch"):
        for key, value in prescore_images(image_ids=batch).items():
            totals[key] += value
    seconds = time.perf_counter() - start
    return {"photos": len(ids), "seconds": round(seconds, 2), "photos_per_s": round(len(ids) / seconds, 1) if seconds else None, **totals}


def stage_priorities(project, args, var_dir: Path, state: dict) -> dict:  # noqa: ANN001
    from annotation_site.predictions.services import priorities_recompute
    from workers.modeling import features_version

    with _timed() as took:
        ordered = priorities_recompute(project=project, features_version=features_version())
    return {"seconds": round(took[0], 2), "ordered": ordered}


def stage_dashboard_job(project, args, var_dir: Path, state: dict) -> dict:  # noqa: ANN001
    # In a process of its own, as a worker runs it, so that its peak memory is its own.
    return _run_child(["--child-dashboard", str(project.pk)])


def child_dashboard(project_id: int) -> None:
    """The worker's dashboard job (releases.dashboard_stats's service); prints its time and peak RSS."""
    import django

    django.setup()
    from annotation_site.releases.dashboard import dashboard_stats_refresh

    with _timed() as took:
        outcome = dashboard_stats_refresh(project_id=project_id)
    print(json.dumps({"seconds": round(took[0], 2), "labels": outcome.get("labels"), "status": outcome.get("status"),
                      "peak_rss_mb": round(_own_peak_rss_mb(), 1)}))


def _own_peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM) and its waited-for children's ru_maxrss. Not its own ru_maxrss: on Linux a
    process started from a large one inherits that one's resident size into ru_maxrss (at exec), VmHWM starts afresh.
    A child's ru_maxrss may hold this process's size at the fork, which is below this process's VmHWM."""
    peak_kb = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peak_kb = int(line.split()[1])
    return max(peak_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024.0


def _run_child(arguments: list[str]) -> dict:
    result = subprocess.run([sys.executable, "-m", "benchmarks.scale", *arguments], cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise RuntimeError(f"the child {arguments[0]} failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _page(project, path: str, state: dict) -> dict:  # noqa: ANN001
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = state.get("client")
    if client is None:
        staff, _ = get_user_model().objects.get_or_create(username="bench-scale-staff", defaults={"is_staff": True, "is_superuser": True})
        client = state["client"] = Client()
        client.force_login(staff)
    url = f"/staff/projects/{project.slug}/{path}/"
    times: list[float] = []
    # One warm-up request, then up to three timed ones (fewer where a request takes long: PAGE_BUDGET_S in all).
    while len(times) < 4 and (len(times) < 2 or sum(times) < PAGE_BUDGET_S) and not (len(times) == 1 and times[0] > PAGE_BUDGET_S / 2):
        start = time.perf_counter()
        response = client.get(url, secure=True)
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"{url}: status {response.status_code}")
    # A page slower than half the budget is timed once: that request is the figure (warm-up included).
    return {"first_ms": round(times[0] * 1000, 1), "median_ms": round(statistics.median(times[1:] or times) * 1000, 1),
            "requests": len(times), "bytes": len(response.content)}


def stage_dashboard_page(project, args, var_dir: Path, state: dict) -> dict:  # noqa: ANN001
    return _page(project, "dashboard", state)


def stage_quality_page(project, args, var_dir: Path, state: dict) -> dict:  # noqa: ANN001
    return _page(project, "raters", state)


def stage_model_page(project, args, var_dir: Path, state: dict) -> dict:  # noqa: ANN001
    return _page(project, "model", state)


def stage_release(project, args, var_dir: Path, state: dict) -> dict:  # noqa: ANN001
    out = var_dir / "release"
    shutil.rmtree(out, ignore_errors=True)
    figures = _run_child(["--child-release", str(out)])
    figures["size_mb"] = round(sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6, 1)
    zips = [p for p in out.rglob("*.zip")]
    if zips:
        figures["zip_mb"] = round(sum(p.stat().st_size for p in zips) / 1e6, 1)
    shutil.rmtree(out, ignore_errors=True)
    return figures


def child_release(out: Path) -> None:
    """The export_release path (release_create, then release_build with the conversation writer) with the platform's
    default options, images referenced; prints time and this process's peak RSS."""
    import django

    django.setup()
    from annotation_site.projects.models import Project
    from annotation_site.releases.services import release_build, release_create
    from workers.release_formats import ConversationWriter

    project = Project.objects.get(slug=SLUG)
    start = time.perf_counter()
    release = release_create(project=project, options={"images": "reference"}, output_dir=out)
    release = release_build(release_id=release.pk, writers=[ConversationWriter()])
    seconds = time.perf_counter() - start
    # The largest of this process and its workers (the statistics and plot workers).
    print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(_own_peak_rss_mb(), 1), "status": release.status}))


STAGE_FUNCTIONS = {
    "rater_loop": stage_rater_loop,
    "adaptive_overlap": stage_adaptive_overlap,
    "lease_sweep": stage_lease_sweep,
    "import_images": stage_import_images,
    "retrain": stage_retrain,
    "prescore": stage_prescore,
    "priorities": stage_priorities,
    "dashboard_job": stage_dashboard_job,
    "dashboard_page": stage_dashboard_page,
    "quality_page": stage_quality_page,
    "model_page": stage_model_page,
    "release": stage_release,
}


if __name__ == "__main__":
    sys.exit(main())
