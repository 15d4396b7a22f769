"""Tasks: ids in, one service call, idempotent, named explicitly."""

from __future__ import annotations

from celery import shared_task

from annotation_site.core.tasks import pending_tasks_send
from annotation_site.images.services import images_near_duplicates_refresh
from annotation_site.labeling.assignments import leases_expire
from annotation_site.projects.models import Project


@shared_task(name="images.refresh_near_duplicates", acks_late=True)
def refresh_near_duplicates(project_id: int) -> int:
    """Recompute a project's near-duplicate flags; running it twice gives the same flags."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    return images_near_duplicates_refresh(project=project)


@shared_task(name="labeling.expire_leases", acks_late=True)
def expire_leases() -> int:
    """Return every project's abandoned images to the pool (the labeling path only looks when its pool
    seems empty). Idempotent: an expired lease is expired once."""
    return sum(leases_expire(project=project) for project in Project.objects.filter(is_active=True))


@shared_task(name="core.send_pending_tasks", acks_late=True)
def send_pending_tasks() -> int:
    """Send the tasks the web kept while the broker was away (beat, every PENDING_TASKS_SECONDS).
    Idempotent: a kept task is sent and deleted once, and every task it sends is idempotent itself."""
    return pending_tasks_send()
