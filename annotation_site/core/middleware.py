"""Middleware of the core app: a request id and a latency figure for every request, and a clear 413
for bodies too large to read."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import Histogram

from .logs import request_id_from, request_id_var
from .metrics import REQUEST_SECONDS

logger = logging.getLogger("realqa.request")

REQUEST_ID_HEADER = "X-Request-ID"


@functools.lru_cache(maxsize=4096)
def _latency(method: str, route: str, status: int) -> Histogram:
    """The histogram child of one (method, route, status); looked up once, not on every request."""
    return REQUEST_SECONDS.labels(method=method, route=route, status=str(status))


class RequestIdMiddleware:
    """Keeps the caller's X-Request-ID (a proxy's, say) or makes one, puts it on every log line written
    while the request runs and on the response, then logs the request and times it. Goes first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            response[REQUEST_ID_HEADER] = request_id
            match = getattr(request, "resolver_match", None)
            route = match.route if match is not None else "<unmatched>"
            _latency(request.method or "", route, response.status_code).observe(seconds)
            user = getattr(request, "user", None)
            logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 2),
                    "user_id": user.pk if user is not None and user.is_authenticated else None,
                },
            )
            return response
        finally:
            request_id_var.reset(token)


class BodySizeLimitMiddleware:
    """413 before a byte is read when Content-Length is over the limit: DATA_UPLOAD_MAX_MEMORY_SIZE for
    anything but a file upload, REQUEST_MAX_BYTES for a multipart upload (the admin's image upload sends
    its files one request at a time; each file is checked against IMAGES_MAX_BYTES on import)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Content-Length is not a number"}, status=400)
        multipart = request.content_type == "multipart/form-data"
        limit = settings.REQUEST_MAX_BYTES if multipart else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            what = "upload" if multipart else "request body"
            message = f"{what} too large: {length / 2**20:.1f} MB exceeds the {limit / 2**20:.1f} MB limit"
            # "errors" in the shape the admin's upload page shows for a refused file.
            body = {"detail": message, **({"errors": {"files": [{"message": message}]}} if multipart else {})}
            return JsonResponse(body, status=413)
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Sends CONTENT_SECURITY_POLICY on every response that has none. The default policy forbids framing,
    plugins, <base> tags and forms posting elsewhere; it leaves scripts and styles alone, because the
    admin, the upload page and the API docs rely on inline code and a CDN."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
