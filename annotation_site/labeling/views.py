from __future__ import annotations

from collections import Counter

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

from annotation_site.projects.models import Project
from annotation_site.projects.selectors import project_hidden_from
from annotation_site.schemas.selectors import schema_version_current

from .models import Annotation, Assignment

SUGGESTIONS_PER_FIELD = 30


def _own_text_suggestions(project: Project, rater: object, text_keys: list[str]) -> dict[str, list[str]]:
    """The rater's own most frequent earlier answers per text field. Their own only: raters stay blind
    to each other's labels."""
    if not text_keys:
        return {}
    counters: dict[str, Counter[str]] = {key: Counter() for key in text_keys}
    for values in Annotation.objects.filter(project=project, rater=rater).order_by("-id").values_list("values", flat=True)[:500]:
        for key in text_keys:
            if values.get(key):
                counters[key][values[key]] += 1
    return {key: [text for text, _ in counter.most_common(SUGGESTIONS_PER_FIELD)] for key, counter in counters.items()}


@require_safe
@login_required
@ensure_csrf_cookie
def label_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project, slug=slug, is_active=True)
    if project_hidden_from(project=project, rater=request.user):
        raise Http404("no such project")
    definition = schema_version_current(project=project).definition
    text_keys = [field["key"] for field in definition["fields"] if field["kind"] == "text"]
    context = {
        "project": project,
        "config": {
            "project": project.slug,
            "schema": definition,
            "suggestions": _own_text_suggestions(project, request.user, text_keys),
            "skipReasons": [{"value": value, "label": label} for value, label in Assignment.SkipReason.choices],
        },
    }
    return render(request, "labeling/label.html", context)
