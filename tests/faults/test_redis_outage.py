"""Redis (cache and broker) stopped, then hung, while raters label: nobody notices, and the work the web
could not queue meanwhile (pre-scoring the photos uploaded during the outage) is kept in the database and
runs once Redis is back."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from annotation_site.core.models import PendingTask
from annotation_site.images.models import Image
from annotation_site.labeling.benchmark import benchmark_seed
from annotation_site.labeling.models import Annotation
from annotation_site.predictions.models import ImageFeatures
from annotation_site.raters.services import rater_create
from benchmarks.soak import run_raters, token_poster
from tests.annotation_site.images import corpus

from .services import Browser, request, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

PASSWORD = "fault-pass-123"


def test_raters_keep_labeling_while_redis_is_down_or_hung_and_queued_work_runs_once_it_is_back(
    make_env, start_gunicorn, start_worker, private_redis
):
    seed = benchmark_seed(slug="faults", images=150, raters=3, overlap=3)
    rater_create(username="page-rater", password=PASSWORD)
    get_user_model().objects.create_superuser("boss", password=PASSWORD)
    # The model sweep would pre-score the photos too; it waits an hour here, so what runs is what the web kept.
    env = make_env(redis_url=private_redis.url(), MODEL_SWEEP_SECONDS="3600", PENDING_TASKS_SECONDS="1")
    server = start_gunicorn(env, workers=2)

    page = Browser(server.port)  # a rater on the labeling page, whose script calls the API with the session
    assert page.login("page-rater", PASSWORD) == 302
    boss = Browser(server.port)
    assert boss.login("boss", PASSWORD) == 302
    posts = [token_poster(server.port, token) for token in seed.tokens]
    posts.append(lambda path, body: page.call("POST", path, body=body))

    seen: list[tuple[str, int]] = []
    uploaded: list[int] = []
    labels_at: dict[str, int] = {}  # acknowledged labels so far, at each turn of the outage

    def people_use_the_site(when: str, seed_offset: int) -> None:
        seen.append((f"{when}: labeling page", page.call("GET", "/projects/faults/label/")[0]))
        seen.append((f"{when}: home page", page.call("GET", "/")[0]))
        stranger = Browser(server.port)
        seen.append((f"{when}: wrong password", stranger.login("page-rater", "not-the-password")))
        seen.append((f"{when}: right password", stranger.login("page-rater", PASSWORD)))
        status, body = boss.upload(
            f"/admin/projects/project/{seed.project.pk}/upload/",
            {f"outage-{seed_offset}-{i}.jpg": corpus.photo_jpeg(seed=seed_offset + i, width=96, height=72) for i in range(2)},
        )
        seen.append((f"{when}: upload", status))
        if status == 200:
            uploaded.extend(line["image_id"] for line in body["lines"] if line["outcome"] == "imported")

    def outage(tally) -> None:  # type: ignore[no-untyped-def]
        time.sleep(1.5)
        private_redis.stop()
        labels_at["stopped"] = len(tally.acknowledged)
        people_use_the_site("redis stopped", 500)
        time.sleep(2)
        labels_at["restarted"] = len(tally.acknowledged)
        private_redis.start()
        time.sleep(1)
        private_redis.freeze()
        labels_at["hung"] = len(tally.acknowledged)
        people_use_the_site("redis hung", 600)
        time.sleep(2)
        labels_at["thawed"] = len(tally.acknowledged)
        private_redis.thaw()
        time.sleep(1)

    tally, _ = run_raters(posts, 0, slug="faults", think=0.02, during=outage)

    assert [what for what, status in seen if status >= 500] == []
    assert dict(seen) == {
        "redis stopped: labeling page": 200, "redis stopped: home page": 200,
        "redis stopped: wrong password": 200, "redis stopped: right password": 302, "redis stopped: upload": 200,
        "redis hung: labeling page": 200, "redis hung: home page": 200,
        "redis hung: wrong password": 200, "redis hung: right password": 302, "redis hung: upload": 200,
    }
    assert tally.unexpected == []
    assert {status for status in tally.statuses if not isinstance(status, int) or status >= 500} == set()
    acknowledged = set(tally.acknowledged.values())
    assert acknowledged and acknowledged <= set(Annotation.objects.values_list("id", flat=True))
    assert len(uploaded) == 4
    # Labels kept coming while Redis was down and while it hung.
    assert labels_at["restarted"] > labels_at["stopped"] and labels_at["thawed"] > labels_at["hung"]

    # What the web could not send was kept: pre-scoring every uploaded photo.
    kept = [args for name, args in PendingTask.objects.values_list("name", "args") if name == "model.prescore_images"]
    assert sorted(image_id for [ids] in kept for image_id in ids) == sorted(uploaded)

    # Back to normal: a worker with the beat schedule sends what was kept, and runs it.
    start_worker(env, name="after-outage", queues="cpu", beat=True)
    wait_until(
        lambda: ImageFeatures.objects.filter(image_id__in=uploaded).count() == len(uploaded),
        timeout=120, what="the photos uploaded during the outage to be pre-scored", interval=1,
    )
    assert PendingTask.objects.count() == 0
    assert Image.objects.filter(pk__in=uploaded).count() == 4
    assert request(server.port, "GET", "/healthz")[0] == 200
