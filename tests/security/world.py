"""A small world for the security tests: an open and a closed project, a rater of the open one, an outsider (a
rater who joined no project), another rater with a label and a lease, a staff member without permissions, a
project manager (staff in the group "Project manager" that migration raters 0002 makes), a superuser, a done
release with its zip, and model guesses that raters must not see (pre-annotation is off). Strings marked SECRET
must never reach the rater."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from annotation_site.core.staffpages import PROJECT_MANAGER_GROUP, PROJECT_MANAGER_PERMISSIONS
from annotation_site.labeling.assignments import assignment_next, assignment_submit, membership_ensure
from annotation_site.predictions.services import prediction_store
from annotation_site.projects.services import project_create
from annotation_site.raters.services import rater_create
from annotation_site.releases.models import Release
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import make_images

PASSWORD = "world-pass-123"
SECRET_LABEL_TEXT = "SECRET-label-of-bob-7f1c"
SECRET_REASON_TEXT = "SECRET-reason-of-bob-2b9e"
SECRET_MODEL_VERSION = "SECRET-model-v9"
SECRET_PROJECT_NAME = "SECRET closed project"
# "outsider": a rater who joined no project (the matrix takes back any membership a request of theirs made);
# "staff": staff without permissions; "manager": staff in the group "Project manager"; "admin": a superuser.
ROLES = ("anonymous", "rater", "outsider", "staff", "manager", "admin")


@dataclass
class World:
    open_project: object
    closed_project: object
    users: dict[str, object]
    other: object  # another rater of the open project
    other_lease: object  # an assignment the other rater holds
    other_annotation: object
    images: list = field(default_factory=list)
    closed_images: list = field(default_factory=list)  # of the closed project, where the rater is not a member
    release: object = None  # a done release of the open project, with its zip in the media storage

    def client(self, role: str, **options: object) -> Client:
        client = Client(**options)
        if role != "anonymous":
            client.force_login(self.users[role])
        return client

    @property
    def secrets(self) -> list[str]:
        """What no rater may ever read: the other rater's label, reason, name and e-mail, the model's
        guess while pre-annotation is off, and the closed project."""
        return [
            SECRET_LABEL_TEXT,
            SECRET_REASON_TEXT,
            self.other.get_username(),
            self.other.email,
            SECRET_MODEL_VERSION,
            SECRET_PROJECT_NAME,
        ]


def build_world(realqa_schema: dict) -> World:
    open_project = project_create(slug="open-project", name="Open project", schema_definition=realqa_schema)
    open_project.gold_rate = 0
    open_project.overlap = open_project.max_overlap = 3
    open_project.pre_annotation = False
    open_project.save()
    images = make_images(open_project, 4, start_seed=3000)

    closed = project_create(slug="closed-project-x9", name=SECRET_PROJECT_NAME, schema_definition=realqa_schema)
    closed.open_to_all_raters = False
    closed.gold_rate = 0
    closed.save()
    closed_images = make_images(closed, 1, start_seed=3100)

    User = get_user_model()
    users = {
        "rater": rater_create(username="rater-alice", password=PASSWORD, email="alice@example.org"),
        "outsider": rater_create(username="rater-frank", password=PASSWORD, email="frank@example.org"),
        "staff": rater_create(username="staff-carol", password=PASSWORD, email="carol@example.org", is_staff=True),
        "manager": rater_create(username="manager-erin", password=PASSWORD, email="erin@example.org", is_staff=True),
        "admin": User.objects.create_superuser("admin-dave", "dave@example.org", PASSWORD),
    }
    users["manager"].groups.add(Group.objects.get(name=PROJECT_MANAGER_GROUP))
    other = rater_create(username="rater-bob-x7", password=PASSWORD, email="bob-x7@example.org")
    membership_ensure(project=open_project, rater=users["rater"])  # the rater labels in the open project

    labelled = assignment_next(project=open_project, rater=other)
    labels = {
        **REALQA_LABELS,
        "subject_background": SECRET_LABEL_TEXT,
        "composition": {"value": 6, "reason": SECRET_REASON_TEXT},
    }
    result = assignment_submit(assignment_id=labelled.pk, rater=other, labels=labels, idempotency_key="bob-1")
    other_lease = result.next
    for image in images:
        prediction_store(image=image, model_version=SECRET_MODEL_VERSION, values={"quality": 4.25})
    archive = default_storage.save("releases/open-project-v1.zip", ContentFile(b"PK\x05\x06" + bytes(18)))  # an empty zip
    release = Release.objects.create(
        project=open_project, version=1, schema_version=open_project.current_schema, status=Release.Status.DONE,
        output_dir="unused", archive=archive,
    )
    return World(open_project, closed, users, other, other_lease, result.annotation, images, closed_images, release)


def grant_permissions(user, *permissions: str) -> None:  # type: ignore[no-untyped-def]
    """Give a user permissions ("app_label.codename") directly; by default those of a project manager. For tests
    whose database is emptied between tests (transactional ones), where the migration's group is gone."""
    for name in permissions or PROJECT_MANAGER_PERMISSIONS:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def url_patterns() -> Iterator[tuple[str, URLPattern]]:
    """Every URL pattern the project serves, as the full pattern string and the pattern."""

    def walk(patterns: list, prefix: str) -> Iterator[tuple[str, URLPattern]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern

    yield from walk(get_resolver().url_patterns, "")


_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>|\(\?P<(?P<group>[^>]+)>[^)]*\)")


def fill(pattern: str, values: dict[str, object]) -> str:
    """A concrete path for a pattern string, with each parameter taken from values (KeyError names it)."""
    path = pattern.replace("^", "").replace("$", "")

    def value(match: re.Match) -> str:
        name = match.group("name") or match.group("group")
        return str(values[name])

    return "/" + _PARAM.sub(value, path)


def outcome(response: object) -> str:
    """What a caller got, in the matrix's words: "login" / "admin-login" for a redirect to a login page,
    "302" for any other redirect, else the status code."""
    status = response.status_code  # type: ignore[attr-defined]
    if status in (301, 302):
        location = response["Location"]  # type: ignore[index]
        if location.startswith("/accounts/login/"):
            return "login"
        if location.startswith("/admin/login/"):
            return "admin-login"
        return "302"
    return str(status)
