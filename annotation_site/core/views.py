from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from annotation_site.projects.selectors import project_list_for_rater
from annotation_site.quality.selectors import rater_own_figures


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
    """Liveness for load balancers and the demo script: answers 503 when the database is unreachable."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except Exception as exc:  # any failure of the database is exactly what this endpoint reports
        database = f"error: {type(exc).__name__}"
    status = 200 if database == "ok" else 503
    return JsonResponse({"database": database}, status=status)
