"""Hostile bodies sent to LIVE objects: a labeling assignment, a comparison pair, a region lease and a
description lease that the rater really holds, so that the body is validated (an unknown id answers 404 before
reading it). Every hostile value (nested too deeply, a NUL character, half a surrogate pair) goes in each of the
encodings the API accepts: JSON, a urlencoded form and a multipart form. Each gets 400 naming the field, never a
500, and nothing is stored: not an answer, and the lease is still held."""

from __future__ import annotations

import json

import pytest
from django.apps import apps

from annotation_site.comparisons.models import PairAssignment
from annotation_site.comparisons.services import comparison_setup_save
from annotation_site.grounding.models import GroundingLease
from annotation_site.grounding.services import description_setup_save, grounding_setup_save
from annotation_site.labeling.models import Assignment
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import api_client_for, make_images

from .encodings import send_form

pytestmark = pytest.mark.django_db

DEEP = "@@deep@@"  # stands for a list nested 100,000 deep (no Python object can be nested that deep)
DEEP_JSON = "[" * 100_000 + "]" * 100_000
NUL = "a\x00b"
SURROGATE = "a\ud800b"
HOSTILE = {"deep": DEEP, "NUL": NUL, "lone surrogate": SURROGATE}
QUESTIONS = [{"key": "subject_sharp", "text": "Is the main subject sharp?", "kind": "yes_no"}]

# Per task: the submit URL, a valid body, which of its fields hold JSON (a form sends those as JSON text;
# dict fields go as field[key]=value) and the places a hostile value is put, each with the field it must name.
TASKS = {
    "labeling": {
        "submit": "/api/v1/assignments/{id}/submit",
        "skip": "/api/v1/assignments/{id}/skip",
        "body": {"labels": REALQA_LABELS, "client": {"ua": "tests"}, "idempotency_key": "k-1", "seconds_spent": 5},
        "json_fields": (),
        "places": [("labels", "subject_background"), ("client", "ua"), ("idempotency_key", None)],
    },
    "comparisons": {
        "submit": "/api/v1/pair-assignments/{id}/submit",
        "skip": "/api/v1/pair-assignments/{id}/skip",
        "body": {"level": "better", "client": {"ua": "tests"}, "idempotency_key": "k-1", "seconds_spent": 5},
        "json_fields": (),
        "places": [("level", None), ("client", "ua"), ("idempotency_key", None)],
    },
    "regions": {
        "submit": "/api/v1/region-leases/{id}/submit",
        "skip": "/api/v1/region-leases/{id}/skip",
        "body": {
            "boxes": [{"box": [0.1, 0.2, 0.5, 0.6], "tag": "blur", "note": "the face is soft"}],
            "answers": {"subject_sharp": "no"},
            "idempotency_key": "k-1",
        },
        "json_fields": ("boxes", "answers"),
        "places": [("boxes", "note"), ("answers", "subject_sharp"), ("idempotency_key", None)],
    },
    "descriptions": {
        "submit": "/api/v1/description-leases/{id}/submit",
        "skip": "/api/v1/description-leases/{id}/skip",
        "body": {
            "brief": [{"distortion": "noise", "severity": "obvious"}],
            "detail": "A sharp photo of a cat, a little noisy in the shadows.",
            "idempotency_key": "k-1",
        },
        "json_fields": ("brief", "detail"),
        "places": [("brief", "severity"), ("detail", None), ("idempotency_key", None)],
    },
}
ENCODINGS = ("json", "form", "multipart")


@pytest.fixture
def live(project, rater):  # type: ignore[no-untyped-def]
    """The rater's API client and the id of the live lease it holds in each task."""
    project.gold_rate = 0
    project.overlap = project.max_overlap = 2
    project.save()
    make_images(project, 4)
    grounding_setup_save(project=project, enabled=True, region_questions=QUESTIONS, raters_per_image=2)
    description_setup_save(project=project, enabled=True, raters_per_image=2)
    comparison_setup_save(project=project, enabled=True, strategy="random", comparisons_per_image=3)
    client = api_client_for(rater)
    slug = project.slug
    leases = {}
    for task, url in [
        ("labeling", f"/api/v1/projects/{slug}/next"),
        ("comparisons", f"/api/v1/projects/{slug}/compare/next"),
        ("regions", f"/api/v1/projects/{slug}/regions/next"),
        ("descriptions", f"/api/v1/projects/{slug}/descriptions/next"),
    ]:
        response = client.post(url, {}, format="json")
        assert response.status_code == 200, (task, response.status_code, response.content[:200])
        leases[task] = response.json()["id"]
    return client, leases


def _with(body: dict, field: str, key: str | None, value: object) -> dict:
    body = json.loads(json.dumps(body))
    if key is None:
        body[field] = value
    elif isinstance(body[field], list):
        body[field][0][key] = value
    else:
        body[field][key] = value
    return body


def _json_text(value: object) -> str:
    return json.dumps(value).replace(json.dumps(DEEP), DEEP_JSON)


def _form_fields(body: dict, json_fields: tuple[str, ...]) -> dict[str, str]:
    """The body as form fields: JSON fields as JSON text, dicts as field[key], the rest as text."""
    fields: dict[str, str] = {}
    for name, value in body.items():
        if name in json_fields:
            fields[name] = _json_text(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                text = item if isinstance(item, str) else json.dumps(item)
                fields[f"{name}[{key}]"] = DEEP_JSON if item == DEEP else text
        else:
            fields[name] = DEEP_JSON if value == DEEP else str(value)
    return fields


def post(client, url: str, body: dict, encoding: str, json_fields: tuple = ()):  # type: ignore[no-untyped-def]
    """POST body in one encoding (JSON, or a form whose JSON fields hold JSON text)."""
    if encoding == "json":
        return client.generic("POST", url, _json_text(body), content_type="application/json")
    return send_form(client, url, _form_fields(body, json_fields), encoding)


def _row_counts() -> dict[str, int]:
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model.__module__.startswith("annotation_site.")
    }


def _leases_held(leases: dict[str, int]) -> bool:
    return (
        Assignment.objects.get(pk=leases["labeling"]).status == "leased"
        and PairAssignment.objects.get(pk=leases["comparisons"]).status == "leased"
        and GroundingLease.objects.get(pk=leases["regions"]).status == "leased"
        and GroundingLease.objects.get(pk=leases["descriptions"]).status == "leased"
    )


def _says(response) -> str:  # type: ignore[no-untyped-def]
    return response.content.decode("utf-8")


CASES = [
    pytest.param(task, field, key, hostile, encoding, id=f"{task}-{field}-{hostile}-{encoding}")
    for task, spec in TASKS.items()
    for field, key in spec["places"]
    for hostile in HOSTILE
    for encoding in ENCODINGS
    # A form has no nesting of its own outside JSON fields: there "deep" would only be a long text.
    if not (hostile == "deep" and encoding != "json" and key is not None and field not in spec["json_fields"])
]


def test_the_valid_bodies_of_these_tests_are_accepted_in_every_encoding(live):
    client, leases = live
    for task, spec in TASKS.items():
        # A form has no dict fields (field[key] is refused as an unknown field): the client details stay out,
        # and labels (which hold numbers) go as JSON only, below.
        body = {name: value for name, value in spec["body"].items() if name != "client"}
        if task == "labeling":
            continue
        response = post(client, spec["submit"].format(id=leases[task]), body, "multipart", spec["json_fields"])
        assert response.status_code == 201, (task, response.content[:300])
    labeling = TASKS["labeling"]
    response = post(client, labeling["submit"].format(id=leases["labeling"]), labeling["body"], "json")
    assert response.status_code == 201, response.content[:300]


@pytest.mark.parametrize("task, field, key, hostile, encoding", CASES)
def test_a_hostile_value_sent_to_a_live_lease_gets_400_naming_the_field_and_stores_nothing(
    live, task, field, key, hostile, encoding
):
    client, leases = live
    spec = TASKS[task]
    before = _row_counts()

    body = _with(spec["body"], field, key, HOSTILE[hostile])
    response = post(client, spec["submit"].format(id=leases[task]), body, encoding, spec["json_fields"])

    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert field in _says(response), response.content[:300]
    assert _row_counts() == before and _leases_held(leases)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_hostile_skip_reason_on_a_live_lease_gets_400_naming_the_field_and_changes_nothing(
    live, task, hostile, encoding
):
    client, leases = live
    before = _row_counts()

    response = post(client, TASKS[task]["skip"].format(id=leases[task]), {"reason": HOSTILE[hostile]}, encoding)

    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert "reason" in _says(response), response.content[:300]
    assert _row_counts() == before and _leases_held(leases)


@pytest.mark.parametrize("encoding", ("form", "multipart"))
def test_a_hostile_field_name_in_a_form_gets_400_and_stores_nothing(live, encoding):
    client, leases = live
    before = _row_counts()
    for name in ("note\x00", "note\ud800"):
        fields = {**_form_fields(TASKS["regions"]["body"], ("boxes", "answers")), name: "x"}
        response = send_form(client, TASKS["regions"]["submit"].format(id=leases["regions"]), fields, encoding)
        assert response.status_code == 400, (repr(name), response.status_code, response.content[:300])
    assert _row_counts() == before and _leases_held(leases)


@pytest.mark.parametrize("encoding", ("form", "multipart"))
@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_json_field_in_a_form_refuses_nan_and_infinity_as_the_json_body_does(live, encoding, constant):
    client, leases = live
    before = _row_counts()
    body = {"boxes": [], "answers": {"subject_sharp": "no"}}
    fields = {"boxes": f"[[{constant}, 0, 1, 1]]", "answers": json.dumps(body["answers"])}
    response = send_form(client, TASKS["regions"]["submit"].format(id=leases["regions"]), fields, encoding)
    assert response.status_code == 400 and "boxes" in _says(response), response.content[:300]
    assert _row_counts() == before and _leases_held(leases)
