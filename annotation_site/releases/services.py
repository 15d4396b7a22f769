"""Writes for releases: create (validate and number) a release, build it, queue it for a worker."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from annotation_site.core.dbstats import tables_analyze_after_bulk
from annotation_site.core.tasks import enqueue
from annotation_site.projects.models import Project
from annotation_site.quality.selectors import annotations_for_statistics
from annotation_site.schemas.models import SchemaVersion
from annotation_site.schemas.selectors import schema_spec, schema_version_current

from .archive import archive_name, zip_folder
from .builder import BuildRequest, ReleaseWriter, release_files_write, remove_tree
from .models import Release, ReleaseSplit
from .options import ReleaseError, ReleaseOptions, release_options_clean
from .selectors import project_model_versions, release_latest_done, release_splits

logger = logging.getLogger(__name__)

BUILD_TASK = "releases.build"
PROGRESS_EVERY_SECONDS = 0.5


def releases_root() -> Path:
    """Where releases go when no folder is named: RELEASES_ROOT, else var/releases."""
    return Path(getattr(settings, "RELEASES_ROOT", None) or Path(settings.VAR_DIR) / "releases")


def _check_output_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise ReleaseError(f"output {path} is a file, not a folder")
    if path.is_dir() and any(path.iterdir()):
        raise ReleaseError(f"output folder {path} is not empty; a release never overwrites files (choose a new folder)")


def release_create(
    *,
    project: Project,
    options: dict | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    created_by: AbstractBaseUser | None = None,
) -> Release:
    """Validate the options against the project's current schema and number the next version.

    Nothing is written when a check fails (ReleaseError naming the problem): options (see ReleaseOptions), a
    project without labels a release may use, an output folder that is a file or not empty, or split ratios that
    would move images of the previous release to a split that no longer exists (pass reassign_splits)."""
    try:
        schema_version = schema_version_current(project=project)
    except SchemaVersion.DoesNotExist:
        raise ReleaseError(f"project {project.slug!r} has no schema") from None
    clean = release_options_clean(options, spec=schema_spec(schema_version=schema_version))
    if not annotations_for_statistics(project=project).exists():
        raise ReleaseError(
            f"project {project.slug!r} has no labels a release may use (gold images and excluded raters do not count)"
        )
    previous = None if clean.reassign_splits else release_latest_done(project=project)
    if previous is not None:
        earlier = set(previous.options.get("ratios", {}))
        missing = sorted(earlier - set(clean.ratios))
        if missing:
            raise ReleaseError(
                f"{previous.release_id} has images in split(s) {', '.join(missing)}, which these ratios drop; keep "
                "the split names or ask for reassign_splits"
            )
    if output_dir is not None:
        _check_output_dir(Path(output_dir))
    with transaction.atomic():
        # The project row serialises version numbers between two staff members releasing at once.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        version = (Release.objects.filter(project=project).aggregate(top=Max("version"))["top"] or 0) + 1
        target = Path(output_dir) if output_dir is not None else releases_root() / f"{project.slug}-v{version}"
        return Release.objects.create(
            project=project,
            version=version,
            schema_version=schema_version,
            options=clean.to_dict(),
            output_dir=str(Path(target).resolve()),
            created_by=created_by,
        )


def release_queue(*, release: Release) -> None:
    """Hand the build to a worker (after the current transaction commits)."""
    enqueue(BUILD_TASK, args=[release.pk])


class _Reporter:
    """Progress onto the Release row (throttled: one small UPDATE every half second at most) and to the caller."""

    def __init__(self, release_id: int, callback: Callable[[float, str], None] | None) -> None:
        self.release_id = release_id
        self.callback = callback
        self.last = 0.0

    def __call__(self, fraction: float, stage: str) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_SECONDS or fraction >= 1.0:
            self.last = now
            Release.objects.filter(pk=self.release_id).update(progress=fraction, stage=stage[:200])
        if self.callback is not None:
            self.callback(fraction, stage)


def _claim(release_id: int) -> Release | None:
    """Mark the release running, unless it is done (a redelivered task finds nothing to do)."""
    claimed = Release.objects.filter(pk=release_id).exclude(status=Release.Status.DONE).update(
        status=Release.Status.RUNNING, started_at=timezone.now(), progress=0.0, stage="starting", error=""
    )
    return Release.objects.select_related("project", "schema_version").get(pk=release_id) if claimed else None


def _splits_store(*, release: Release, splits: dict[int, str]) -> None:
    """One row per image; with COPY on PostgreSQL (psycopg 3), where INSERTs of a large release's rows took most
    of a second."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if hasattr(cursor.cursor, "copy"):
                table = ReleaseSplit._meta.db_table
                with cursor.cursor.copy(f"COPY {table} (release_id, image_id, split) FROM STDIN") as copy:
                    for image, split in splits.items():
                        copy.write_row((release.pk, image, split))
                tables_analyze_after_bulk(rows=len(splits), models=(ReleaseSplit,))
                return
    ReleaseSplit.objects.bulk_create(
        (ReleaseSplit(release=release, image_id=image, split=split) for image, split in splits.items()), batch_size=5000
    )


def release_build(
    *,
    release_id: int,
    writers: Sequence[ReleaseWriter] = (),
    on_progress: Callable[[float, str], None] | None = None,
) -> Release:
    """Build a queued (or failed, or interrupted) release into its folder; a done release is returned untouched.

    The files are written into a hidden sibling folder and moved into place only when complete, in the same
    transaction that records the splits and marks the release done: a release is either all there or not there.
    On failure the release is marked failed with the reason and the error is raised again (ReleaseError for what
    the data cannot give)."""
    release = _claim(release_id)
    if release is None:
        return Release.objects.get(pk=release_id)
    options = ReleaseOptions(**release.options)
    target = Path(release.output_dir)
    partial = target.parent / f".{target.name}.partial-{secrets.token_hex(4)}"
    reporter = _Reporter(release.pk, on_progress)
    try:
        _check_output_dir(target)
        partial.mkdir(parents=True)
        previous = None if options.reassign_splits else release_latest_done(project=release.project)
        request = BuildRequest(
            release_id=release.release_id,
            version=release.version,
            project=release.project,
            schema_version=release.schema_version,
            spec=schema_spec(schema_version=release.schema_version),
            options=options,
            previous_splits=release_splits(release=previous) if previous is not None else {},
            previous_release=previous.release_id if previous is not None else "",
            model_versions=project_model_versions(project=release.project),
            created_at=release.created_at,
        )
        result = release_files_write(request, partial, writers=writers, progress=reporter)
        with transaction.atomic():
            ReleaseSplit.objects.filter(release=release).delete()  # an interrupted earlier attempt's rows
            _splits_store(release=release, splits=result.splits)
            Release.objects.filter(pk=release.pk).update(
                status=Release.Status.DONE,
                progress=1.0,
                stage="done",
                counts=result.counts,
                model_versions=request.model_versions,
                conversations_included=result.conversations_included,
                manifest_sha256=result.manifest_sha256,
                finished_at=timezone.now(),
            )
            _check_output_dir(target)
            if target.is_dir():
                target.rmdir()  # an empty folder named as the output (e.g. made by the caller) gives way
            os.replace(partial, target)
    except Exception as exc:
        remove_tree(partial)
        message = str(exc) if isinstance(exc, ReleaseError) else f"{type(exc).__name__}: {exc}"
        Release.objects.filter(pk=release.pk).update(
            status=Release.Status.FAILED, error=message, stage="failed", finished_at=timezone.now()
        )
        if not isinstance(exc, ReleaseError):
            logger.exception("release %s failed", release.release_id)
        raise
    release.refresh_from_db()
    return release


def release_archive_store(*, release_id: int) -> str:
    """Zip a done release's folder into the media storage (an object store in production) and record its name, so
    that staff download it from whichever web machine answers. Returns the archive's storage name.

    Runs where the release was built, since the folder is on that machine's disk. Idempotent: a release with an
    archive is left as it is; the name is claimed with a conditional UPDATE, and an attempt that lost the race
    removes its own file (unless the store gave both the same name)."""
    release = Release.objects.select_related("project").get(pk=release_id)
    if release.archive:
        return release.archive
    if release.status != Release.Status.DONE:
        raise ReleaseError(f"{release.release_id} is {release.status}, not done: there is nothing to archive yet")
    folder = Path(release.output_dir)
    if not (folder / "MANIFEST.sha256").is_file():
        raise ReleaseError(f"{release.release_id}: its folder {folder} is not on this machine")
    name = archive_name(project_slug=release.project.slug, release_id=release.release_id, manifest_sha256=release.manifest_sha256)
    with tempfile.TemporaryFile(dir=folder.parent) as handle:
        zip_folder(folder, handle, top=release.release_id)
        handle.seek(0)
        stored = default_storage.save(name, File(handle, name=os.path.basename(name)))
    if Release.objects.filter(pk=release.pk, archive="").update(archive=stored):
        return stored
    winner = Release.objects.values_list("archive", flat=True).get(pk=release.pk)
    if stored != winner:  # an object store that overwrites gives both attempts the same name: keep it then
        default_storage.delete(stored)
    return winner
