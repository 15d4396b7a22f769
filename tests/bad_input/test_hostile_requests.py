"""Hostile requests against the rater API and the staff forms: each gets a clear 4xx naming the problem,
never a 500, and a refused submit stores nothing."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from annotation_site.labeling.models import Annotation, Assignment
from annotation_site.raters.services import rater_create
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import api_client_for, make_images

pytestmark = pytest.mark.django_db

LABELS_JSON = json.dumps(REALQA_LABELS)


@pytest.fixture
def leased(project, rater):  # type: ignore[no-untyped-def]
    """A rater's API client and the assignment it holds."""
    project.gold_rate = 0
    project.overlap = project.max_overlap = 2
    project.save()
    make_images(project, 3)
    client = api_client_for(rater)
    assignment = client.post("/api/v1/projects/realqa-test/next", {}, format="json").json()
    return client, assignment


def _submit_raw(client, assignment_id: int, body: str | bytes, content_type: str = "application/json"):  # type: ignore[no-untyped-def]
    return client.generic("POST", f"/api/v1/assignments/{assignment_id}/submit", body, content_type=content_type)


def _nothing_stored(assignment_id: int) -> bool:
    return not Annotation.objects.exists() and Assignment.objects.get(pk=assignment_id).status == "leased"


@pytest.mark.parametrize(
    "body, says",
    [
        ('{"labels": {"quality": NaN}}', "Out of range float values are not JSON compliant: 'NaN'"),
        ('{"labels": %s, "seconds_spent": Infinity}' % LABELS_JSON, "'Infinity'"),
        ('{"labels": %s, "seconds_spent": -Infinity}' % LABELS_JSON, "'-Infinity'"),
        (LABELS_JSON.join(['{"labels": ', ', "seconds_spent": 1e309}']), "seconds_spent"),
        (json.dumps({"labels": REALQA_LABELS}).replace("6.8", "1e309"), "must be a finite number (got Infinity)"),
        (json.dumps({"labels": REALQA_LABELS}).replace("6.8", "-1e309"), "must be a finite number (got -Infinity)"),
        (json.dumps({"labels": REALQA_LABELS}).replace("6.8", "11"), "must be between"),
        (json.dumps({"labels": REALQA_LABELS}).replace("6.8", "1e-320"), "must be between"),
        (json.dumps({"labels": REALQA_LABELS}).replace('"value": 7', '"value": 7.5'), "must be a whole number"),
        (json.dumps({"labels": REALQA_LABELS}).replace("6.8", "true"), "must be a number (got true)"),
        (json.dumps({"labels": REALQA_LABELS}).replace("6.8", '"6.8"'), "must be a number"),
        (json.dumps({"labels": REALQA_LABELS}).replace('"good"', "[]"), "clarity"),
        (json.dumps({"labels": REALQA_LABELS, "seconds_spent": 86401}), "seconds_spent"),
        (json.dumps({"labels": REALQA_LABELS, "seconds_spent": "slow"}), "seconds_spent"),
        (json.dumps({"labels": REALQA_LABELS, "idempotency_key": "k" * 65}), "idempotency_key"),
        (json.dumps({"labels": REALQA_LABELS, "idempotency_key": ["k"]}), "idempotency_key"),
        (json.dumps({"labels": REALQA_LABELS, "client": {"x": "y" * 3000}}), "at most 2000 characters of JSON"),
        (json.dumps({"labels": REALQA_LABELS, "client": "chrome"}), "client"),
        (json.dumps({"labels": REALQA_LABELS, "rater": 2}), "rater"),  # unknown field, refused by name
        (json.dumps({"labels": {**REALQA_LABELS, "clarty": "good"}}), "unknown field"),
        (json.dumps({"labels": {**REALQA_LABELS, "subject_background": "x" * 100_000}}), "must be at most"),
        (json.dumps({"labels": {**REALQA_LABELS, "subject_background": "a\u0000b"}}), "NUL character"),
        ('{"labels": {"subject_background": "\\ud800"}}', "unpaired surrogate"),
        ('{"labels": {"\\u0000": 1}}', "NUL character"),
        ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
        ('{"labels": ' + '{"a": ' * 100 + "1" + "}" * 100 + "}", "nested deeper than 64 levels"),
        ('{"labels": {', "JSON parse error"),
        ('{"labels": %s}}' % LABELS_JSON, "JSON parse error"),
        ("", "labels"),
        ("null", "labels"),
        ("[]", "expected a JSON object"),
        ('"labels"', "expected a JSON object"),
        ("12", "expected a JSON object"),
        (b'{"labels": "\xff\xfe"}', "can't decode byte 0xff"),
        ('{"labels": %s, "seconds_spent": %s}' % (LABELS_JSON, "9" * 5000), "JSON parse error"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
def test_a_hostile_submit_body_gets_400_naming_the_problem_and_stores_nothing(leased, body, says):
    client, assignment = leased
    response = _submit_raw(client, assignment["id"], body)
    assert response.status_code == 400, response.content[:300]
    assert says in response.content.decode("unicode_escape"), response.content[:300]
    assert _nothing_stored(assignment["id"])


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "image/jpeg", "", "application/json-patch+json"])
def test_a_submit_in_another_content_type_gets_415_and_stores_nothing(leased, content_type):
    client, assignment = leased
    response = _submit_raw(client, assignment["id"], json.dumps({"labels": REALQA_LABELS}), content_type)
    assert response.status_code == 415 and "Unsupported media type" in response.json()["detail"]
    assert _nothing_stored(assignment["id"])


def test_a_form_encoded_submit_is_refused_for_its_missing_labels_object(leased):
    client, assignment = leased
    response = _submit_raw(client, assignment["id"], "labels=good&quality=6", "application/x-www-form-urlencoded")
    assert response.status_code == 400 and response.json()["quality"] == ["unknown field"]
    assert _nothing_stored(assignment["id"])


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=64 * 1024)
def test_an_oversized_body_gets_413_before_it_is_read(leased):
    client, assignment = leased
    body = json.dumps({"labels": REALQA_LABELS, "client": {"padding": "x" * 100_000}})
    response = _submit_raw(client, assignment["id"], body)
    assert response.status_code == 413
    assert response.json()["detail"] == "request body too large: 0.1 MB exceeds the 0.1 MB limit"
    assert _nothing_stored(assignment["id"])


def test_the_body_limit_is_the_django_setting_of_5_mb() -> None:
    from django.conf import settings

    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 5 * 1024 * 1024


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_other_methods_on_the_rater_endpoints_get_405(leased, method):
    client, assignment = leased
    for url in (
        "/api/v1/projects/realqa-test/next",
        f"/api/v1/assignments/{assignment['id']}/submit",
        f"/api/v1/assignments/{assignment['id']}/skip",
    ):
        assert client.generic(method, url, "{}", content_type="application/json").status_code == 405, url
    assert client.generic(method, "/api/v1/projects/realqa-test/schema").status_code == (200 if method == "GET" else 405)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"exclude": "3"}, "exclude"),
        ({"exclude": [0]}, "exclude"),
        ({"exclude": [-1]}, "exclude"),
        ({"exclude": [1.5]}, "exclude"),
        ({"exclude": list(range(1, 12))}, "exclude"),
        ({"exclude": [None]}, "exclude"),
        ({"exclude": [], "project": "other"}, "project"),
    ],
)
def test_a_hostile_next_body_gets_400_naming_the_field(leased, body, field):
    client, _ = leased
    response = client.post("/api/v1/projects/realqa-test/next", body, format="json")
    assert response.status_code == 400 and field in response.json()


@pytest.mark.parametrize("body", [{"reason": "bored"}, {"reason": None}, {"reason": 1}, {}, {"reason": "cannot_judge", "x": 1}])
def test_a_hostile_skip_body_gets_400_and_changes_nothing(leased, body):
    client, assignment = leased
    response = client.post(f"/api/v1/assignments/{assignment['id']}/skip", body, format="json")
    assert response.status_code == 400
    assert Assignment.objects.get(pk=assignment["id"]).status == "leased"


@pytest.mark.parametrize("assignment_id", ["0", "99999999", "9223372036854775807", "99999999999999999999999"])
def test_unknown_assignment_ids_get_404_whatever_their_size(leased, assignment_id):
    client, _ = leased
    response = _submit_raw(client, assignment_id, json.dumps({"labels": REALQA_LABELS}))
    assert response.status_code == 404 and response.json()["detail"] == f"no assignment #{assignment_id} of yours"


def test_another_raters_assignment_looks_exactly_like_one_that_does_not_exist(leased):
    client, assignment = leased
    thief = api_client_for(rater_create(username="thief", password="thief-pass-123"))
    body = json.dumps({"labels": REALQA_LABELS, "idempotency_key": "steal"})

    theirs = _submit_raw(thief, assignment["id"], body)
    missing = _submit_raw(thief, 987654, body)
    skipped = thief.post(f"/api/v1/assignments/{assignment['id']}/skip", {"reason": "cannot_judge"}, format="json")

    assert theirs.status_code == missing.status_code == skipped.status_code == 404
    assert theirs.json()["detail"] == f"no assignment #{assignment['id']} of yours"
    assert "image" not in theirs.content.decode() and "rater1" not in theirs.content.decode()
    assert _nothing_stored(assignment["id"])


def test_a_replayed_submit_is_idempotent_and_a_replay_without_the_key_is_a_conflict(leased):
    client, assignment = leased
    body = json.dumps({"labels": REALQA_LABELS, "idempotency_key": "once"})

    first = _submit_raw(client, assignment["id"], body)
    replays = [_submit_raw(client, assignment["id"], body) for _ in range(3)]
    keyless = _submit_raw(client, assignment["id"], json.dumps({"labels": REALQA_LABELS}))
    other_key = _submit_raw(client, assignment["id"], json.dumps({"labels": REALQA_LABELS, "idempotency_key": "twice"}))

    assert first.status_code == 201
    assert {response.status_code for response in replays} == {200}
    assert {response.json()["annotation"]["id"] for response in replays} == {first.json()["annotation"]["id"]}
    assert keyless.status_code == other_key.status_code == 409
    assert "already submitted" in keyless.json()["detail"]
    assert Annotation.objects.count() == 1


def test_a_replayed_skip_is_a_conflict_not_a_second_skip(leased):
    client, assignment = leased
    url = f"/api/v1/assignments/{assignment['id']}/skip"
    assert client.post(url, {"reason": "cannot_judge"}, format="json").status_code in (200, 204)
    again = client.post(url, {"reason": "broken_image"}, format="json")
    assert again.status_code == 409
    assert Assignment.objects.get(pk=assignment["id"]).skip_reason == "cannot_judge"


def test_an_unknown_project_slug_gets_404_everywhere(leased, client, rater):
    api, _ = leased
    assert api.post("/api/v1/projects/no-such-project/next", {}, format="json").status_code == 404
    assert api.get("/api/v1/projects/no-such-project/schema").status_code == 404
    client.force_login(rater)
    assert client.get("/projects/no-such-project/label/").status_code == 404


def test_staff_forms_refuse_hostile_input_without_a_500(project, rater, admin_client):
    url = f"/staff/projects/{project.slug}/raters/{rater.pk}/exclusion"
    assert admin_client.post(url, {"action": "exclude"}).status_code == 404  # not a member of the project
    assert admin_client.post("/staff/projects/realqa-test/raters/99999999999999999999/exclusion", {}).status_code == 404
    assert admin_client.get(url).status_code == 405
    assert admin_client.post(f"/admin/projects/project/{project.pk}/upload/", {}).status_code == 200  # the form again
    response = admin_client.post(
        f"/admin/projects/project/{project.pk}/upload/", {}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400 and "files" in response.json()["errors"]
    assert admin_client.get("/admin/projects/project/99999999/upload/").status_code == 404
