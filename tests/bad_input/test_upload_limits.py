"""Large multipart bodies: only signed-in staff on the image upload page may send one over the ordinary body
limit (DATA_UPLOAD_MAX_MEMORY_SIZE); anyone else, anywhere else, gets 413 saying so, before the body is read or
spooled to disk, and nothing is stored."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from annotation_site.images.models import Image
from tests.annotation_site.images import corpus
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

LIMIT = 20_000


@pytest.fixture
def photo() -> bytes:
    data = corpus.photo_jpeg(seed=1, width=640, height=480)
    assert len(data) > 2 * LIMIT
    return data


def _multipart(photo: bytes) -> bytes:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return encode_multipart(BOUNDARY, {"files": [SimpleUploadedFile("big.jpg", photo, content_type="image/jpeg")]})


def _post(client, path: str, body: bytes):  # type: ignore[no-untyped-def]
    return client.generic("POST", path, body, content_type=MULTIPART_CONTENT)


def _refused(response) -> bool:  # type: ignore[no-untyped-def]
    detail = response.json()["detail"] if response.status_code == 413 else ""
    return "larger uploads are taken only from signed-in staff" in detail


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=LIMIT)
def test_an_anonymous_large_multipart_body_gets_413_on_every_url_even_the_upload_page(project, photo):
    body = _multipart(photo)
    for path in (
        reverse("admin:projects_project_upload", args=[project.pk]),
        "/api/v1/projects/realqa-test/next",
        "/accounts/login/",
        "/admin/login/",
        "/no-such-page/",
    ):
        response = _post(Client(), path, body)
        assert response.status_code in (404, 413), (path, response.status_code)
        if response.status_code == 413:
            assert _refused(response), (path, response.content[:200])
    assert _refused(_post(Client(), reverse("admin:projects_project_upload", args=[project.pk]), body))
    assert not Image.objects.exists()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=LIMIT)
def test_a_signed_in_rater_gets_413_for_a_large_multipart_body_on_the_upload_page_and_the_api(project, rater, photo):
    body = _multipart(photo)
    browser = Client()
    browser.force_login(rater)
    assert _refused(_post(browser, reverse("admin:projects_project_upload", args=[project.pk]), body))
    assert _refused(_post(api_client_for(rater), "/api/v1/projects/realqa-test/next", body))
    assert not Image.objects.exists()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=LIMIT)
def test_staff_get_413_for_a_large_multipart_body_anywhere_but_the_upload_page(project, admin_client, photo):
    body = _multipart(photo)
    assert _refused(_post(admin_client, "/api/v1/projects/realqa-test/next", body))
    assert _refused(_post(admin_client, f"/admin/projects/project/{project.pk}/change/", body))


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=LIMIT)
def test_signed_in_staff_may_upload_a_large_photo_on_the_upload_page(project, admin_client, photo):
    response = _post(admin_client, reverse("admin:projects_project_upload", args=[project.pk]), _multipart(photo))
    assert response.status_code == 200 and "1 imported" in response.content.decode()
    assert project.images.count() == 1


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=LIMIT)
def test_a_small_multipart_body_is_still_taken_from_anyone(project, rater):
    body = encode_multipart(BOUNDARY, {"exclude": "1"})
    response = _post(api_client_for(rater), "/api/v1/projects/realqa-test/next", body)
    assert response.status_code != 413

