"""The staff pages outside the admin (/staff/...): for staff who hold the permission a page or action needs, the
same model permissions the admin asks for. Staff without it get 403 and a page saying which permission is missing;
anyone else is sent to the admin's login, as `staff_member_required` does.

The group "Project manager" (migration raters 0002) holds exactly PROJECT_MANAGER_PERMISSIONS: every permission a
staff page asks for."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext, gettext_lazy

PROJECT_MANAGER_GROUP = "Project manager"

# What each permission a staff page asks for lets its holder do, as the refusal tells it.
PERMISSION_PURPOSES = {
    "projects.view_project": gettext_lazy("see a project's dashboard, model and comparison pages"),
    "projects.change_project": gettext_lazy("change a project's pre-annotation, strategy and retraining"),
    "raters.view_membership": gettext_lazy("see the raters of a project and their quality figures"),
    "raters.change_membership": gettext_lazy("exclude and reinstate raters"),
    "releases.view_release": gettext_lazy("download dataset releases"),
}
PROJECT_MANAGER_PERMISSIONS = tuple(PERMISSION_PURPOSES)


def permission_refused_message(permission: str) -> str:
    """Why a staff member was refused, and what to ask for."""
    return gettext(
        "Your account may not %(purpose)s: that needs the permission “%(permission)s”. An administrator can give "
        "it to you, for example by adding you to the group “%(group)s”."
    ) % {
        "purpose": PERMISSION_PURPOSES.get(permission, permission),
        "permission": permission,
        "group": PROJECT_MANAGER_GROUP,  # a name in the database, as the admin shows it
    }


def permission_refused(request: HttpRequest, permission: str) -> HttpResponse:
    return render(request, "core/forbidden.html", {"message": permission_refused_message(permission)}, status=403)


def staff_permission_required(permission: str, **per_method: str) -> Callable:
    """A staff page that needs `permission` ("app_label.codename"); `POST="..."` and the like ask another one for
    that method (a page that shows with a view permission and saves with a change permission)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def checked(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            needed = per_method.get(request.method or "", permission)
            if not request.user.has_perm(needed):
                return permission_refused(request, needed)
            return view(request, *args, **kwargs)

        return staff_member_required(checked)

    return decorator
