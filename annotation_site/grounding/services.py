"""Writes for the region and description tasks: setups, leases (which photo a rater gets next) and answers.

Which photo next: the rater's live lease if they hold one, else the photo with the fewest raters (submitted
answers plus live leases) that still wants more and that the rater never had for this task. The pick locks
the photo's row (SELECT ... FOR UPDATE SKIP LOCKED) and counts again before leasing: every lease is written
while its photo's row is locked, so the second count sees every lease that competed for it and no photo gets
more raters than it wants (the labeling engine locks the same rows, for a moment each, to count its labels). On SQLite every write transaction is IMMEDIATE (see settings), which serialises
the same path. A lease that runs out stops counting; a late answer on it is still accepted."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Collection

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from annotation_site.images.models import Image
from annotation_site.labeling.assignments import ProjectClosed, membership_ensure, membership_may_still_work
from annotation_site.projects.models import Project
from annotation_site.raters.models import Membership

from .geometry import box_validate
from .models import DescriptionAnnotation, DescriptionSetup, GroundingLease, GroundingSetup, RegionAnnotation, TaskKind
from .taxonomy import SetupError, distortions_clean, questions_clean, severities_clean, tags_clean

LEASES_PER_RATER = 2  # the photo on screen and the one the page prefetches
MAX_BOXES = 50
MAX_NOTE_CHARS = 300
MAX_DETAIL_CHARS = 4000
MAX_RATERS_PER_IMAGE = 50
COORDINATE_DECIMALS = 6  # a millionth of the side: far below a pixel of any photo


class GroundingInputError(ValueError):
    """An answer that cannot be stored; `errors` maps the place (e.g. "boxes[2].tag") to the problem."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))


class TaskError(Exception):
    """A lease, submit or skip that cannot go ahead; the message says why."""


class LeaseNotFound(TaskError):
    """No such lease of this rater for this task (another rater's lease looks the same as a missing one)."""


class LeaseClosed(TaskError):
    """The lease was already answered or skipped."""


class TaskClosed(TaskError):
    """The task is off in this project, or the rater may not work in it."""


class AnswerConflict(TaskError):
    """An answer already stored stands in the way (same photo, or the same idempotency key elsewhere)."""


@dataclass(frozen=True)
class NoTask:
    """Nothing to do right now, and why: done or lease_limit."""

    reason: str


@dataclass(frozen=True)
class SubmitResult:
    answer: RegionAnnotation | DescriptionAnnotation
    created: bool
    next: GroundingLease | NoTask


# ---------------------------------------------------------------------------------------------- setups
def _raters_per_image(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RATERS_PER_IMAGE:
        raise SetupError({"raters_per_image": f"must be a whole number from 1 to {MAX_RATERS_PER_IMAGE}, not {value!r}"})
    return value


def grounding_setup_save(
    *,
    project: Project,
    enabled: bool | None = None,
    tags: object = None,
    region_questions: object = None,
    raters_per_image: object = None,
) -> GroundingSetup:
    """Create or change a project's region task; arguments left None keep their value (or the default).
    Raises SetupError naming each bad entry."""
    setup = GroundingSetup.objects.filter(project=project).first() or GroundingSetup(project=project)
    if enabled is not None:
        setup.enabled = bool(enabled)
    if tags is not None:
        setup.tags = tags_clean(tags)
    if region_questions is not None:
        setup.region_questions = questions_clean(region_questions)
    if raters_per_image is not None:
        setup.raters_per_image = _raters_per_image(raters_per_image)
    setup.save()
    return setup


def description_setup_save(
    *,
    project: Project,
    enabled: bool | None = None,
    distortions: object = None,
    severities: object = None,
    raters_per_image: object = None,
    detail_min_chars: object = None,
) -> DescriptionSetup:
    """Create or change a project's description task; arguments left None keep their value (or the
    default). Raises SetupError naming each bad entry."""
    setup = DescriptionSetup.objects.filter(project=project).first() or DescriptionSetup(project=project)
    if enabled is not None:
        setup.enabled = bool(enabled)
    if distortions is not None:
        setup.distortions = distortions_clean(distortions)
    if severities is not None:
        setup.severities = severities_clean(severities)
    if raters_per_image is not None:
        setup.raters_per_image = _raters_per_image(raters_per_image)
    if detail_min_chars is not None:
        if isinstance(detail_min_chars, bool) or not isinstance(detail_min_chars, int) or not 0 <= detail_min_chars <= MAX_DETAIL_CHARS:
            raise SetupError({"detail_min_chars": f"must be a whole number from 0 to {MAX_DETAIL_CHARS}"})
        setup.detail_min_chars = detail_min_chars
    setup.save()
    return setup


def setup_enabled(*, project: Project, kind: str) -> GroundingSetup | DescriptionSetup | None:
    model = GroundingSetup if kind == TaskKind.REGIONS else DescriptionSetup
    return model.objects.filter(project=project, enabled=True).first()


# ---------------------------------------------------------------------------------------------- answers
def _text(value: object, place: str, *, maximum: int, minimum: int, errors: dict[str, str]) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[place] = f"must be text, not {type(value).__name__}"
        return ""
    text = value.strip()
    if len(text) > maximum:
        errors[place] = f"at most {maximum} characters, got {len(text)}"
    elif len(text) < minimum:
        errors[place] = "is required" if not text else f"at least {minimum} characters, got {len(text)}"
    return text


def regions_clean(*, setup: GroundingSetup, boxes: object, answers: object) -> tuple[list[dict], dict]:
    """Boxes and question answers, checked against the project's setup. Raises GroundingInputError with a
    message per bad entry; returns them as stored (coordinates rounded to a millionth)."""
    errors: dict[str, str] = {}
    clean_boxes: list[dict] = []
    if not isinstance(boxes, list):
        raise GroundingInputError({"boxes": f"must be a list of boxes, not {type(boxes).__name__}"})
    if len(boxes) > MAX_BOXES:
        raise GroundingInputError({"boxes": f"at most {MAX_BOXES} boxes per photo, got {len(boxes)}"})
    for index, entry in enumerate(boxes):
        place = f"boxes[{index}]"
        if not isinstance(entry, dict):
            errors[place] = 'must be an object {"box": [x0, y0, x1, y1], "tag": ..., "note": ...}'
            continue
        unknown = sorted(set(entry) - {"box", "tag", "note"})
        if unknown:
            errors[place] = f"unknown field(s) {', '.join(unknown)}"
            continue
        try:
            box = box_validate(entry.get("box"))
        except ValueError as exc:
            errors[f"{place}.box"] = str(exc)
            box = None
        tag = entry.get("tag")
        if not isinstance(tag, str) or tag not in setup.tags:
            errors[f"{place}.tag"] = f"{tag!r} is not one of this project's tags ({', '.join(setup.tags)})"
        note = _text(entry.get("note"), f"{place}.note", maximum=MAX_NOTE_CHARS, minimum=0, errors=errors)
        if box is not None:
            rounded = [round(v, COORDINATE_DECIMALS) for v in box]
            if rounded[0] >= rounded[2] or rounded[1] >= rounded[3]:
                errors[f"{place}.box"] = "is thinner than a millionth of the photo"
            clean_boxes.append({"box": rounded, "tag": tag, "note": note})

    clean_answers: dict = {}
    if answers is None:
        answers = {}
    if not isinstance(answers, dict):
        errors["answers"] = f"must be an object of question key to answer, not {type(answers).__name__}"
        answers = {}
    questions = {question["key"]: question for question in setup.region_questions}
    for key, answer in answers.items():
        place = f"answers.{key}"
        question = questions.get(key)
        if question is None:
            errors[place] = f"no such question (this project asks: {', '.join(questions) or 'none'})"
        elif question["kind"] == "yes_no":
            if answer not in ("yes", "no"):
                errors[place] = f'must be "yes" or "no", not {answer!r}'
            else:
                clean_answers[key] = answer
        elif answer is not None and (isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(boxes)):
            errors[place] = f"must be the index of one of your {len(boxes)} boxes, or null for none; got {answer!r}"
        else:
            clean_answers[key] = answer
    if errors:
        raise GroundingInputError(errors)
    return clean_boxes, clean_answers


def description_clean(*, setup: DescriptionSetup, brief: object, detail: object) -> tuple[list[dict], str]:
    """The brief answer ([{"distortion", "severity"}], each distortion at most once; an empty list says the
    photo has no distortion) and the detailed text, checked against the setup."""
    errors: dict[str, str] = {}
    clean_brief: list[dict] = []
    if not isinstance(brief, list):
        errors["brief"] = f"must be a list of {{distortion, severity}}, not {type(brief).__name__}"
        brief = []
    seen: set[str] = set()
    for index, entry in enumerate(brief):
        place = f"brief[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"distortion", "severity"}:
            errors[place] = 'must be an object {"distortion": ..., "severity": ...} and nothing else'
            continue
        distortion, severity = entry["distortion"], entry["severity"]
        if not isinstance(distortion, str) or distortion not in setup.distortions:
            errors[f"{place}.distortion"] = f"{distortion!r} is not one of {', '.join(setup.distortions)}"
        elif distortion in seen:
            errors[f"{place}.distortion"] = f"{distortion!r} is given twice"
        else:
            seen.add(distortion)
        if not isinstance(severity, str) or severity not in setup.severities:
            errors[f"{place}.severity"] = f"{severity!r} is not one of {', '.join(setup.severities)}"
        clean_brief.append({"distortion": distortion, "severity": severity})
    text = _text(detail, "detail", maximum=MAX_DETAIL_CHARS, minimum=setup.detail_min_chars, errors=errors)
    if errors:
        raise GroundingInputError(errors)
    return clean_brief, text


# ---------------------------------------------------------------------------------------------- leases
def _counted(now: datetime) -> Q:
    return Q(status=GroundingLease.Status.SUBMITTED) | Q(status=GroundingLease.Status.LEASED, expires_at__gt=now)


def _open_for(project: Project, rater: AbstractBaseUser, kind: str) -> GroundingSetup | DescriptionSetup:
    setup = setup_enabled(project=project, kind=kind) if project.is_active else None
    if setup is None:
        raise TaskClosed(f"project {project.slug!r} has no {kind} task")
    try:
        membership = membership_ensure(project=project, rater=rater)
    except ProjectClosed as exc:
        raise TaskClosed(str(exc)) from None
    if membership.status in (Membership.Status.FAILED, Membership.Status.EXCLUDED):
        raise TaskClosed(f"project {project.slug!r} is closed to you")
    return setup


CANDIDATES = 20  # photos tried per pick before counting again (each one may be locked or just filled)


def _candidates(project: Project, rater: AbstractBaseUser, kind: str, wanted: int, now: datetime) -> list[int]:
    """Photos that want more raters and the rater never had for this task, fewest raters first, then oldest.
    Counted in three flat queries and sorted here: one plan whatever the tables' statistics say (a join of
    photos to per-photo counts planned on stale statistics ran the count once per photo)."""
    counts = dict(
        GroundingLease.objects.filter(project=project, kind=kind)
        .filter(_counted(now))
        .order_by()
        .values("image_id")
        .annotate(n=Count("id"))
        .values_list("image_id", "n")
    )
    seen = set(GroundingLease.objects.filter(rater=rater, project=project, kind=kind).values_list("image_id", flat=True))
    ids = Image.objects.filter(project=project, is_gold=False).order_by().values_list("id", flat=True)
    open_ids = [image_id for image_id in ids if image_id not in seen and counts.get(image_id, 0) < wanted]
    return heapq.nsmallest(CANDIDATES, open_ids, key=lambda image_id: (counts.get(image_id, 0), image_id))


def _lease_new(project: Project, rater: AbstractBaseUser, kind: str, wanted: int, now: datetime) -> GroundingLease | None:
    for _ in range(3):
        candidates = _candidates(project, rater, kind, wanted, now)
        if not candidates:
            return None
        for image_id in candidates:
            with transaction.atomic():
                # SKIP LOCKED: a photo another rater is being handed right now is passed over, not waited for.
                image = Image.objects.select_for_update(skip_locked=True).only(*_LEASED_IMAGE_FIELDS).filter(pk=image_id).first()
                if image is None:
                    continue
                # Counted again now that the row is ours: every lease on this photo is written while its row is
                # locked, so this sees all that competed for it.
                if GroundingLease.objects.filter(image_id=image_id, kind=kind).filter(_counted(now)).count() >= wanted:
                    continue
                try:
                    with transaction.atomic():
                        return GroundingLease.objects.create(
                            project=project,
                            image=image,
                            rater=rater,
                            kind=kind,
                            created_at=now,
                            expires_at=now + timedelta(minutes=project.lease_minutes),
                        )
                except IntegrityError:  # the same rater leased it from another tab a moment ago
                    continue
    return None


_LEASED_IMAGE_FIELDS = ["id", "project_id", "display", "thumbnail", "width", "height"]


def grounding_task_next(
    *, project: Project, rater: AbstractBaseUser, kind: str, exclude: Collection[int] = ()
) -> GroundingLease | NoTask:
    """The rater's next photo for a task: a live lease they hold (oldest first, except those in `exclude`,
    which the page has on screen), else a new lease. Raises TaskClosed when the task is off or the rater
    may not work in the project."""
    if kind not in TaskKind.values:
        raise TaskError(f"kind must be one of {', '.join(TaskKind.values)}")
    setup = _open_for(project, rater, kind)
    now = timezone.now()
    live = list(
        GroundingLease.objects.filter(
            rater=rater, project=project, kind=kind, status=GroundingLease.Status.LEASED, expires_at__gt=now
        )
        .order_by("created_at", "id")
        .select_related("image")
    )
    held = next((lease for lease in live if lease.pk not in exclude), None)
    if held is not None:
        return held
    if len(live) >= LEASES_PER_RATER:
        return NoTask("lease_limit")
    return _lease_new(project, rater, kind, setup.raters_per_image, now) or NoTask("done")


def grounding_task_skip(*, lease_id: int, rater: AbstractBaseUser, kind: str, reason: str) -> GroundingLease | NoTask:
    """Give a photo back with a reason; the rater never gets it again for this task."""
    if reason not in GroundingLease.SkipReason.values:
        raise TaskError(f"reason must be one of {', '.join(GroundingLease.SkipReason.values)}")
    with transaction.atomic():
        lease = _lease_locked(lease_id, rater, kind)
        if lease.status != GroundingLease.Status.LEASED:
            raise LeaseClosed(f"lease #{lease_id} was already {lease.status}")
        lease.status = GroundingLease.Status.SKIPPED
        lease.skip_reason = reason
        lease.finished_at = timezone.now()
        lease.save(update_fields=["status", "skip_reason", "finished_at"])
    return grounding_task_next(project=lease.project, rater=rater, kind=kind)


def _lease_locked(lease_id: int, rater: AbstractBaseUser, kind: str) -> GroundingLease:
    try:
        return (
            GroundingLease.objects.select_for_update(of=("self",))
            .select_related("project")
            .get(pk=lease_id, rater=rater, kind=kind)
        )
    except GroundingLease.DoesNotExist:
        raise LeaseNotFound(f"no {kind} lease #{lease_id} of yours") from None


def _seconds(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 86400:
        raise GroundingInputError({"seconds_spent": "must be a number of seconds between 0 and 86400"})
    return float(value)


def _submit(
    model: type[RegionAnnotation] | type[DescriptionAnnotation],
    kind: str,
    lease_id: int,
    rater: AbstractBaseUser,
    idempotency_key: str | None,
    seconds_spent: float | None,
    clean: object,
) -> SubmitResult:
    seconds = _seconds(seconds_spent)
    try:
        with transaction.atomic():
            lease = _lease_locked(lease_id, rater, kind)
            if lease.status == GroundingLease.Status.SUBMITTED and idempotency_key:
                stored = model.objects.filter(rater=rater, idempotency_key=idempotency_key).first()
                if stored is not None and stored.lease_id == lease.pk:
                    # A retry of a submit that was stored: answer as the first call did, store nothing.
                    return SubmitResult(stored, False, _next_quietly(lease.project, rater, kind))
            if lease.status != GroundingLease.Status.LEASED:
                raise LeaseClosed(f"lease #{lease_id} was already {lease.status}")
            try:  # excluded, no longer a member, or the project closed since the lease
                membership_may_still_work(project=lease.project, rater=rater)
            except ProjectClosed as exc:
                raise TaskClosed(str(exc)) from None
            setup = setup_enabled(project=lease.project, kind=kind)
            if setup is None:
                raise TaskClosed(f"project {lease.project.slug!r} has no {kind} task")
            fields = clean(setup)
            now = timezone.now()
            answer = model.objects.create(
                project=lease.project,
                image_id=lease.image_id,
                rater=rater,
                lease=lease,
                seconds_spent=seconds,
                idempotency_key=idempotency_key or None,
                created_at=now,
                **fields,
            )
            lease.status = GroundingLease.Status.SUBMITTED
            lease.finished_at = now
            lease.save(update_fields=["status", "finished_at"])
    except IntegrityError:
        if idempotency_key:
            used = model.objects.filter(rater=rater, idempotency_key=idempotency_key).first()
            if used is not None:
                raise AnswerConflict(f"idempotency key already used for an answer on lease #{used.lease_id}") from None
        image_id = GroundingLease.objects.filter(pk=lease_id).values_list("image_id", flat=True).first()
        raise AnswerConflict(f"you have already answered the {kind} task on image #{image_id}") from None
    return SubmitResult(answer, True, _next_quietly(lease.project, rater, kind))


def _next_quietly(project: Project, rater: AbstractBaseUser, kind: str) -> GroundingLease | NoTask:
    try:
        return grounding_task_next(project=project, rater=rater, kind=kind)
    except TaskClosed:
        return NoTask("closed")  # excluded or switched off meanwhile: the answer is kept all the same


def region_submit(
    *,
    lease_id: int,
    rater: AbstractBaseUser,
    boxes: object,
    answers: object = None,
    idempotency_key: str | None = None,
    seconds_spent: float | None = None,
) -> SubmitResult:
    """Store a rater's boxes for a leased photo and hand out the next one. A retry with a stored idempotency
    key stores nothing and answers as the first call did. Raises LeaseNotFound, LeaseClosed, TaskClosed,
    GroundingInputError (a message per bad entry) or AnswerConflict."""

    def clean(setup: GroundingSetup) -> dict:
        clean_boxes, clean_answers = regions_clean(setup=setup, boxes=boxes, answers=answers)
        return {"boxes": clean_boxes, "answers": clean_answers}

    return _submit(RegionAnnotation, TaskKind.REGIONS, lease_id, rater, idempotency_key, seconds_spent, clean)


def description_submit(
    *,
    lease_id: int,
    rater: AbstractBaseUser,
    brief: object,
    detail: object = "",
    idempotency_key: str | None = None,
    seconds_spent: float | None = None,
) -> SubmitResult:
    """Store a rater's description of a leased photo and hand out the next one (see region_submit)."""

    def clean(setup: DescriptionSetup) -> dict:
        clean_brief, text = description_clean(setup=setup, brief=brief, detail=detail)
        return {"brief": clean_brief, "detail": text}

    return _submit(DescriptionAnnotation, TaskKind.DESCRIPTION, lease_id, rater, idempotency_key, seconds_spent, clean)
