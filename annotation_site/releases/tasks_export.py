"""The release files of the comparison, region and description tasks (issue #6 item 4).

What is written, below the release folder, when the task has answers on the release's images:

- comparisons/pairs.csv: one row per comparison answer (image_a shown first/left, image_b second/right, the level
  of image_b against image_a in Compare2Score's words, preference_b the soft preference for image_b, the rater's
  pseudonym, and each image's split);
- comparisons/scale.csv: the scale inferred from the comparisons (comparisons.selectors.comparison_scale_fit:
  Thurstone MAP with Laplace intervals, in MOS units when combined with the absolute scores, else latent units);
- comparisons/training_pairs_from_mos.jsonl: Compare2Score training pairs drawn from the absolute MOS and SD of
  the release's score field (statistics.pairs.training_pairs), within each split, never across two; written when
  the comparison task is on or has answers and the release has MOS;
- regions/regions.jsonl, regions/coco.json, regions/grounding_iqa.jsonl: the boxes (normalised JSON lines, COCO
  detection, Grounding-IQA's grid text and conversations);
- descriptions/assessments.json, descriptions/comparisons.json: DepictQA-style conversations (the comparison
  pairs are drawn within each split).

Images are named as the release names them (scores.csv's `file`); answers on photos the release does not hold
(photos with no quality label, say) are left out and counted. Gold photos and excluded raters are left out as
everywhere; raters are named by pseudonym only (a rater without a profile gets one first, as the builder does).
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
from django.contrib.auth import get_user_model

from annotation_site.comparisons.models import ComparisonSetup
from annotation_site.comparisons.selectors import comparison_scale_fit, comparisons_for_statistics
from annotation_site.grounding.geometry import box_agreement
from annotation_site.grounding.models import DescriptionSetup, GroundingSetup
from annotation_site.grounding.selectors import (
    description_annotations_for_release,
    description_consensus,
    grounding_export_description_assessments,
    grounding_export_description_comparisons,
    grounding_export_regions,
    grounding_export_regions_coco,
    grounding_export_regions_grid_text,
    region_annotations_for_release,
)
from annotation_site.images.models import Image
from annotation_site.projects.models import Project
from annotation_site.raters.models import RaterProfile
from annotation_site.raters.services import rater_profile_ensure
from annotation_site.statistics.pairs import LEVEL_PREFERENCE, training_pairs

from .tables import formula_safe_text

# Compare2Score training pairs drawn per rated image of a split (all ordered pairs when a split has fewer).
TRAINING_PAIRS_PER_IMAGE = 10
IOU_THRESHOLD = 0.5


class ReleaseImages:
    """The release's images in its own order: database id, file name as the release names it, split."""

    def __init__(self, *, ids: Sequence[int], files: Sequence[str], splits: Sequence[str]) -> None:
        self.ids = [int(i) for i in ids]
        self.files = list(files)
        self.splits = list(splits)
        self.file_of = dict(zip(self.ids, self.files))
        self.split_of = dict(zip(self.ids, self.splits))
        self.split_of_file = dict(zip(self.files, self.splits))

    def name_of(self, image: Image) -> str:
        """The release's name of a photo; "" for a photo the release does not hold (its rows are dropped)."""
        return self.file_of.get(image.pk, "")


def _ensure_pseudonyms(rater_ids: set[int]) -> None:
    """Give every rater without a profile one, so that the grounding exports find a pseudonym, not a stand-in."""
    have = set(RaterProfile.objects.filter(user_id__in=rater_ids).values_list("user_id", flat=True))
    for user in get_user_model().objects.filter(pk__in=rater_ids - have):
        rater_profile_ensure(user=user)


_LINE_BREAK_ESCAPES = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


# Text that has no UTF-8 form (half a surrogate pair, stored by an older version) is written as its JSON escape
# (\ud800), which says exactly what is stored, instead of failing the release.
def _write_json(path: Path, document: object) -> None:
    text = json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    path.write_text(text, encoding="utf-8", errors="backslashreplace")


def _write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    with open(path, "w", encoding="utf-8", errors="backslashreplace") as handle:
        for row in rows:
            # One line per row for any reader: the line breaks JSON leaves raw in text are written as escapes.
            line = json.dumps(row, ensure_ascii=False, allow_nan=False).translate(_LINE_BREAK_ESCAPES)
            handle.write(line + "\n")


def _round(value: float) -> str:
    return f"{value:.4f}"


# ------------------------------------------------------------------------------------------------ comparisons


def _comparisons(
    folder: Path, project: Project, images: ReleaseImages, mos: np.ndarray | None, sd: np.ndarray | None, seed: int
) -> tuple[dict, list[str]]:
    setup = ComparisonSetup.objects.filter(project=project).first()
    answers = comparisons_for_statistics(project=project)
    rows = list(answers.order_by("id").values_list("first_image_id", "second_image_id", "level", "rater_id"))
    kept = [r for r in rows if r[0] in images.file_of and r[1] in images.file_of]
    summary: dict = {"task_on": bool(setup and setup.enabled), "answers": len(kept), "files": []}
    if not kept and not (setup and setup.enabled):
        return {**summary, "collected": False}, []
    summary["collected"] = bool(kept)
    summary["criterion"] = setup.criterion if setup is not None else "quality"
    if len(rows) > len(kept):
        summary["left_out_not_in_release"] = len(rows) - len(kept)
    written: list[str] = []
    folder.mkdir(exist_ok=True)
    if kept:
        _ensure_pseudonyms({r[3] for r in kept})
        names = dict(RaterProfile.objects.filter(user_id__in={r[3] for r in kept}).values_list("user_id", "pseudonym"))
        file_of, split_of = images.file_of, images.split_of
        with open(folder / "pairs.csv", "w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(["image_a", "image_b", "level", "preference_b", "rater", "split_a", "split_b"])
            for first, second, level, rater in kept:
                preference = f"{LEVEL_PREFERENCE[level]:g}"
                text = [file_of[first], file_of[second], level, names[rater], split_of[first], split_of[second]]
                a, b, level_text, rater_text, split_a, split_b = (formula_safe_text(cell) for cell in text)
                out.writerow([a, b, level_text, preference, rater_text, split_a, split_b])
        written.append("comparisons/pairs.csv")
        summary["raters"] = len(names)
        summary["images"] = len({r[0] for r in kept} | {r[1] for r in kept})

        fit = comparison_scale_fit(project=project)
        scale_rows = [row for row in fit.rows if row.image_id in file_of]
        with open(folder / "scale.csv", "w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(["image", "score", "ci_low", "ci_high", "n_comparisons", "unit", "split"])
            for row in scale_rows:
                out.writerow(
                    [formula_safe_text(file_of[row.image_id]), _round(row.score), _round(row.ci_low),
                     _round(row.ci_high), row.n_comparisons, formula_safe_text(fit.unit),
                     formula_safe_text(split_of[row.image_id])]
                )
        written.append("comparisons/scale.csv")
        summary["scale"] = {
            "unit": fit.unit,
            "model": fit.model,
            "confidence": fit.confidence,
            "images": len(scale_rows),
            "images_with_mos": fit.images_with_mos,
            "note": fit.note,
        }

    if mos is not None and sd is not None:
        pairs = _training_pairs(images, np.asarray(mos, dtype=np.float64), np.asarray(sd, dtype=np.float64), seed)
        if pairs:
            _write_jsonl(folder / "training_pairs_from_mos.jsonl", pairs)
            written.append("comparisons/training_pairs_from_mos.jsonl")
        summary["training_pairs_from_mos"] = {
            "pairs": len(pairs),
            "per_split": {s: sum(1 for p in pairs if p["split"] == s) for s in dict.fromkeys(images.splits)},
            "pairs_per_image": TRAINING_PAIRS_PER_IMAGE,
            "seed": seed,
        }
    if not written:
        folder.rmdir()
    summary["files"] = written
    return summary, written


def _training_pairs(images: ReleaseImages, mos: np.ndarray, sd: np.ndarray, seed: int) -> list[dict]:
    """Per split, Compare2Score's rule on random ordered pairs of the split's images with a MOS and an SD (an
    image with one rating has no SD and takes no part); `level` is image_b's against image_a."""
    rows: list[dict] = []
    splits = np.array(images.splits, dtype=object)
    for split in dict.fromkeys(images.splits):
        where = np.flatnonzero(splits == split)
        known = int(np.sum(np.isfinite(mos[where]) & np.isfinite(sd[where])))
        wanted = min(known * (known - 1), TRAINING_PAIRS_PER_IMAGE * known)
        for pair in training_pairs(mos[where], sd[where], n_pairs=wanted, seed=seed):
            a, b = int(where[pair.first]), int(where[pair.second])
            rows.append(
                {
                    "split": split,
                    "image_a": images.files[a],
                    "image_b": images.files[b],
                    "level": pair.level,
                    "mos_a": round(float(mos[a]), 4),
                    "sd_a": round(float(sd[a]), 4),
                    "mos_b": round(float(mos[b]), 4),
                    "sd_b": round(float(sd[b]), 4),
                }
            )
    return rows


# ------------------------------------------------------------------------------------------------ regions


def _regions(folder: Path, project: Project, images: ReleaseImages) -> tuple[dict, dict | None, list[str]]:
    setup = GroundingSetup.objects.filter(project=project).first()
    answers = region_annotations_for_release(project=project)
    pairs = list(answers.values_list("image_id", "rater_id"))
    kept = [p for p in pairs if p[0] in images.file_of]
    summary: dict = {"task_on": bool(setup and setup.enabled), "answers": len(kept), "collected": bool(kept), "files": []}
    if not kept:
        return summary, None, []
    if len(pairs) > len(kept):
        summary["left_out_not_in_release"] = len(pairs) - len(kept)
    _ensure_pseudonyms({p[1] for p in kept})
    file_of, split_of = images.file_of, images.split_of
    folder.mkdir(exist_ok=True)

    rows = [row for row in grounding_export_regions(project=project, file_name_of=images.name_of) if row["image"]["id"] in file_of]
    for row in rows:
        row["split"] = split_of[row["image"]["id"]]
    _write_jsonl(folder / "regions.jsonl", rows)

    coco = grounding_export_regions_coco(project=project, file_name_of=images.name_of)
    coco["images"] = [{**image, "split": split_of[image["id"]]} for image in coco["images"] if image["id"] in file_of]
    coco["annotations"] = [
        {**annotation, "id": number}
        for number, annotation in enumerate((a for a in coco["annotations"] if a["image_id"] in file_of), start=1)
    ]
    _write_json(folder / "coco.json", coco)

    grid = [row for row in grounding_export_regions_grid_text(project=project, file_name_of=images.name_of) if row["image"]]
    by_file = images.split_of_file
    for row in grid:
        row["split"] = by_file[row["image"]]
    _write_jsonl(folder / "grounding_iqa.jsonl", grid)

    per_image: dict[int, dict[int, list]] = defaultdict(dict)
    for image_id, rater_id, boxes in answers.values_list("image_id", "rater_id", "boxes"):
        if image_id in file_of:
            per_image[image_id][rater_id] = [(entry["tag"], entry["box"]) for entry in boxes]
    agreement = asdict(box_agreement(per_image.values(), threshold=IOU_THRESHOLD))
    agreement["method"] = (
        "per photo and pair of raters, boxes matched one-to-one by the Hungarian method on IoU (same tag only); "
        "mean_iou over matched pairs, matched_share = share of boxes matched with IoU above the threshold"
    )
    files = ["regions/regions.jsonl", "regions/coco.json", "regions/grounding_iqa.jsonl"]
    summary.update(
        files=files,
        raters=len({p[1] for p in kept}),
        images=len({p[0] for p in kept}),
        boxes=len(coco["annotations"]),
        agreement={"mean_iou": agreement["mean_iou"], "matched_share": agreement["matched_share"], "threshold": IOU_THRESHOLD},
    )
    return summary, agreement, files


# ------------------------------------------------------------------------------------------------ descriptions


def _description_pairs(image_ids: Sequence[int], images: ReleaseImages, seed: int) -> list[tuple[int, int]]:
    """Within each split, every described photo with the next one in a seeded shuffle (a cycle; two photos give
    one pair, one photo none), as grounding_export_description_comparisons does for the whole project: a pair
    never joins photos of two splits."""
    rng = random.Random(seed)
    by_split: dict[str, list[int]] = defaultdict(list)
    for image_id in sorted(image_ids):
        by_split[images.split_of[image_id]].append(image_id)
    pairs: list[tuple[int, int]] = []
    for split in sorted(by_split):
        order = by_split[split]
        rng.shuffle(order)
        if len(order) == 2:
            pairs.append((order[0], order[1]))
        elif len(order) > 2:
            pairs += [(order[i], order[(i + 1) % len(order)]) for i in range(len(order))]
    return pairs


def _descriptions(folder: Path, project: Project, images: ReleaseImages, seed: int) -> tuple[dict, list[str]]:
    setup = DescriptionSetup.objects.filter(project=project).first()
    pairs = list(description_annotations_for_release(project=project).values_list("image_id", "rater_id"))
    file_of = images.file_of
    kept = [p for p in pairs if p[0] in file_of]
    summary: dict = {"task_on": bool(setup and setup.enabled), "answers": len(kept), "collected": bool(kept), "files": []}
    if not kept:
        return summary, []
    if len(pairs) > len(kept):
        summary["left_out_not_in_release"] = len(pairs) - len(kept)
    _ensure_pseudonyms({p[1] for p in kept})
    folder.mkdir(exist_ok=True)
    by_file = images.split_of_file

    records = [r for r in grounding_export_description_assessments(project=project, file_name_of=images.name_of) if r["image_A"]]
    for record in records:
        record["split"] = by_file[record["image_A"]]
    _write_json(folder / "assessments.json", records)

    described = [image_id for image_id in description_consensus(project=project) if image_id in file_of]
    comparisons = grounding_export_description_comparisons(
        project=project, pairs=_description_pairs(described, images, seed), seed=seed, file_name_of=images.name_of
    )
    for record in comparisons:
        record["split"] = by_file[record["image_A"]]
    files = ["descriptions/assessments.json"]
    if comparisons:
        _write_json(folder / "comparisons.json", comparisons)
        files.append("descriptions/comparisons.json")
    summary.update(
        files=files,
        raters=len({p[1] for p in kept}),
        images=len({p[0] for p in kept}),
        assessment_records=len(records),
        comparison_records=len(comparisons),
    )
    return summary, files


# ------------------------------------------------------------------------------------------------ entry points


def tasks_write(
    directory: Path,
    *,
    project: Project,
    images: ReleaseImages,
    mos: np.ndarray | None,
    sd: np.ndarray | None,
    seed: int,
) -> dict:
    """Write the task files into the release folder. mos, sd: per release image (in images' order) the MOS and
    SD of the release's score field, or None when it has none. Returns {"comparisons", "regions",
    "descriptions": summaries, "files": every file written, "region_agreement": the box agreement or None} for
    release.json, agreement.json and the datasheet."""
    directory = Path(directory)
    comparisons, comparison_files = _comparisons(directory / "comparisons", project, images, mos, sd, seed)
    regions, region_agreement, region_files = _regions(directory / "regions", project, images)
    descriptions, description_files = _descriptions(directory / "descriptions", project, images, seed)
    return {
        "comparisons": comparisons,
        "regions": regions,
        "descriptions": descriptions,
        "files": comparison_files + region_files + description_files,
        "region_agreement": region_agreement,
    }


def _number(value: float | None, places: int = 3) -> str:
    return "-" if value is None else f"{value:.{places}f}"


def datasheet_lines(tasks: dict | None) -> list[str]:
    """The datasheet's section on the comparison, region and description tasks."""
    if not tasks:
        return []
    comparisons, regions, descriptions = tasks["comparisons"], tasks["regions"], tasks["descriptions"]
    lines = ["## Comparisons, regions and descriptions", ""]

    def state(summary: dict) -> str:
        return "on" if summary["task_on"] else "off"

    tasks_in_order = (("comparisons", comparisons), ("regions", regions), ("descriptions", descriptions))
    collected = [name for name, summary in tasks_in_order if summary["collected"]]
    lines.append(
        "Tasks collected for this release: " + (", ".join(collected) if collected else "none")
        + f" (the comparison task is {state(comparisons)}, the region task {state(regions)}, the description task "
        f"{state(descriptions)} at release time). A task without answers on the released photos writes no files "
        "(but for the training pairs from the MOS, written while the comparison task is on). "
        "Photos are named as in `scores.csv`; raters by pseudonym, as in `ratings.csv`; gold photos and excluded "
        "raters are left out."
    )
    lines.append("")
    if comparisons["collected"]:
        scale = comparisons["scale"]
        lines.append(
            f"- `comparisons/pairs.csv`: {comparisons['answers']:,} answers on {comparisons['images']:,} photos from "
            f"{comparisons['raters']:,} raters ({comparisons['criterion']}); `level` is how image_b (shown second, on "
            "the right) compares with image_a (Compare2Score's inferior, worse, similar, better, superior), "
            "`preference_b` the same as 0, 0.25, 0.5, 0.75, 1."
        )
        unit = "the units of the absolute scores" if scale["unit"] == "mos" else "Thurstone units (mean 0; a difference of 1 is preferred by 84% of answers)"
        lines.append(
            f"- `comparisons/scale.csv`: the scale of {scale['images']:,} photos inferred from the comparisons "
            f"({scale['model']} MAP with Compare2Score's prior, {scale['confidence']:.0%} Laplace intervals), in {unit}"
            + (f"; {scale['note']}" if scale["note"] else "")
            + "."
        )
    training = comparisons.get("training_pairs_from_mos")
    if training and training["pairs"]:
        per_split = ", ".join(f"{name} {n:,}" for name, n in training["per_split"].items())
        lines.append(
            f"- `comparisons/training_pairs_from_mos.jsonl`: {training['pairs']:,} Compare2Score training pairs from the "
            f"MOS and SD of the score field ({per_split}; up to {training['pairs_per_image']} per photo, seed "
            f"{training['seed']}), drawn within each split; photos with a single rating have no SD and take no part."
        )
    if regions["collected"]:
        agreement = regions["agreement"]
        lines.append(
            f"- `regions/regions.jsonl` (normalised boxes [x0, y0, x1, y1] per rater and photo), `regions/coco.json` "
            f"(COCO detection, pixels), `regions/grounding_iqa.jsonl` (Grounding-IQA grid text and conversations): "
            f"{regions['boxes']:,} boxes on {regions['images']:,} photos from {regions['raters']:,} raters."
        )
        lines.append(
            f"- Box agreement (`agreement.json`, `regions`): mean IoU of matched boxes {_number(agreement['mean_iou'])}, "
            f"share of boxes matched with IoU > {agreement['threshold']:g}: {_number(agreement['matched_share'])} "
            "(Hungarian matching per photo and pair of raters, same tag only)."
        )
    if descriptions["collected"]:
        lines.append(
            f"- `descriptions/assessments.json`: {descriptions['assessment_records']:,} DepictQA-style single-image "
            f"records from {descriptions['raters']:,} raters on {descriptions['images']:,} photos."
            + (
                f" `descriptions/comparisons.json`: {descriptions['comparison_records']:,} comparison records (which "
                "photo has more of a distortion, from the median severities), pairs drawn within each split."
                if descriptions["comparison_records"]
                else " No comparison records: no two described photos of one split differ by a whole severity step."
            )
        )
    for name, summary in (("comparison", comparisons), ("region", regions), ("description", descriptions)):
        left_out = summary.get("left_out_not_in_release", 0)
        if left_out:
            lines.append(
                f"- {left_out:,} {name} {'answer names a photo' if left_out == 1 else 'answers name photos'} this "
                "release does not hold (photos without a quality label); left out of these files"
                + (", though the scale was fitted with them (`n_comparisons` counts them)." if name == "comparison" else ".")
            )
    lines.append("")
    return lines


__all__ = ["ReleaseImages", "datasheet_lines", "tasks_write"]
