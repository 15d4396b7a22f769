"""Middleware of the core app: a request id and a latency figure for every request, and a clear 413
for bodies too large to read."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import SimpleTemplateResponse
from django.utils.translation import gettext as _
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


# The one page that takes large multipart bodies: the admin's image upload (projects/admin.py).
LARGE_UPLOAD_URL_NAMES = frozenset({"admin:projects_project_upload"})


def _too_large(length: int, limit: int, multipart: bool, only_staff: bool = False) -> JsonResponse:
    what = _("upload") if multipart else _("request body")
    message = _("%(what)s too large: %(size).1f MB exceeds the %(limit).1f MB limit") % {
        "what": what, "size": length / 2**20, "limit": limit / 2**20
    }
    if only_staff:
        message += _(" (larger uploads are taken only from signed-in staff on the image upload page)")
    # "errors" in the shape the admin's upload page shows for a refused file.
    body = {"detail": message, **({"errors": {"files": [{"message": message}]}} if multipart else {})}
    return JsonResponse(body, status=413)


class BodySizeLimitMiddleware:
    """413 before a byte is read when Content-Length is over the limit: DATA_UPLOAD_MAX_MEMORY_SIZE for
    anything but a file upload, REQUEST_MAX_BYTES for a multipart upload (the admin's image upload sends
    its files one request at a time; each file is checked against IMAGES_MAX_BYTES on import).

    A multipart body over DATA_UPLOAD_MAX_MEMORY_SIZE is taken only by the image upload page from signed-in
    staff: that is checked in process_view, which runs once the session and the user are known and before
    any view or middleware (CSRF reads the form) touches the body. Anyone else gets 413 without it being
    read or spooled to disk."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": _("Content-Length is not a number")}, status=400)
        multipart = request.content_type == "multipart/form-data"
        limit = settings.REQUEST_MAX_BYTES if multipart else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return _too_large(length, limit, multipart)
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable, view_args: tuple, view_kwargs: dict
    ) -> HttpResponse | None:
        if request.content_type != "multipart/form-data":
            return None
        length = int(request.META.get("CONTENT_LENGTH") or 0)  # a number: __call__ checked it
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is None or length <= limit:
            return None
        match = getattr(request, "resolver_match", None)
        user = getattr(request, "user", None)
        if (
            match is not None
            and match.view_name in LARGE_UPLOAD_URL_NAMES
            and user is not None
            and user.is_authenticated
            and user.is_staff
        ):
            return None
        return _too_large(length, limit, multipart=True, only_staff=True)


class _EscapingTemplate:
    """A template whose page has any text that no UTF-8 can carry (half a surrogate pair, from a row stored by an
    older version) written as its escape, \\ud800, instead of failing the whole page with a 500."""

    def __init__(self, template: object) -> None:
        self.template = template

    def render(self, context: object = None, request: HttpRequest | None = None) -> str:
        text = self.template.render(context, request)  # type: ignore[attr-defined]
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
        return text


class UnencodableTextMiddleware:
    """Every page rendered from a template shows unencodable text as its escape (see _EscapingTemplate): the
    admin's change page of such a row opens, so that staff can see and remove it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_template_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        template_name = getattr(response, "template_name", None)
        # Only Django's own template responses render through resolve_template (DRF's hand the name to a renderer).
        if template_name is not None and type(response).rendered_content is SimpleTemplateResponse.rendered_content:
            template = response.resolve_template(template_name)  # type: ignore[attr-defined]
            response.template_name = _EscapingTemplate(template)  # type: ignore[attr-defined]
        return response


class ContentSecurityPolicyMiddleware:
    """Sends CONTENT_SECURITY_POLICY on every response that has none. The default policy forbids framing,
    plugins, <base> tags, forms posting elsewhere and scripts from anywhere but this site's own files (no
    inline code: pages load their scripts from static files, the API docs included); it leaves styles
    alone, because the admin and Swagger UI use inline styles."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
