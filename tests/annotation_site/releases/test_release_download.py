"""A done release as one zip that staff download from the admin: made where the release was built, kept in the
media storage, handed out to staff only."""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from annotation_site.releases.archive import zip_folder
from annotation_site.releases.models import Release
from annotation_site.releases.options import ReleaseError
from annotation_site.releases.services import release_archive_store, release_build, release_create
from tests.annotation_site.releases.helpers import read_csv, small_project
from workers.release_tasks import build_release

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(project, admin_user, tmp_path):  # type: ignore[no-untyped-def]
    small_project(project, admin_user)
    return release_create(project=project, options={"resamples": 50}, output_dir=tmp_path / "release")


def _zip_of(response) -> zipfile.ZipFile:  # type: ignore[no-untyped-def]
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_the_build_task_zips_the_release_and_staff_download_every_file_the_manifest_lists(queued, admin_client):
    result = build_release(queued.pk)
    release = Release.objects.get(pk=queued.pk)
    assert result["archive"] == release.archive and release.archive.endswith(".zip")
    assert f'href="/staff/releases/{release.pk}/download"' in admin_client.get("/admin/releases/release/").content.decode()

    response = admin_client.get(f"/staff/releases/{release.pk}/download")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith(f'attachment; filename="realqa-test-v1-{release.manifest_sha256[:12]}.zip"')
    archive = _zip_of(response)
    manifest = archive.read("realqa-test-v1/MANIFEST.sha256").decode()
    assert hashlib.sha256(manifest.encode()).hexdigest() == release.manifest_sha256
    listed = {}
    for line in manifest.splitlines():
        digest, name = line.split(maxsplit=1)
        listed[f"realqa-test-v1/{name.lstrip('*')}"] = digest
    assert set(archive.namelist()) == set(listed) | {"realqa-test-v1/MANIFEST.sha256"}
    assert all(hashlib.sha256(archive.read(name)).hexdigest() == digest for name, digest in listed.items())
    assert any(name.endswith(".parquet") for name in listed)


def test_zipping_a_release_again_keeps_its_one_archive(queued):
    build_release(queued.pk)
    release = Release.objects.get(pk=queued.pk)
    first = release.archive

    assert build_release(queued.pk)["archive"] == first  # a redelivered task
    assert release_archive_store(release_id=queued.pk) == first
    stored = default_storage.listdir(str(Path(first).parent))[1]
    assert [name for name in stored if name.startswith(f"realqa-test-v1-{release.manifest_sha256[:12]}")] == [Path(first).name]


def test_a_rater_is_sent_to_the_staff_login_and_gets_no_zip(queued, client, rater):
    build_release(queued.pk)
    client.force_login(rater)

    response = client.get(f"/staff/releases/{queued.pk}/download")

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_release_without_its_zip_yet_answers_not_found_and_the_admin_says_so(queued, admin_client):
    release_build(release_id=queued.pk)  # built as export_release does, without the worker's zip

    assert admin_client.get(f"/staff/releases/{queued.pk}/download").status_code == 404
    assert "not zipped yet" in admin_client.get("/admin/releases/release/").content.decode()


def test_only_a_done_release_on_this_machine_is_zipped_and_the_refusal_says_why(queued):
    with pytest.raises(ReleaseError, match="realqa-test-v1 is queued, not done"):
        release_archive_store(release_id=queued.pk)

    release = release_build(release_id=queued.pk)
    shutil.rmtree(release.output_dir)  # built by a worker on another machine
    with pytest.raises(ReleaseError, match=r"realqa-test-v1: its folder .* is not on this machine"):
        release_archive_store(release_id=queued.pk)
    assert Release.objects.get(pk=queued.pk).archive == ""


def test_text_is_deflated_compressed_formats_are_stored_and_all_of_it_unpacks_into_one_folder(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "scores.csv").write_text("file,mos\n" * 200)
    (tmp_path / "plots" / "alpha.png").write_bytes(b"\x89PNG" + bytes(range(256)) * 8)
    handle = io.BytesIO()

    assert zip_folder(tmp_path, handle, top="p-v2") == 2

    archive = zipfile.ZipFile(handle)
    info = {i.filename: i for i in archive.infolist()}
    assert sorted(info) == ["p-v2/plots/alpha.png", "p-v2/scores.csv"]
    assert info["p-v2/scores.csv"].compress_type == zipfile.ZIP_DEFLATED and info["p-v2/scores.csv"].compress_size < 200
    assert info["p-v2/plots/alpha.png"].compress_type == zipfile.ZIP_STORED
    assert archive.read("p-v2/scores.csv") == (tmp_path / "scores.csv").read_bytes()


def test_in_production_nginx_sends_the_zip_from_its_internal_location(queued, admin_client, settings):
    build_release(queued.pk)
    settings.MEDIA_X_ACCEL_REDIRECT = "/protected-media/"
    archive = Release.objects.get(pk=queued.pk).archive

    response = admin_client.get(f"/staff/releases/{queued.pk}/download")

    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected-media/{archive}"
    assert response["Content-Disposition"] == f'attachment; filename="{Path(archive).name}"'


def test_a_worker_that_loses_the_race_to_record_the_zip_removes_its_own_copy(queued, monkeypatch):
    release_build(release_id=queued.pk)
    real_save = default_storage.save
    saved: list[str] = []

    def save_while_another_worker_records_its_zip(name, content):  # type: ignore[no-untyped-def]
        saved.append(real_save(name, content))
        Release.objects.filter(pk=queued.pk).update(archive="releases/realqa-test/the-other-workers.zip")
        return saved[-1]

    monkeypatch.setattr(default_storage, "save", save_while_another_worker_records_its_zip)

    assert release_archive_store(release_id=queued.pk) == "releases/realqa-test/the-other-workers.zip"
    assert saved and not default_storage.exists(saved[0])


def test_with_an_object_store_staff_are_sent_to_a_signed_url_of_the_zip(queued, admin_client, monkeypatch):
    from storages.backends.s3 import S3Storage

    from annotation_site.core import storedfiles

    build_release(queued.pk)
    archive = Release.objects.get(pk=queued.pk).archive
    store = S3Storage(bucket_name="realqa-media", endpoint_url="https://s3.example.org", region_name="eu-central-1",
                      access_key="test-key-id", secret_key="test-secret", querystring_expire=300)
    monkeypatch.setattr(storedfiles, "default_storage", store)

    response = admin_client.get(f"/staff/releases/{queued.pk}/download")

    assert response.status_code == 302
    assert response["Location"].startswith(f"https://s3.example.org/realqa-media/{archive}?") and "X-Amz-Expires=300" in response["Location"]


def test_a_release_that_references_photos_in_an_object_store_names_the_objects_not_urls_that_expire(queued, monkeypatch, project):
    from storages.backends.s3 import S3Storage

    from annotation_site.releases import builder

    store = S3Storage(bucket_name="realqa-media", endpoint_url="https://s3.example.org", region_name="eu-central-1",
                      access_key="test-key-id", secret_key="test-secret", querystring_expire=300)
    monkeypatch.setattr(builder, "default_storage", store)
    Release.objects.filter(pk=queued.pk).update(options={**queued.options, "images": "reference"})

    release = release_build(release_id=queued.pk)

    files = [row["file"] for row in read_csv(Path(release.output_dir) / "scores.csv")]
    displays = {f"s3://realqa-media/{image.display.name}" for image in project.images.all()}
    assert len(files) == 4 and set(files) <= displays
    assert "s3://bucket/key" in (Path(release.output_dir) / "datasheet.md").read_text()
