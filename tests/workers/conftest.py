from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def database_url_of_this_test_run() -> str:
    """The URL of the test database pytest-django made, for processes the tests start."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def start_worker(queue: str, *, name: str | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A real Celery worker process on this run's broker (Redis, or the embedded folder broker) and
    this run's test database, consuming only ``queue``. Its log is under VAR_DIR."""
    name = name or queue
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "annotation_site.settings.test",
        "DATABASE_URL": database_url_of_this_test_run(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        **(env or {}),
    }
    log = open(Path(settings.VAR_DIR) / f"worker-{name}.log", "w")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "solo", "-Q", queue, "--loglevel", "INFO", "-n", f"{name}@%h"],
        cwd=REPO,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop_worker(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


@pytest.fixture
def celery_worker_queue(transactional_db) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A real Celery worker listening on a queue of its own so that no other worker takes the test's tasks."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = start_worker(queue)
    try:
        yield queue
    finally:
        stop_worker(worker)
