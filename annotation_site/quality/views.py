from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotation_site.projects.models import Project
from annotation_site.raters.models import Membership

from .selectors import FAST_SECONDS, project_rater_quality
from .services import membership_exclude, membership_reinstate


@staff_member_required
@require_http_methods(["GET", "HEAD"])
def rater_quality_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project.objects.select_related("current_schema"), slug=slug)
    return render(
        request,
        "quality/raters.html",
        {"project": project, "rows": project_rater_quality(project=project), "fast_seconds": FAST_SECONDS},
    )


@staff_member_required
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
