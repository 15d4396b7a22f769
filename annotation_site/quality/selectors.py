"""Reads for rater quality control: who labels well, who does not, and the labels statistics may use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from django.db.models import Avg, Count, F, Q, QuerySet
from django.utils import timezone

from annotation_site.labeling.assignments import start_of_day
from annotation_site.labeling.models import Annotation, Assignment
from annotation_site.projects.models import Project
from annotation_site.raters.models import Membership
from annotation_site.schemas.selectors import schema_spec
from annotation_site.statistics import bt500_screening, rater_table

FAST_SECONDS = 4.0  # a twelve-field RealQA form answered this fast was not looked at
FAST_SHARE = 0.2  # flag a rater when more than this share of their labels were that fast
STRAIGHT_SD_SHARE = 0.08  # P.808 rejects rating variance < 0.1 on a 1-5 scale: sd 0.32, 8% of the range
MIN_LABELS_FOR_FLAGS = 10


def annotations_for_statistics(*, project: Project) -> QuerySet[Annotation]:
    """Every label statistics and releases may use: regular images, raters not excluded. Nothing is
    deleted; exclusion only filters here."""
    excluded = Membership.objects.filter(project=project, status=Membership.Status.EXCLUDED).values("rater_id")
    return Annotation.objects.filter(project=project, image__is_gold=False).exclude(rater_id__in=excluded)


@dataclass
class RaterQuality:
    rater_id: int
    username: str
    pseudonym: str
    status: str
    labels: int = 0
    gold_answers: int = 0
    gold_accuracy: float | None = None
    agreement: float | None = None  # Pearson r with the leave-one-out MOS, mean over overall score fields
    bias: float | None = None  # mean of (own score - leave-one-out MOS), score units
    score_sd: float | None = None
    fast_share: float | None = None
    bt500_rejected: bool = False
    flags: list[str] = field(default_factory=list)


def _overall_fields(project: Project) -> list:
    if project.current_schema is None:
        return []
    spec = schema_spec(schema_version=project.current_schema)
    return [f for f in spec.fields if f.level == "overall" and f.is_score]


def project_rater_quality(*, project: Project) -> list[RaterQuality]:
    """Per rater of the project: labels, gold accuracy, agreement with the leave-one-out consensus,
    bias, straight-lining, implausibly fast labels and the ITU-R BT.500 screening verdict. The consensus
    is built from raters who are not excluded; an excluded rater is still measured against it."""
    memberships = list(Membership.objects.filter(project=project).select_related("rater", "rater__rater_profile"))
    rows = {
        m.rater_id: RaterQuality(
            rater_id=m.rater_id,
            username=m.rater.get_username(),
            pseudonym=getattr(getattr(m.rater, "rater_profile", None), "pseudonym", ""),
            status=m.status,
        )
        for m in memberships
    }
    gold = (
        Annotation.objects.filter(project=project, gold_score__isnull=False)
        .values("rater_id")
        .annotate(n=Count("id"), accuracy=Avg("gold_score"))
    )
    for entry in gold:
        if entry["rater_id"] in rows:
            rows[entry["rater_id"]].gold_answers = entry["n"]
            rows[entry["rater_id"]].gold_accuracy = entry["accuracy"]
    regular = Annotation.objects.filter(project=project, image__is_gold=False, assignment__kind=Assignment.Kind.REGULAR)
    timing = regular.values("rater_id").annotate(n=Count("id"), fast=Count("id", filter=_fast_label()))
    for entry in timing:
        if entry["rater_id"] in rows:
            rows[entry["rater_id"]].labels = entry["n"]
            rows[entry["rater_id"]].fast_share = entry["fast"] / entry["n"] if entry["n"] else None

    fields = _overall_fields(project)
    if fields and rows:
        _score_figures(project, fields, rows)
    for row in rows.values():
        _flag(row, fields)
    return sorted(rows.values(), key=lambda r: (-len(r.flags), r.username))


def _fast_label() -> Q:
    """A label given in under FAST_SECONDS: the shorter of the time the client reported and the server's, from
    handing out the lease to the submit. The client alone would be believed whatever it claims or if it sends
    nothing; the server's time is never shorter than the rater's look (the page prefetches the next lease, which
    only lengthens it). Imported labels have only the time they came with."""
    server_fast = Q(
        source=Annotation.Source.PLATFORM,
        assignment__finished_at__lt=F("assignment__created_at") + timedelta(seconds=FAST_SECONDS),
    )
    return Q(seconds_spent__lt=FAST_SECONDS) | server_fast


def _score_figures(project: Project, fields: list, rows: dict[int, RaterQuality]) -> None:
    excluded = {r.rater_id for r in rows.values() if r.status == Membership.Status.EXCLUDED}
    labels = list(
        Annotation.objects.filter(project=project, image__is_gold=False).values_list("rater_id", "image_id", "values")
    )
    if not labels:
        return
    rater_ids = sorted({rater for rater, _, _ in labels})
    image_ids = sorted({image for _, image, _ in labels})
    r_index = {r: i for i, r in enumerate(rater_ids)}
    i_index = {m: j for j, m in enumerate(image_ids)}
    included = np.array([r not in excluded for r in rater_ids])
    agreements: dict[int, list[float]] = {}
    biases: dict[int, list[float]] = {}
    sds: dict[int, list[float]] = {}
    for f in fields:
        matrix = np.full((len(rater_ids), len(image_ids)), np.nan)
        for rater, image, values in labels:
            value = values.get(f.key)
            if value is not None:
                matrix[r_index[rater], i_index[image]] = float(value)
        # Leave-one-out figures against the consensus of the raters who are not excluded.
        consensus = matrix[included]
        table = rater_table(consensus) if len(consensus) else None
        for position, rater in enumerate(np.array(rater_ids)[included]):
            _collect(agreements, biases, int(rater), table.plcc[position], table.bias[position])
        if (~included).any() and len(consensus):
            mos = np.nanmean(consensus, axis=0)
            for rater in np.array(rater_ids)[~included]:
                own = matrix[r_index[int(rater)]]
                both = ~np.isnan(own) & ~np.isnan(mos)
                r = float(np.corrcoef(own[both], mos[both])[0, 1]) if both.sum() > 2 else np.nan
                _collect(agreements, biases, int(rater), r, float(np.mean(own[both] - mos[both])) if both.any() else np.nan)
        for rater in rater_ids:
            own = matrix[r_index[rater]]
            own = own[~np.isnan(own)]
            if len(own) >= 2:
                sds.setdefault(rater, []).append(float(np.std(own, ddof=1)) / (f.max - f.min))
        if len(consensus) >= 2:
            screening = bt500_screening(consensus)
            for position in screening.rejected:
                rejected = int(np.array(rater_ids)[included][position])
                if rejected in rows:
                    rows[rejected].bt500_rejected = True
    for rater, row in rows.items():
        row.agreement = _mean(agreements.get(rater))
        row.bias = _mean(biases.get(rater))
        row.score_sd = _mean(sds.get(rater))


def _collect(agreements: dict, biases: dict, rater: int, r: float, bias: float) -> None:
    if np.isfinite(r):
        agreements.setdefault(rater, []).append(float(r))
    if np.isfinite(bias):
        biases.setdefault(rater, []).append(float(bias))


def _mean(values: list[float] | None) -> float | None:
    return float(np.mean(values)) if values else None


def _flag(row: RaterQuality, fields: list) -> None:
    if row.gold_accuracy is not None and row.gold_answers >= 3 and row.gold_accuracy < 0.7:
        row.flags.append("gold accuracy below 70%")
    if row.labels >= MIN_LABELS_FOR_FLAGS:
        if row.agreement is not None and row.agreement < 0.5:
            row.flags.append("low agreement with consensus")
        if row.score_sd is not None and row.score_sd < STRAIGHT_SD_SHARE:
            row.flags.append("straight-lining")
        if row.fast_share is not None and row.fast_share > FAST_SHARE:
            row.flags.append(f"{row.fast_share:.0%} of labels under {FAST_SECONDS:g} s")
    if row.bt500_rejected:
        row.flags.append("rejected by BT.500 screening")


def rater_own_figures(*, project: Project, rater_id: int) -> dict:
    """What a rater sees of themselves: labels, labels today, gold accuracy, and agreement with the
    consensus of the others on the images they labeled (their own images only, so it stays cheap)."""
    mine = Annotation.objects.filter(project=project, rater_id=rater_id)
    start = start_of_day(timezone.now())
    gold = mine.filter(gold_score__isnull=False).aggregate(accuracy=Avg("gold_score"), n=Count("id"))
    figures = {
        "labels": mine.filter(image__is_gold=False).count(),
        "labels_today": mine.filter(created_at__gte=start).count(),
        "gold_accuracy": gold["accuracy"],
        "agreement": None,
    }
    fields = _overall_fields(project)
    if not fields:
        return figures
    others = annotations_for_statistics(project=project).filter(image__annotations__rater_id=rater_id).exclude(rater_id=rater_id)
    own = {image: values for image, values in mine.filter(image__is_gold=False).values_list("image_id", "values")}
    pooled: dict[int, list[dict]] = {}
    for image, values in others.values_list("image_id", "values"):
        pooled.setdefault(image, []).append(values)
    correlations = []
    for f in fields:
        pairs = []
        for image, values in own.items():
            consensus = [row[f.key] for row in pooled.get(image, []) if row.get(f.key) is not None]
            if consensus and values.get(f.key) is not None:
                pairs.append((float(values[f.key]), sum(consensus) / len(consensus)))
        if len(pairs) >= 3:
            a, b = np.array(pairs).T
            if a.std() > 0 and b.std() > 0:
                correlations.append(float(np.corrcoef(a, b)[0, 1]))
    figures["agreement"] = float(np.mean(correlations)) if correlations else None
    return figures
