from __future__ import annotations

from annotation_site.images.models import Image
from annotation_site.images.services import images_import
from annotation_site.images.sources import BytesSource
from tests.annotation_site.images import corpus
from workers.celery import app


def test_a_real_worker_runs_a_named_task_against_the_database(project, celery_worker_queue):
    images_import(
        project=project,
        sources=[
            BytesSource("a.jpg", corpus.photo_jpeg(seed=5, quality=92)),
            BytesSource("a-small.jpg", corpus.photo_jpeg(seed=5, quality=55)),
            BytesSource("b.jpg", corpus.photo_jpeg(seed=6)),
        ],
    )
    Image.objects.update(near_duplicate_of=None, near_duplicate_distance=None)

    result = app.send_task("images.refresh_near_duplicates", args=[project.pk], queue=celery_worker_queue)

    assert result.get(timeout=90) == 1
    first, second, third = Image.objects.order_by("id")
    assert second.near_duplicate_of_id == first.pk
    assert third.near_duplicate_of_id is None


def test_the_periodic_sweep_returns_abandoned_images_to_the_pool(project, celery_worker_queue):
    from datetime import timedelta

    from django.utils import timezone

    from annotation_site.labeling.assignments import assignment_next
    from annotation_site.labeling.models import Assignment
    from annotation_site.raters.services import rater_create
    from tests.conftest import make_images

    project.overlap = project.max_overlap = 1
    project.save()
    [image] = make_images(project, 1)
    abandoned = assignment_next(project=project, rater=rater_create(username="gone", password="pw-123456"))
    Assignment.objects.filter(pk=abandoned.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    result = app.send_task("labeling.expire_leases", queue=celery_worker_queue)

    assert result.get(timeout=90) == 1
    assert Assignment.objects.get(pk=abandoned.pk).status == "expired"
    image.refresh_from_db()
    assert image.assigned_count == 0
