"""A Celery worker killed in the middle of a task: the message goes back to the queue, a worker runs it
again, its result is stored once and nothing is left behind in the broker."""

from __future__ import annotations

import os
import signal

import pytest
from celery import Celery

from annotation_site.images.models import Image
from annotation_site.images.services import images_import
from annotation_site.images.sources import BytesSource
from tests.annotation_site.images import corpus

from .services import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _sender(redis_url: str) -> Celery:
    """What the web does: send a task by name through the broker (here the private Redis)."""
    app = Celery("faults-sender", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    return app


def _project_with_a_near_duplicate(project) -> None:  # type: ignore[no-untyped-def]
    images_import(
        project=project,
        sources=[
            BytesSource("a.jpg", corpus.photo_jpeg(seed=5, quality=92)),
            BytesSource("a-small.jpg", corpus.photo_jpeg(seed=5, quality=55)),
            BytesSource("b.jpg", corpus.photo_jpeg(seed=6)),
        ],
    )
    Image.objects.update(near_duplicate_of=None, near_duplicate_distance=None)


def _runs(fault_dir, task_id: str) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """The hooks' record of the task: ["start", name, id, pid, worker] and ["end", name, id, state]."""
    log = fault_dir / "task-runs.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split() for line in lines if task_id in line]


def _assert_done_once(result, fault_dir, redis, project) -> None:  # type: ignore[no-untyped-def]
    assert result.get(timeout=90) == 1
    # Two starts (the killed one and the redelivery), one finish.
    # The result is stored a moment before the worker's own record of the run ends.
    runs = wait_until(lambda: (r := _runs(fault_dir, result.id)) and r[-1][0] == "end" and r, timeout=30, what="the run to end")
    assert [run[0] for run in runs] == ["start", "start", "end"] and runs[-1][3] == "SUCCESS"
    first, second, third = Image.objects.filter(project=project).order_by("id")
    assert second.near_duplicate_of_id == first.pk and third.near_duplicate_of_id is None
    broker = redis.client()
    # Nothing stuck: no message waiting, none taken and never acknowledged.
    assert broker.llen("cpu") == 0
    assert broker.hlen("unacked") == 0 and broker.zcard("unacked_index") == 0


def test_a_task_whose_pool_process_is_killed_is_run_again_at_once_and_stored_once(
    project, make_env, start_worker, fault_dir, private_redis
):
    _project_with_a_near_duplicate(project)
    start_worker(make_env(redis_url=private_redis.url()), name="prefork", queues="cpu", pool="prefork")
    (fault_dir / "hold-task").write_text("before")

    result = _sender(private_redis.url()).send_task("images.refresh_near_duplicates", args=[project.pk], queue="cpu")
    [held] = wait_until(lambda: list(fault_dir.glob("held-task-*")), timeout=60, what="the task to reach the hold")
    os.kill(int(held.read_text()), signal.SIGKILL)  # the pool process only; the worker lives on

    _assert_done_once(result, fault_dir, private_redis, project)


def test_a_task_whose_whole_worker_is_killed_is_redelivered_to_another_worker(
    project, make_env, start_worker, fault_dir, private_redis
):
    _project_with_a_near_duplicate(project)
    # A lost worker never rejects its message: the broker hands it out again after the visibility timeout.
    env = make_env(redis_url=private_redis.url(), CELERY_VISIBILITY_TIMEOUT="3")
    first = start_worker(env, name="first", queues="cpu")
    (fault_dir / "hold-task").write_text("before")

    result = _sender(private_redis.url()).send_task("images.refresh_near_duplicates", args=[project.pk], queue="cpu")
    wait_until(lambda: list(fault_dir.glob("held-task-*")), timeout=60, what="the task to reach the hold")
    first.kill()
    assert private_redis.client().hlen("unacked") == 1  # taken by the dead worker, not acknowledged

    start_worker(env, name="second", queues="cpu")
    _assert_done_once(result, fault_dir, private_redis, project)
    assert _runs(fault_dir, result.id)[1][4].startswith("second@")
