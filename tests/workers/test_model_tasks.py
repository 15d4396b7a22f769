"""The model in the loop with real workers: pre-scoring on import, exactly once even when a worker is
killed mid-task, and retraining from consensus labels."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from annotation_site.images.services import images_import
from annotation_site.images.sources import BytesSource
from annotation_site.jobs.models import Job
from annotation_site.predictions.models import ImageFeatures, ModelRun, Prediction
from tests.annotation_site.images import corpus
from tests.conftest import make_images
from tests.workers.conftest import start_worker, stop_worker
from workers import modeling
from workers.celery import app


def _photos(count: int, *, start: int, size: tuple[int, int] = (160, 120)) -> list[BytesSource]:
    return [BytesSource(f"p{start + i}.jpg", corpus.photo_jpeg(seed=start + i, width=size[0], height=size[1])) for i in range(count)]


def _labels_from_features(project, images) -> None:  # type: ignore[no-untyped-def]
    """Consensus labels that follow the photos, so training has something to learn."""
    from annotation_site.labeling.models import Annotation
    from annotation_site.raters.services import rater_create
    from tests.annotation_site.labels import REALQA_LABELS

    modeling.features_ensure(image_ids=[image.pk for image in images])
    rater = rater_create(username=f"r-{uuid.uuid4().hex[:6]}", password="pw-123456")
    for i, image in enumerate(images):
        score = 2.0 + 7.0 * (i % 7) / 6
        Annotation.objects.create(
            project=project,
            image=image,
            rater=rater,
            schema_version=project.current_schema,
            values={**REALQA_LABELS, "quality": round(score, 1), "aesthetics": round(score, 1), "eye_catching": 5, "composition": 5},
        )


@pytest.fixture
def trained_project(project, transactional_db):  # type: ignore[no-untyped-def]
    images = make_images(project, 14)
    _labels_from_features(project, images)
    result = modeling.retrain_project(project_id=project.pk, force=True)
    assert ModelRun.objects.filter(project=project, model_version=result["model_version"]).exists()
    return project


@pytest.fixture
def model_queue():  # type: ignore[no-untyped-def]
    """Send the web's task messages to a queue only this test's workers read."""
    queue = f"test-model-{uuid.uuid4().hex[:8]}"
    previous = app.conf.task_default_queue, app.conf.task_routes
    app.conf.task_default_queue, app.conf.task_routes = queue, None
    app.amqp.__dict__.pop("router", None)  # the router caches the routes
    yield queue
    app.conf.task_default_queue, app.conf.task_routes = previous
    app.amqp.__dict__.pop("router", None)


def _wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_retraining_learns_from_consensus_scores_every_image_and_reports_progress(trained_project):
    run = ModelRun.objects.get(project=trained_project)
    job = Job.objects.get(project=trained_project, kind="model.retrain_project")

    assert run.images_used == 14 and run.model_version.startswith("cpu-multihead:")
    assert job.status == "done" and job.percent == 100
    assert Prediction.objects.filter(model_version=run.model_version).count() == 14
    # it learnt from every one of them, so none of these guesses can tell whether it disagrees with the raters
    assert set(Prediction.objects.filter(model_version=run.model_version).values_list("trained_on", flat=True)) == {True}
    prediction = Prediction.objects.filter(model_version=run.model_version).first()
    assert 1.0 <= prediction.values["quality"]["value"] <= 10.0
    assert 0.0 <= prediction.values["clarity"]["confidence"] <= 1.0
    # retraining without new labels is skipped, so the beat does not retrain in a loop
    assert "skipped" in modeling.retrain_project(project_id=trained_project.pk)


def test_an_imported_image_is_prescored_without_anyone_asking(trained_project, model_queue):
    worker = start_worker(model_queue)
    try:
        report = images_import(project=trained_project, sources=_photos(3, start=500))
        new = [line.image_id for line in report.lines]
        _wait_for(lambda: Prediction.objects.filter(image_id__in=new).count() == 3, 90, "three predictions")
    finally:
        stop_worker(worker)
    run = ModelRun.objects.get(project=trained_project)
    assert set(Prediction.objects.filter(image_id__in=new).values_list("model_version", flat=True)) == {run.model_version}
    assert set(Prediction.objects.filter(image_id__in=new).values_list("trained_on", flat=True)) == {False}
    assert ImageFeatures.objects.filter(image_id__in=new).count() == 3


@pytest.mark.redis
def test_a_worker_killed_mid_task_leaves_every_image_prescored_exactly_once(trained_project, model_queue, settings):
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "this test needs the Redis broker (REDIS_URL)"
    images = make_images(trained_project, 120, start_seed=2000)
    ids = [image.pk for image in images]
    with app.connection_for_write() as connection:  # drop the import's own messages: one task is under test
        connection.default_channel.queue_purge(model_queue)
    # A message whose worker died is handed out again once its visibility timeout passed.
    env = {"CELERY_VISIBILITY_TIMEOUT": "5"}
    first = start_worker(model_queue, name=f"{model_queue}-a", env=env)
    result = app.send_task("model.prescore_images", args=[ids], queue=model_queue)
    try:
        _wait_for(lambda: ImageFeatures.objects.filter(image_id__in=ids).count() >= 5, 90, "the first worker to start")
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        done_when_killed = ImageFeatures.objects.filter(image_id__in=ids).count()
        assert done_when_killed < len(ids), "the task ended before the kill; use more images"
        assert Prediction.objects.filter(image_id__in=ids).count() == 0
        second = start_worker(model_queue, name=f"{model_queue}-b", env=env)
        try:
            outcome = result.get(timeout=120)
        finally:
            stop_worker(second)
    finally:
        if first.poll() is None:
            first.kill()
    assert outcome["predictions"] == len(ids)
    assert outcome["features"] == len(ids) - done_when_killed  # the redelivery did only what was left
    assert ImageFeatures.objects.filter(image_id__in=ids).count() == len(ids)
    assert Prediction.objects.filter(image_id__in=ids).count() == len(ids)


def test_the_sweep_queues_images_that_no_message_asked_for(trained_project, transactional_db):
    from django.core.cache import cache

    cache.clear()
    images = make_images(trained_project, 2, start_seed=3000)  # the import's messages went nowhere: no worker
    sent: list[tuple[str, list]] = []

    counts = modeling.sweep(enqueue=lambda name, args: sent.append((name, args)))

    assert ("model.prescore_images", [[image.pk for image in images]]) in sent
    assert counts["queued"] == 2
    # a second sweep within minutes does not queue the same images again
    again: list = []
    modeling.sweep(enqueue=lambda name, args: again.append((name, args)))
    assert not any(name == "model.prescore_images" for name, _ in again)
