"""A release of a project with comparisons, regions and descriptions carries them (issue #6 item 4): pairs and
the inferred scale, Compare2Score training pairs from the MOS, boxes in three forms, DepictQA conversations and
the box agreement; named as the release names its photos, raters by pseudonym, all in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotation_site.comparisons.models import Comparison, Pair
from annotation_site.comparisons.selectors import comparison_scale_fit
from annotation_site.comparisons.services import comparison_setup_save
from annotation_site.grounding.models import DescriptionAnnotation, RegionAnnotation
from annotation_site.grounding.services import description_setup_save, grounding_setup_save
from annotation_site.raters.models import RaterProfile
from annotation_site.releases.builder import manifest_verify
from annotation_site.releases.services import release_build, release_create
from annotation_site.statistics.pairs import LEVEL_PREFERENCE
from tests.annotation_site.releases.helpers import read_csv, read_json, small_project
from tests.conftest import make_images

pytestmark = pytest.mark.django_db

TASK_FILES = {
    "comparisons/pairs.csv",
    "comparisons/scale.csv",
    "comparisons/training_pairs_from_mos.jsonl",
    "regions/regions.jsonl",
    "regions/coco.json",
    "regions/grounding_iqa.jsonl",
    "descriptions/assessments.json",
    "descriptions/comparisons.json",
}


@pytest.fixture
def staff(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(username="staff", password="pw-123456", is_staff=True)


def compare(project, first, second, rater, level: str) -> None:  # type: ignore[no-untyped-def]
    """An answer as pair_assignment_submit stores it: level of `second` (right) against `first` (left)."""
    low, high = sorted((first, second), key=lambda image: image.pk)
    pair, _ = Pair.objects.get_or_create(project=project, image_low=low, image_high=high, defaults={"strategy": "random"})
    preference = LEVEL_PREFERENCE[level]
    Comparison.objects.create(
        project=project, pair=pair, rater=rater, first_image=first, second_image=second, level=level,
        preference_high=preference if second == high else 1.0 - preference,
    )


def regions(project, image, rater, *boxes) -> None:  # type: ignore[no-untyped-def]
    RegionAnnotation.objects.create(
        project=project, image=image, rater=rater, boxes=[{"box": box, "tag": tag, "note": note} for box, tag, note in boxes]
    )


def describe(project, image, rater, brief, detail: str = "") -> None:  # type: ignore[no-untyped-def]
    DescriptionAnnotation.objects.create(
        project=project, image=image, rater=rater, brief=[{"distortion": d, "severity": s} for d, s in brief], detail=detail
    )


def task_project(project, staff):  # type: ignore[no-untyped-def]
    """small_project (A MOS 7 SD 1, B 5 SD 0, C 9 one rating, D 3 SD 1; r4 excluded; a gold photo) plus photo E,
    which has no quality label (so the release does not hold it), and answers on all three tasks."""
    data = small_project(project, staff)
    a, b, c, d, gold = data["images"]
    [e] = make_images(project, 1, start_seed=5000)
    r1, r2, r3, r4 = data["raters"]
    comparison_setup_save(project=project, enabled=True)
    compare(project, a, b, r1, "worse")
    compare(project, b, a, r2, "better")
    compare(project, d, a, r1, "superior")
    compare(project, c, d, r3, "inferior")
    compare(project, a, d, r4, "inferior")  # excluded rater
    compare(project, a, gold, r2, "similar")  # gold photo
    compare(project, a, e, r3, "similar")  # a photo the release does not hold

    grounding_setup_save(project=project, enabled=True, raters_per_image=2)
    regions(project, a, r1, ([0.0, 0.0, 0.5, 0.5], "blur", "the face"))
    regions(project, a, r2, ([0.0, 0.0, 0.5, 0.4], "blur", ""))  # IoU 0.2 / 0.25 = 0.8
    regions(project, b, r1, ([0.5, 0.5, 1.0, 1.0], "noise", ""))
    regions(project, b, r2, ([0.5, 0.5, 1.0, 0.75], "noise", "sky"))  # IoU 0.5: matched, not above 0.5
    regions(project, c, r4, ([0.1, 0.1, 0.2, 0.2], "blur", "spam"))  # excluded rater
    regions(project, gold, r1, ([0.1, 0.1, 0.2, 0.2], "blur", ""))
    regions(project, e, r1, ([0.1, 0.1, 0.2, 0.2], "blur", ""))

    description_setup_save(project=project, enabled=True, raters_per_image=2)
    describe(project, a, r1, [("noise", "obvious")], "Fur is noisy in the shadows.")
    describe(project, a, r2, [("noise", "serious")])
    describe(project, b, r1, [], "Clean and sharp all over.")
    describe(project, a, r4, [("blur", "catastrophic")], "spam spam")
    describe(project, e, r1, [("blur", "slight")])
    return {**data, "extra": e}


def build(project, tmp_path: Path, **options):  # type: ignore[no-untyped-def]
    release = release_create(project=project, options={"resamples": 50, **options}, output_dir=tmp_path / "release")
    release = release_build(release_id=release.pk)
    return release, Path(release.output_dir)


@pytest.fixture
def built(project, staff, tmp_path):  # type: ignore[no-untyped-def]
    """One split, so that every training and description pair can be worked out by hand."""
    data = task_project(project, staff)
    release, out = build(project, tmp_path, ratios={"train": 1.0})
    files = {row["image_sha256"]: row["file"] for row in read_csv(out / "scores.csv")}
    names = {letter: files[image.sha256] for letter, image in zip("ABCD", data["images"][:4])}
    pseudonym = {f"r{i}": RaterProfile.objects.get(user=rater).pseudonym for i, rater in enumerate(data["raters"], start=1)}
    return release, out, data, names, pseudonym


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_pairs_csv_has_one_row_per_counted_answer_named_as_the_release_names_its_photos(built):
    release, out, data, n, p = built
    rows = read_csv(out / "comparisons/pairs.csv")
    assert [(r["image_a"], r["image_b"], r["level"], r["preference_b"], r["rater"]) for r in rows] == [
        (n["A"], n["B"], "worse", "0.25", p["r1"]),
        (n["B"], n["A"], "better", "0.75", p["r2"]),
        (n["D"], n["A"], "superior", "1", p["r1"]),
        (n["C"], n["D"], "inferior", "0", p["r3"]),
    ]  # not the excluded rater's, the gold photo's, or the one on photo E
    assert {r["split_a"] for r in rows} == {r["split_b"] for r in rows} == {"train"}
    assert all(name.startswith("images/") and (out / name).is_file() for r in rows for name in (r["image_a"], r["image_b"]))
    assert read_json(out / "release.json")["tasks"]["comparisons"]["left_out_not_in_release"] == 1


def test_scale_csv_is_the_fitted_scale_in_mos_units_best_first(built, project):
    _, out, data, n, _ = built
    rows = read_csv(out / "comparisons/scale.csv")
    fit = comparison_scale_fit(project=project)
    assert fit.unit == "mos"  # four photos have a quality MOS: comparisons and scores on one scale
    by_id = {image.pk: letter for letter, image in zip("ABCD", data["images"][:4])}
    expected = [
        [n[by_id[r.image_id]], f"{r.score:.4f}", f"{r.ci_low:.4f}", f"{r.ci_high:.4f}", str(r.n_comparisons), "mos", "train"]
        for r in fit.rows
        if r.image_id in by_id
    ]
    assert [list(r.values()) for r in rows] == expected
    assert list(rows[0]) == ["image", "score", "ci_low", "ci_high", "n_comparisons", "unit", "split"]
    assert [r["image"] for r in rows] == [n["C"], n["A"], n["B"], n["D"]]  # MOS 9, 7, 5, 3 and the answers agree
    assert all(float(r["ci_low"]) < float(r["score"]) < float(r["ci_high"]) for r in rows)


def test_training_pairs_from_mos_follow_compare2scores_rule(built):
    _, out, _, n, _ = built
    rows = _jsonl(out / "comparisons/training_pairs_from_mos.jsonl")
    # A (7, SD 1), B (5, SD 0), D (3, SD 1); C has one rating, no SD. q = MOS_a - MOS_b, s = sqrt(SD_a² + SD_b²):
    # A-B q 2 s 1 -> worse; A-D q 4 s 1.41 -> inferior (q > 2s); B-D q 2 s 1 -> worse; reversed: better, superior.
    assert {(r["image_a"], r["image_b"]): r["level"] for r in rows} == {
        (n["A"], n["B"]): "worse",
        (n["B"], n["A"]): "better",
        (n["A"], n["D"]): "inferior",
        (n["D"], n["A"]): "superior",
        (n["B"], n["D"]): "worse",
        (n["D"], n["B"]): "better",
    }
    first = next(r for r in rows if r["image_a"] == n["A"] and r["image_b"] == n["D"])
    assert (first["mos_a"], first["sd_a"], first["mos_b"], first["sd_b"], first["split"]) == (7.0, 1.0, 3.0, 1.0, "train")


def test_region_files_hold_the_counted_boxes_in_three_forms(built):
    release, out, data, n, p = built
    rows = _jsonl(out / "regions/regions.jsonl")
    assert [(r["image"]["file_name"], r["rater"], r["boxes"], r["split"]) for r in rows] == [
        (n["A"], p["r1"], [{"box": [0.0, 0.0, 0.5, 0.5], "tag": "blur", "note": "the face"}], "train"),
        (n["A"], p["r2"], [{"box": [0.0, 0.0, 0.5, 0.4], "tag": "blur", "note": ""}], "train"),
        (n["B"], p["r1"], [{"box": [0.5, 0.5, 1.0, 1.0], "tag": "noise", "note": ""}], "train"),
        (n["B"], p["r2"], [{"box": [0.5, 0.5, 1.0, 0.75], "tag": "noise", "note": "sky"}], "train"),
    ]
    coco = read_json(out / "regions/coco.json")
    assert sorted(image["file_name"] for image in coco["images"]) == sorted([n["A"], n["B"]])
    assert [a["id"] for a in coco["annotations"]] == [1, 2, 3, 4]
    # 96 x 72 photos: [0, 0, 0.5, 0.5] is x 0, y 0, w 48, h 36 pixels
    assert coco["annotations"][0]["bbox"] == [0.0, 0.0, 48.0, 36.0]
    assert coco["annotations"][0]["attributes"] == {"rater": p["r1"], "note": "the face"}
    grid = _jsonl(out / "regions/grounding_iqa.jsonl")
    assert [(g["image"], g["rater"]) for g in grid] == [(n["A"], p["r1"]), (n["A"], p["r2"]), (n["B"], p["r1"]), (n["B"], p["r2"])]
    assert grid[0]["text"].startswith("[blur](<")
    assert read_json(out / "release.json")["tasks"]["regions"]["left_out_not_in_release"] == 1


def test_box_agreement_is_in_agreement_json_and_the_datasheet(built):
    _, out, _, _, _ = built
    agreement = read_json(out / "agreement.json")["regions"]
    # Two photos, one rater pair each: IoU 0.8 (above 0.5) and 0.5 (not above): mean 0.65, 2 x 1 / 4 boxes = 0.5.
    assert agreement["mean_iou"] == pytest.approx(0.65)
    assert agreement["matched_share"] == pytest.approx(0.5)
    assert (agreement["matched_pairs"], agreement["boxes"], agreement["images"]) == (2, 4, 2)
    datasheet = (out / "datasheet.md").read_text()
    assert "mean IoU of matched boxes 0.650" in datasheet and "IoU > 0.5: 0.500" in datasheet
    assert "Tasks collected for this release: comparisons, regions, descriptions" in datasheet


def test_description_files_hold_depictqa_conversations_of_the_counted_raters(built):
    _, out, _, n, p = built
    records = read_json(out / "descriptions/assessments.json")
    assert [(r["image_A"], r["rater"], r["conversations"][1]["value"]) for r in records] == [
        (n["A"], p["r1"], "The primary degradation in the evaluated image is obvious noise."),
        (n["A"], p["r1"], "Fur is noisy in the shadows."),
        (n["A"], p["r2"], "The primary degradation in the evaluated image is serious noise."),
        (n["B"], p["r1"], "The quality of the evaluated image is quite good without any distortion."),
        (n["B"], p["r1"], "Clean and sharp all over."),
    ]
    [record] = read_json(out / "descriptions/comparisons.json")  # A and B, the only described photos
    assert {record["image_A"], record["image_B"]} == {n["A"], n["B"]} and record["split"] == "train"
    seen = {record["image_A"]: "A", record["image_B"]: "B"}
    answer = record["conversations"][1]["value"]
    # A's median severity is between obvious (3) and serious (4); B has none.
    assert f"between obvious and serious in Image {seen[n['A']]}" in answer and f"none in Image {seen[n['B']]}" in answer


def test_every_task_file_is_in_the_manifest_and_the_datasheet_and_names_raters_by_pseudonym_only(built):
    release, out, data, _, p = built
    assert manifest_verify(out) == []
    listed = {line.split("  ", 1)[1] for line in (out / "MANIFEST.sha256").read_text().splitlines()}
    assert TASK_FILES <= listed
    datasheet = (out / "datasheet.md").read_text()
    assert all(f"`{name}`" in datasheet for name in TASK_FILES)
    excluded = p["r4"]
    for name in TASK_FILES:
        text = (out / name).read_text()
        assert excluded not in text and "spam" not in text, name
        assert data["images"][4].sha256 not in text and data["extra"].sha256 not in text, name
        for rater in data["raters"]:
            assert f'"{rater.username}"' not in text and f",{rater.username}," not in text, name
    assert {r["rater"] for r in read_csv(out / "comparisons/pairs.csv")} == {p["r1"], p["r2"], p["r3"]}
    assert set(read_json(out / "release.json")["tasks"]) == {"comparisons", "regions", "descriptions"}


def test_training_and_description_pairs_never_join_two_splits(project, staff, tmp_path):
    task_project(project, staff)
    _, out = build(project, tmp_path, ratios={"train": 0.5, "test": 0.5})
    split = {row["file"]: row["split"] for row in read_csv(out / "scores.csv")}
    for row in _jsonl(out / "comparisons/training_pairs_from_mos.jsonl"):
        assert split[row["image_a"]] == split[row["image_b"]] == row["split"]
    for path in (out / "descriptions").glob("comparisons.json"):
        for record in read_json(path):
            assert split[record["image_A"]] == split[record["image_B"]] == record["split"]
    for row in read_csv(out / "comparisons/pairs.csv"):  # answers across splits are kept, their splits named
        assert (row["split_a"], row["split_b"]) == (split[row["image_a"]], split[row["image_b"]])
    assert manifest_verify(out) == []


def test_a_project_without_these_tasks_gets_none_of_their_files(project, staff, tmp_path):
    small_project(project, staff)
    release, out = build(project, tmp_path)
    for folder in ("comparisons", "regions", "descriptions"):
        assert not (out / folder).exists(), folder
    assert "regions" not in read_json(out / "agreement.json")
    datasheet = (out / "datasheet.md").read_text()
    assert "Tasks collected for this release: none" in datasheet
    assert not any(name in datasheet for name in TASK_FILES)
    assert read_json(out / "release.json")["tasks"]["comparisons"]["collected"] is False
    assert manifest_verify(out) == []


def test_a_task_that_is_on_but_has_no_answers_writes_only_what_the_scores_give(project, staff, tmp_path):
    small_project(project, staff)
    comparison_setup_save(project=project, enabled=True)
    grounding_setup_save(project=project, enabled=True)
    _, out = build(project, tmp_path, ratios={"train": 1.0})
    assert sorted(p.name for p in (out / "comparisons").iterdir()) == ["training_pairs_from_mos.jsonl"]
    assert not (out / "regions").exists() and not (out / "descriptions").exists()
    assert len(_jsonl(out / "comparisons/training_pairs_from_mos.jsonl")) == 6
