"""A dataset release names raters by pseudonym only: no file of it (CSV, JSON, Markdown, Parquet, the
training conversations) holds a rater's user name, e-mail, real name or database id."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from annotation_site.labeling.services import annotation_create
from annotation_site.raters.models import RaterProfile
from annotation_site.raters.services import rater_create
from annotation_site.releases.services import release_build, release_create
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import make_images

pytestmark = pytest.mark.django_db

PSEUDONYM = re.compile(r"r[0-9a-f]{12}")


def _file_texts(folder: Path) -> dict[str, str]:
    """Every file of a release as text; Parquet tables decoded (their strings may be compressed on disk)."""
    texts: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        name = str(path.relative_to(folder))
        if path.suffix == ".parquet":
            texts[name] = repr(pq.read_table(path).to_pylist())
        else:
            texts[name] = path.read_bytes().decode("utf-8", errors="replace")
    return texts


@pytest.fixture
def identities(project):  # type: ignore[no-untyped-def]
    """Raters with names that would be easy to spot, and their labels on three photos."""
    project.gold_rate = 0
    project.save()
    images = make_images(project, 3, start_seed=4000)
    raters = []
    for index, (first, last) in enumerate([("Zebulon", "Quaxley"), ("Ysolde", "Vantreight"), ("Xanthe", "Ulverstone")]):
        rater = rater_create(
            username=f"{first.lower()}.{last.lower()}", password="pw-123456", email=f"{first}.{last}@mail.example.org"
        )
        rater.first_name, rater.last_name = first, last
        rater.save()
        raters.append(rater)
        for image in images:
            labels = {**REALQA_LABELS, "quality": 5.0 + index, "composition": {"value": 5 + index, "reason": "tight crop"}}
            annotation_create(image=image, rater=rater, labels=labels)
    return raters


def _forbidden(raters: list) -> list[str]:
    words: list[str] = []
    for rater in raters:
        words += [rater.username, rater.email, rater.email.split("@")[0], rater.first_name, rater.last_name]
    return words


def _assert_pseudonymous(folder: Path, raters: list) -> None:
    texts = _file_texts(folder)
    assert texts, "the release wrote no files"
    leaks = [f"{name}: {word!r}" for name, text in texts.items() for word in _forbidden(raters) if word.lower() in text.lower()]
    assert leaks == []
    pseudonyms = {RaterProfile.objects.get(user=rater).pseudonym for rater in raters}
    assert all(pseudonym in texts["ratings.csv"] for pseudonym in pseudonyms)
    # The rater column holds pseudonyms and nothing else (no database ids).
    ratings = pq.read_table(next(folder.rglob("ratings*.parquet"))).column("rater").to_pylist()
    assert set(ratings) == pseudonyms and all(PSEUDONYM.fullmatch(value) for value in ratings)


def test_no_release_file_names_a_rater(project, identities, tmp_path, admin_user):
    release = release_create(project=project, options={"resamples": 50}, output_dir=tmp_path / "release", created_by=admin_user)
    release = release_build(release_id=release.pk)
    _assert_pseudonymous(Path(release.output_dir), identities)


def test_the_training_conversations_the_workers_add_name_no_rater_either(project, identities, tmp_path):
    from workers.release_formats import ConversationWriter

    release = release_create(project=project, options={"resamples": 50}, output_dir=tmp_path / "release")
    release = release_build(release_id=release.pk, writers=[ConversationWriter()])
    assert release.conversations_included is True
    _assert_pseudonymous(Path(release.output_dir), identities)


def test_the_comparison_region_and_description_files_name_raters_by_pseudonym_only(project, identities, tmp_path, django_user_model):
    from annotation_site.comparisons.models import Comparison, Pair
    from annotation_site.comparisons.services import comparison_setup_save
    from annotation_site.grounding.models import DescriptionAnnotation, RegionAnnotation
    from annotation_site.images.models import Image

    # A staff member without a rater profile answers too: the release gives them a pseudonym, not their id.
    staff = django_user_model.objects.create_user(
        username="wilhelmina.tarkington", password="pw-123456", email="Wilhelmina.Tarkington@mail.example.org",
        first_name="Wilhelmina", last_name="Tarkington", is_staff=True,
    )
    a, b, c = Image.objects.filter(project=project).order_by("id")
    comparison_setup_save(project=project, enabled=True)
    pair = Pair.objects.create(project=project, image_low=a, image_high=b, strategy="random")
    for rater in [*identities, staff]:
        Comparison.objects.create(
            project=project, pair=pair, rater=rater, first_image=a, second_image=b, level="better", preference_high=0.75
        )
        RegionAnnotation.objects.create(
            project=project, image=c, rater=rater, boxes=[{"box": [0.1, 0.1, 0.6, 0.6], "tag": "blur", "note": "soft"}]
        )
        DescriptionAnnotation.objects.create(
            project=project, image=a, rater=rater, brief=[{"distortion": "noise", "severity": "obvious"}], detail="Noisy sky."
        )
    release = release_create(project=project, options={"resamples": 50}, output_dir=tmp_path / "release")
    folder = Path(release_build(release_id=release.pk).output_dir)
    _assert_pseudonymous(folder, identities)
    texts = _file_texts(folder)
    task_files = [name for name in texts if name.split("/")[0] in ("comparisons", "regions", "descriptions")]
    assert {"comparisons/pairs.csv", "regions/regions.jsonl", "regions/coco.json", "regions/grounding_iqa.jsonl",
            "descriptions/assessments.json"} <= set(task_files)
    leaks = [f"{name}: {word!r}" for name in texts for word in _forbidden([staff]) if word.lower() in texts[name].lower()]
    assert leaks == []
    pseudonyms = {RaterProfile.objects.get(user=user).pseudonym for user in [*identities, staff]}
    for name in task_files:
        named = set(re.findall(r"\br[0-9a-f]{12}\b", texts[name]))
        assert named <= pseudonyms, name
        assert not re.search(rf"user{staff.pk}\b", texts[name]), name
    assert set(re.findall(r"\br[0-9a-f]{12}\b", texts["comparisons/pairs.csv"])) == pseudonyms
