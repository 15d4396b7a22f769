from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parent.parent
REALQA_SCHEMA = REPO / "fixtures" / "realqa_schema.json"
ONE_OF_EACH_SCHEMA = REPO / "tests" / "data" / "one_of_each_schema.json"


@pytest.fixture
def realqa_schema() -> dict:
    return json.loads(REALQA_SCHEMA.read_text())


@pytest.fixture
def one_of_each_schema() -> dict:
    return json.loads(ONE_OF_EACH_SCHEMA.read_text())


@pytest.fixture
def project(db, realqa_schema):  # type: ignore[no-untyped-def]
    from annotation_site.projects.services import project_create

    return project_create(slug="realqa-test", name="RealQA test", schema_definition=realqa_schema)


@pytest.fixture
def rater(db):  # type: ignore[no-untyped-def]
    from annotation_site.raters.services import rater_create

    return rater_create(username="rater1", password="rater-pass-123")


@pytest.fixture
def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)
