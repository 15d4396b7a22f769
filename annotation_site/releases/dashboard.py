"""The staff dashboard's figures, computed by the release's own code so that the two never disagree.

The labels are read exactly as the release builder reads them (the labels `annotations_for_statistics` lets
through, images and raters in id order, each image's labels in rater order, values parsed by the builder's own
`_FieldColumn`) and every field goes through `fieldstats.field_stats`, the function the release's statistics
workers call. With the same resamples and seed, the dashboard's alpha and interval therefore equal the release's
agreement.json. The dashboard uses fewer resamples than a release (DASHBOARD_RESAMPLES) and says so.

The statistics are cached (Django's cache) under a key made of the project, its schema version and what the
labels look like now (the highest annotation id and the counts that move when a label arrives, a rater is
excluded or an image becomes gold), so a reload is a cache hit and any change in the labels is a miss. Progress
figures are plain counts and are read fresh on every request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Avg, Count, F, Max, Q
from django.db.models.fields.json import KT
from django.utils import timezone

from annotation_site.images.models import Image
from annotation_site.labeling.assignments import start_of_day
from annotation_site.labeling.models import Annotation
from annotation_site.projects.models import Project
from annotation_site.quality.selectors import RaterQuality, annotations_for_statistics, project_rater_quality
from annotation_site.raters.models import Membership
from annotation_site.schemas.selectors import schema_spec
from annotation_site.schemas.spec import SchemaSpec

from .builder import CHUNK, _FieldColumn
from .fieldstats import FieldStats, LabelArrays, field_stats

DASHBOARD_RESAMPLES = 200  # a release draws 1,000; 200 keeps a page load cheap and the interval's ends stable to ~0.01
DASHBOARD_SPLIT_HALF_SPLITS = 20
DASHBOARD_SEED = 0
CACHE_SECONDS = 300
CACHE_VERSION = 1  # bump when the cached dataclasses change shape, so no process unpickles an older layout
HISTOGRAM_BINS = 10
ACTIVE_DAYS = 7


# ------------------------------------------------------------------------------------------------ labels


@dataclass(frozen=True)
class ProjectLabels:
    """A project's usable labels as the release builder holds them: positions into image_ids / rater_ids, each
    label's slot among its image's labels, one column of values per schema field."""

    spec: SchemaSpec
    image_ids: np.ndarray
    rater_ids: np.ndarray
    image: np.ndarray
    rater: np.ndarray
    slot: np.ndarray
    values: np.ndarray  # (labels, fields)

    def of(self, column: int) -> LabelArrays:
        return LabelArrays(image=self.image, rater=self.rater, slot=self.slot, value=self.values[:, column])


def project_labels(*, project: Project, spec: SchemaSpec) -> ProjectLabels:
    """The usable labels of the project in the builder's order and encoding (see the module docstring)."""
    fields = spec.fields
    columns = [_FieldColumn(f) for f in fields]
    query = (
        annotations_for_statistics(project=project)
        .order_by("image_id", "rater_id")
        .values_list("image_id", "rater_id", *(KT(f"values__{f.key}") for f in fields))
    )
    rows = list(query.iterator(chunk_size=CHUNK))
    n = len(rows)
    if not n:
        empty = np.zeros(0, np.int64)
        return ProjectLabels(spec, empty, empty, empty, empty, empty, np.zeros((0, len(fields))))
    raw = list(zip(*rows))
    image_ids = np.fromiter(raw[0], np.int64, n)
    rater_ids = np.fromiter(raw[1], np.int64, n)
    unique_images, image = np.unique(image_ids, return_inverse=True)
    unique_raters, rater = np.unique(rater_ids, return_inverse=True)
    # Rows come sorted by image: a label's slot is its place within its image's run.
    starts = np.r_[True, image[1:] != image[:-1]]
    group_start = np.flatnonzero(starts)
    slot = np.arange(n) - group_start[np.cumsum(starts) - 1]
    values = np.empty((n, len(fields)))
    for i, column in enumerate(columns):
        values[:, i], _ = column.parse(raw[2 + i])
    return ProjectLabels(
        spec=spec,
        image_ids=unique_images,
        rater_ids=unique_raters,
        image=image.astype(np.int32),
        rater=rater.astype(np.int32),
        slot=slot.astype(np.int32),
        values=values,
    )


def project_field_stats(
    *, labels: ProjectLabels, resamples: int = DASHBOARD_RESAMPLES, seed: int = DASHBOARD_SEED,
    split_half_splits: int = DASHBOARD_SPLIT_HALF_SPLITS,
) -> list[FieldStats]:
    """`field_stats` of every schema field, with the parameters a release passes its statistics workers."""
    params = {
        "n_images": int(labels.image_ids.size),
        "n_raters": int(labels.rater_ids.size),
        "resamples": resamples,
        "seed": seed,
        "split_half_splits": split_half_splits,
    }
    return [field_stats(spec, labels.of(i), **params) for i, spec in enumerate(labels.spec.fields)]


# ------------------------------------------------------------------------------------------------ what the page shows


@dataclass(frozen=True)
class FieldAgreement:
    key: str
    label: str
    kind: str
    level: str
    measurement: str | None
    labels: int
    images: int
    status: str  # "defined", "undefined" (no expected disagreement), "not computed"
    alpha: float | None
    low: float | None
    high: float | None
    units: int | None
    raters: int | None
    defined_resamples: int | None
    split_half_srcc: float | None
    note: str


@dataclass(frozen=True)
class Distribution:
    """A score field's histogram of per-image MOS (edges has one more entry than counts) or a choice field's label
    counts per choice (labels names them)."""

    key: str
    label: str
    kind: str
    counts: list[int]
    edges: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    images: int = 0


@dataclass(frozen=True)
class RaterRelease:
    """A rater's figures on the release's score field, as raters.csv has them."""

    labels: int
    loo_r: float | None
    bias: float | None
    mle_bias: float | None
    inconsistency: float | None


@dataclass(frozen=True)
class DashboardStats:
    labels: int
    images: int
    raters: int
    resamples: int
    seed: int
    split_half_splits: int
    score_field: str
    fields: list[FieldAgreement]
    distributions: list[Distribution]
    rater_quality: list[RaterQuality]
    rater_release: dict[int, RaterRelease]  # rater id -> figures; raters without usable labels are absent
    computed_at: str


def _number(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _agreement_row(stats: FieldStats) -> FieldAgreement:
    """One field's line, with the statuses and notes agreement.json gives it."""
    spec, alpha = stats.field, stats.alpha
    half = stats.split_half
    common = dict(
        key=spec.key, label=spec.label, kind=spec.kind, level=spec.level, measurement=stats.measurement,
        labels=int(stats.n.sum()), images=int((stats.n > 0).sum()),
        split_half_srcc=None if half is None else _number(half.srcc),
    )
    if alpha is None:
        note = "free text without a measurement level" if spec.kind == "text" else "no labels on the scale"
        return FieldAgreement(**common, status="not computed", alpha=None, low=None, high=None, units=None,
                              raters=None, defined_resamples=None, note=note)
    status = "defined" if alpha.alpha is not None else "undefined"
    note = "" if alpha.alpha is not None else (
        "no expected disagreement (every pairable value is the same) or fewer than two pairable values"
    )
    return FieldAgreement(**common, status=status, alpha=alpha.alpha, low=alpha.low, high=alpha.high,
                          units=alpha.units, raters=alpha.raters, defined_resamples=alpha.defined_resamples, note=note)


def _distribution(stats: FieldStats) -> Distribution | None:
    spec = stats.field
    if spec.is_score and stats.mos is not None:
        mos = stats.mos[~np.isnan(stats.mos)]
        low, high = float(spec.min), float(spec.max)
        counts, edges = np.histogram(mos, bins=HISTOGRAM_BINS, range=(low, high))
        return Distribution(spec.key, spec.label, "score", counts.tolist(), edges=edges.tolist(), images=int(mos.size))
    if spec.is_choice and stats.counts is not None:
        return Distribution(
            spec.key, spec.label, "choice", stats.counts.sum(axis=0).astype(int).tolist(),
            labels=[c.label for c in spec.choices], images=int((stats.n > 0).sum()),
        )
    return None


def _rater_release(labels: ProjectLabels, stats: FieldStats | None) -> dict[int, RaterRelease]:
    if stats is None or stats.rater_n is None:
        return {}

    def at(array: np.ndarray | None, i: int) -> float | None:
        return None if array is None else _number(float(array[i]))

    return {
        int(rater_id): RaterRelease(
            labels=int(stats.rater_n[i]),
            loo_r=at(stats.rater_loo_r, i),
            bias=at(stats.rater_bias, i),
            mle_bias=at(stats.rater_mle_bias, i),
            inconsistency=at(stats.rater_mle_inconsistency, i),
        )
        for i, rater_id in enumerate(labels.rater_ids)
    }


def _rater_rows(project: Project, labels: ProjectLabels) -> list[RaterQuality]:
    """The raters page's rows, plus a row for anyone whose labels count without a membership (labels imported or
    given by staff): the release includes them, so the table must too."""
    rows = project_rater_quality(project=project)
    known = {row.rater_id for row in rows}
    missing = [int(r) for r in labels.rater_ids if int(r) not in known]
    if not missing:
        return rows
    per_rater = np.bincount(labels.rater, minlength=labels.rater_ids.size)
    count = {int(r): int(per_rater[i]) for i, r in enumerate(labels.rater_ids)}
    gold = {
        entry["rater_id"]: entry
        for entry in Annotation.objects.filter(project=project, gold_score__isnull=False, rater_id__in=missing)
        .values("rater_id")
        .annotate(n=Count("id"), accuracy=Avg("gold_score"))
    }
    users = get_user_model().objects.filter(pk__in=missing).select_related("rater_profile")
    for user in users:
        entry = gold.get(user.pk, {})
        rows.append(
            RaterQuality(
                rater_id=user.pk,
                username=user.get_username(),
                pseudonym=getattr(getattr(user, "rater_profile", None), "pseudonym", ""),
                status="no membership",
                labels=count[user.pk],
                gold_answers=entry.get("n", 0),
                gold_accuracy=entry.get("accuracy"),
            )
        )
    return rows


def _score_field(spec: SchemaSpec) -> str:
    # The release's default: the first overall score field, else the first score field.
    overall = [f.key for f in spec.fields if f.level == "overall" and f.is_score]
    scores = [f.key for f in spec.fields if f.is_score]
    return overall[0] if overall else (scores[0] if scores else "")


def dashboard_stats_compute(
    *, project: Project, resamples: int = DASHBOARD_RESAMPLES, seed: int = DASHBOARD_SEED
) -> DashboardStats | None:
    """The statistics part of the dashboard, uncached; None for a project without a schema."""
    if project.current_schema is None:
        return None
    spec = schema_spec(schema_version=project.current_schema)
    labels = project_labels(project=project, spec=spec)
    stats = project_field_stats(labels=labels, resamples=resamples, seed=seed) if labels.image.size else []
    score_field = _score_field(spec)
    by_key = {s.field.key: s for s in stats}
    return DashboardStats(
        labels=int(labels.image.size),
        images=int(labels.image_ids.size),
        raters=int(labels.rater_ids.size),
        resamples=resamples,
        seed=seed,
        split_half_splits=DASHBOARD_SPLIT_HALF_SPLITS,
        score_field=score_field,
        fields=[_agreement_row(s) for s in stats],
        distributions=[d for d in (_distribution(s) for s in stats) if d is not None],
        rater_quality=_rater_rows(project, labels),
        rater_release=_rater_release(labels, by_key.get(score_field)),
        computed_at=timezone.now().isoformat(timespec="seconds"),
    )


def _cache_key(project: Project, resamples: int, seed: int) -> str:
    """Changes whenever anything the statistics read changes: a new label (max id, count), a rater excluded or
    reinstated (usable count, excluded memberships), an image turned gold (usable count), a new schema version.
    The project's creation time keeps a deleted project's figures from a new one that reuses its id (SQLite)."""
    everything = Annotation.objects.filter(project=project).aggregate(top=Max("id"), n=Count("id"))
    usable = annotations_for_statistics(project=project).count()
    excluded = Membership.objects.filter(project=project, status=Membership.Status.EXCLUDED).count()
    gold_answered = Annotation.objects.filter(project=project, gold_score__isnull=False).count()
    return (
        f"dashboard:{CACHE_VERSION}:{project.pk}:{project.created_at.timestamp()}:{project.current_schema_id}:{everything['top']}:{everything['n']}:{usable}:"
        f"{excluded}:{gold_answered}:{resamples}:{seed}"
    )


def dashboard_stats(
    *, project: Project, resamples: int = DASHBOARD_RESAMPLES, seed: int = DASHBOARD_SEED
) -> DashboardStats | None:
    """`dashboard_stats_compute`, cached for CACHE_SECONDS under a key that any change of the labels changes."""
    key = _cache_key(project, resamples, seed)
    cached = cache.get(key)
    if cached is not None:
        return cached
    result = dashboard_stats_compute(project=project, resamples=resamples, seed=seed)
    if result is not None:
        cache.set(key, result, CACHE_SECONDS)
    return result


# ------------------------------------------------------------------------------------------------ progress


@dataclass(frozen=True)
class Progress:
    images: int
    labels: int
    images_done: int  # labelled by at least the project's overlap and the image's own target
    share_done: float | None
    labels_today: int
    raters_today: int
    active_raters: int  # raters who labelled in the last ACTIVE_DAYS days
    active_days: int
    overlap: int
    max_overlap: int


def project_progress(*, project: Project) -> Progress:
    """Labelling progress, counted fresh (cheap indexed counts): regular images and the labels statistics use."""
    images = Image.objects.filter(project=project, is_gold=False)
    counts = images.aggregate(
        n=Count("id"),
        done=Count("id", filter=Q(label_count__gte=project.overlap) & Q(label_count__gte=F("wanted_count"))),
    )
    usable = annotations_for_statistics(project=project)
    now = timezone.now()
    today = usable.filter(created_at__gte=start_of_day(now))
    recent = usable.filter(created_at__gte=now - timedelta(days=ACTIVE_DAYS))
    return Progress(
        images=counts["n"],
        labels=usable.count(),
        images_done=counts["done"],
        share_done=counts["done"] / counts["n"] if counts["n"] else None,
        labels_today=today.count(),
        raters_today=today.order_by().values("rater_id").distinct().count(),
        active_raters=recent.order_by().values("rater_id").distinct().count(),
        active_days=ACTIVE_DAYS,
        overlap=project.overlap,
        max_overlap=project.max_overlap,
    )
