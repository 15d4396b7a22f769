"""Fixtures of the fault tests: private Redis and PostgreSQL servers, web servers and workers pointed at
them, and the folder through which a test arms the hooks of tests/faults/hooks.py."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest
from django.conf import settings
from django.db import connection

from .services import CeleryWorker, Gunicorn, PrivatePostgres, PrivateRedis, server_env


def database_url_of_this_test_run() -> str:
    """The URL of the test database pytest-django made, for the processes a test starts."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def fault_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "faults"
    folder.mkdir()
    return folder


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    redis = PrivateRedis()
    redis.start()
    try:
        yield redis
    finally:
        redis.close()


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def make_env(transactional_db, tmp_path: Path, fault_dir: Path) -> Callable[..., dict[str, str]]:
    """The environment for a server or worker; by default on this test run's database, whose rows
    the test commits (transactional_db) so that those processes see them."""

    def make(*, database_url: str | None = None, redis_url: str | None = None, **extra: str) -> dict[str, str]:
        return server_env(
            database_url=database_url or database_url_of_this_test_run(),
            redis_url=redis_url,
            media_root=str(settings.MEDIA_ROOT),
            var_dir=tmp_path / "var",
            fault_dir=fault_dir,
            **extra,
        )

    return make


@pytest.fixture
def start_gunicorn(tmp_path: Path) -> Iterator[Callable[..., Gunicorn]]:
    started: list[Gunicorn] = []

    def start(env: dict[str, str], *, workers: int = 2) -> Gunicorn:
        server = Gunicorn(env=env, log=tmp_path / f"gunicorn-{len(started)}.log", workers=workers)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., CeleryWorker]]:
    started: list[CeleryWorker] = []

    def start(env: dict[str, str], *, name: str, queues: str, pool: str = "solo", beat: bool = False,
              wait: bool = True) -> CeleryWorker:
        worker = CeleryWorker(env=env, log=tmp_path / f"worker-{name}.log", name=name, queues=queues, pool=pool, beat=beat)
        started.append(worker)
        worker.start(wait=wait)
        return worker

    yield start
    for worker in started:
        worker.stop()
