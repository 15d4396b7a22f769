"""The authorization matrix: for EVERY URL pattern the project serves, what an anonymous visitor, a
rater, an outsider (a rater who joined no project), a staff member without permissions, a project manager
(staff in the group "Project manager") and a superuser get. A pattern without a row fails the test, saying
which row to add; so does a row whose answer changed. A row names the outsider's answer where it differs
from the rater's, and the project manager's where it differs from that of staff without permissions.

Words: "login" / "admin-login" = a redirect to that login page, "302" = any other redirect, else the
status code. Paths are filled from the world (tests/security/world.py): `slug` is the open project,
`assignment_id` a lease of ANOTHER rater, `rater_id` that other rater, `pk` the open project."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pytest
from django.contrib import admin

from annotation_site.raters.models import Membership
from tests.annotation_site.labels import REALQA_LABELS

from .world import ROLES, World, build_world, fill, outcome, url_patterns

pytestmark = pytest.mark.django_db

ME = "tests/security/test_authorization_matrix.py"


@dataclass(frozen=True)
class Row:
    method: str
    anonymous: str
    rater: str
    staff: str
    admin: str
    data: dict | None = None
    values: dict = field(default_factory=dict)  # path parameters other than the defaults; a callable takes the world
    why: str = ""
    outsider: str | None = None  # None: as the rater
    manager: str | None = None  # None: as staff without permissions

    def expected(self, role: str) -> str:
        answer = getattr(self, role)
        if answer is None:
            return getattr(self, {"outsider": "rater", "manager": "staff"}[role])
        return answer


CLOSED = {"slug": "closed-project-x9"}
# The admin's app index pattern lists every app in the admin; it is one row whatever apps there are.
APP_INDEX = "admin/<app index>/"
_APP_INDEX_PATTERN = re.compile(r"admin/\^\(\?P<app_label>[\w|]+\)/\$")
# Staff pages (core/staffpages.py): the admin's login for anyone not staff, 403 and the missing permission for
# staff without it; the project manager holds every permission they ask for.
STAFF_PAGE = ("admin-login", "admin-login", "403", "200")
MANAGER = {"manager": "200"}
API_LABELS = {"labels": REALQA_LABELS, "idempotency_key": "matrix"}

MATRIX: dict[str, list[Row]] = {
    "": [Row("GET", "login", "200", "200", "200", why="home: each user's own projects and figures")],
    "healthz": [Row("GET", "200", "200", "200", "200", why="public for load balancers; says ok/error only")],
    "metrics": [Row("GET", "401", "403", "200", "200", why="staff, or the METRICS_TOKEN bearer token")],
    "accounts/login/": [Row("GET", "200", "200", "200", "200")],
    "accounts/logout/": [Row("GET", "405", "405", "405", "405", why="logout is a POST (with CSRF)")],
    "projects/<slug:slug>/label/": [
        Row("GET", "login", "200", "200", "200", why="an open project: any signed-in user labels"),
        Row("GET", "login", "404", "404", "404", values=CLOSED, why="a closed project is not acknowledged to outsiders"),
    ],
    "projects/<slug:slug>/regions/": [
        Row("GET", "login", "404", "404", "404", why="the region task is off in this project"),
        Row("GET", "login", "404", "404", "404", values=CLOSED),
    ],
    "projects/<slug:slug>/describe/": [
        Row("GET", "login", "404", "404", "404", why="the description task is off in this project"),
        Row("GET", "login", "404", "404", "404", values=CLOSED),
    ],
    "staff/projects/<slug:slug>/raters/": [
        Row("GET", *STAFF_PAGE, **MANAGER, why="raters.view_membership"),
        Row("GET", *STAFF_PAGE, **MANAGER, values=CLOSED),
    ],
    "staff/projects/<slug:slug>/raters/<int:rater_id>/exclusion": [
        Row("POST", "admin-login", "admin-login", "403", "302", manager="302", data={"action": "reinstate"},
            why="raters.change_membership"),
        Row("GET", "admin-login", "admin-login", "403", "405", manager="405", why="the permission is asked first"),
    ],
    "staff/projects/<slug:slug>/model/": [
        Row("GET", *STAFF_PAGE, **MANAGER, why="projects.view_project"),
        Row("POST", "admin-login", "admin-login", "403", "200", manager="200", data={"priority_strategy": "no-such"},
            why="saving the settings needs projects.change_project; a bad value shows the form again"),
    ],
    "staff/projects/<slug:slug>/dashboard/": [
        Row("GET", *STAFF_PAGE, **MANAGER, why="projects.view_project"),
        Row("GET", *STAFF_PAGE, **MANAGER, values=CLOSED),
    ],
    "staff/projects/<slug:slug>/dashboard/recompute": [
        Row("POST", "admin-login", "admin-login", "403", "302", manager="302",
            why="projects.view_project; back to the dashboard (see the CSRF test)"),
        Row("GET", "admin-login", "admin-login", "403", "405", manager="405"),
    ],
    "staff/projects/<slug:slug>/dashboard/job": [
        Row("GET", *STAFF_PAGE, **MANAGER, why="the dashboard's progress bar (JSON)"),
    ],
    "staff/releases/<int:pk>/download": [
        Row("GET", "admin-login", "admin-login", "403", "200", manager="200", values={"pk": lambda world: world.release.pk},
            why="releases.view_release: the done release's zip"),
        Row("GET", "admin-login", "admin-login", "403", "404", manager="404", values={"pk": 999_999}, why="no such release"),
    ],
    "staff/projects/<slug:slug>/model/retrain": [
        Row("GET", "admin-login", "admin-login", "403", "405", manager="405",
            why="projects.change_project; a POST from the model page (see the CSRF test)"),
    ],
    # The rater API: token or session; another rater's lease is "not yours", exactly like a missing one.
    "api/v1/projects/<slug:slug>/next": [
        Row("POST", "401", "200", "200", "200", data={}),
        Row("POST", "401", "404", "404", "404", data={}, values=CLOSED),
    ],
    "api/v1/projects/<slug:slug>/schema": [
        Row("GET", "401", "200", "200", "200"),
        Row("GET", "401", "404", "404", "404", values=CLOSED),
    ],
    "api/v1/assignments/<int:assignment_id>/submit": [Row("POST", "401", "404", "404", "404", data=API_LABELS)],
    "api/v1/assignments/<int:assignment_id>/skip": [
        Row("POST", "401", "404", "404", "404", data={"reason": "cannot_judge"}),
    ],
    "api/v1/projects/<slug:slug>/grounding": [
        Row("GET", "401", "200", "200", "200"),
        Row("GET", "401", "404", "404", "404", values=CLOSED),
    ],
    "api/v1/projects/<slug:slug>/regions/next": [
        Row("POST", "401", "404", "404", "404", data={}, why="the region task is off"),
        Row("POST", "401", "404", "404", "404", data={}, values=CLOSED),
    ],
    "api/v1/projects/<slug:slug>/descriptions/next": [
        Row("POST", "401", "404", "404", "404", data={}, why="the description task is off"),
        Row("POST", "401", "404", "404", "404", data={}, values=CLOSED),
    ],
    "api/v1/region-leases/<int:lease_id>/submit": [Row("POST", "401", "400", "400", "400", data={})],
    "api/v1/region-leases/<int:lease_id>/skip": [Row("POST", "401", "400", "400", "400", data={})],
    "api/v1/description-leases/<int:lease_id>/submit": [Row("POST", "401", "400", "400", "400", data={})],
    "api/v1/description-leases/<int:lease_id>/skip": [Row("POST", "401", "400", "400", "400", data={})],
    "projects/<slug:slug>/compare/": [
        Row("GET", "login", "404", "404", "404", why="comparisons are off in this project"),
        Row("GET", "login", "404", "404", "404", values=CLOSED),
    ],
    "staff/projects/<slug:slug>/comparisons/": [
        Row("GET", *STAFF_PAGE, **MANAGER, why="projects.view_project"),
        Row("GET", *STAFF_PAGE, **MANAGER, values=CLOSED),
    ],
    "api/v1/projects/<slug:slug>/compare/next": [
        Row("POST", "401", "403", "403", "403", data={}, why="comparisons are off: refused with the reason"),
        Row("POST", "401", "404", "404", "404", data={}, values=CLOSED),
    ],
    "api/v1/projects/<slug:slug>/compare/scale": [
        Row("GET", "401", "403", "403", "200", manager="200", why="staff with projects.view_project, as its page"),
    ],
    "api/v1/pair-assignments/<int:assignment_id>/submit": [
        Row("POST", "401", "404", "404", "404", data={"level": "better"}, values={"assignment_id": 999_999}),
    ],
    "api/v1/pair-assignments/<int:assignment_id>/skip": [
        Row("POST", "401", "404", "404", "404", data={"reason": "cannot_judge"}, values={"assignment_id": 999_999}),
    ],
    "api/v1/schema/": [Row("GET", "401", "200", "200", "200", why="the API's description, for signed-in users")],
    "api/v1/docs/": [Row("GET", "401", "200", "200", "200")],
    # The admin site: a rater never gets past its login page; staff without permissions see nothing.
    "admin/": [Row("GET", "admin-login", "admin-login", "200", "200", why="staff see an index without models")],
    "admin/login/": [Row("GET", "200", "200", "302", "302", why="a rater is told the account is not staff")],
    "admin/logout/": [Row("GET", "302", "302", "405", "405")],
    "admin/password_change/": [Row("GET", "admin-login", "admin-login", "200", "200")],
    "admin/password_change/done/": [Row("GET", "admin-login", "admin-login", "200", "200")],
    "admin/autocomplete/": [Row("GET", "admin-login", "admin-login", "403", "403")],
    "admin/jsi18n/": [Row("GET", "admin-login", "admin-login", "200", "200")],
    "admin/r/<path:content_type_id>/<path:object_id>/": [Row("GET", "admin-login", "admin-login", "404", "404")],
    "admin/auth/user/<id>/password/": [Row("GET", "admin-login", "admin-login", "403", "200")],
    "admin/projects/project/<int:pk>/upload/": [
        Row("GET", "admin-login", "admin-login", "403", "200", manager="200", why="projects.change_project"),
    ],
    "admin/releases/release/progress/": [
        Row("GET", "admin-login", "admin-login", "403", "200", manager="200", why="releases.view_release"),
    ],
    APP_INDEX: [Row("GET", "admin-login", "admin-login", "404", "200", why="staff without permissions: no such app")],
    "admin/(?P<url>.*)$": [Row("GET", "admin-login", "admin-login", "404", "404", why="unknown admin pages hide behind the login")],
    # Photos: the raters of their project and staff; everyone else, signed in or not, gets 404 like a missing file.
    "media/<path:name>": [
        Row("GET", "404", "200", "200", "200", outsider="404",
            why="an image of the open project, where the rater labels and the outsider never joined"),
        Row("GET", "404", "404", "200", "200", values={"name": lambda world: world.closed_images[0].thumbnail.name},
            why="an image of a project the rater is not in: content-addressed names are not secrets"),
        Row("GET", "404", "404", "404", "404", values={"name": "models/open-project/cpu-multihead-1/config.json"},
            why="nothing but image files is served, not even to staff"),
    ],
}
# Rows of apps that may be absent from a checkout (built side by side); stale only when the app is installed.
APP_OF_PATTERN = {pattern: "annotation_site.comparisons" for pattern in MATRIX if "compar" in pattern}

# Every model in the admin, with the views its admin refuses even to a superuser.
ADMIN_MODELS: dict[str, set[str]] = {
    "auth/group": set(),
    "auth/user": set(),
    "authtoken/tokenproxy": set(),
    "projects/project": set(),
    "images/image": {"add"},  # images arrive through the import, never a bare form
    "images/goldanswer": set(),
    "raters/raterprofile": set(),
    "raters/membership": set(),
    "labeling/assignment": {"add", "delete"},
    "labeling/annotation": {"add", "delete"},
    "predictions/prediction": {"add", "delete"},
    "jobs/job": {"add", "delete"},
    "releases/release": {"delete"},
    "grounding/groundingsetup": set(),
    "grounding/descriptionsetup": set(),
    "grounding/groundinglease": {"add", "delete"},
    "grounding/regionannotation": {"add", "delete"},
    "grounding/descriptionannotation": {"add", "delete"},
    "comparisons/comparisonsetup": set(),
    "comparisons/comparison": {"add", "delete"},
    "comparisons/pairassignment": {"add", "delete"},
}
_ADMIN_MODEL_URL = re.compile(r"admin/(?P<model>\w+/\w+)/(?P<view>add/|<path:object_id>/(?:history/|delete/|change/)?)?")


# What the group "Project manager" may do in the admin (its permissions, migration raters 0002); nothing elsewhere.
MANAGER_MAY: dict[str, set[str]] = {
    "projects/project": {"view", "change"},
    "raters/membership": {"view", "change"},
    "releases/release": {"view"},
}


def _admin_model_rows(model: str, object_exists: bool) -> dict[str, Row]:
    refused = ADMIN_MODELS[model]
    may = MANAGER_MAY.get(model, set())
    found = "200" if object_exists else "302"  # a missing object sends the admin back to the index

    def row(staff: str, admin_gets: str, manager: str) -> Row:
        return Row("GET", "admin-login", "admin-login", staff, admin_gets, manager=manager)

    def manager_gets(action: str, answer: str) -> str:
        return answer if action in may and action not in refused else "403"

    viewer = "view" if may else "none"  # the change permission implies the view one
    return {
        "": row("403", "200", manager_gets(viewer, "200")),
        "add/": row("403", "403" if "add" in refused else "200", manager_gets("add", "200")),
        "<path:object_id>/history/": row("403" if object_exists else "302", found, manager_gets(viewer, found) if object_exists else "302"),
        "<path:object_id>/delete/": row("403", "403" if "delete" in refused else found, manager_gets("delete", found)),
        "<path:object_id>/change/": row("403", found, manager_gets(viewer, found)),
        "<path:object_id>/": row("302", "302", "302"),
    }


def _registered_admin_models() -> dict[str, type]:
    return {f"{model._meta.app_label}/{model._meta.model_name}": model for model in admin.site._registry}


def _default_values(world: World) -> dict[str, object]:
    from django.contrib.contenttypes.models import ContentType

    return {
        "slug": world.open_project.slug,
        "pk": world.open_project.pk,
        "rater_id": world.other.pk,
        "assignment_id": world.other_lease.pk,
        "lease_id": 999_999,
        "id": world.other.pk,
        "content_type_id": ContentType.objects.get_for_model(world.open_project).pk,
        "object_id": world.open_project.pk,
        "app_label": "labeling",
        "url": "no-such-page/",
        "name": world.images[0].display.name,
    }


def matrix_for(world: World) -> list[tuple[str, str, Row]]:
    """(pattern, path, row) for every pattern the project serves; AssertionError naming what to add."""
    registered = _registered_admin_models()
    defaults = _default_values(world)
    missing: list[str] = []
    planned: list[tuple[str, str, Row]] = []
    for served, url in url_patterns():
        pattern = APP_INDEX if _APP_INDEX_PATTERN.fullmatch(served) else served
        match = _ADMIN_MODEL_URL.fullmatch(pattern)
        if match and match["model"] in registered:
            model = match["model"]
            if model not in ADMIN_MODELS:
                message = f"admin model {model!r}: add it to ADMIN_MODELS in {ME} with the views its admin refuses"
                if message not in missing:
                    missing.append(message)
                continue
            first = registered[model]._default_manager.order_by("pk").values_list("pk", flat=True).first()
            row = _admin_model_rows(model, first is not None)[match["view"] or ""]
            planned.append((pattern, fill(pattern, {"object_id": first or 999_999}), row))
            continue
        if pattern not in MATRIX:
            missing.append(
                f"URL pattern {pattern!r} (view {url.lookup_str}): add a row to MATRIX in {ME} saying what "
                f"anonymous, rater, staff and admin get"
            )
            continue
        for row in MATRIX[pattern]:
            values = {key: value(world) if callable(value) else value for key, value in row.values.items()}
            planned.append((pattern, fill(served, {**defaults, **values}), row))
    assert not missing, "the authorization matrix does not cover every URL:\n" + "\n".join(missing)
    return planned


def send(client, row: Row, path: str):  # type: ignore[no-untyped-def]
    if row.method == "GET":
        return client.get(path)
    if path.startswith("/api/"):
        return client.generic(row.method, path, json.dumps(row.data or {}), content_type="application/json")
    return client.generic(row.method, path, "&".join(f"{k}={v}" for k, v in (row.data or {}).items()),
                          content_type="application/x-www-form-urlencoded")


@pytest.fixture
def world(realqa_schema) -> World:  # type: ignore[no-untyped-def]
    return build_world(realqa_schema)


def test_every_url_pattern_has_a_row_and_every_role_gets_what_the_row_says(world):
    wrong: list[str] = []
    clients = {role: world.client(role) for role in ROLES}  # no row signs anyone out (logout is GET here)
    for pattern, path, row in matrix_for(world):
        for role in ROLES:
            got = outcome(send(clients[role], row, path))
            if role == "outsider":  # asking for work joins an open project: the outsider stays one for every row
                Membership.objects.filter(rater=world.users["outsider"]).delete()
            if got != row.expected(role):
                wrong.append(f"{row.method} {path} ({pattern}) as {role}: expected {row.expected(role)}, got {got}")
    assert not wrong, "answers that differ from the authorization matrix:\n" + "\n".join(wrong)


def test_the_matrix_names_no_pattern_the_project_does_not_serve():
    served = {APP_INDEX if _APP_INDEX_PATTERN.fullmatch(pattern) else pattern for pattern, _ in url_patterns()}
    registered = _registered_admin_models()
    from django.apps import apps

    def installed(pattern: str) -> bool:
        return apps.is_installed(APP_OF_PATTERN.get(pattern, "annotation_site.core"))

    assert sorted(p for p in set(MATRIX) - served if installed(p)) == []
    admin_apps = {config.label for config in apps.get_app_configs()}
    assert sorted(m for m in set(ADMIN_MODELS) - set(registered) if m.split("/")[0] in admin_apps) == []


def test_a_rater_reads_nothing_of_other_raters_model_guesses_or_other_projects_anywhere(world):
    """Every page and API answer a rater can reach, searched for what they must never see."""
    rater = world.client("rater")
    seen: list[str] = []
    for pattern, path, row in matrix_for(world):
        response = send(rater, row, path)
        body = b"".join(response.streaming_content) if response.streaming else response.content  # photos stream
        seen.append(f"--- {row.method} {path}\n" + body.decode(errors="replace"))
        if response.status_code in (301, 302):
            seen.append(rater.get(response["Location"]).content.decode(errors="replace"))
    # What the rater's own work shows: a submit answers with the next assignment, never a model guess.
    own = rater.post(f"/api/v1/projects/{world.open_project.slug}/next", {}, content_type="application/json").json()
    submitted = rater.post(f"/api/v1/assignments/{own['id']}/submit", {"labels": REALQA_LABELS}, content_type="application/json")
    seen.append(json.dumps(own) + submitted.content.decode())
    assert "prediction" not in own and "prediction" not in submitted.json().get("next", {})

    everything = "\n".join(seen)
    leaks = [secret for secret in world.secrets if secret in everything]
    assert not leaks, f"a rater could read {leaks}"


def test_with_pre_annotation_on_the_rater_sees_the_models_guess(world):
    """The other side of the rule above: the guess appears exactly when the project asks for it."""
    world.open_project.pre_annotation = True
    world.open_project.save()
    rater = world.client("rater")
    own = rater.post(f"/api/v1/projects/{world.open_project.slug}/next", {}, content_type="application/json").json()
    assert own["prediction"]["values"] == {"quality": 4.25}
