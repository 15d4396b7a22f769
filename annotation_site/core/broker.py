"""A short look at the Celery broker from a web process, through kombu alone (the web never imports the
Celery app in workers/): is it reachable, and how many messages wait in each queue."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from kombu import Connection
from kombu.exceptions import ChannelError

PROBE_TIMEOUT_SECONDS = 2.0


def broker_queue_names() -> list[str]:
    """The default queue and every queue the settings name in routes or queue declarations."""
    names = {getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", None) or "celery"}
    routes = getattr(settings, "CELERY_TASK_ROUTES", None) or {}
    if isinstance(routes, dict):
        names.update(route["queue"] for route in routes.values() if isinstance(route, dict) and route.get("queue"))
    for queue in getattr(settings, "CELERY_TASK_QUEUES", None) or ():
        name = queue if isinstance(queue, str) else getattr(queue, "name", None)
        if name:
            names.add(name)
    return sorted(names)


def _connection(timeout: float) -> Connection:
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {})
    # One attempt, short socket timeouts: a probe must answer while the broker is down, not retry for minutes.
    options.update(max_retries=0, socket_timeout=timeout, socket_connect_timeout=timeout)
    return Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options)


def broker_queue_lengths(*, queues: Iterable[str] | None = None, timeout: float = PROBE_TIMEOUT_SECONDS) -> dict[str, int]:
    """Messages waiting per queue. Raises whatever the transport raises when the broker is unreachable."""
    lengths: dict[str, int] = {}
    with _connection(timeout) as connection:
        connection.ensure_connection(max_retries=0)
        channel = connection.channel()
        try:
            for queue in queues if queues is not None else broker_queue_names():
                try:
                    lengths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except ChannelError:
                    lengths[queue] = 0  # Redis drops an empty queue's list; nothing waits there
        finally:
            channel.close()
    return lengths
