"""/healthz: the database, the Celery broker and the media storage, as JSON, 200 or 503."""

from __future__ import annotations

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_health_reports_database_broker_and_storage_as_ok(client, media_root):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok", "storage": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")
    # The storage probe cleans up after itself.
    assert not any((media_root / "healthz").glob("*"))


def test_an_unreachable_broker_makes_health_503_and_names_the_broker(admin_client):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_BROKER_TRANSPORT_OPTIONS={}):
        response = admin_client.get("/healthz")

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "error" and body["database"] == "ok" and body["storage"] == "ok"
    assert body["broker"].startswith("error: ") and "Connection refused" in body["broker"]


def test_anonymous_and_non_staff_callers_learn_which_check_failed_but_not_why(client, django_user_model, caplog):
    rater = django_user_model.objects.create_user("health-rater", password="health-pass-123")
    signed_in = type(client)()
    signed_in.force_login(rater)
    for caller in (client, signed_in):
        with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_BROKER_TRANSPORT_OPTIONS={}):
            response = caller.get("/healthz")

        assert response.status_code == 503
        assert response.json() == {"status": "error", "database": "ok", "broker": "error", "storage": "ok"}
        assert "127.0.0.1" not in response.content.decode() and "refused" not in response.content.decode()
    # The reason stays in the log.
    logged = [record.getMessage() for record in caplog.records]
    assert any("broker unreachable" in message and "refused" in message for message in logged)


def test_a_monitor_with_the_metrics_token_sees_what_went_wrong(client, monkeypatch):
    monkeypatch.setenv("METRICS_TOKEN", "health-token-123")
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_BROKER_TRANSPORT_OPTIONS={}):
        response = client.get("/healthz", HTTP_AUTHORIZATION="Bearer health-token-123")
        wrong = client.get("/healthz", HTTP_AUTHORIZATION="Bearer not-the-token")

    assert response.status_code == 503 and "Connection refused" in response.json()["broker"]
    assert wrong.status_code == 503 and wrong.json()["broker"] == "error"


def test_a_storage_that_cannot_be_written_makes_health_503_and_names_the_storage(admin_client, tmp_path):
    blocker = tmp_path / "a-file-not-a-folder"
    blocker.write_text("x")
    broken = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(blocker / "media")}}
    with override_settings(STORAGES={"default": broken, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}):
        response = admin_client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["storage"].startswith("error: ")
    assert response.json()["database"] == "ok"


def test_a_load_balancer_can_ask_about_the_database_alone(client):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_BROKER_TRANSPORT_OPTIONS={}):
        response = client.get("/healthz?checks=database")
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": "ok"}


def test_an_unknown_check_is_named_in_a_400(client):
    response = client.get("/healthz?checks=database,disk")
    assert response.status_code == 400
    assert response.json()["error"] == "unknown check 'disk' (known: database, broker, storage)"


def test_health_answers_only_reads(client):
    assert client.post("/healthz").status_code == 405
