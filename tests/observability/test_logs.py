"""Structured logs: one JSON object per line, each with the id of the request (or Celery task) it
belongs to; the request id comes from X-Request-ID or is made, and goes back on the response."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from annotation_site.core.logs import ContextFilter, JsonFormatter

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the root logger writes, formatted as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.django_db
def test_every_response_carries_a_new_request_id_and_the_log_lines_of_the_request_carry_it(client, json_log):
    response = client.get("/no-such-page")

    request_id = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    lines = _lines(json_log)
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert {line["logger"] for line in mine} >= {"realqa.request", "django.request"}
    access = next(line for line in mine if line["logger"] == "realqa.request")
    assert access["level"] == "INFO" and access["message"] == "GET /no-such-page 404"
    assert access["status"] == 404 and access["method"] == "GET" and access["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", access["time"])


@pytest.mark.django_db
def test_a_callers_request_id_is_kept(client, json_log):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.42")
    assert response["X-Request-ID"] == "lb-7f3a.42"
    assert any(line.get("request_id") == "lb-7f3a.42" for line in _lines(json_log))


@pytest.mark.django_db
@pytest.mark.parametrize("hostile", ["x" * 200, "a b", "id\r\nSet-Cookie: x=1", "<script>", ""])
def test_a_request_id_that_is_not_a_plain_token_is_replaced(client, hostile):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=hostile)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_the_json_formatter_keeps_extra_fields_and_exceptions_and_never_fails_on_odd_values(json_log):
    logger = logging.getLogger("realqa.test")
    logger.warning("stored %d labels", 3, extra={"project": "realqa", "odd": object()})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("it failed")

    first, second = _lines(json_log)[-2:]
    assert first["message"] == "stored 3 labels" and first["project"] == "realqa" and first["odd"].startswith("<object")
    assert "request_id" not in first
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def _settings_value(module: str, expression: str, **env: str) -> str:
    script = f"import django; django.setup()\nfrom django.conf import settings\nprint({expression})\n"
    clean = {k: v for k, v in os.environ.items() if k not in {"DJANGO_DEBUG", "LOG_FORMAT", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
        env={**clean, "DJANGO_SETTINGS_MODULE": module, **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_production_logs_json_lines_and_development_plain_text() -> None:
    production = {"SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "labels.example.org"}
    handler = "settings.LOGGING['handlers']['console']['formatter']"
    assert _settings_value("annotation_site.settings.production", handler, **production) == "json"
    assert _settings_value("annotation_site.settings.dev", handler) == "plain"
    assert _settings_value("annotation_site.settings.dev", handler, LOG_FORMAT="json") == "json"
