from __future__ import annotations

import os

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from annotation_site.core.staffpages import staff_permission_required
from annotation_site.core.storedfiles import stored_file_response
from annotation_site.projects.models import Project
from annotation_site.quality.selectors import annotations_for_statistics

from .dashboard import (
    dashboard_figures,
    dashboard_job_pending,
    dashboard_stats_queue,
    dashboard_stats_refresh,
    inline_limit,
    project_progress,
)
from .dashboard_plots import bars_svg, histogram_svg
from .models import Release


@staff_permission_required("projects.view_project")
@require_http_methods(["GET", "HEAD"])
def dashboard_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project.objects.select_related("current_schema"), slug=slug)
    progress = project_progress(project=project)
    figures = dashboard_figures(project=project, usable=progress.labels)
    stats = figures.stats
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
        {
            "project": project,
            "progress": progress,
            "figures": figures,
            "inline_limit": inline_limit(),
            "stats": stats,
            "plots": plots,
            "raters": raters,
        },
    )


@staff_permission_required("projects.view_project")  # recomputes figures; changes no data
@require_POST
def dashboard_recompute(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project.objects.select_related("current_schema"), slug=slug)
    if project.current_schema_id is None:
        messages.error(request, "This project has no schema yet: there is nothing to compute.")
    elif annotations_for_statistics(project=project).count() <= inline_limit():
        dashboard_stats_refresh(project_id=project.pk, inline=True)
        messages.success(request, "The figures were recomputed.")
    else:
        dashboard_stats_queue(project=project)
        messages.success(request, "The figures are being recomputed by a worker; this page shows them when it is done.")
    return redirect("project-dashboard", slug=project.slug)


@staff_permission_required("projects.view_project")
@require_safe
def dashboard_job(request: HttpRequest, slug: str) -> JsonResponse:
    """The dashboard job in progress, for the page's progress bar; "idle" once there is none."""
    project = get_object_or_404(Project, slug=slug)
    job = dashboard_job_pending(project=project)
    if job is None:
        return JsonResponse({"status": "idle"})
    return JsonResponse({"status": job.status, "percent": job.percent, "message": job.message})


@staff_permission_required("releases.view_release")
@require_safe
def release_download(request: HttpRequest, pk: int) -> HttpResponse:
    """A done release's zip, from the media storage: the object store's signed URL, nginx's internal location in
    production (X-Accel-Redirect, as for photos), or the file itself in debug and the zero-server mode."""
    release = get_object_or_404(Release.objects.select_related("project"), pk=pk, status=Release.Status.DONE)
    if not release.archive:
        raise Http404(f"{release.release_id} has no download yet: its worker is still zipping it, or could not")
    return stored_file_response(release.archive, content_type="application/zip", download_as=os.path.basename(release.archive))
