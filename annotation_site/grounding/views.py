"""The rater pages of the region and description tasks. Both talk to the rater API only."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

from annotation_site.projects.models import Project
from annotation_site.projects.selectors import project_hidden_from

from .models import GroundingLease, TaskKind
from .selectors import grounding_setup_payload
from .services import setup_enabled


def _task_project(request: HttpRequest, slug: str, kind: str) -> Project:
    project = get_object_or_404(Project, slug=slug, is_active=True)
    if project_hidden_from(project=project, rater=request.user):
        raise Http404("no such project")
    if setup_enabled(project=project, kind=kind) is None:
        raise Http404(f"this project has no {kind} task")
    return project


def _config(project: Project, kind: str) -> dict:
    setup = grounding_setup_payload(project=project)
    return {
        "project": project.slug,
        "setup": setup["regions"] if kind == TaskKind.REGIONS else setup["description"],
        "skipReasons": [{"value": value, "label": label} for value, label in GroundingLease.SkipReason.choices],
    }


@require_safe
@login_required
@ensure_csrf_cookie
def regions_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = _task_project(request, slug, TaskKind.REGIONS)
    config = _config(project, TaskKind.REGIONS)
    return render(request, "grounding/regions.html", {"project": project, "config": config})


@require_safe
@login_required
@ensure_csrf_cookie
def describe_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = _task_project(request, slug, TaskKind.DESCRIPTION)
    config = _config(project, TaskKind.DESCRIPTION)
    return render(request, "grounding/describe.html", {"project": project, "config": config})
