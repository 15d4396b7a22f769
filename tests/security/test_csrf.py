"""CSRF on every form: with a browser's session, a POST to any URL the project serves is refused (403)
unless it carries the CSRF token; with the token the same forms work. API calls with a token (not a
session) need none: a cross-site page cannot send the Authorization header."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import api_client_for

from .test_authorization_matrix import matrix_for
from .world import ROLES, World, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(realqa_schema) -> World:  # type: ignore[no-untyped-def]
    return build_world(realqa_schema)


def _token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]


def test_every_url_refuses_a_session_post_without_the_csrf_token(world):
    """Signed in as each role, a POST without the token is refused before any view runs."""
    paths = sorted({path for _, path, _ in matrix_for(world)})
    accepted: list[str] = []
    for role in ROLES[1:]:
        client = world.client(role, enforce_csrf_checks=True)
        for path in paths:
            form = client.post(path, {"action": "exclude", "files": ""})
            json_body = client.post(path, {"labels": REALQA_LABELS}, content_type="application/json")
            for kind, response in (("form", form), ("json", json_body)):
                # Django's CSRF page or DRF's "CSRF Failed"; the Swagger page's HTML renderer says only "403 Forbidden".
                if response.status_code != 403 or not (b"CSRF" in response.content or response.content == b"403 Forbidden"):
                    accepted.append(f"{kind} POST {path} as {role}: {response.status_code}")
    assert not accepted, "POSTs accepted without a CSRF token:\n" + "\n".join(accepted)


def test_the_login_form_needs_its_token_and_works_with_it(world):
    client = Client(enforce_csrf_checks=True)
    refused = client.post("/accounts/login/", {"username": "rater-alice", "password": "world-pass-123"})
    assert refused.status_code == 403

    token = _token(client.get("/accounts/login/").content.decode())
    signed_in = client.post(
        "/accounts/login/", {"username": "rater-alice", "password": "world-pass-123", "csrfmiddlewaretoken": token}
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"


def test_logout_needs_the_token(world):
    client = world.client("rater", enforce_csrf_checks=True)
    assert client.post("/accounts/logout/").status_code == 403
    assert client.get("/").status_code == 200  # still signed in
    token = client.get("/").cookies.get("csrftoken") or client.cookies["csrftoken"]
    assert client.post("/accounts/logout/", HTTP_X_CSRFTOKEN=token.value).status_code == 302
    assert client.get("/").status_code == 302


def test_the_labeling_page_hands_its_script_the_token_that_the_rater_api_then_requires(world):
    client = world.client("rater", enforce_csrf_checks=True)
    client.get(f"/projects/{world.open_project.slug}/label/")  # sets the csrftoken cookie (ensure_csrf_cookie)
    token = client.cookies["csrftoken"].value
    url = f"/api/v1/projects/{world.open_project.slug}/next"

    assert client.post(url, {}, content_type="application/json").status_code == 403
    assert client.post(url, {}, content_type="application/json", HTTP_X_CSRFTOKEN=token).status_code == 200


def test_staff_forms_work_with_their_token(world):
    staff = world.client("manager", enforce_csrf_checks=True)
    page = staff.get(f"/staff/projects/{world.open_project.slug}/raters/").content.decode()
    response = staff.post(
        f"/staff/projects/{world.open_project.slug}/raters/{world.other.pk}/exclusion",
        {"action": "reinstate", "csrfmiddlewaretoken": _token(page)},
    )
    assert response.status_code == 302

    admin = world.client("admin", enforce_csrf_checks=True)
    upload = f"/admin/projects/project/{world.open_project.pk}/upload/"
    token = _token(admin.get(upload).content.decode())
    assert admin.post(upload, {"csrfmiddlewaretoken": token}).status_code == 200  # the form, saying what is missing


def test_a_script_with_an_api_token_needs_no_csrf_token(world):
    api = api_client_for(world.users["rater"])
    api.handler.enforce_csrf_checks = True
    response = api.post(f"/api/v1/projects/{world.open_project.slug}/next", {}, format="json")
    assert response.status_code == 200


def test_the_roles_cover_every_signed_in_kind_of_user():
    assert ROLES == ("anonymous", "rater", "outsider", "staff", "manager", "admin")
