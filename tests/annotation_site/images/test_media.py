"""Who may fetch a photo: the raters of its project and staff; anyone else gets 404, like a missing file. In debug
and the zero-server mode Django sends the bytes; in production it hands them to nginx (X-Accel-Redirect;
tests/faults/test_media_through_nginx.py runs the real nginx); with an object store the URLs are signed and short-lived."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from annotation_site.labeling.assignments import membership_ensure
from annotation_site.projects.services import project_create
from annotation_site.quality.services import membership_exclude
from annotation_site.raters.services import rater_create
from tests.conftest import make_images

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def photos(project, realqa_schema):  # type: ignore[no-untyped-def]
    """A photo of the project, one of another project, a rater of each and a staff member."""
    [mine] = make_images(project, 1, start_seed=4000)
    other = project_create(slug="other-project", name="Other", schema_definition=realqa_schema)
    [theirs] = make_images(other, 1, start_seed=4100)
    member = rater_create(username="member", password="pw-123456")
    membership_ensure(project=project, rater=member)
    outsider = rater_create(username="outsider", password="pw-123456")
    membership_ensure(project=other, rater=outsider)
    staff = rater_create(username="staff", password="pw-123456", is_staff=True)
    return {"mine": mine, "theirs": theirs, "member": member, "outsider": outsider, "staff": staff, "project": project}


def _get(client, user, url: str):  # type: ignore[no-untyped-def]
    client.logout()
    if user is not None:
        client.force_login(user)
    return client.get(url)


def _bytes(response) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(response.streaming_content)


def test_a_rater_of_the_project_gets_each_file_of_its_photo(client, photos):
    image = photos["mine"]
    for file in (image.display, image.thumbnail, image.original):
        response = _get(client, photos["member"], file.url)
        assert response.status_code == 200, file.name
        assert _bytes(response) == default_storage.open(file.name).read()
        assert response["Content-Type"] == "image/jpeg"
        assert response["Cache-Control"] == "private, max-age=86400"


def test_anyone_else_gets_404_for_a_photo_and_staff_get_every_photo(client, photos):
    mine, theirs = photos["mine"].display.url, photos["theirs"].display.url
    assert _get(client, None, mine).status_code == 404  # a leaked URL is no use signed out
    assert _get(client, photos["outsider"], mine).status_code == 404  # nor to a rater of another project
    assert _get(client, photos["member"], theirs).status_code == 404
    assert _get(client, photos["outsider"], theirs).status_code == 200
    assert _get(client, photos["staff"], mine).status_code == 200 and _get(client, photos["staff"], theirs).status_code == 200
    assert _get(client, photos["member"], mine + "x").status_code == 404  # no such file


def test_an_excluded_rater_no_longer_gets_the_projects_photos(client, photos):
    membership_exclude(project=photos["project"], rater_id=photos["member"].pk, by=photos["staff"], reason="spam")
    assert _get(client, photos["member"], photos["mine"].display.url).status_code == 404


def test_files_that_are_not_photos_are_served_to_no_one(client, photos):
    name = default_storage.save("models/realqa-test/cpu-multihead-1/config.json", ContentFile(b'{"secret": 1}'))
    assert _get(client, photos["staff"], f"/media/{name}").status_code == 404
    assert _get(client, photos["staff"], "/media/../settings.py").status_code == 404


def test_in_production_the_proxy_sends_the_bytes_after_the_check(client, photos, settings):
    settings.MEDIA_X_ACCEL_REDIRECT = "/protected-media/"
    image = photos["mine"]
    response = _get(client, photos["member"], image.display.url)
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected-media/{image.display.name}"
    assert response["Content-Type"] == "image/jpeg" and response["Cache-Control"] == "private, max-age=86400"
    refused = _get(client, photos["outsider"], image.display.url)
    assert refused.status_code == 404 and "X-Accel-Redirect" not in refused


def test_the_rater_api_hands_out_photo_urls_that_the_rater_can_fetch(client, photos):
    client.force_login(photos["member"])
    assignment = client.post(f"/api/v1/projects/{photos['project'].slug}/next", {}, content_type="application/json").json()
    for key in ("url", "thumbnail_url"):
        response = client.get(assignment["image"][key])
        assert response.status_code == 200 and _bytes(response)[:2] == b"\xff\xd8"


def test_with_an_object_store_photo_urls_are_signed_for_five_minutes(tmp_path):
    """The settings with a bucket, in a process of their own: boto3 signs locally, no store is contacted."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "annotation_site.settings.test",
        "AWS_STORAGE_BUCKET_NAME": "realqa-media",
        "AWS_S3_ENDPOINT_URL": "https://s3.example.org",
        "AWS_S3_REGION_NAME": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "test-key-id",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "REALQA_VAR_DIR": str(tmp_path),
    }
    script = (
        "import django; django.setup()\n"
        "from django.core.files.storage import storages\n"
        "s = storages['default']; print(type(s).__name__, s.url('images/display/ab/ab.jpg'))"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    backend, url = out.split()
    assert backend == "S3Storage"
    assert url.startswith("https://s3.example.org/realqa-media/images/display/ab/ab.jpg?")
    assert "X-Amz-Expires=300" in url and "X-Amz-Signature=" in url


def test_with_an_object_store_a_media_url_is_checked_then_sent_to_a_freshly_signed_one(client, photos, monkeypatch):
    from storages.backends.s3 import S3Storage

    from annotation_site.core import storedfiles

    store = S3Storage(bucket_name="realqa-media", endpoint_url="https://s3.example.org", region_name="eu-central-1",
                      access_key="test-key-id", secret_key="test-secret", querystring_expire=300)
    monkeypatch.setattr(storedfiles, "default_storage", store)
    image = photos["mine"]
    response = _get(client, photos["member"], f"/media/{image.display.name}")
    assert response.status_code == 302 and response["Cache-Control"] == "private, no-cache"
    assert response["Location"].startswith(f"https://s3.example.org/realqa-media/{image.display.name}?")
    assert "X-Amz-Expires=300" in response["Location"]
    assert _get(client, photos["outsider"], f"/media/{image.display.name}").status_code == 404
