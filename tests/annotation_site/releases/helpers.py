"""A small release-ready project whose figures can be checked by hand."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from annotation_site.labeling.services import annotation_create, gold_answer_set
from annotation_site.quality.services import membership_exclude
from annotation_site.raters.services import rater_create
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import make_images


def labels(**overrides: object) -> dict:
    """The reference label set with some fields changed; a score with a reason keeps its reason."""
    result = dict(REALQA_LABELS)
    for key, value in overrides.items():
        if key in ("eye_catching", "composition") and not isinstance(value, dict):
            value = {"value": value, "reason": f"{key} reason for {value}"}
        result[key] = value
    return result


def label(image, rater, **overrides: object) -> None:  # type: ignore[no-untyped-def]
    annotation_create(image=image, rater=rater, labels=labels(**overrides))


def small_project(project, staff):  # type: ignore[no-untyped-def]
    """Four images, three raters who count, one excluded rater and a gold image.

    quality per image (raters r1, r2, r3; the excluded r4 gave 1.0 everywhere):
        A: 6.0, 7.0, 8.0   -> n 3, MOS 7.00, SD 1, CI half-width t(0.975, 2) / sqrt(3) = 2.4841
        B: 5.0, 5.0        -> n 2, MOS 5.00, SD 0, CI 0
        C: 9.0             -> n 1, MOS 9.00, no SD, no CI
        D: 2.0, 3.0, 4.0, (r4 1.0) -> n 3, MOS 3.00, SD 1
    clarity: A good, good, poor (majority good, share 2/3); saturation "natural" from everyone (alpha undefined).
    """
    a, b, c, d, gold = make_images(project, 5)
    r1, r2, r3, r4 = (rater_create(username=f"r{i}", password="pw-123456") for i in range(1, 5))
    label(a, r1, quality=6.0, clarity="good", subject_background="Subject: a cat;  background: a sofa", eye_catching=6)
    label(a, r2, quality=7.0, clarity="good", subject_background="subject: a cat; background: a sofa", eye_catching=7)
    label(a, r3, quality=8.0, clarity="poor", subject_background="Subject: a dog; background: grass", eye_catching=9)
    label(b, r1, quality=5.0, clarity="fair")
    label(b, r2, quality=5.0, clarity="excellent")
    label(c, r1, quality=9.0, clarity="excellent")
    label(d, r1, quality=2.0, clarity="bad")
    label(d, r2, quality=3.0, clarity="bad")
    label(d, r3, quality=4.0, clarity="poor")
    for image in (a, b, c, d):
        label(image, r4, quality=1.0, clarity="bad", subject_background="Subject: spam; background: spam")
    gold_answer_set(image=gold, values={"clarity": "good"})
    for rater in (r1, r2, r3, r4):
        label(gold, rater, quality=10.0)
    membership_exclude(project=project, rater_id=r4.pk, by=staff, reason="spam")
    return {"images": (a, b, c, d, gold), "raters": (r1, r2, r3, r4)}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_json(path: Path) -> object:
    return json.loads(Path(path).read_text())
