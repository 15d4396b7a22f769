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


@pytest.fixture
def celery_worker_queue(transactional_db) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A real Celery worker process on this run's broker (Redis, or the embedded folder broker),
    listening on a queue of its own so that no other worker takes the test's tasks."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "annotation_site.settings.test",
        "DATABASE_URL": database_url_of_this_test_run(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    log = open(Path(settings.VAR_DIR) / f"worker-{queue}.log", "w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "solo", "-Q", queue, "--loglevel", "INFO", "-n", f"{queue}@%h"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield queue
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
