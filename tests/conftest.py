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


def make_images(project, count: int, *, start_seed: int = 1000) -> list:  # type: ignore[no-untyped-def]
    """Small distinct photos imported into the project, in id order."""
    from annotation_site.images.models import Image
    from annotation_site.images.services import images_import
    from annotation_site.images.sources import BytesSource
    from tests.annotation_site.images import corpus

    sources = [
        BytesSource(f"img-{start_seed + i}.jpg", corpus.photo_jpeg(seed=start_seed + i, width=96, height=72))
        for i in range(count)
    ]
    report = images_import(project=project, sources=sources)
    return list(Image.objects.filter(pk__in=[line.image_id for line in report.lines]).order_by("id"))


def api_client_for(user):  # type: ignore[no-untyped-def]
    """A DRF client authenticated the way scripts are: with the user's API token."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture(autouse=True)
def _forget_process_caches() -> None:
    """Per-process caches key on primary keys, which SQLite reuses after a test's rollback."""
    from django.apps import apps

    if not apps.ready:  # a pure-module run without the Django plugin has no caches to clear
        return
    from annotation_site.core import authentication
    from annotation_site.labeling import assignments

    assignments._active_members.clear()
    authentication._cache.clear()
