"""Celery tasks (see workers/tasks.py for the conventions)."""

from __future__ import annotations

from celery import shared_task

from annotation_site.releases.dashboard import dashboard_stats_refresh
from annotation_site.releases.models import Release
from annotation_site.releases.options import ReleaseError
from annotation_site.releases.services import release_archive_store, release_build


@shared_task(name="releases.build", acks_late=True)
def build_release(release_id: int) -> dict:
    """Build a queued release with its training conversations, then zip it into the media storage for download.
    Idempotent: a done release is left as it is (and archived if it is not yet), and a redelivered one (its worker
    died) starts over in a fresh folder. A release the data cannot give ends failed with the reason on the row, not
    as a retried task."""
    from workers.release_formats import ConversationWriter  # realqa_model stays out of the worker's start-up

    if not Release.objects.filter(pk=release_id).exists():
        return {"release": None}
    try:
        release = release_build(release_id=release_id, writers=[ConversationWriter()])
        # Here and not in a task of its own: the folder is on this worker's disk, and another worker may not see it.
        archive = release_archive_store(release_id=release_id)
    except ReleaseError as exc:
        return {"release": release_id, "status": Release.objects.get(pk=release_id).status, "error": str(exc)}
    return {"release": release.release_id, "status": release.status, "manifest_sha256": release.manifest_sha256, "archive": archive}


@shared_task(name="releases.dashboard_stats", acks_late=True)
def dashboard_stats(project_id: int, job_id: int) -> dict:
    """Compute the staff dashboard's figures and keep them on the job. Idempotent: a finished job is left as it is,
    and one whose worker died is computed again from the start."""
    return dashboard_stats_refresh(project_id=int(project_id), job_id=int(job_id))
