"""Release speed on a RealQA-sized project against the `krippendorff` package's own time for the alphas.

    make bench-release      # or: DATABASE_URL=postgres://... python -m benchmarks.release_speed

A project of 14,715 images, the twelve RealQA fields and 10 labels an image (from a pool of 60 simulated raters
with their own bias and inconsistency, on images with their own ambiguity; two of the raters are spammers whom
staff excluded) is written straight into PostgreSQL (COPY). Then, each in a child process of its own:

- the release: `manage.py export_release`'s path (statistics of every field with 1,000-resample bootstrap
  intervals, the MLE, split-half, splits, every file including the LLaMA-Factory conversations, plots, datasheet,
  manifest), images referenced rather than copied (the benchmark's images are one placeholder file);
- the anchor: `krippendorff.alpha(level_of_measurement="interval")` on the same (raters, images) matrices of the
  two overall scores, point estimates only.

Prints one JSON line: release_s, krippendorff_overall_s, peak_rss_mb (the release process and its children,
resource.getrusage), the anchor's own peak, and the largest difference between the release's alphas and the
package's; with each side's CPU time and, of it, system time (the anchor's wall time follows its system time, the
kernel handing it ~2.8 GB of pages, which varies several-fold between runs on a virtual machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SLUG = "bench-release"
REPO = Path(__file__).resolve().parent.parent


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux; the children figure is the largest child, waited for.
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kb, children_kb) / 1024.0


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its waited-for children."""
    return sum(_cpu_split())


def _cpu_split() -> tuple[float, float]:
    """(user, system) CPU seconds of this process and its waited-for children. The package's system time is the
    kernel providing the ~2.8 GB its temporaries touch, which on a virtual machine varies several-fold from run
    to run (whether the pages it gets are already backed by the host); its user time hardly varies."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + children.ru_utime, own.ru_stime + children.ru_stime


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings.dev")
    import django

    django.setup()


# ------------------------------------------------------------------------------------------------ simulation


NOUNS = ["a cat", "a dog", "two children", "a plate of noodles", "a bicycle", "a bed", "a car", "a flower", "a building"]
PLACES = ["a sofa", "a city street", "a park", "a kitchen table", "a hotel room", "a beach", "an office", "a garden"]
REASONS = [
    "The subject stands out against a calm background",
    "Busy frame, the eye has nowhere to rest",
    "Nice light but the horizon is tilted",
    "Centred subject with a little room around it",
    "Soft focus on the main subject",
    "Strong colours and a clear point of interest",
]


def simulate(images: int, raters: int, per_image: int, seed: int) -> dict:
    """Labels as (image index, rater index) pairs with one array per field. Scores follow the P.910 Annex E
    model: rating = truth + rater bias + noise with variance (rater inconsistency^2 + image ambiguity^2)."""
    rng = np.random.default_rng(seed)
    spammers = np.array([raters - 2, raters - 1])
    pairs_image = np.repeat(np.arange(images), per_image)
    # per_image distinct raters per image: a random permutation prefix each
    pairs_rater = np.argsort(rng.random((images, raters)), axis=1)[:, :per_image].ravel()
    bias = rng.normal(0.0, 0.45, raters)
    inconsistency = rng.uniform(0.3, 1.1, raters)
    ambiguity = rng.uniform(0.1, 0.8, images)
    quality = np.clip(rng.normal(5.6, 1.6, images), 1.2, 9.8)
    aesthetics = np.clip(0.6 * quality + 0.4 * rng.normal(5.6, 1.6, images), 1.2, 9.8)
    spam = np.isin(pairs_rater, spammers)
    sd = np.sqrt(inconsistency[pairs_rater] ** 2 + ambiguity[pairs_image] ** 2)

    def score(truth: np.ndarray, step: float) -> np.ndarray:
        value = truth[pairs_image] + bias[pairs_rater] + rng.normal(0.0, 1.0, pairs_image.size) * sd
        value = np.where(spam, rng.uniform(1, 10, pairs_image.size), value)
        return np.clip(np.round(value / step) * step, 1, 10)

    def ordinal(latent: np.ndarray, cuts: list[float]) -> np.ndarray:
        value = latent[pairs_image] + 0.5 * bias[pairs_rater] + rng.normal(0.0, 1.0, pairs_image.size) * sd
        codes = np.searchsorted(cuts, value)
        return np.where(spam, rng.integers(0, len(cuts) + 1, pairs_image.size), codes)

    exposure_latent = rng.normal(0.0, 1.2, images)
    fields = {
        "quality": score(quality, 0.1),
        "aesthetics": score(aesthetics, 0.1),
        "eye_catching": score(0.5 * aesthetics + 0.5 * rng.normal(5.5, 1.5, images), 1.0).astype(np.int64),
        "composition": score(0.7 * aesthetics + 0.3 * rng.normal(5.5, 1.5, images), 1.0).astype(np.int64),
        "clarity": ordinal(quality, [2.5, 4.0, 5.5, 7.5]),
        "exposure": ordinal(exposure_latent * 2.5 + 5.0, [1.5, 3.5, 6.5, 8.5]),
        "saturation": ordinal(rng.normal(5.0, 1.5, images), [3.5, 6.5]),
        "subject_integrity": ordinal(aesthetics, [3.5, 5.5]),  # 0..2; some "no_subject" below
        "level_shot": ordinal(10 - aesthetics, [4.0, 6.0]),
    }
    no_subject = rng.random(images) < 0.08
    fields["subject_integrity"] = np.where(no_subject[pairs_image] & (rng.random(pairs_image.size) < 0.8), 3, fields["subject_integrity"])
    for key in ("subject_clutter", "background_clutter"):
        p = 1 / (1 + np.exp(-(5.5 - aesthetics) * 0.9))
        fields[key] = (rng.random(pairs_image.size) < p[pairs_image]).astype(np.int64)
    noun = rng.integers(0, len(NOUNS), images)
    place = rng.integers(0, len(PLACES), images)
    agree = rng.random(pairs_image.size) < 0.75
    fields["subject_noun"] = np.where(agree, noun[pairs_image], rng.integers(0, len(NOUNS), pairs_image.size))
    fields["subject_place"] = np.where(agree, place[pairs_image], rng.integers(0, len(PLACES), pairs_image.size))
    fields["reason_a"] = rng.integers(0, len(REASONS), pairs_image.size)
    fields["reason_b"] = rng.integers(0, len(REASONS), pairs_image.size)
    return {"image": pairs_image, "rater": pairs_rater, "fields": fields, "spammers": spammers}


# ------------------------------------------------------------------------------------------------ seeding


def seed_project(args: argparse.Namespace, sim: dict, *, slug: str = SLUG, assignments: bool = False, analyze: bool = True) -> dict:
    """The simulated project, written straight into the database. `assignments`: each label also gets the submitted
    assignment the platform's own paths give it (benchmarks/scale.py); `analyze`: ANALYZE the tables after (the scale
    benchmark calls the platform's tables_analyze itself instead)."""
    import hashlib
    import io

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.db import connection, transaction
    from django.utils import timezone
    from PIL import Image as PILImage

    from annotation_site.images.models import Image
    from annotation_site.labeling.benchmark import project_delete_everything
    from annotation_site.labeling.models import Annotation
    from annotation_site.projects.models import Project
    from annotation_site.projects.services import project_create
    from annotation_site.raters.models import Membership, RaterProfile
    from annotation_site.releases.models import Release
    from annotation_site.schemas.spec import load_schema_file

    existing = Project.objects.filter(slug=slug).first()
    if existing is not None:
        Release.objects.filter(project=existing).delete()
        project_delete_everything(project=existing)
    spec = load_schema_file(settings.REALQA_SCHEMA_PATH)
    project = project_create(slug=slug, name="Release benchmark", schema_definition=spec.to_dict(), overlap=args.per_image)
    Project.objects.filter(pk=project.pk).update(gold_rate=0)
    placeholder = "images/benchmark/release-placeholder.jpg"
    if not default_storage.exists(placeholder):
        buffer = io.BytesIO()
        PILImage.linear_gradient("L").resize((640, 480)).convert("RGB").save(buffer, "JPEG", quality=85)
        default_storage.save(placeholder, ContentFile(buffer.getvalue()))
    Image.objects.bulk_create(
        (
            Image(
                project=project,
                sha256=hashlib.sha256(f"{slug}-{i}".encode()).hexdigest(),
                phash="0" * 16,
                original=placeholder,
                display=placeholder,
                thumbnail=placeholder,
                original_name=f"bench {i}.jpg",
                format="JPEG",
                source_mode="RGB",
                width=640,
                height=480,
                byte_size=0,
                label_count=args.per_image,
                assigned_count=args.per_image,
            )
            for i in range(args.images)
        ),
        batch_size=2000,
    )
    image_ids = np.array(Image.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    # About 2% of the images are near-duplicates of the one before them.
    duplicates = np.flatnonzero(np.random.default_rng(args.seed).random(args.images) < 0.02)
    duplicates = duplicates[duplicates > 0]
    Image.objects.bulk_update(
        [Image(pk=int(image_ids[d]), near_duplicate_of_id=int(image_ids[d - 1])) for d in duplicates],
        ["near_duplicate_of"],
        batch_size=2000,
    )

    User = get_user_model()
    users = []
    for r in range(args.raters):
        user, _ = User.objects.get_or_create(username=f"bench-release-rater-{r}")
        RaterProfile.objects.get_or_create(user=user)
        users.append(user)
    Membership.objects.bulk_create(
        [
            Membership(
                project=project,
                rater=user,
                status=Membership.Status.EXCLUDED if r in sim["spammers"] else Membership.Status.ACTIVE,
            )
            for r, user in enumerate(users)
        ]
    )
    rater_ids = np.array([u.pk for u in users])

    schema = spec.to_dict()
    choices = {f["key"]: [c["value"] for c in f.get("choices", [])] for f in schema["fields"]}
    f = sim["fields"]
    n = sim["image"].size
    now = timezone.now()
    version = project.current_schema_id
    columns = [
        "project_id", "image_id", "rater_id", "assignment_id", "schema_version_id", "values", "reasons",
        "seconds_spent", "client_info", "idempotency_key", "source", "gold_score", "created_at",
    ]
    known = set(columns)
    extra = [fld for fld in Annotation._meta.concrete_fields if fld.column not in known and not fld.primary_key]
    extra_values = [fld.get_db_prep_save(fld.get_default(), connection) for fld in extra]
    start = time.perf_counter()
    assignment_ids = [None] * n
    if assignments:
        assignment_ids = _copy_assignments(project, image_ids[sim["image"]], rater_ids[sim["rater"]], version, now)
    with transaction.atomic(), connection.cursor() as cursor:
        sql = f"COPY {Annotation._meta.db_table} ({', '.join(columns + [fld.column for fld in extra])}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for i in range(n):
                values = {
                    "clarity": choices["clarity"][f["clarity"][i]],
                    "exposure": choices["exposure"][f["exposure"][i]],
                    "saturation": choices["saturation"][f["saturation"][i]],
                    "subject_background": f"Subject: {NOUNS[f['subject_noun'][i]]}; background: {PLACES[f['subject_place'][i]]}",
                    "subject_integrity": choices["subject_integrity"][f["subject_integrity"][i]],
                    "subject_clutter": choices["subject_clutter"][f["subject_clutter"][i]],
                    "background_clutter": choices["background_clutter"][f["background_clutter"][i]],
                    "level_shot": choices["level_shot"][f["level_shot"][i]],
                    "eye_catching": int(f["eye_catching"][i]),
                    "composition": int(f["composition"][i]),
                    "quality": round(float(f["quality"][i]), 1),
                    "aesthetics": round(float(f["aesthetics"][i]), 1),
                }
                reasons = {"eye_catching": REASONS[f["reason_a"][i]], "composition": REASONS[f["reason_b"][i]]}
                copy.write_row(
                    [
                        project.pk, int(image_ids[sim["image"][i]]), int(rater_ids[sim["rater"][i]]), assignment_ids[i], version,
                        json.dumps(values), json.dumps(reasons), 20.0, "{}", None, "platform", None, now,
                    ]
                    + extra_values
                )
    insert_s = time.perf_counter() - start
    # A live database has planner statistics (autovacuum gathers them); a table filled a moment ago does not yet.
    if analyze:
        with connection.cursor() as cursor:
            for model in (Annotation, Image, Membership):
                cursor.execute(f"ANALYZE {model._meta.db_table}")
    return {"project_id": project.pk, "insert_s": insert_s, "rater_ids": rater_ids, "image_ids": image_ids}


def _copy_assignments(project: object, images: np.ndarray, raters: np.ndarray, version: int, now: object) -> list[int]:
    """One submitted assignment per label (as import_ratings gives an imported label), COPY-written with ids taken
    from the table's sequence; returns the ids in label order."""
    from django.db import connection, transaction

    from annotation_site.labeling.models import Assignment

    table = Assignment._meta.db_table
    n = int(images.size)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))")
        first = int(cursor.fetchone()[0])
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [first + n])
        columns = ["id", "project_id", "image_id", "rater_id", "status", "kind", "schema_version_id", "created_at", "expires_at", "finished_at"]
        known = set(columns)
        extra = [fld for fld in Assignment._meta.concrete_fields if fld.column not in known and not fld.primary_key]
        extra_values = [fld.get_db_prep_save(fld.get_default(), connection) for fld in extra]
        sql = f"COPY {table} ({', '.join(columns + [fld.column for fld in extra])}) FROM STDIN"
        submitted, regular = Assignment.Status.SUBMITTED.value, Assignment.Kind.REGULAR.value
        with cursor.cursor.copy(sql) as copy:
            for i in range(n):
                copy.write_row(
                    [first + i, project.pk, int(images[i]), int(raters[i]), submitted, regular, version, now, now, now]  # type: ignore[attr-defined]
                    + extra_values
                )
    return list(range(first, first + n))


def _seeded_as_asked(args: argparse.Namespace) -> bool:
    from annotation_site.labeling.models import Annotation
    from annotation_site.projects.models import Project

    project = Project.objects.filter(slug=SLUG).first()
    return project is not None and Annotation.objects.filter(project=project).count() == args.images * args.per_image


# ------------------------------------------------------------------------------------------------ children


def child_release(out: str, resamples: int) -> None:
    _setup_django()
    from annotation_site.projects.models import Project
    from annotation_site.releases.services import release_build, release_create
    from workers.release_formats import ConversationWriter

    stages: dict[str, float] = {}
    start = time.perf_counter()

    def progress(fraction: float, stage: str) -> None:
        name = stage.split(" (")[0]
        stages.setdefault(name, round(time.perf_counter() - start, 2))

    project = Project.objects.get(slug=SLUG)
    # The command's path: validate and number, then build with the conversation writer.
    release = release_create(project=project, options={"resamples": resamples, "images": "reference"}, output_dir=out)
    release = release_build(release_id=release.pk, writers=[ConversationWriter()], on_progress=progress)
    seconds = time.perf_counter() - start
    user, system = _cpu_split()
    print(json.dumps({"release_s": seconds, "cpu_s": user + system, "sys_s": system, "peak_rss_mb": _peak_rss_mb(), "stages": stages, "status": release.status}))


def child_krippendorff(path: str) -> None:
    import krippendorff

    data = np.load(path)
    times, alphas = {}, {}
    for key in ("quality", "aesthetics"):
        matrix = data[key]
        start = time.perf_counter()
        alphas[key] = float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="interval"))
        times[key] = time.perf_counter() - start
    user, system = _cpu_split()
    print(json.dumps({"seconds": times, "cpu_s": user + system, "user_s": user, "sys_s": system, "alphas": alphas, "peak_rss_mb": _peak_rss_mb()}))


def _run_child(args: list[str]) -> dict:
    result = subprocess.run([sys.executable, "-m", "benchmarks.release_speed", *args], cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"child {args[0]} failed")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ main


def _ensure_database() -> None:
    """Create the benchmark's PostgreSQL database if it is missing, then migrate it."""
    import dj_database_url
    import psycopg

    url = os.environ.get("DATABASE_URL", "")
    config = dj_database_url.parse(url)
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise SystemExit("the release benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    admin = psycopg.connect(
        host=config["HOST"] or "127.0.0.1", port=config["PORT"] or 5432, user=config["USER"], password=config["PASSWORD"] or None,
        dbname="postgres", autocommit=True,
    )
    with admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{config["NAME"]}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=14_715)
    parser.add_argument("--raters", type=int, default=60, help="rater pool (two of them spammers, excluded)")
    parser.add_argument("--per-image", type=int, default=10, help="labels per image")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="where the release goes (default: a temp dir, removed after)")
    parser.add_argument("--reuse", action="store_true", help="keep the project an earlier run seeded with the same arguments")
    parser.add_argument("--child-release", nargs=2, metavar=("OUT", "RESAMPLES"), help=argparse.SUPPRESS)
    parser.add_argument("--child-krippendorff", metavar="NPZ", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_release:
        child_release(args.child_release[0], int(args.child_release[1]))
        return
    if args.child_krippendorff:
        child_krippendorff(args.child_krippendorff)
        return

    _ensure_database()
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    sim = simulate(args.images, args.raters, args.per_image, args.seed)
    seeded = {"insert_s": None}
    if not (args.reuse and _seeded_as_asked(args)):
        seeded = seed_project(args, sim)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="realqa-bench-release-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # The anchor gets exactly the matrices the release computes alpha on: included raters x images.
    kept = ~np.isin(sim["rater"], sim["spammers"])
    included = np.setdiff1d(np.arange(args.raters), sim["spammers"])
    row_of = {int(r): i for i, r in enumerate(included)}
    rows = np.array([row_of[int(r)] for r in sim["rater"][kept]])
    matrices = {}
    for key in ("quality", "aesthetics"):
        matrix = np.full((included.size, args.images), np.nan)
        matrix[rows, sim["image"][kept]] = sim["fields"][key][kept]
        matrices[key] = matrix
    npz = workdir / "overall.npz"
    np.savez(npz, **matrices)
    del matrices

    out = workdir / f"release-{int(time.time())}"
    release = _run_child(["--child-release", str(out), str(args.resamples)])
    anchor = _run_child(["--child-krippendorff", str(npz)])
    agreement = {f["key"]: f for f in json.loads((out / "agreement.json").read_text())["fields"]}
    difference = max(abs(agreement[key]["alpha"] - anchor["alphas"][key]) for key in anchor["alphas"])
    size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    krippendorff_s = sum(anchor["seconds"].values())
    print(
        json.dumps(
            {
                "release_s": round(release["release_s"], 2),
                "krippendorff_overall_s": round(krippendorff_s, 2),
                "ratio": round(krippendorff_s / release["release_s"], 2),
                "release_cpu_s": round(release["cpu_s"], 2),
                "krippendorff_cpu_s": round(anchor["cpu_s"], 2),
                "release_sys_s": round(release["sys_s"], 2),
                "krippendorff_sys_s": round(anchor["sys_s"], 2),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "peak_rss_mb": round(release["peak_rss_mb"], 1),
                "krippendorff_peak_rss_mb": round(anchor["peak_rss_mb"], 1),
                "alpha_max_difference": difference,
                "alphas": {key: agreement[key]["alpha"] for key in anchor["alphas"]},
                "images": args.images,
                "labels": int(sim["image"].size),
                "labels_released": int(kept.sum()),
                "raters": args.raters,
                "fields": 12,
                "resamples": args.resamples,
                "release_mb": round(size_mb, 1),
                "insert_s": None if seeded["insert_s"] is None else round(seeded["insert_s"], 2),
                "stages": release["stages"],
            }
        )
    )
    if args.workdir is None:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
