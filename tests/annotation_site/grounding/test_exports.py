"""What a release gets from the region and description tasks: normalised boxes, COCO JSON, Grounding-IQA's grid
text, DepictQA-style assessment and comparison conversations, and agreement on boxes; excluded raters and gold
photos left out."""

from __future__ import annotations

import json

import pytest

from annotation_site.grounding.conversations import BRIEF_GOOD, brief_answer
from annotation_site.grounding.geometry import grid_parse
from annotation_site.grounding.models import DescriptionAnnotation, RegionAnnotation
from annotation_site.grounding.selectors import (
    description_consensus,
    grounding_export_description_assessments,
    grounding_export_description_comparisons,
    grounding_export_regions,
    grounding_export_regions_coco,
    grounding_export_regions_grid_text,
    grounding_region_agreement,
)
from annotation_site.quality.services import membership_exclude
from annotation_site.raters.models import RaterProfile
from annotation_site.raters.services import rater_create

pytestmark = pytest.mark.django_db

SEVERITIES = ["slight", "moderate", "obvious", "serious", "catastrophic"]


@pytest.fixture
def raters(task_project):  # type: ignore[no-untyped-def]
    # Names no hex digest, pseudonym or timestamp in an export can contain by chance ("e0" once did).
    return [rater_create(username=f"quill{i}", password="pw-123456") for i in range(3)]


def _regions(project, image, rater, boxes, answers=None):  # type: ignore[no-untyped-def]
    return RegionAnnotation.objects.create(project=project, image=image, rater=rater, boxes=boxes, answers=answers or {})


def _description(project, image, rater, brief, detail="A cat on a sofa; the fur is noisy."):  # type: ignore[no-untyped-def]
    return DescriptionAnnotation.objects.create(
        project=project, image=image, rater=rater, brief=[{"distortion": d, "severity": s} for d, s in brief], detail=detail
    )


def _pseudonym(user) -> str:  # type: ignore[no-untyped-def]
    return RaterProfile.objects.get(user=user).pseudonym


# ------------------------------------------------------------------------------------------ regions
def test_region_rows_carry_normalised_boxes_per_rater_and_photo(task_project, raters):
    image = task_project.images.first()
    boxes = [{"box": [0.25, 0.5, 0.75, 1.0], "tag": "noise", "note": "sky"}]
    _regions(task_project, image, raters[0], boxes, {"subject_sharp": "yes"})
    [row] = grounding_export_regions(project=task_project)
    assert row["boxes"] == boxes and row["answers"] == {"subject_sharp": "yes"}
    assert row["rater"] == _pseudonym(raters[0]) and "quill0" not in json.dumps(row)
    assert row["image"] == {"id": image.pk, "file_name": image.display.name, "sha256": image.sha256, "width": 96, "height": 72}
    json.dumps(row)  # a JSON line as it is


def test_coco_has_pixel_boxes_and_the_projects_tags_as_categories(task_project, raters):
    image = task_project.images.first()
    _regions(task_project, image, raters[0], [{"box": [0.25, 0.5, 0.75, 1.0], "tag": "noise", "note": "sky"}])
    document = grounding_export_regions_coco(project=task_project, file_name_of=lambda i: f"{i.sha256}.jpg")
    assert [c["name"] for c in document["categories"]] == ["blur", "noise", "over-exposure", "under-exposure", "artifact", "clutter"]
    assert document["images"] == [{"id": image.pk, "file_name": f"{image.sha256}.jpg", "width": 96, "height": 72}]
    [annotation] = document["annotations"]
    assert annotation["bbox"] == [24.0, 36.0, 48.0, 36.0] and annotation["category_id"] == 2
    assert annotation["attributes"] == {"rater": _pseudonym(raters[0]), "note": "sky"}


def test_grid_text_rows_parse_back_to_the_boxes_within_a_cell(task_project, raters):
    image = task_project.images.first()
    boxes = [
        {"box": [0.1, 0.1, 0.42, 0.33], "tag": "blur", "note": "the face is soft."},
        {"box": [0.6, 0.0, 1.0, 0.2], "tag": "over-exposure", "note": ""},
        {"box": [0.0, 0.9, 0.1, 1.0], "tag": "blur", "note": ""},
    ]
    _regions(task_project, image, raters[0], boxes, {"subject_sharp": "no", "worst": 1})
    [row] = grounding_export_regions_grid_text(project=task_project)
    assert row["text"] == "[blur](<42, 128>, <360, 381>) [over-exposure](<12, 79>)"
    parsed = grid_parse(row["text"])
    assert [r.label for r in parsed] == ["blur", "blur", "over-exposure"]
    for region, original in zip(parsed, [boxes[0], boxes[2], boxes[1]]):
        assert all(abs(a - b) <= 0.025 + 1e-9 for a, b in zip(region.box, original["box"]))  # half a cell
    turns = [turn["value"] for turn in row["conversations"]]
    assert turns[1] == "[blur](<42, 128>): the face is soft. [over-exposure](<12, 79>). [blur](<360, 381>)."
    assert turns[2:] == ["Is the main subject sharp?", "No.", "Which region is the worst?", "The [over-exposure](<12, 79>)."]


def test_agreement_matches_boxes_across_raters_by_iou(task_project, raters):
    first, second = task_project.images.all()[:2]
    _regions(task_project, first, raters[0], [{"box": [0.1, 0.1, 0.5, 0.5], "tag": "blur", "note": ""}])
    _regions(task_project, first, raters[1], [{"box": [0.1, 0.1, 0.5, 0.45], "tag": "blur", "note": ""}])
    _regions(task_project, second, raters[0], [{"box": [0.1, 0.1, 0.5, 0.5], "tag": "noise", "note": ""}])
    _regions(task_project, second, raters[1], [{"box": [0.1, 0.1, 0.5, 0.5], "tag": "blur", "note": ""}])
    strict = grounding_region_agreement(project=task_project)
    assert strict.mean_iou == pytest.approx(0.875) and strict.matched_share == pytest.approx(0.5)
    loose = grounding_region_agreement(project=task_project, match_tags=False)
    assert loose.mean_iou == pytest.approx((0.875 + 1) / 2) and loose.matched_share == 1.0


def test_excluded_raters_and_gold_photos_are_left_out(task_project, raters, admin_user):
    first, second = task_project.images.all()[:2]
    _regions(task_project, first, raters[0], [])
    _regions(task_project, first, raters[1], [])
    _description(task_project, first, raters[1], [("blur", "slight")])
    second.is_gold = True
    second.save()
    _regions(task_project, second, raters[0], [])
    membership_exclude(project=task_project, rater_id=raters[1].pk, by=admin_user)
    assert [row["rater"] for row in grounding_export_regions(project=task_project)] == [_pseudonym(raters[0])]
    assert grounding_export_description_assessments(project=task_project) == []


# ------------------------------------------------------------------------------------------ descriptions
def test_brief_answers_name_each_distortion_with_its_severity_worst_first():
    assert brief_answer([], severities=SEVERITIES) == BRIEF_GOOD
    assert brief_answer([("noise", "obvious")], severities=SEVERITIES) == "The primary degradation in the evaluated image is obvious noise."
    assert (
        brief_answer([("darken", "slight"), ("blur", "serious"), ("quantization", "moderate")], severities=SEVERITIES)
        == "The primary degradations in the evaluated image are serious blur, moderate color quantization and slight insufficient brightness."
    )


def test_assessments_are_depictqa_records_with_a_brief_and_a_detailed_conversation(task_project, raters):
    image = task_project.images.first()
    _description(task_project, image, raters[0], [("noise", "obvious")], detail="A cat on a sofa; the fur is noisy.")
    brief, detail = grounding_export_description_assessments(project=task_project)
    assert brief["task_type"] == "quality_single_A_noref" and brief["image_A"] == image.display.name
    assert brief["image_ref"] is None and brief["image_B"] is None and brief["rater"] == _pseudonym(raters[0])
    assert brief["conversations"] == [
        {"from": "human", "value": "What are the primary degradation(s) observed in the evaluated image?"},
        {"from": "gpt", "value": "The primary degradation in the evaluated image is obvious noise."},
    ]
    assert detail["conversations"][1] == {"from": "gpt", "value": "A cat on a sofa; the fur is noisy."}
    assert detail["id"].endswith("-detail") and brief["id"].endswith("-brief")


def test_consensus_severity_is_the_median_rank_over_raters(task_project, raters):
    image = task_project.images.first()
    _description(task_project, image, raters[0], [("noise", "obvious")])
    _description(task_project, image, raters[1], [("noise", "serious"), ("blur", "slight")])
    _description(task_project, image, raters[2], [])
    consensus = description_consensus(project=task_project)[image.pk]
    assert consensus["noise"] == 3.0 and consensus["blur"] == 0.0 and consensus["__raters__"] == 3.0


def test_comparisons_say_which_photo_has_more_or_less_of_a_distortion(task_project, raters):
    first, second, third = task_project.images.all()
    _description(task_project, first, raters[0], [("noise", "serious"), ("blur", "slight")])
    _description(task_project, second, raters[0], [("noise", "slight"), ("blur", "slight")])
    _description(task_project, third, raters[0], [])
    records = grounding_export_description_comparisons(project=task_project, pairs=[(first.pk, second.pk)])
    [record] = records  # blur is the same in both: no comparison
    assert record["task_type"] == "quality_compare_noref"
    assert (record["image_A"], record["image_B"]) == (first.display.name, second.display.name)
    question, answer = (turn["value"] for turn in record["conversations"])
    if "more" in question:
        assert question == "Which image has more noise: Image A or Image B?"
        assert answer == "Image A has more noise than Image B (serious in Image A, slight in Image B)."
    else:
        assert question == "Which image has less noise: Image A or Image B?"
        assert answer == "Image B has less noise than Image A (serious in Image A, slight in Image B)."
    # By default every described photo is paired, and both wordings occur over many pairs.
    default = grounding_export_description_comparisons(project=task_project, seed=3)
    assert {tuple(sorted((r["image_A"], r["image_B"]))) for r in default} <= {
        tuple(sorted((a.display.name, b.display.name))) for a in (first, second, third) for b in (first, second, third) if a != b
    }
    assert len(default) >= 2
