"""Sending Celery tasks from the web, by name: the web never imports `workers` (nor the model behind it).

A request must never fail or wait because the broker is down: a task is sent after the transaction
commits (so the worker sees the rows it is about to read), with one try and short timeouts, and a
failure to send is logged, not raised. The task is then kept in the database (PendingTask) and the
periodic `core.send_pending_tasks` sends it once the broker answers again, so nothing the web asked for is
lost with the broker (tests/faults/test_redis_outage.py). The workers' sweeps ("model.sweep") make up for
what even that could not keep (the database was down too).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.db import transaction
from django.db.models import F

logger = logging.getLogger(__name__)

# One try, short socket timeouts: Celery's pooled connection retries for seconds against a refused broker
# and waits forever on a hung one (tests/faults/test_redis_outage.py), holding the request meanwhile.
SEND_TIMEOUT_SECONDS = 1.0


@contextmanager
def _broker() -> Iterator[object]:
    from celery import current_app  # the app the `workers` Django app configured at start

    timeouts = {"max_retries": 0, "socket_timeout": SEND_TIMEOUT_SECONDS, "socket_connect_timeout": SEND_TIMEOUT_SECONDS}
    with current_app.connection_for_write(connect_timeout=SEND_TIMEOUT_SECONDS, transport_options=timeouts) as connection:
        connection.ensure_connection(max_retries=0)
        yield connection


def _publish(connection: object, name: str, args: Sequence[object], queue: str | None) -> None:
    from celery import current_app

    # No result: the web never reads one, and asking for it subscribes to the result backend (Redis) too.
    options: dict = {"retry": False, "ignore_result": True}
    if queue:
        options["queue"] = queue
    current_app.send_task(name, args=list(args), connection=connection, **options)


def _send(name: str, args: Sequence[object], queue: str | None) -> None:
    try:
        with _broker() as connection:
            _publish(connection, name, args, queue)
    except Exception as exc:  # any broker failure: keep the task for later
        logger.warning("could not enqueue %s%r, kept to send when the broker is back: %s", name, tuple(args), exc)
        _keep(name, args, queue, exc)


def _keep(name: str, args: Sequence[object], queue: str | None, exc: Exception) -> None:
    from .models import PendingTask

    try:
        PendingTask.objects.create(name=name, args=list(args), queue=queue or "", last_error=f"{type(exc).__name__}: {exc}"[:1000])
    except Exception:  # the database is away too: the workers' sweeps are what is left
        logger.error("could not keep %s%r for later either; the periodic sweeps must make up for it", name, tuple(args), exc_info=True)


def pending_tasks_send(*, limit: int = 500) -> int:
    """Send the tasks kept while the broker was away, oldest first, on one connection; stops at the first
    failure (the broker is still away). Returns how many were sent. A task sent whose row then fails to
    be deleted is sent again next time: tasks are idempotent."""
    from .models import PendingTask

    sent = 0
    with transaction.atomic():
        pending = list(PendingTask.objects.select_for_update(skip_locked=True).order_by("id")[:limit])
        if not pending:
            return 0
        try:
            with _broker() as connection:
                for task in pending:
                    _publish(connection, task.name, task.args, task.queue or None)
                    sent += 1
        except Exception as exc:
            PendingTask.objects.filter(pk__in=[task.pk for task in pending[sent:]]).update(
                attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:1000]
            )
            logger.warning("broker still unavailable, %d pending task(s) wait: %s", len(pending) - sent, exc)
        PendingTask.objects.filter(pk__in=[task.pk for task in pending[:sent]]).delete()
    if sent:
        logger.info("sent %d task(s) kept while the broker was away", sent)
    return sent


def enqueue(name: str, *, args: Sequence[object] = (), queue: str | None = None) -> None:
    """Send task ``name`` with JSON ``args`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _send(name, args, queue))
