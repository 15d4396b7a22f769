"""The checks behind /healthz: each returns "ok" or "error: <what went wrong>" and never raises."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from .broker import broker_queue_lengths

logger = logging.getLogger(__name__)

STORAGE_TIMEOUT_SECONDS = 3.0
# Threads for the storage probe; an object store that hangs keeps one busy, never the request.
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="healthz")


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"error: {type(exc).__name__}" + (f": {text}" if text else "")


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any failure of the database is exactly what this reports
        logger.warning("health check: database unreachable: %s", exc)
        return _describe(exc)


def check_broker() -> str:
    try:
        broker_queue_lengths()
        return "ok"
    except Exception as exc:  # kombu and the transports raise many kinds; all mean "unreachable"
        logger.warning("health check: broker unreachable: %s", exc)
        return _describe(exc)


def _storage_round_trip() -> None:
    name = default_storage.save(f"healthz/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    try:
        with default_storage.open(name) as handle:
            if handle.read() != b"ok":
                raise OSError("read back different bytes than were written")
    finally:
        default_storage.delete(name)


def check_storage() -> str:
    """Write, read back and delete a tiny file in the media storage (a local folder or the object store)."""
    try:
        _pool.submit(_storage_round_trip).result(timeout=STORAGE_TIMEOUT_SECONDS)
        return "ok"
    except FutureTimeout:
        logger.warning("health check: storage did not answer within %.0f s", STORAGE_TIMEOUT_SECONDS)
        return f"error: no answer within {STORAGE_TIMEOUT_SECONDS:.0f} s"
    except Exception as exc:
        logger.warning("health check: storage failed: %s", exc)
        return _describe(exc)


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
}
