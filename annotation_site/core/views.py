from __future__ import annotations

import hmac
import logging
import os

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from annotation_site.projects.selectors import project_list_for_rater
from annotation_site.quality.selectors import rater_own_figures

from . import health
from .broker import broker_queue_lengths
from .metrics import exposition
from .throttle import ThrottledAuthenticationForm, locked_out_status

logger = logging.getLogger(__name__)


@require_safe
@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = list(project_list_for_rater(rater=request.user))
    for project in projects:
        project.mine = rater_own_figures(project=project, rater_id=request.user.pk)
    return render(request, "core/home.html", {"projects": projects})


@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Health of what this machine depends on: the database, the Celery broker and the media storage,
    one key each ("ok" or "error"); 503 when any of the checks asked for fails.

    What went wrong (an exception's text, with internal host names and ports) is in the log, and in the
    answer only for staff and for a caller with the METRICS_TOKEN bearer token ("error: ..."); anyone else
    learns only which check failed.

    `?checks=database` asks for a subset: a load balancer should ask only about what serving raters
    needs (the database), or a broker outage would take every web machine out of rotation although
    labeling goes on without it."""
    asked = request.GET.get("checks")
    names = [name.strip() for name in asked.split(",") if name.strip()] if asked else list(health.CHECKS)
    unknown = [name for name in names if name not in health.CHECKS]
    if unknown:
        message = gettext("unknown check %(unknown)s (known: %(known)s)") % {
            "unknown": ", ".join(map(repr, unknown)), "known": ", ".join(health.CHECKS)
        }
        return JsonResponse({"error": message}, status=400)
    results = {name: health.CHECKS[name]() for name in names}
    healthy = all(result == "ok" for result in results.values())
    if not healthy and not _may_see_health_details(request):
        results = {name: "ok" if result == "ok" else "error" for name, result in results.items()}
    return JsonResponse({"status": "ok" if healthy else "error", **results}, status=200 if healthy else 503)


def _may_see_health_details(request: HttpRequest) -> bool:
    if _metrics_token_matches(request):
        return True
    try:
        return bool(request.user.is_authenticated and request.user.is_staff)
    except Exception:  # the session lives in the database that may be the very thing that is down
        logger.warning("health check: could not read the caller's session; answering without details", exc_info=True)
        return False


def _metrics_token_matches(request: HttpRequest) -> bool:
    expected = os.environ.get("METRICS_TOKEN", "")
    given = request.headers.get("Authorization", "")
    scheme, _, token = given.partition(" ")
    # compare_digest: the time taken must not tell a caller how much of the token they guessed.
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics for staff, or for a scraper sending `Authorization: Bearer $METRICS_TOKEN`."""
    if not _metrics_token_matches(request):
        if not request.user.is_authenticated:
            response = HttpResponse("metrics need a staff login or the METRICS_TOKEN bearer token\n", status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        if not request.user.is_staff:
            return HttpResponse("metrics are for staff only\n", status=403)
    try:
        lengths: dict[str, int] | None = broker_queue_lengths()
    except Exception as exc:  # an unreachable broker is a value of the scrape (realqa_broker_up 0), not an error
        logger.warning("metrics: broker unreachable: %s", exc)
        lengths = None
    return HttpResponse(exposition(queue_lengths=lengths), content_type=CONTENT_TYPE_LATEST)


class LoginView(auth_views.LoginView):
    """Django's login page with login throttling (core/throttle.py); a locked-out attempt answers 429."""

    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form: ThrottledAuthenticationForm) -> HttpResponse:
        return locked_out_status(form, super().form_invalid(form))
