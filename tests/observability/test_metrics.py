"""Prometheus metrics at /metrics (staff, or the METRICS_TOKEN bearer token): labels stored, request
latency, Celery queue length read from the broker, and the workers' task failures and latency."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import api_client_for, make_images

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(admin_client) -> dict[tuple[str, tuple], float]:  # type: ignore[no-untyped-def]
    response = admin_client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return _samples(response.content.decode())


def test_metrics_are_not_public(client, rater, monkeypatch):
    monkeypatch.setenv("METRICS_TOKEN", "s3cret-scrape-token")
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic czNjcmV0LXNjcmFwZS10b2tlbg==").status_code == 401
    client.force_login(rater)
    assert client.get("/metrics").status_code == 403


def test_a_scraper_with_the_token_or_a_staff_member_gets_the_metrics(client, admin_client, monkeypatch):
    monkeypatch.setenv("METRICS_TOKEN", "s3cret-scrape-token")
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert response.status_code == 200 and b"realqa_celery_queue_length" in response.content
    assert admin_client.get("/metrics").status_code == 200


def test_without_a_configured_token_no_bearer_token_is_accepted(client, monkeypatch):
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_each_stored_label_is_counted_once_and_a_refused_one_not_at_all(
    project, rater, admin_client, django_capture_on_commit_callbacks
):
    project.gold_rate = 0
    project.save()
    make_images(project, 2)
    api = api_client_for(rater)
    assignment = api.post("/api/v1/projects/realqa-test/next", {}, format="json").json()
    key = ("realqa_labels_stored_total", (("source", "platform"),))
    before = _scrape(admin_client).get(key, 0.0)

    with django_capture_on_commit_callbacks(execute=True):
        bad = api.post(f"/api/v1/assignments/{assignment['id']}/submit", {"labels": {"quality": 99}}, format="json")
        body = {"labels": REALQA_LABELS, "idempotency_key": "count-me"}
        good = api.post(f"/api/v1/assignments/{assignment['id']}/submit", body, format="json")
        replay = api.post(f"/api/v1/assignments/{assignment['id']}/submit", body, format="json")

    assert (bad.status_code, good.status_code, replay.status_code) == (400, 201, 200)
    assert _scrape(admin_client)[key] == before + 1


def test_request_latency_is_recorded_per_url_pattern(client, admin_client):
    client.get("/healthz?checks=database")
    samples = _scrape(admin_client)
    count = samples[
        ("realqa_http_request_duration_seconds_count", (("method", "GET"), ("route", "healthz"), ("status", "200")))
    ]
    assert count >= 1
    # Unknown paths share one series, so a scanner cannot blow up the number of series.
    client.get(f"/no-such-page-{uuid.uuid4().hex}")
    routes = {dict(labels).get("route") for name, labels in _scrape(admin_client) if name.startswith("realqa_http")}
    assert "<unmatched>" in routes and not any(route and "no-such-page" in route for route in routes)


def test_the_queue_length_is_read_from_the_broker(admin_client):
    from workers.celery import app

    queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    try:
        with override_settings(CELERY_TASK_ROUTES={"metrics.test": {"queue": queue}}):
            for _ in range(3):
                app.send_task("metrics.test", queue=queue)
            samples = _scrape(admin_client)
        assert samples[("realqa_celery_queue_length", (("queue", queue),))] == 3
        assert samples[("realqa_broker_up", ())] == 1
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)


def test_an_unreachable_broker_is_reported_in_the_scrape_not_as_an_error(admin_client):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_BROKER_TRANSPORT_OPTIONS={}):
        samples = _scrape(admin_client)
    assert samples[("realqa_broker_up", ())] == 0
    assert not any(name == "realqa_celery_queue_length" for name, _ in samples)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_url() -> str:
    from tests.workers.conftest import database_url_of_this_test_run

    return database_url_of_this_test_run()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_serves_task_failures_and_latency_and_logs_json_lines_with_the_task_id(tmp_path, project):
    from workers.celery import app

    queue = f"test-metrics-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "annotation_site.settings.test",
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CELERY_METRICS_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "LOG_FORMAT": "json",
    }
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "solo", "-Q", queue, "-n", f"{queue}@%h"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        good = app.send_task("images.refresh_near_duplicates", args=[project.pk], queue=queue)
        bad = app.send_task("images.refresh_near_duplicates", args=["not-a-project-id"], queue=queue)
        assert good.get(timeout=90) == 0
        with pytest.raises(Exception):
            bad.get(timeout=90)
        text = ""
        for _ in range(100):  # the failure is counted a moment after the result is stored
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            samples = _samples(text)
            if samples.get(("realqa_celery_task_failures_total", (("task", "images.refresh_near_duplicates"),))):
                break
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    samples = _samples(text)
    assert samples[("realqa_celery_task_failures_total", (("task", "images.refresh_near_duplicates"),))] == 1
    ran = {labels: value for (name, labels), value in samples.items() if name == "realqa_celery_task_duration_seconds_count"}
    assert ran[(("state", "SUCCESS"), ("task", "images.refresh_near_duplicates"))] == 1
    assert ran[(("state", "FAILURE"), ("task", "images.refresh_near_duplicates"))] == 1

    lines = []
    for raw in log_path.read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            pass  # Celery's start-up banner is plain text
    failure = [line for line in lines if line.get("task_id") == bad.id]
    assert failure and any(line["level"] == "ERROR" and "not-a-project-id" in json.dumps(line) for line in failure)
    assert all(line.get("task_name") == "images.refresh_near_duplicates" for line in failure)
