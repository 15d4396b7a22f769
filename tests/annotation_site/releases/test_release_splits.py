from __future__ import annotations

from pathlib import Path

import pytest

from annotation_site.images.models import Image
from annotation_site.images.services import images_import
from annotation_site.images.sources import BytesSource
from annotation_site.releases.models import ReleaseSplit
from annotation_site.releases.options import ReleaseError
from annotation_site.releases.services import release_build, release_create
from annotation_site.raters.services import rater_create
from tests.annotation_site.images import corpus
from tests.annotation_site.releases.helpers import label, read_csv

pytestmark = pytest.mark.django_db


def _import(project, seeds: range) -> list[Image]:  # type: ignore[no-untyped-def]
    """Each seed gives a photo and a recompressed copy of it, which the import flags as its near-duplicate."""
    sources = []
    for seed in seeds:
        sources.append(BytesSource(f"p{seed}.jpg", corpus.photo_jpeg(seed=seed, width=96, height=72, quality=92)))
        sources.append(BytesSource(f"p{seed}-copy.jpg", corpus.photo_jpeg(seed=seed, width=96, height=72, quality=50)))
    report = images_import(project=project, sources=sources)
    return list(Image.objects.filter(pk__in=[line.image_id for line in report.lines]).order_by("id"))


def _label_all(images: list[Image], raters: list) -> None:  # type: ignore[no-untyped-def]
    for n, image in enumerate(images):
        for k, rater in enumerate(raters):
            label(image, rater, quality=float(1 + (n * 7 + k) % 10), clarity="good")


def _release(project, out: Path, **options: object):  # type: ignore[no-untyped-def]
    release = release_create(project=project, options={"resamples": 20, **options}, output_dir=out)
    return release_build(release_id=release.pk)


def _splits(release) -> dict[int, str]:  # type: ignore[no-untyped-def]
    return dict(ReleaseSplit.objects.filter(release=release).values_list("image_id", "split"))


def test_an_images_split_stays_put_in_the_next_release_and_near_duplicates_share_one(project, tmp_path):
    raters = [rater_create(username=f"r{i}", password="pw-123456") for i in range(3)]
    first_images = _import(project, range(100, 115))
    assert sum(image.near_duplicate_of_id is not None for image in first_images) == 15
    _label_all(first_images, raters)
    first = _release(project, tmp_path / "v1", seed=7)

    later_images = _import(project, range(200, 210))
    _label_all(later_images, raters)
    second = _release(project, tmp_path / "v2", seed=99)  # another seed: kept splits must not depend on it

    before, after = _splits(first), _splits(second)
    assert len(before) == 30 and len(after) == 50
    assert {image: after[image] for image in before} == before
    assert second.counts["splits_kept_from_previous"] == 30
    for image in Image.objects.filter(project=project, near_duplicate_of__isnull=False):
        assert after[image.pk] == after[image.near_duplicate_of_id]
    rows = read_csv(tmp_path / "v2" / "scores.csv")
    assert {row["split"] for row in rows} == {"train", "validation", "test"}
    groups: dict[str, set[str]] = {}
    for row in rows:
        groups.setdefault(row["duplicate_group"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in groups.values()) and len(groups) == 25


def test_splits_are_deterministic_from_the_seed_and_move_only_when_asked(project, tmp_path):
    raters = [rater_create(username=f"r{i}", password="pw-123456") for i in range(2)]
    images = _import(project, range(300, 320))
    _label_all(images, raters)
    first = _splits(_release(project, tmp_path / "v1", seed=1))
    kept = _splits(_release(project, tmp_path / "v2", seed=2))
    moved = _splits(_release(project, tmp_path / "v3", seed=2, reassign_splits=True))
    again = _splits(_release(project, tmp_path / "v4", seed=2, reassign_splits=True))
    assert kept == first
    assert moved != first and again == moved


def test_ratios_that_drop_a_split_of_the_previous_release_are_refused_unless_reassigning(project, tmp_path):
    raters = [rater_create(username=f"r{i}", password="pw-123456") for i in range(2)]
    _label_all(_import(project, range(400, 405)), raters)
    _release(project, tmp_path / "v1")
    with pytest.raises(ReleaseError, match="validation"):
        release_create(project=project, options={"ratios": {"train": 0.9, "test": 0.1}}, output_dir=tmp_path / "v2")
    release = release_create(
        project=project, options={"ratios": {"train": 0.9, "test": 0.1}, "reassign_splits": True}, output_dir=tmp_path / "v2"
    )
    assert set(_splits(release_build(release_id=release.pk)).values()) <= {"train", "test"}
