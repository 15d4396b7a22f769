"""A database that is restarting or unreachable answers 503 with a retry hint, never 500.

While PostgreSQL restarts (a failover, an upgrade, a crash), requests in flight lose their connection and
new ones cannot open one. Nothing is half-written either way: each write runs in one transaction, so the
request either committed before the connection went or left nothing. The client can therefore retry the
same request (a submit with the same idempotency key stores its label once); this says so, in JSON for
the API and the labeling page's scripts."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2


class DatabaseOutageMiddleware:
    """Turns a lost or refused database connection raised by a view into 503 + Retry-After.
    Goes last in MIDDLEWARE, so it sees the view's exception before any other middleware does."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        logger.warning("database unavailable during %s %s: %s", request.method, request.path, exception)
        response = JsonResponse(
            {
                # The labeling page shows this to the rater as it is.
                "detail": "The database is unavailable for a moment. Retry in a few seconds: a label sent "
                "again is stored only once.",
                "retry_after": RETRY_AFTER_SECONDS,
            },
            status=503,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
