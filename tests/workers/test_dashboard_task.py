"""The staff dashboard of a large project with a real worker: the page queues the statistics, a worker computes
them ("releases.dashboard_stats"), the page shows them; Recompute does it again. Runs on Redis and on the
zero-server folder broker alike."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from annotation_site.jobs.models import Job
from annotation_site.releases.dashboard import DASHBOARD_TASK
from tests.annotation_site.releases.helpers import label, small_project
from tests.security.world import grant_permissions
from tests.workers.conftest import start_worker, stop_worker
from workers.celery import app

URL = "/staff/projects/{}/dashboard/"


@pytest.fixture
def staff(django_user_model):  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_user(username="staff", password="pw-123456", is_staff=True)
    grant_permissions(user)  # a project manager's: the dashboard asks for projects.view_project
    return user


@pytest.fixture
def web_queue(transactional_db) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The web's task messages go to a queue only this test's worker reads."""
    queue = f"test-dashboard-{uuid.uuid4().hex[:8]}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    app.amqp.__dict__.pop("router", None)  # the router caches the default queue
    yield queue
    app.conf.task_default_queue = previous
    app.amqp.__dict__.pop("router", None)


def _wait_until_done(job_ids: set[int], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while Job.objects.filter(pk__in=job_ids).exclude(status__in=[Job.Status.DONE, Job.Status.FAILED]).exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"dashboard jobs {sorted(job_ids)} did not finish")
        time.sleep(0.2)


def test_a_worker_computes_the_figures_the_page_of_a_large_project_asked_for(project, staff, client, web_queue, settings):
    settings.DASHBOARD_INLINE_MAX_LABELS = 0
    data = small_project(project, staff)
    client.force_login(staff)
    assert "The figures are being computed" in client.get(URL.format(project.slug)).content.decode()

    worker = start_worker(web_queue)
    try:
        first = Job.objects.get(kind=DASHBOARD_TASK, project=project)
        _wait_until_done({first.pk})
        html = client.get(URL.format(project.slug)).content.decode()
        assert 'data-field="quality"' in html and "from 9 labels" in html and "No label arrived since" in html

        label(data["images"][2], data["raters"][1], quality=8.0, clarity="good")
        assert "1 label arrived since" in client.get(URL.format(project.slug)).content.decode()
        assert client.post(f"/staff/projects/{project.slug}/dashboard/recompute").status_code == 302
        second = Job.objects.filter(kind=DASHBOARD_TASK, project=project).latest("pk")
        _wait_until_done({second.pk})
        # Delivered again (a worker died after finishing): the finished job is left as it is.
        again = app.send_task(DASHBOARD_TASK, args=[project.pk, second.pk], queue=web_queue).get(timeout=60)
    finally:
        stop_worker(worker)

    assert Job.objects.get(pk=first.pk).status == Job.Status.DONE
    assert Job.objects.get(pk=second.pk).status == Job.Status.DONE and again == {"job": second.pk, "status": "done"}
    html = client.get(URL.format(project.slug)).content.decode()
    assert "from 10 labels" in html and "No label arrived since" in html and "being computed" not in html
