from __future__ import annotations

from pathlib import Path

from annotation_site.images.models import Image
from tests.annotation_site.images import corpus


def test_staff_upload_a_batch_in_the_browser_and_watch_it_progress_file_by_file(admin_page, project, tmp_path: Path):
    files = {
        "first.jpg": corpus.photo_jpeg(seed=70),
        "renamed-text.jpg": corpus.text_file_as_jpg(),
        "portrait.jpg": corpus.exif_rotated_jpeg(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)

    admin_page.goto(f"/admin/projects/project/{project.pk}/upload/")
    admin_page.set_input_files('input[type="file"]', [str(tmp_path / name) for name in files])
    admin_page.click('input[type="submit"]')

    admin_page.wait_for_function("document.getElementById('upload-bar').value === 3")
    assert admin_page.inner_text("#upload-status") == "3 of 3 files"
    assert admin_page.inner_text("#upload-summary") == "2 imported, 0 exact duplicates skipped, 1 rejected"
    rejected = admin_page.inner_text("tr.import-rejected")
    assert "renamed-text.jpg" in rejected and "text file, not an image" in rejected
    assert sorted(Image.objects.values_list("original_name", flat=True)) == ["first.jpg", "portrait.jpg"]
    portrait = Image.objects.get(original_name="portrait.jpg")
    assert (portrait.width, portrait.height) == (480, 640)
