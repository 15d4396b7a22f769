"""The rater's comparison page (it talks to the rater API only) and the staff page of the inferred scale."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

from annotation_site.core.staffpages import staff_permission_required
from annotation_site.images.models import Image
from annotation_site.projects.models import Project
from annotation_site.projects.selectors import project_hidden_from

from .models import Level, PairAssignment
from .selectors import QUESTIONS, comparison_progress, comparison_scale_fit, comparison_setup_get

LEVEL_LABELS = {
    Level.INFERIOR: "Left much better",
    Level.WORSE: "Left better",
    Level.SIMILAR: "About the same",
    Level.BETTER: "Right better",
    Level.SUPERIOR: "Right much better",
}


@require_safe
@login_required
@ensure_csrf_cookie
def compare_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project, slug=slug, is_active=True)
    if project_hidden_from(project=project, rater=request.user):
        raise Http404("no such project")
    setup = comparison_setup_get(project=project)
    if setup is None or not setup.enabled:
        raise Http404("this project has no comparison task")
    config = {
        "project": project.slug,
        "question": QUESTIONS[setup.criterion],
        "levels": [{"value": value, "word": value, "label": LEVEL_LABELS[value]} for value in Level.values],
        "skipReasons": [{"value": value, "label": label} for value, label in PairAssignment.SkipReason.choices],
    }
    return render(request, "comparisons/compare.html", {"project": project, "config": config})


@staff_permission_required("projects.view_project")
@require_safe
def scale_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project, slug=slug)
    fit = comparison_scale_fit(project=project)
    thumbnails = {
        image.pk: image.thumbnail.url
        for image in Image.objects.filter(pk__in=[row.image_id for row in fit.rows]).only("id", "thumbnail")
    }
    rows = [{"row": row, "thumbnail": thumbnails.get(row.image_id)} for row in fit.rows]
    return render(
        request,
        "comparisons/scale.html",
        {
            "project": project,
            "setup": comparison_setup_get(project=project),
            "fit": fit,
            "rows": rows,
            "progress": comparison_progress(project=project),
        },
    )
