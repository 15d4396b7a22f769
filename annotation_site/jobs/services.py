"""Writes for job progress. Workers call these from inside a task; each is one small UPDATE so that
reporting progress never holds a lock the task itself needs."""

from __future__ import annotations

from django.utils import timezone

from annotation_site.projects.models import Project

from .models import Job


def job_create(*, kind: str, project: Project | None = None, total: int = 0, message: str = "") -> Job:
    return Job.objects.create(kind=kind, project=project, total=total, message=message[:300])


def job_start(*, job_id: int, total: int | None = None, message: str = "") -> None:
    fields: dict = {"status": Job.Status.RUNNING, "started_at": timezone.now(), "message": message[:300]}
    if total is not None:
        fields["total"] = total
    Job.objects.filter(pk=job_id).update(**fields)


def job_progress(*, job_id: int, done: int, total: int | None = None, message: str | None = None) -> None:
    fields: dict = {"done": done}
    if total is not None:
        fields["total"] = total
    if message is not None:
        fields["message"] = message[:300]
    Job.objects.filter(pk=job_id).update(**fields)


def job_finish(*, job_id: int, result: dict | None = None, message: str = "") -> None:
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.DONE, finished_at=timezone.now(), result=result or {}, message=message[:300]
    )


def job_fail(*, job_id: int, message: str) -> None:
    Job.objects.filter(pk=job_id).update(status=Job.Status.FAILED, finished_at=timezone.now(), message=message[:300])
