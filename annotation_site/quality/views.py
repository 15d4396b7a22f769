from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotation_site.core.staffpages import staff_permission_required
from annotation_site.projects.models import Project
from annotation_site.raters.models import Membership

from .selectors import FAST_SECONDS, annotations_for_statistics, project_rater_quality
from .services import membership_exclude, membership_reinstate


@staff_permission_required("raters.view_membership")
@require_http_methods(["GET", "HEAD"])
def rater_quality_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project.objects.select_related("current_schema"), slug=slug)
    # Computing the figures reads every label (21 s at 10x RealQA): above the dashboard's inline limit the page
    # shows the rows the dashboard's worker job kept, with each rater's status as it is now.
    from annotation_site.releases.dashboard import dashboard_figures, inline_limit  # releases reads quality

    usable = annotations_for_statistics(project=project).count()
    figures = None
    if usable <= inline_limit():
        rows = project_rater_quality(project=project)
    else:
        figures = dashboard_figures(project=project, usable=usable)
        rows = list(figures.stats.rater_quality) if figures.stats is not None else []
        status = dict(Membership.objects.filter(project=project).values_list("rater_id", "status"))
        for row in rows:
            row.status = status.get(row.rater_id, row.status)
    return render(
        request,
        "quality/raters.html",
        {"project": project, "rows": rows, "figures": figures, "fast_seconds": FAST_SECONDS},
    )


@staff_permission_required("raters.change_membership")
@require_POST
def rater_exclusion(request: HttpRequest, slug: str, rater_id: int) -> HttpResponse:
    project = get_object_or_404(Project, slug=slug)
    # rater__pk, not rater_id: Django turns an id past the column's range into "no match" only on a
    # plain integer lookup; through the foreign key SQLite would raise OverflowError (a 500).
    membership = get_object_or_404(Membership, project=project, rater__pk=rater_id)
    if request.POST.get("action") == "reinstate":
        membership_reinstate(project=project, rater_id=rater_id)
        messages.success(request, f"{membership.rater.get_username()} is reinstated; their labels count again.")
    else:
        membership_exclude(project=project, rater_id=rater_id, by=request.user, reason=request.POST.get("reason", ""))
        messages.success(
            request, f"{membership.rater.get_username()} is excluded; their labels are kept but left out of statistics."
        )
    return redirect("rater-quality", slug=project.slug)
