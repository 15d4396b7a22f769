"""Reads for comparisons: what a rater's client is shown, and the scale inferred from the answers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from annotation_site.images.models import Image
from annotation_site.projects.models import Project
from annotation_site.raters.models import Membership
from annotation_site.statistics.pairs import PairScaleError, joint_scale, pair_scale

from .models import Comparison, ComparisonSetup, Criterion, Level, PairAssignment

QUESTIONS = {
    Criterion.QUALITY: "Compared with the left photo, how is the quality of the right photo?",
    Criterion.AESTHETICS: "Compared with the left photo, how are the aesthetics of the right photo?",
}
MIN_IMAGES_WITH_MOS = 3


def comparison_setup_get(*, project: Project) -> ComparisonSetup | None:
    return ComparisonSetup.objects.filter(project=project).first()


def _image_payload(image: Image) -> dict:
    return {
        "id": image.pk,
        "url": image.display.url,
        "thumbnail_url": image.thumbnail.url,
        "width": image.width,
        "height": image.height,
    }


def pair_assignment_payload(assignment: PairAssignment, *, criterion: str) -> dict:
    """A leased pair as the rater's client sees it: the photos in the order shown, and the question."""
    pair = assignment.pair
    left, right = (pair.image_low, pair.image_high) if assignment.low_on_left else (pair.image_high, pair.image_low)
    return {
        "id": assignment.pk,
        "expires_at": assignment.expires_at.isoformat(),
        "criterion": criterion,
        "question": QUESTIONS[criterion],
        "levels": list(Level.values),
        "left": _image_payload(left),
        "right": _image_payload(right),
    }


def comparisons_for_statistics(*, project: Project):  # type: ignore[no-untyped-def]
    """Answers statistics may use: raters not excluded, photos not (since) made gold."""
    excluded = Membership.objects.filter(project=project, status=Membership.Status.EXCLUDED).values("rater_id")
    return (
        Comparison.objects.filter(project=project)
        .exclude(rater_id__in=excluded)
        .exclude(pair__image_low__is_gold=True)
        .exclude(pair__image_high__is_gold=True)
    )


@dataclass(frozen=True)
class ComparisonData:
    """The project's answers as index arrays over image_ids: p is the preference for image i over image j."""

    image_ids: list[int]
    i: np.ndarray
    j: np.ndarray
    p: np.ndarray


def comparison_data(*, project: Project) -> ComparisonData:
    image_ids = list(Image.objects.filter(project=project, is_gold=False).order_by("id").values_list("id", flat=True))
    index = {image_id: k for k, image_id in enumerate(image_ids)}
    rows = list(
        comparisons_for_statistics(project=project).values_list("pair__image_high_id", "pair__image_low_id", "preference_high")
    )
    i = np.array([index[high] for high, _, _ in rows], dtype=np.int64)
    j = np.array([index[low] for _, low, _ in rows], dtype=np.int64)
    p = np.array([pref for _, _, pref in rows], dtype=np.float64)
    return ComparisonData(image_ids, i, j, p)


def criterion_ratings(*, project: Project, criterion: str) -> dict[int, list[float]]:
    """The absolute scores of the criterion's field (quality or aesthetics), per image, from the labels
    statistics may use. Empty when the schema has no such field."""
    from annotation_site.quality.selectors import annotations_for_statistics  # quality reads labeling's models

    ratings: dict[int, list[float]] = {}
    for image_id, values in annotations_for_statistics(project=project).values_list("image_id", "values"):
        value = values.get(criterion) if isinstance(values, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            ratings.setdefault(image_id, []).append(float(value))
    return ratings


@dataclass(frozen=True)
class ScaleRow:
    image_id: int
    score: float
    ci_low: float
    ci_high: float
    n_comparisons: int


@dataclass(frozen=True)
class ComparisonScale:
    rows: list[ScaleRow]  # best first
    unit: str  # "mos": on the criterion's absolute scale (combined with ratings); "latent": Thurstone units
    model: str
    confidence: float
    comparisons: int
    images_with_mos: int
    note: str  # why the ratings were not combined, when they were not


def _mos_arrays(ratings: dict[int, list[float]], image_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per image the MOS and its standard error. An image with one rating (or identical ones) gets the median
    standard deviation of the others: its MOS is not exact."""
    sds = [float(np.std(r, ddof=1)) for r in ratings.values() if len(r) >= 2 and np.std(r) > 0]
    typical_sd = float(np.median(sds)) if sds else 1.0
    mos = np.full(len(image_ids), np.nan)
    se = np.full(len(image_ids), np.nan)
    for k, image_id in enumerate(image_ids):
        values = ratings.get(image_id)
        if not values:
            continue
        sd = float(np.std(values, ddof=1)) if len(values) >= 2 else 0.0
        mos[k] = float(np.mean(values))
        se[k] = (sd if sd > 0 else typical_sd) / math.sqrt(len(values))
    return mos, se


def comparison_scale_fit(*, project: Project, model: str = "thurstone", confidence: float = 0.95) -> ComparisonScale:
    """The scale of the project's photos inferred from the comparisons (Thurstone Case V MAP, Compare2Score's
    prior, Laplace intervals; see annotation_site/statistics/pairs.py). When the photos also have absolute
    ratings of the setup's criterion, both go on one scale, reported in the ratings' units; else in Thurstone
    units (mean 0; a difference of 1 is preferred by 84% of answers). Photos with neither are left out."""
    setup = comparison_setup_get(project=project)
    criterion = setup.criterion if setup is not None else Criterion.QUALITY
    data = comparison_data(project=project)
    n = len(data.image_ids)
    if n == 0 or len(data.p) == 0:
        return ComparisonScale([], "latent", model, confidence, 0, 0, "no comparisons yet")
    counts = np.bincount(data.i, minlength=n) + np.bincount(data.j, minlength=n)
    ratings = criterion_ratings(project=project, criterion=criterion)
    mos, se = _mos_arrays(ratings, data.image_ids)
    note = ""
    scale = None
    if int(np.sum(~np.isnan(mos))) >= MIN_IMAGES_WITH_MOS:
        try:
            joint = joint_scale(n, data.i, data.j, data.p, mos=mos, mos_se=se, model=model, confidence=confidence)  # type: ignore[arg-type]
            scale = ("mos", joint.score, joint.ci_low, joint.ci_high, ~np.isnan(mos) | (counts > 0))
        except PairScaleError as exc:
            note = f"ratings not combined: {exc}"
    else:
        note = f"ratings not combined: fewer than {MIN_IMAGES_WITH_MOS} photos have a {criterion} score"
    if scale is None:
        alone = pair_scale(n, data.i, data.j, data.p, model=model, confidence=confidence)  # type: ignore[arg-type]
        scale = ("latent", alone.score, alone.ci_low, alone.ci_high, counts > 0)
    unit, score, low, high, shown = scale
    rows = [
        ScaleRow(data.image_ids[k], float(score[k]), float(low[k]), float(high[k]), int(counts[k]))
        for k in np.flatnonzero(shown)
    ]
    rows.sort(key=lambda row: (-row.score, row.image_id))
    return ComparisonScale(rows, unit, model, confidence, len(data.p), int(np.sum(~np.isnan(mos))), note)


def comparison_scale(*, project: Project) -> list[ScaleRow]:
    """Rows (image id, score, ci_low, ci_high, n comparisons), best first: what a release writes."""
    return comparison_scale_fit(project=project).rows


@dataclass(frozen=True)
class ComparisonProgress:
    pairs: int
    pairs_answered: int
    comparisons: int
    raters: int
    batches: int


def comparison_progress(*, project: Project) -> ComparisonProgress:
    from .models import Pair

    setup = comparison_setup_get(project=project)
    pairs = Pair.objects.filter(project=project)
    answers = Comparison.objects.filter(project=project)
    return ComparisonProgress(
        pairs=pairs.count(),
        pairs_answered=pairs.filter(answer_count__gte=1).count(),
        comparisons=answers.count(),
        raters=answers.values("rater_id").distinct().count(),
        batches=setup.batches if setup is not None else 0,
    )
