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
