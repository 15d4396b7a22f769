from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image as PILImage

from annotation_site.images.models import Image
from annotation_site.images.services import images_import
from annotation_site.images.sources import BytesSource, collect_sources
from tests.annotation_site.images import corpus

pytestmark = pytest.mark.django_db


def _run_import(*paths: Path, project: str = "realqa-test", workers: int = 1) -> str:
    out = io.StringIO()
    call_command("import_images", *map(str, paths), "--project", project, "--workers", str(workers), "--no-progress", stdout=out)
    return out.getvalue()


def _stored_files(media_root: Path) -> set[Path]:
    return {path.relative_to(media_root) for path in media_root.rglob("*") if path.is_file()}


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # this test's own decode of the malformed-EXIF original
def test_it_imports_the_good_files_upright_and_rejects_each_bad_one_with_a_reason(project, tmp_path, media_root):
    expected = corpus.mixed_folder(tmp_path / "photos")

    output = _run_import(tmp_path / "photos")

    imported = {image.original_name.split("/")[-1]: image for image in Image.objects.filter(project=project)}
    assert set(imported) == {name for name, good in expected.items() if good}
    rejected_lines = [line for line in output.splitlines() if line.startswith("rejected")]
    assert {line.split()[1].split("/")[-1].rstrip(":") for line in rejected_lines} == {
        name for name, good in expected.items() if not good
    }
    assert all(": " in line and line.split(": ", 1)[1].strip() for line in rejected_lines)
    assert any("truncated" in line for line in rejected_lines if "truncated" in line.split()[1])
    assert any("decompression bomb" in line for line in rejected_lines)

    rotated = imported["rotated.jpg"]
    assert (rotated.width, rotated.height) == (480, 640)
    with default_storage.open(rotated.display.name) as handle:
        upright = PILImage.open(handle)
        assert upright.size == (480, 640) and upright.mode == "RGB"
    for image in imported.values():
        with default_storage.open(image.display.name) as handle:
            shown = PILImage.open(handle)
            shown.load()
            assert shown.mode in {"RGB", "L"} and shown.size == (image.width, image.height)
        assert default_storage.exists(image.thumbnail.name)
    assert imported["cmyk.jpg"].source_mode == "CMYK"
    assert imported["cmyk.jpg"].display.name != imported["cmyk.jpg"].original.name
    assert imported["good_photo.jpg"].display.name == imported["good_photo.jpg"].original.name


def test_a_second_run_of_the_same_import_changes_nothing(project, tmp_path, media_root):
    corpus.mixed_folder(tmp_path / "photos")
    _run_import(tmp_path / "photos")
    rows = list(Image.objects.order_by("id").values_list("id", "sha256"))
    files = _stored_files(media_root)

    output = _run_import(tmp_path / "photos")

    assert list(Image.objects.order_by("id").values_list("id", "sha256")) == rows
    assert _stored_files(media_root) == files
    assert "0 imported" in output.splitlines()[-1]


def test_it_skips_exact_duplicates_and_flags_near_duplicates(project):
    photo = corpus.photo_jpeg(seed=7, quality=92)
    recompressed = corpus.photo_jpeg(seed=7, quality=60)
    other = corpus.photo_jpeg(seed=8)
    report = images_import(
        project=project,
        sources=[BytesSource("a.jpg", photo), BytesSource("copy-of-a.jpg", photo), BytesSource("a-small.jpg", recompressed), BytesSource("b.jpg", other)],
    )
    assert [line.outcome for line in report.lines] == ["imported", "duplicate", "imported", "imported"]
    assert "same bytes as image" in report.lines[1].detail
    first, near, unrelated = Image.objects.order_by("id")
    assert near.near_duplicate_of == first and near.near_duplicate_distance is not None
    assert unrelated.near_duplicate_of is None
    assert "near-duplicate of image" in report.lines[2].detail


def test_it_imports_photos_from_a_zip_archive_and_skips_finder_litter(project, tmp_path):
    archive = tmp_path / "batch.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("trip/one.jpg", corpus.photo_jpeg(seed=11))
        zf.writestr("trip/two.jpg", corpus.photo_jpeg(seed=12))
        zf.writestr("__MACOSX/trip/._one.jpg", b"\x00\x05\x16\x07")
        zf.writestr("trip/notes.txt", b"not a photo")
    output = _run_import(archive)
    assert sorted(Image.objects.values_list("original_name", flat=True)) == [f"{archive}:trip/one.jpg", f"{archive}:trip/two.jpg"]
    assert "trip/notes.txt" in output and "__MACOSX" not in output


def test_a_missing_path_or_a_broken_zip_is_reported_not_fatal(project, tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    (tmp_path / "ok.jpg").write_bytes(corpus.photo_jpeg(seed=21))
    output = _run_import(tmp_path / "nowhere", tmp_path / "broken.zip", tmp_path / "ok.jpg")
    assert "no such file or folder" in output
    assert "not a readable zip archive" in output
    assert Image.objects.count() == 1


def test_a_parallel_import_stores_the_same_images_in_the_same_order_as_a_serial_one(project, tmp_path, realqa_schema):
    from annotation_site.projects.services import project_create

    for seed in range(10):
        (tmp_path / f"p{seed:02}.jpg").write_bytes(corpus.photo_jpeg(seed=100 + seed, width=320, height=240))
    (tmp_path / "p99.jpg").write_bytes(b"")
    other = project_create(slug="parallel", schema_definition=realqa_schema)
    _run_import(tmp_path, workers=1)
    _run_import(tmp_path, project="parallel", workers=2)
    serial = list(Image.objects.filter(project=project).order_by("id").values_list("original_name", "sha256", "phash"))
    parallel = list(Image.objects.filter(project=other).order_by("id").values_list("original_name", "sha256", "phash"))
    assert serial == parallel and len(serial) == 10


def test_nothing_is_half_stored_when_the_database_write_fails(project, media_root, monkeypatch):
    before = _stored_files(media_root)

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(Image.objects, "create", refuse)
    with pytest.raises(RuntimeError):
        images_import(project=project, sources=[BytesSource("cmyk.jpg", corpus.cmyk_jpeg())])
    assert Image.objects.count() == 0
    assert _stored_files(media_root) == before


def test_files_are_shared_between_projects_that_import_the_same_photo(project, realqa_schema):
    from annotation_site.projects.services import project_create

    other = project_create(slug="second", schema_definition=realqa_schema)
    data = corpus.photo_jpeg(seed=31)
    images_import(project=project, sources=[BytesSource("x.jpg", data)])
    images_import(project=other, sources=[BytesSource("x.jpg", data)])
    first, second = Image.objects.order_by("id")
    assert first.project != second.project
    assert first.original.name == second.original.name


def test_import_into_an_unknown_project_names_it(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        call_command("import_images", "/tmp", "--project", "nope")


def test_sources_expand_folders_in_name_order_and_skip_hidden_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.jpg").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "3.jpg").write_bytes(b"x")
    names = [source.name for source in collect_sources([tmp_path])]
    assert names == [str(tmp_path / "a.jpg"), str(tmp_path / "b" / "2.jpg")]
