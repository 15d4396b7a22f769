"""Reads for the region and description tasks: what a rater's client is shown, agreement on boxes, and the
exports a release writes (`grounding_export_*`, rows and documents, no files).

Exports and agreement leave out gold images and excluded raters, like every statistic and release; raters are
named by pseudonym only. An image is named by `file_name_of(image)`, by default its stored file's name."""

from __future__ import annotations

import random
from collections import defaultdict
from statistics import median
from typing import Callable, Iterable

from django.db.models import QuerySet

from annotation_site.images.models import Image
from annotation_site.projects.models import Project
from annotation_site.raters.models import Membership, RaterProfile

from .conversations import (
    GROUNDED_DESCRIPTION_QUESTION,
    assessment_records,
    comparison_record,
    grounded_description,
    region_vqa,
)
from .geometry import BoxAgreement, box_agreement, coco_document, grid_encode
from .models import DescriptionAnnotation, DescriptionSetup, GroundingLease, GroundingSetup, RegionAnnotation
from .taxonomy import distortion_label

FileNameOf = Callable[[Image], str]


def default_file_name(image: Image) -> str:
    return image.display.name


def lease_payload(lease: GroundingLease) -> dict:
    """A lease as a rater's client sees it."""
    image = lease.image
    return {
        "id": lease.pk,
        "kind": lease.kind,
        "expires_at": lease.expires_at.isoformat(),
        "image": {
            "id": image.pk,
            "url": image.display.url,
            "thumbnail_url": image.thumbnail.url,
            "width": image.width,
            "height": image.height,
        },
    }


def grounding_setup_of(*, project: Project) -> GroundingSetup:
    """The project's region setup (unsaved defaults, switched off, when it has none)."""
    return GroundingSetup.objects.filter(project=project).first() or GroundingSetup(project=project)


def description_setup_of(*, project: Project) -> DescriptionSetup:
    """The project's description setup (unsaved defaults, switched off, when it has none)."""
    return DescriptionSetup.objects.filter(project=project).first() or DescriptionSetup(project=project)


def grounding_setup_payload(*, project: Project) -> dict:
    """Both tasks' setups as the API and the pages show them."""
    regions = grounding_setup_of(project=project)
    description = description_setup_of(project=project)
    return {
        "regions": {
            "enabled": regions.enabled,
            "tags": regions.tags,
            "region_questions": regions.region_questions,
            "raters_per_image": regions.raters_per_image,
        },
        "description": {
            "enabled": description.enabled,
            "distortions": [{"key": key, "label": distortion_label(key)} for key in description.distortions],
            "severities": description.severities,
            "raters_per_image": description.raters_per_image,
            "detail_min_chars": description.detail_min_chars,
        },
    }


def _excluded(project: Project) -> QuerySet:
    return Membership.objects.filter(project=project, status=Membership.Status.EXCLUDED).values("rater_id")


def region_annotations_for_release(*, project: Project) -> QuerySet[RegionAnnotation]:
    return (
        RegionAnnotation.objects.filter(project=project, image__is_gold=False)
        .exclude(rater_id__in=_excluded(project))
        .order_by("image_id", "id")
    )


def description_annotations_for_release(*, project: Project) -> QuerySet[DescriptionAnnotation]:
    return (
        DescriptionAnnotation.objects.filter(project=project, image__is_gold=False)
        .exclude(rater_id__in=_excluded(project))
        .order_by("image_id", "id")
    )


def _pseudonyms(rater_ids: Iterable[int]) -> dict[int, str]:
    ids = set(rater_ids)
    found = dict(RaterProfile.objects.filter(user_id__in=ids).values_list("user_id", "pseudonym"))
    # A user made outside rater_create has no profile yet: a stable stand-in that is not the username.
    return {rater_id: found.get(rater_id, f"user{rater_id}") for rater_id in ids}


def _images(ids: Iterable[int]) -> dict[int, Image]:
    return Image.objects.only("id", "sha256", "display", "width", "height", "project_id").in_bulk(set(ids))


def grounding_region_agreement(*, project: Project, match_tags: bool = True, threshold: float = 0.5) -> BoxAgreement:
    """Agreement of the raters' boxes: Hungarian matching on IoU per photo and pair of raters (same tag
    only, unless match_tags is False); mean IoU of the matched boxes and share of boxes matched above the
    threshold. See geometry.box_agreement."""
    per_image: dict[int, dict[int, list]] = defaultdict(dict)
    for image_id, rater_id, boxes in region_annotations_for_release(project=project).values_list("image_id", "rater_id", "boxes"):
        per_image[image_id][rater_id] = [(entry["tag"], entry["box"]) for entry in boxes]
    return box_agreement(per_image.values(), match_tags=match_tags, threshold=threshold)


# ---------------------------------------------------------------------------------------------- region exports
def grounding_export_regions(*, project: Project, file_name_of: FileNameOf = default_file_name) -> list[dict]:
    """One row per rater and photo (JSON lines): normalised boxes [x0, y0, x1, y1] (0..1 of the upright
    image, origin top-left) with tag and note, and the answers to the region questions."""
    annotations = list(region_annotations_for_release(project=project))
    images = _images(a.image_id for a in annotations)
    names = _pseudonyms(a.rater_id for a in annotations)
    return [
        {
            "image": {
                "id": a.image_id,
                "file_name": file_name_of(images[a.image_id]),
                "sha256": images[a.image_id].sha256,
                "width": images[a.image_id].width,
                "height": images[a.image_id].height,
            },
            "rater": names[a.rater_id],
            "boxes": a.boxes,
            "answers": a.answers,
            "seconds_spent": a.seconds_spent,
            "created_at": a.created_at.isoformat(),
        }
        for a in annotations
    ]


def grounding_export_regions_coco(*, project: Project, file_name_of: FileNameOf = default_file_name) -> dict:
    """The boxes as one COCO detection document: every photo that has an answer, one annotation per box
    (bbox [x, y, w, h] in pixels), the project's tags as categories; rater and note under "attributes"."""
    annotations = list(region_annotations_for_release(project=project))
    images = _images(a.image_id for a in annotations)
    names = _pseudonyms(a.rater_id for a in annotations)
    tags = list(grounding_setup_of(project=project).tags)
    for a in annotations:  # tags dropped from the setup after raters used them still get a category
        tags.extend(entry["tag"] for entry in a.boxes if entry["tag"] not in tags)
    return coco_document(
        images=[
            {"id": image.pk, "file_name": file_name_of(image), "width": image.width, "height": image.height}
            for image in sorted(images.values(), key=lambda i: i.pk)
        ],
        boxes=[
            {"image_id": a.image_id, "tag": entry["tag"], "box": entry["box"], "rater": names[a.rater_id], "note": entry["note"]}
            for a in annotations
            for entry in a.boxes
        ],
        categories=tags,
        info={"description": f"Quality regions of project {project.slug}", "coordinates": "bbox in pixels of the upright image"},
    )


def grounding_export_regions_grid_text(*, project: Project, file_name_of: FileNameOf = default_file_name) -> list[dict]:
    """One row per rater and photo in Grounding-IQA's text form on the 20 x 20 grid: `text` groups the boxes
    by tag (`[blur](<21, 65>, <100, 142>) [noise](<0, 399>)`), `conversations` holds a GIQA-DES turn (each box
    with its note) followed by the answered region questions as GIQA-VQA turns."""
    annotations = list(region_annotations_for_release(project=project))
    images = _images(a.image_id for a in annotations)
    names = _pseudonyms(a.rater_id for a in annotations)
    questions = grounding_setup_of(project=project).region_questions
    rows = []
    for a in annotations:
        conversations = []
        if a.boxes:
            conversations += [
                {"from": "human", "value": GROUNDED_DESCRIPTION_QUESTION},
                {"from": "gpt", "value": grounded_description(a.boxes)},
            ]
        conversations += region_vqa(questions, a.answers, a.boxes)
        rows.append(
            {
                "id": f"{a.image_id}-{names[a.rater_id]}",
                "image": file_name_of(images[a.image_id]),
                "rater": names[a.rater_id],
                "text": grid_encode((entry["tag"], entry["box"]) for entry in a.boxes),
                "conversations": conversations,
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------- description exports
def grounding_export_description_assessments(*, project: Project, file_name_of: FileNameOf = default_file_name) -> list[dict]:
    """DepictQA-style single-image records, per rater and photo: the brief identification ("The primary
    degradation in the evaluated image is obvious noise.") and the detailed answer when there is one."""
    annotations = list(description_annotations_for_release(project=project))
    images = _images(a.image_id for a in annotations)
    names = _pseudonyms(a.rater_id for a in annotations)
    severities = description_setup_of(project=project).severities
    records = []
    for a in annotations:
        for record in assessment_records(
            record_id=f"{a.image_id}-{names[a.rater_id]}",
            image=file_name_of(images[a.image_id]),
            brief=[(entry["distortion"], entry["severity"]) for entry in a.brief],
            detail=a.detail,
            severities=severities,
        ):
            record["rater"] = names[a.rater_id]
            records.append(record)
    return records


def description_consensus(*, project: Project) -> dict[int, dict[str, float]]:
    """Per photo, per distortion: the median severity rank over its raters (1 = mildest; a rater who did not
    name the distortion counts 0), with the number of raters under the key "__raters__"."""
    setup = description_setup_of(project=project)
    rank = {name: index for index, name in enumerate(setup.severities, start=1)}
    given: dict[int, list[dict[str, int]]] = defaultdict(list)
    for image_id, brief in description_annotations_for_release(project=project).values_list("image_id", "brief"):
        given[image_id].append({entry["distortion"]: rank.get(entry["severity"], 0) for entry in brief})
    consensus: dict[int, dict[str, float]] = {}
    for image_id, answers in given.items():
        keys = set(setup.distortions) | {key for answer in answers for key in answer}
        consensus[image_id] = {key: float(median(answer.get(key, 0) for answer in answers)) for key in keys}
        consensus[image_id]["__raters__"] = float(len(answers))
    return consensus


def grounding_export_description_comparisons(
    *,
    project: Project,
    pairs: Iterable[tuple[int, int]] | None = None,
    min_difference: float = 1.0,
    seed: int = 0,
    file_name_of: FileNameOf = default_file_name,
) -> list[dict]:
    """DepictQA-style comparison records (quality_compare_noref): for a pair of photos and a distortion whose
    consensus severities differ by at least `min_difference` steps, "Which image has more (less) noise: Image A
    or Image B?" with the answer. pairs: (image id A, image id B); by default every described photo with the
    next one in a seeded shuffle (a cycle, so each photo is in two pairs). The question asks for "less" on a
    seeded half, so that "A" and "more" are not always the answer."""
    consensus = description_consensus(project=project)
    setup = description_setup_of(project=project)
    severities, known = setup.severities, setup.distortions
    rng = random.Random(seed)
    if pairs is None:
        order = sorted(consensus)
        rng.shuffle(order)
        if len(order) == 2:
            pairs = [(order[0], order[1])]
        else:  # a cycle; one or no photo gives no pair
            pairs = [(order[i], order[(i + 1) % len(order)]) for i in range(len(order))] if len(order) > 2 else []
    pairs = [(a, b) for a, b in pairs if a in consensus and b in consensus and a != b]
    images = _images(image_id for pair in pairs for image_id in pair)

    def name(rank: float) -> str | None:
        if rank <= 0:
            return None
        whole = int(rank)
        return severities[whole - 1] if rank == whole else f"between {severities[whole - 1]} and {severities[whole]}"

    records = []
    for a, b in pairs:
        keys = sorted((set(consensus[a]) | set(consensus[b])) - {"__raters__"}, key=lambda k: (known.index(k) if k in known else len(known), k))
        for key in keys:
            rank_a, rank_b = consensus[a].get(key, 0.0), consensus[b].get(key, 0.0)
            if abs(rank_a - rank_b) < min_difference:
                continue
            record = comparison_record(
                record_id=f"{a}-{b}-{key}",
                image_a=file_name_of(images[a]),
                image_b=file_name_of(images[b]),
                distortion=key,
                severity_a=name(rank_a),
                severity_b=name(rank_b),
                a_has_more=rank_a > rank_b,
                ask_for_less=rng.random() < 0.5,
            )
            record["raters"] = [int(consensus[a]["__raters__"]), int(consensus[b]["__raters__"])]
            records.append(record)
    return records

