"""The staff dashboard's figures, computed by the release's own code so that the two never disagree.

The labels are read exactly as the release builder reads them (the labels `annotations_for_statistics` lets
through, images and raters in id order, each image's labels in rater order, values parsed by the builder's own
`_FieldColumn`) and every field goes through `fieldstats.field_stats`, the function the release's statistics
workers call. With the same resamples and seed, the dashboard's alpha and interval therefore equal the release's
agreement.json. The dashboard uses fewer resamples than a release (DASHBOARD_RESAMPLES) and says so.

At RealQA size (142k labels) the statistics take 7-16 s, too long for a web request (BENCHMARKS.md), so they are
computed by the Celery task "releases.dashboard_stats" and kept as the result of its `Job`; the page shows the
newest figures at once, with when they were computed and how many labels arrived since. A project with at most
DASHBOARD_INLINE_MAX_LABELS usable labels is computed in the request whenever its labels changed: that costs
about a third of a second there, and staff of a small project see figures that are always current, with no worker.
Whether the labels changed is a fingerprint of the counts that move when a label arrives, a rater is excluded or
reinstated, or an image turns gold. Progress figures are plain counts and are read fresh on every request.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, F, Max, Q, QuerySet
from django.db.models.fields.json import KT
from django.utils import timezone

from annotation_site.core.tasks import enqueue
from annotation_site.images.models import Image
from annotation_site.jobs.models import Job
from annotation_site.jobs.services import job_create, job_fail, job_finish, job_progress, job_start
from annotation_site.labeling.assignments import start_of_day
from annotation_site.labeling.models import Annotation
from annotation_site.projects.models import Project
from annotation_site.quality.selectors import RaterQuality, annotations_for_statistics, project_rater_quality
from annotation_site.raters.models import Membership
from annotation_site.schemas.selectors import schema_spec
from annotation_site.schemas.spec import SchemaSpec

from .builder import CHUNK, _FieldColumn, lenient_text
from .fieldstats import FieldStats, LabelArrays, field_stats

DASHBOARD_RESAMPLES = 200  # a release draws 1,000; 200 keeps a page load cheap and the interval's ends stable to ~0.01
DASHBOARD_SPLIT_HALF_SPLITS = 20
DASHBOARD_SEED = 0
DASHBOARD_TASK = "releases.dashboard_stats"
LAYOUT_VERSION = 1  # bump when the stored dataclasses change shape: figures of another layout count as absent
KEEP_JOBS = 5  # finished dashboard jobs kept per project; older ones only fill the admin's job list
LOST_JOB_MINUTES = 30  # a job queued or running longer than this was lost (broker purged, worker gone)
HISTOGRAM_BINS = 10
ACTIVE_DAYS = 7
ProgressCallback = Callable[[int, int, str], None]  # (steps done, steps in all, what is being done)


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
    with lenient_text():
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
    split_half_splits: int = DASHBOARD_SPLIT_HALF_SPLITS, on_field: Callable[[int, str], None] | None = None,
) -> list[FieldStats]:
    """`field_stats` of every schema field, with the parameters a release passes its statistics workers;
    `on_field(i, key)` is called before field i."""
    params = {
        "n_images": int(labels.image_ids.size),
        "n_raters": int(labels.rater_ids.size),
        "resamples": resamples,
        "seed": seed,
        "split_half_splits": split_half_splits,
    }
    results = []
    for i, spec in enumerate(labels.spec.fields):
        if on_field is not None:
            on_field(i, spec.key)
        results.append(field_stats(spec, labels.of(i), **params))
    return results


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
    computed_at: datetime  # when the labels were read


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
    *, project: Project, resamples: int = DASHBOARD_RESAMPLES, seed: int = DASHBOARD_SEED, progress: ProgressCallback | None = None
) -> DashboardStats | None:
    """The statistics part of the dashboard; None for a project without a schema. `progress` hears of each step:
    reading the labels, each field, the rater table."""
    if project.current_schema is None:
        return None
    spec = schema_spec(schema_version=project.current_schema)
    steps = len(spec.fields) + 2

    def report(done: int, what: str) -> None:
        if progress is not None:
            progress(done, steps, what)

    report(0, "reading the labels")
    computed_at = timezone.now()
    labels = project_labels(project=project, spec=spec)
    stats = (
        project_field_stats(labels=labels, resamples=resamples, seed=seed, on_field=lambda i, key: report(1 + i, f"field {key}"))
        if labels.image.size
        else []
    )
    report(steps - 1, "rater figures")
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
        computed_at=computed_at,
    )


# ------------------------------------------------------------------------------------------------ kept figures


@dataclass(frozen=True)
class LabelsState:
    fingerprint: str  # changes whenever anything the statistics read changes
    top_annotation: int  # the project's highest annotation id


def labels_state(*, project: Project, usable: int | None = None) -> LabelsState:
    """The fingerprint moves with a new label (max id, count), a rater excluded or reinstated (usable count,
    excluded memberships), an image turned gold (usable count) and a new schema version. `usable` is the count
    of `annotations_for_statistics` when the caller already has it."""
    everything = Annotation.objects.filter(project=project).aggregate(top=Max("id"), n=Count("id"))
    if usable is None:
        usable = annotations_for_statistics(project=project).count()
    excluded = Membership.objects.filter(project=project, status=Membership.Status.EXCLUDED).count()
    gold_answered = Annotation.objects.filter(project=project, gold_score__isnull=False).count()
    fingerprint = f"{project.current_schema_id}:{everything['top']}:{everything['n']}:{usable}:{excluded}:{gold_answered}"
    return LabelsState(fingerprint, everything["top"] or 0)


def _finite(value: object) -> object:
    """JSON the database takes: PostgreSQL's jsonb has no NaN or infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _stats_to_json(stats: DashboardStats) -> dict:
    data = dataclasses.asdict(stats)
    data["computed_at"] = stats.computed_at.isoformat()
    return _finite(data)  # type: ignore[return-value]


def _stats_from_json(data: dict) -> DashboardStats:
    return DashboardStats(
        **{
            **data,
            "fields": [FieldAgreement(**f) for f in data["fields"]],
            "distributions": [Distribution(**d) for d in data["distributions"]],
            "rater_quality": [RaterQuality(**r) for r in data["rater_quality"]],
            "rater_release": {int(k): RaterRelease(**v) for k, v in data["rater_release"].items()},
            "computed_at": datetime.fromisoformat(data["computed_at"]),
        }
    )


@dataclass(frozen=True)
class KeptFigures:
    stats: DashboardStats
    job_id: int
    fingerprint: str
    top_annotation: int  # the highest annotation id when the labels were read; newer ones "arrived since"


def _jobs(project: Project) -> QuerySet[Job]:
    return Job.objects.filter(project=project, kind=DASHBOARD_TASK)


def dashboard_figures_kept(*, project: Project) -> KeptFigures | None:
    """The newest figures a finished job kept for the project's current schema, if any."""
    for job in _jobs(project).filter(status=Job.Status.DONE).order_by("-finished_at", "-pk")[:KEEP_JOBS]:
        result = job.result
        if result.get("layout") != LAYOUT_VERSION or result.get("schema_version") != project.current_schema_id:
            continue
        return KeptFigures(
            stats=_stats_from_json(result["stats"]),
            job_id=job.pk,
            fingerprint=result["fingerprint"],
            top_annotation=result["top_annotation"],
        )
    return None


def dashboard_job_pending(*, project: Project) -> Job | None:
    """The newest job that is queued or running and not given up as lost."""
    since = timezone.now() - timedelta(minutes=LOST_JOB_MINUTES)
    pending = _jobs(project).filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING], created_at__gte=since)
    return pending.defer("result").order_by("-created_at").first()


def dashboard_job_failed(*, project: Project, after: int | None) -> Job | None:
    """The newest failed job, when it is newer than the job whose figures are shown (job id `after`)."""
    failed = _jobs(project).filter(status=Job.Status.FAILED).defer("result").order_by("-pk").first()
    return failed if failed is not None and (after is None or failed.pk > after) else None


def dashboard_stats_refresh(*, project_id: int, job_id: int | None = None, inline: bool = False) -> dict:
    """Compute the project's figures and keep them as the result of job `job_id` (a new job when None), with
    progress on the job as each field is done. Idempotent: a job that already finished is left as it is, so a
    redelivered task computes nothing twice; one that was running when its worker died starts over."""
    project = Project.objects.select_related("current_schema").filter(pk=project_id).first()
    if project is None:
        return {"job": job_id, "status": "no such project"}
    if job_id is None:
        job_id = job_create(kind=DASHBOARD_TASK, project=project).pk
    job = Job.objects.defer("result").filter(pk=job_id).first()
    if job is None or job.status in (Job.Status.DONE, Job.Status.FAILED):
        return {"job": job_id, "status": job.status if job else "no such job"}
    job_start(job_id=job_id, message="reading the labels")
    try:
        # Taken before the labels are read: a label arriving meanwhile makes the figures look stale, never fresh.
        state = labels_state(project=project)
        stats = dashboard_stats_compute(
            project=project,
            progress=lambda done, total, what: job_progress(job_id=job_id, done=done, total=total, message=what),
        )
    except Exception as exc:
        job_fail(job_id=job_id, message=f"{type(exc).__name__}: {exc}")
        raise
    result = {"layout": LAYOUT_VERSION, "schema_version": project.current_schema_id, "fingerprint": state.fingerprint,
              "top_annotation": state.top_annotation, "inline": inline, "stats": None if stats is None else _stats_to_json(stats)}
    labels = 0 if stats is None else stats.labels
    job_finish(job_id=job_id, result=result, message=f"figures of {labels} labels")
    _prune(project)
    return {"job": job_id, "status": Job.Status.DONE, "labels": labels}


def _prune(project: Project) -> None:
    finished = _jobs(project).filter(status__in=[Job.Status.DONE, Job.Status.FAILED]).order_by("-finished_at", "-pk")
    old = list(finished.values_list("pk", flat=True)[KEEP_JOBS:])
    if old:
        Job.objects.filter(pk__in=old).delete()


def dashboard_stats_queue(*, project: Project) -> Job:
    """Ask a worker for fresh figures (after the current transaction commits); a job already queued or running
    is returned instead of a second one, so a double click computes once."""
    pending = dashboard_job_pending(project=project)
    if pending is not None:
        return pending
    job = job_create(kind=DASHBOARD_TASK, project=project, message="waiting for a worker")
    enqueue(DASHBOARD_TASK, args=[project.pk, job.pk])
    return job


def inline_limit() -> int:
    return settings.DASHBOARD_INLINE_MAX_LABELS


@dataclass(frozen=True)
class DashboardFigures:
    """What the page shows about the statistics."""

    stats: DashboardStats | None
    labels_since: int  # usable labels that arrived after the figures' labels were read
    other_changes: bool  # labels left out or counted again since (a rater excluded or reinstated, gold images)
    job: Job | None  # queued or running
    failed: Job | None  # the newest job failed after the figures shown were computed
    inline: bool  # the project is small enough to be computed in the request


def dashboard_figures(*, project: Project, usable: int) -> DashboardFigures:
    """The figures for the page, given the project's count of usable labels: computed here when the project has
    at most DASHBOARD_INLINE_MAX_LABELS usable labels and they changed, queued for a worker when a larger project
    has none yet, otherwise the kept ones as they are (staff ask for new ones with Recompute)."""
    inline = usable <= inline_limit()
    if project.current_schema_id is None:
        return DashboardFigures(stats=None, labels_since=0, other_changes=False, job=None, failed=None, inline=inline)
    kept = dashboard_figures_kept(project=project)
    fingerprint = labels_state(project=project, usable=usable).fingerprint
    if inline and (kept is None or kept.fingerprint != fingerprint):
        dashboard_stats_refresh(project_id=project.pk, inline=True)
        kept = dashboard_figures_kept(project=project)
    pending = dashboard_job_pending(project=project)
    failed = dashboard_job_failed(project=project, after=None if kept is None else kept.job_id)
    if kept is None and pending is None and failed is None:  # after a failure, Recompute is the staff's call
        pending = dashboard_stats_queue(project=project)
    since = 0
    if kept is not None:
        since = annotations_for_statistics(project=project).filter(pk__gt=kept.top_annotation).count()
    return DashboardFigures(
        stats=None if kept is None else kept.stats,
        labels_since=since,
        other_changes=kept is not None and kept.stats.labels + since != usable,
        job=pending,
        failed=failed,
        inline=inline,
    )


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
