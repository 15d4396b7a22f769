"""What raters typed reaches the ratings files as they typed it, on either database (PostgreSQL reads the labels
with COPY as CSV, which has its own quoting, NULL and line-break rules)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from annotation_site.releases.services import release_build, release_create
from annotation_site.raters.services import rater_create
from tests.annotation_site.releases.helpers import label, read_csv
from tests.conftest import make_images

pytestmark = pytest.mark.django_db

AWKWARD = 'He said "no", then left;\nthe light was odd,  "really"'


def test_free_text_and_reasons_reach_the_ratings_files_as_raters_wrote_them(project, tmp_path):
    a, b = make_images(project, 2)
    r1, r2, r3 = (rater_create(username=f"r{i}", password="pw-123456") for i in range(1, 4))
    label(a, r1, quality=6.0, subject_background=AWKWARD, eye_catching={"value": 6, "reason": AWKWARD})
    label(a, r2, quality=7.0, subject_background="Ünïcode — a cat, a sofa", eye_catching={"value": 7, "reason": "é, \\N"})
    label(a, r3, quality=8.0, subject_background="ünïcode —  a CAT, a sofa", eye_catching=8)
    label(b, r1, quality=5.0, subject_background="a dog", eye_catching=5)
    label(b, r2, quality=5.5, subject_background="A  DOG", eye_catching=4)
    release = release_create(project=project, options={"resamples": 50}, output_dir=tmp_path / "release")
    release = release_build(release_id=release.pk)
    folder = Path(release.output_dir)

    rows = {(row["image_sha256"], row["quality"]): row for row in pq.read_table(folder / "ratings.parquet").to_pylist()}
    first = rows[(a.sha256, 6.0)]
    assert first["eye_catching_reason"] == AWKWARD
    assert first["subject_background"] == 'He said "no", then left; the light was odd, "really"'  # spacing normalised
    second = rows[(a.sha256, 7.0)]
    assert second["subject_background"] == "Ünïcode — a cat, a sofa"
    assert second["eye_catching_reason"] == "é, \\N"
    assert [rows[(b.sha256, q)]["eye_catching"] for q in (5.0, 5.5)] == [5, 4]

    csv_rows = {(row["image_sha256"], row["quality"]): row for row in read_csv(folder / "ratings.csv")}
    assert csv_rows[(a.sha256, "6")]["eye_catching_reason"] == AWKWARD

    # Answers differing only in case and spacing count as one; each image lists its answers most frequent first.
    scores = {row["image_sha256"]: row for row in read_csv(folder / "scores.csv")}
    assert scores[b.sha256]["subject_background_answers"] == '["a dog"]'
    assert scores[a.sha256]["subject_background_answers"] == (
        '["Ünïcode — a cat, a sofa", "He said \\"no\\", then left; the light was odd, \\"really\\""]'
    )


def test_a_release_read_in_many_small_pieces_holds_every_label_once(project, tmp_path, monkeypatch):
    from annotation_site.releases import builder

    monkeypatch.setattr(builder, "COPY_LABELS", 1)  # one image per COPY statement on PostgreSQL
    images = make_images(project, 4)
    raters = [rater_create(username=f"r{i}", password="pw-123456") for i in range(1, 4)]
    for n, image in enumerate(images):
        for m, rater in enumerate(raters[: 1 + n % 3]):
            label(image, rater, quality=float(1 + n + m))
    release = release_create(project=project, options={"resamples": 20}, output_dir=tmp_path / "release")
    release = release_build(release_id=release.pk)
    rows = read_csv(Path(release.output_dir) / "ratings.csv")
    assert sorted((row["image_sha256"], row["quality"]) for row in rows) == sorted(
        (image.sha256, str(1 + n + m)) for n, image in enumerate(images) for m in range(1 + n % 3)
    )
    assert release.counts["labels"] == len(rows) == 1 + 2 + 3 + 1
