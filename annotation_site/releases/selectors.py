"""Reads for releases."""

from __future__ import annotations

from annotation_site.predictions.models import Prediction
from annotation_site.projects.models import Project

from .models import Release, ReleaseSplit


def release_latest_done(*, project: Project) -> Release | None:
    """The project's newest finished release, the one whose splits the next release keeps."""
    return Release.objects.filter(project=project, status=Release.Status.DONE).order_by("-version").first()


def release_splits(*, release: Release) -> dict[int, str]:
    """Image id -> split in that release."""
    return dict(ReleaseSplit.objects.filter(release=release).values_list("image_id", "split").iterator(chunk_size=5000))


def release_progress(*, release_ids: list[int]) -> list[dict]:
    """Status, progress and stage of some releases, for the admin's progress bars."""
    fields = ("id", "status", "progress", "stage", "error")
    return list(Release.objects.filter(pk__in=release_ids).values(*fields))


def project_model_versions(*, project: Project) -> list[str]:
    """Models whose predictions exist for the project's images (they pre-scored the images and set the order
    raters saw them in), for the release's provenance."""
    return sorted(
        Prediction.objects.filter(image__project=project).order_by().values_list("model_version", flat=True).distinct()
    )
