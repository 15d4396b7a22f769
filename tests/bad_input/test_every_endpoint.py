"""Every POST endpoint of the API the project serves (found by walking the URL patterns, so a new one is
covered the day it appears) answers hostile bodies with a 4xx, never a 5xx, and stores nothing."""

from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.test import override_settings

from tests.conftest import api_client_for
from tests.security.test_authorization_matrix import matrix_for
from tests.security.world import World, build_world

from .encodings import FORM_ENCODINGS, send_form

pytestmark = pytest.mark.django_db

HOSTILE_BODIES: list[tuple[str, str]] = [
    ("NaN", '{"labels": NaN, "reason": NaN, "boxes": NaN, "exclude": NaN}'),
    ("Infinity", '{"seconds_spent": Infinity, "exclude": [-Infinity]}'),
    ("1e309", '{"labels": {"quality": 1e309}, "seconds_spent": 1e309, "exclude": [1e309], "boxes": [[1e309, 0, 1, 1]]}'),
    ("huge integer", '{"exclude": [%s], "seconds_spent": %s}' % ("9" * 400, "9" * 400)),
    ("deep nesting", "[" * 20_000 + "]" * 20_000),
    ("NUL", json.dumps({"reason": "a\u0000b", "labels": {"\u0000": "x"}, "detail": "\u0000"})),
    ("lone surrogate", '{"reason": "\\udc00", "detail": "\\ud83d"}'),
    ("malformed", '{"labels": {"quality": 5,'),
    ("not an object", '["labels", 1, null]'),
    ("a string", '"labels"'),
    ("wrong types", json.dumps({"labels": [1, 2], "exclude": {"a": 1}, "reason": ["x"], "boxes": "all", "seconds_spent": {}})),
    ("unknown fields", json.dumps({"is_staff": True, "rater": 1, "project": "other", "__proto__": {}})),
    ("operator injection", json.dumps({"reason": {"$gt": ""}, "labels": {"quality": {"$ne": None}}})),
    ("long text", json.dumps({"reason": "x" * 100_000, "detail": "y" * 100_000, "idempotency_key": "k" * 10_000})),
]


def _row_counts() -> dict[str, int]:
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model.__module__.startswith("annotation_site.")
    }


def _api_posts(world: World) -> list[str]:
    return sorted({path for pattern, path, row in matrix_for(world) if row.method == "POST" and path.startswith("/api/")})


@pytest.fixture
def world(realqa_schema) -> World:  # type: ignore[no-untyped-def]
    return build_world(realqa_schema)


def test_hostile_bodies_get_4xx_from_every_api_endpoint_and_store_nothing(world):
    client = api_client_for(world.users["rater"])
    paths = _api_posts(world)
    assert len(paths) >= 4
    before = _row_counts()
    wrong: list[str] = []
    for path in paths:
        for name, body in HOSTILE_BODIES:
            response = client.generic("POST", path, body, content_type="application/json")
            if not 400 <= response.status_code < 500:
                wrong.append(f"{name} -> POST {path}: {response.status_code} {response.content[:200]!r}")
    assert wrong == []
    assert _row_counts() == before


def _as_form(body: str) -> dict[str, str]:
    """A hostile JSON body as a form: each top-level value as text (JSON text unless a string); a body that is
    not a JSON object goes whole into the JSON fields."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return {"labels": body, "boxes": body, "brief": body, "reason": body}
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in data.items()}


@pytest.mark.parametrize("encoding", FORM_ENCODINGS)
def test_hostile_bodies_as_forms_get_4xx_from_every_api_endpoint_and_store_nothing(world, encoding):
    client = api_client_for(world.users["rater"])
    paths = _api_posts(world)
    before = _row_counts()
    wrong: list[str] = []
    for path in paths:
        for name, body in HOSTILE_BODIES:
            response = send_form(client, path, _as_form(body), encoding)
            if not 400 <= response.status_code < 500:
                wrong.append(f"{name} -> POST {path}: {response.status_code} {response.content[:200]!r}")
    assert wrong == []
    assert _row_counts() == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "text/html", "application/octet-stream"])
def test_every_api_endpoint_refuses_other_content_types_with_415(world, content_type):
    client = api_client_for(world.users["rater"])
    for path in _api_posts(world):
        response = client.generic("POST", path, "<labels>1</labels>", content_type=content_type)
        assert response.status_code == 415, (path, response.status_code)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_every_api_endpoint_refuses_an_oversized_body_with_413(world):
    client = api_client_for(world.users["rater"])
    before = _row_counts()
    for path in _api_posts(world):
        response = client.generic("POST", path, json.dumps({"padding": "x" * 20_000}), content_type="application/json")
        assert response.status_code == 413 and "too large" in response.json()["detail"], path
    assert _row_counts() == before
