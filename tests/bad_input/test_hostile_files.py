"""Every file of the bad-input corpus through both ways in: the import command and the admin's upload.
Each gets a clear refusal or a correct result, never a 500, and a refused file leaves nothing behind:
no row and no file in storage."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from annotation_site.images.imaging import _EXTENSIONS
from annotation_site.images.models import Image
from tests.annotation_site.images import corpus

from .hostile_files import CASES, Case, zip_bomb, zip_in_zip, zip_with_traversal_names

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:Corrupt EXIF data")]


def _media_files(media_root: Path) -> set[str]:
    return {str(path.relative_to(media_root)) for path in media_root.rglob("*") if path.is_file()}


def _import(*paths: Path) -> str:
    out = io.StringIO()
    call_command(
        "import_images", *map(str, paths), "--project", "realqa-test", "--workers", "1", "--no-progress", stdout=out
    )
    return out.getvalue()


def _assert_stored_correctly(image: Image, case: Case, files_before: set[str], media_root: Path) -> None:
    assert image.format == case.format
    # The original is stored under the extension of what it is, never the one the uploader gave it.
    assert image.original.name.endswith("." + _EXTENSIONS[case.format])
    assert image.display.name.rsplit(".", 1)[-1] in {"jpg", "png", "webp", "gif"}
    own = {image.original.name, image.display.name, image.thumbnail.name}
    assert all(default_storage.exists(name) for name in own)
    assert _media_files(media_root) - files_before <= own, "a file was stored that no image refers to"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_import_command_refuses_each_bad_file_with_its_reason_and_imports_each_odd_one_correctly(
    case: Case, project, tmp_path, media_root
):
    path = tmp_path / case.name
    path.write_bytes(case.data())
    files_before = _media_files(media_root)

    output = _import(path)

    if case.refusal is None:
        image = Image.objects.get(project=project)
        assert image.original_name.endswith(case.name)
        _assert_stored_correctly(image, case, files_before, media_root)
        assert "1 imported" in output.splitlines()[-1]
    else:
        [line] = [line for line in output.splitlines() if line.startswith("rejected")]
        assert case.name in line and case.refusal in line, line
        assert not Image.objects.exists()
        assert _media_files(media_root) == files_before


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_admin_upload_refuses_each_bad_file_with_its_reason_and_imports_each_odd_one_correctly(
    case: Case, admin_client, project, media_root
):
    url = reverse("admin:projects_project_upload", args=[project.pk])
    files_before = _media_files(media_root)

    response = admin_client.post(
        url, {"files": [SimpleUploadedFile(case.name, case.data())]}, HTTP_ACCEPT="application/json"
    )

    if not case.data():
        # Django's file field refuses an empty upload before the import sees it.
        assert response.status_code == 400
        assert "empty" in str(response.json()["errors"]["files"])
        assert not Image.objects.exists() and _media_files(media_root) == files_before
        return
    assert response.status_code == 200
    lines = response.json()["lines"]
    if case.refusal is None:
        [line] = lines
        assert line["outcome"] == "imported" and line["name"] == case.name
        _assert_stored_correctly(Image.objects.get(pk=line["image_id"]), case, files_before, media_root)
    else:
        assert lines and all(line["outcome"] == "rejected" for line in lines)
        assert any(case.refusal in line["detail"] for line in lines), lines
        assert not Image.objects.exists()
        assert _media_files(media_root) == files_before


def test_the_whole_corpus_in_one_browser_upload_gets_a_page_with_one_line_per_file(admin_client, project):
    url = reverse("admin:projects_project_upload", args=[project.pk])
    uploads = [SimpleUploadedFile(case.name, case.data()) for case in CASES if case.data()]

    response = admin_client.post(url, {"files": uploads})

    page = response.content.decode()
    assert response.status_code == 200
    accepted = sum(1 for case in CASES if case.refusal is None)
    refused = sum(1 for case in CASES if case.refusal is not None and case.data())
    assert f"{accepted} imported" in page and f"{refused} rejected" in page
    assert project.images.count() == accepted


def test_hostile_file_names_are_kept_as_names_and_shown_escaped(admin_client, project, media_root):
    url = reverse("admin:projects_project_upload", args=[project.pk])
    names = ["../../../../tmp/evil.jpg", '<img src=x onerror="alert(1)">.jpg', "x" * 400 + ".jpg", "фото 名前.jpg"]
    uploads = [SimpleUploadedFile(name, corpus.photo_jpeg(120, 90, seed=60 + i)) for i, name in enumerate(names)]

    response = admin_client.post(url, {"files": uploads})

    page = response.content.decode()
    assert response.status_code == 200 and "4 imported" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=" in page
    assert not Path("/tmp/evil.jpg").exists()
    stored = sorted(image.original.name for image in project.images.all())
    assert all(name.startswith("images/originals/") and ".." not in name for name in stored)


def test_a_zip_with_climbing_member_names_is_read_in_place_and_never_unpacked_outside_storage(project, tmp_path):
    archive = tmp_path / "tricky.zip"
    archive.write_bytes(zip_with_traversal_names())

    output = _import(archive)

    # The ".." member gets its rejected line with the reason; the absolute one is read from the archive.
    assert "1 imported" in output.splitlines()[-1] and "1 rejected" in output.splitlines()[-1]
    [line] = [line for line in output.splitlines() if line.startswith("rejected")]
    assert "tricky.zip:../../../../tmp/evil-traversal.jpg" in line and "climbs out of it (..)" in line
    assert not Path("/tmp/evil-traversal.jpg").exists() and not Path("/etc/cron.d/evil.png").exists()
    [image] = project.images.all()
    assert image.original_name.endswith("tricky.zip:/etc/cron.d/evil.png")
    assert image.original.name.startswith("images/originals/")


def test_a_zip_with_climbing_member_names_uploaded_in_the_admin_gets_one_rejected_line_for_it(admin_client, project):
    url = reverse("admin:projects_project_upload", args=[project.pk])
    upload = SimpleUploadedFile("tricky.zip", zip_with_traversal_names(), content_type="application/zip")

    response = admin_client.post(url, {"files": [upload]})

    page = response.content.decode()
    assert response.status_code == 200 and "1 imported" in page and "1 rejected" in page
    assert "evil-traversal.jpg" in page and "climbs out of it (..)" in page
    assert project.images.count() == 1


@override_settings(IMAGES_MAX_BYTES=2 * 1024 * 1024)
def test_a_zip_bomb_member_is_refused_as_too_large_without_inflating_it(project, tmp_path, media_root):
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(zip_bomb(16 * 1024 * 1024))
    assert archive.stat().st_size < 100_000
    files_before = _media_files(media_root)

    output = _import(archive)

    [line] = [line for line in output.splitlines() if line.startswith("rejected")]
    assert "bomb.zip:bomb.jpg" in line and "file too large: 16.8 MB exceeds the 2.1 MB limit" in line
    assert not Image.objects.exists() and _media_files(media_root) == files_before


def test_a_zip_inside_a_zip_is_refused_not_opened(project, tmp_path):
    archive = tmp_path / "nested.zip"
    archive.write_bytes(zip_in_zip())

    output = _import(archive)

    [line] = [line for line in output.splitlines() if line.startswith("rejected")]
    assert "nested.zip:inner.zip" in line and "not a recognised image file" in line
    assert not Image.objects.exists()


@override_settings(IMAGES_MAX_BYTES=200_000)
def test_a_file_over_the_byte_limit_is_refused_by_both_ways_in(admin_client, project, tmp_path, media_root):
    big = corpus.photo_in_format("PNG", 800, 600, seed=61)
    assert len(big) > 200_000
    path = tmp_path / "big.png"
    path.write_bytes(big)
    files_before = _media_files(media_root)

    output = _import(path)
    response = admin_client.post(
        reverse("admin:projects_project_upload", args=[project.pk]),
        {"files": [SimpleUploadedFile("big.png", big)]},
        HTTP_ACCEPT="application/json",
    )

    assert "file too large" in output and "exceeds the 0.2 MB limit" in output
    assert response.status_code == 200 and "file too large" in response.json()["lines"][0]["detail"]
    assert not Image.objects.exists() and _media_files(media_root) == files_before


@override_settings(REQUEST_MAX_BYTES=1024 * 1024)
def test_an_upload_request_over_the_request_limit_gets_413_before_anything_is_read(admin_client, project, media_root):
    files_before = _media_files(media_root)
    response = admin_client.post(
        reverse("admin:projects_project_upload", args=[project.pk]),
        {"files": [SimpleUploadedFile("big.bin", bytes(2 * 1024 * 1024))]},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "upload too large: 2.0 MB exceeds the 1.0 MB limit"
    assert not Image.objects.exists() and _media_files(media_root) == files_before


@override_settings(DATA_UPLOAD_MAX_NUMBER_FILES=2)
def test_more_files_in_one_request_than_allowed_is_a_400_and_stores_nothing(admin_client, project, media_root):
    files_before = _media_files(media_root)
    uploads = [SimpleUploadedFile(f"{i}.jpg", corpus.photo_jpeg(100, 80, seed=70 + i)) for i in range(3)]
    response = admin_client.post(reverse("admin:projects_project_upload", args=[project.pk]), {"files": uploads})
    assert response.status_code == 400
    assert not Image.objects.exists() and _media_files(media_root) == files_before


def test_the_gif_js_polyglot_is_shown_through_a_png_copy_not_served_as_uploaded(admin_client, project):
    from .hostile_files import gif_js_polyglot

    response = admin_client.post(
        reverse("admin:projects_project_upload", args=[project.pk]),
        {"files": [SimpleUploadedFile("polyglot.gif", gif_js_polyglot())]},
        HTTP_ACCEPT="application/json",
    )
    image = Image.objects.get(pk=response.json()["lines"][0]["image_id"])
    # Raters see the re-encoded copy (a palette GIF needs one); the script after the trailer is gone from it.
    assert image.display.name.endswith(".png")
    with default_storage.open(image.display.name) as handle:
        assert b"alert(1)" not in handle.read()
