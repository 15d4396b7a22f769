from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods

from annotation_site.projects.models import Project

from .dashboard import dashboard_stats, project_progress
from .dashboard_plots import bars_svg, histogram_svg


@staff_member_required
@require_http_methods(["GET", "HEAD"])
def dashboard_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project.objects.select_related("current_schema"), slug=slug)
    stats = dashboard_stats(project=project)
    plots = []
    raters = []
    if stats is not None:
        for d in stats.distributions:
            if d.kind == "score":
                svg = histogram_svg(d.counts, d.edges, x_label=f"{d.label}: MOS per image")
            else:
                svg = bars_svg(d.counts, d.labels, x_label=f"{d.label}: labels")
            plots.append({"distribution": d, "svg": mark_safe(svg)})
        raters = [{"quality": q, "release": stats.rater_release.get(q.rater_id)} for q in stats.rater_quality]
    return render(
        request,
        "releases/dashboard.html",
        {"project": project, "progress": project_progress(project=project), "stats": stats, "plots": plots, "raters": raters},
    )
