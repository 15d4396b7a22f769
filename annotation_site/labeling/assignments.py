"""The assignment engine: which image a rater labels next, and what a submit or skip changes.

Safe under concurrency on PostgreSQL: the next image is picked with SELECT ... FOR UPDATE SKIP LOCKED
and every counter moves by a conditional UPDATE, so no image gets more raters than it wants and two
raters never wait on each other. On SQLite every write transaction is IMMEDIATE (see settings), which
serialises the same code paths."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Collection

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext

from annotation_site.images.models import GoldAnswer, Image
from annotation_site.projects.models import Project
from annotation_site.raters.models import Membership
from annotation_site.schemas.models import SchemaVersion
from annotation_site.schemas.selectors import schema_spec

from .gold import gold_check
from .models import Annotation, Assignment
from .services import AnnotationConflict, annotation_create

# The assignment on screen and the one whose photo the page prefetches.
LEASES_PER_RATER = 2
Z95 = 1.959963984540054


class AssignmentError(Exception):
    """A submit or skip that cannot go ahead; the message says why."""


class AssignmentNotFound(AssignmentError):
    """No such assignment for this rater (another rater's id looks the same as a missing one)."""


class AssignmentClosed(AssignmentError):
    """The assignment was already submitted, skipped, or its lease ran out and the image filled up."""


class ProjectClosed(AssignmentError):
    """The rater may not label in this project (inactive, not a member, failed or excluded)."""


@dataclass(frozen=True)
class NoAssignment:
    """Nothing to label right now, and why: done, daily_cap, lease_limit, failed_qualification or closed."""

    reason: str


@dataclass(frozen=True)
class SubmitResult:
    annotation: Annotation
    created: bool
    feedback: dict | None
    next: Assignment | NoAssignment


# Active memberships seen lately, per process: an active rater's every label would otherwise re-read a
# row that almost never changes. Any save or delete of a membership (an exclusion, the admin) clears the
# entry in its own process (labeling/apps.py); the other processes see it within ACTIVE_MEMBERSHIP_SECONDS. That
# window is accepted for submits too (membership_may_still_work): a label an excluded rater sends in it is
# stored but left out of every statistic and release like all their labels, and one sent just after a
# membership was deleted counts no more than the labels they gave before it; it only bounds how long a
# rater already at work goes on.
ACTIVE_MEMBERSHIP_SECONDS = 5.0
_active_members: dict[tuple[int, int], float] = {}


def membership_forget(*, project_id: int, rater_id: int) -> None:
    _active_members.pop((project_id, rater_id), None)


def _known_active(project: Project, rater: AbstractBaseUser) -> bool:
    seen = _active_members.get((project.pk, rater.pk))
    return seen is not None and time.monotonic() - seen < ACTIVE_MEMBERSHIP_SECONDS


def membership_may_still_work(*, project: Project, rater: AbstractBaseUser) -> None:
    """Raise ProjectClosed when the rater may no longer answer a lease of the project handed out earlier: the
    project was deactivated, or their membership was deleted, failed or excluded since. Every task's submit asks
    (it never joins the rater to the project). Free for an active rater seen lately (the project is the one the
    submit loaded with its lease), else one indexed read."""
    names = {"project": project.slug}
    if not project.is_active:
        raise ProjectClosed(gettext("project %(project)s is closed: this answer was not stored") % names)
    if _known_active(project, rater):
        return
    status = Membership.objects.filter(project=project, rater=rater).values_list("status", flat=True).first()
    if status is None:
        why = gettext("you are no longer a member of project %(project)s: this answer was not stored")
    elif status == Membership.Status.EXCLUDED:
        why = gettext("you were excluded from project %(project)s: this answer was not stored")
    elif status == Membership.Status.FAILED:
        why = gettext("you did not pass the qualification round of project %(project)s: this answer was not stored")
    else:
        if status == Membership.Status.ACTIVE:
            _active_members[(project.pk, rater.pk)] = time.monotonic()
        return
    raise ProjectClosed(why % names)


def membership_ensure(*, project: Project, rater: AbstractBaseUser) -> Membership:
    """The rater's membership, joining an open project on first use. A project without qualification
    gold images (or with qualification_size 0) lets raters start at once."""
    membership = _membership_get_or_join(project, rater)
    if membership.status == Membership.Status.ACTIVE:
        _active_members[(project.pk, rater.pk)] = time.monotonic()
    return membership


def _membership_get_or_join(project: Project, rater: AbstractBaseUser) -> Membership:
    membership = Membership.objects.filter(project=project, rater=rater).first()
    if membership is not None:
        return membership
    if not project.open_to_all_raters or not project.is_active:
        raise ProjectClosed(f"project {project.slug!r} is not open to you")
    needs_qualification = (
        project.qualification_size > 0
        and GoldAnswer.objects.filter(image__project=project, for_qualification=True).exists()
    )
    status = Membership.Status.QUALIFYING if needs_qualification else Membership.Status.ACTIVE
    membership, _ = Membership.objects.get_or_create(
        project=project,
        rater=rater,
        defaults={"status": status, "qualified_at": None if needs_qualification else timezone.now()},
    )
    return membership


def start_of_day(now: datetime) -> datetime:
    """Midnight of `now`'s day in the site's time zone: where a rater's "today" begins."""
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def leases_expire(*, project: Project, now: datetime | None = None) -> int:
    """Return abandoned images to the pool. Cheap when nothing expired (one indexed EXISTS)."""
    now = now or timezone.now()
    expired = Assignment.objects.filter(project=project, status=Assignment.Status.LEASED, expires_at__lte=now)
    if not expired.exists():
        return 0
    with transaction.atomic(savepoint=False):
        rows = list(expired.select_for_update(skip_locked=True).values_list("id", "image_id", "kind"))
        if not rows:
            return 0
        Assignment.objects.filter(id__in=[row[0] for row in rows]).update(status=Assignment.Status.EXPIRED)
        for _, image_id, kind in rows:
            if kind == Assignment.Kind.REGULAR:
                Image.objects.filter(pk=image_id, assigned_count__gt=0).update(assigned_count=F("assigned_count") - 1)
    return len(rows)


def _current_schema(project: Project, known: SchemaVersion | None = None) -> SchemaVersion:
    """The project's current schema version, without a query when the caller already holds it."""
    if known is not None and known.pk == project.current_schema_id:
        return known
    return SchemaVersion.objects.defer("definition").get(pk=project.current_schema_id)


def _lease(
    project: Project, rater: AbstractBaseUser, image: Image, kind: str, now: datetime, schema: SchemaVersion
) -> Assignment:
    return Assignment.objects.create(
        project=project,
        image=image,
        rater=rater,
        kind=kind,
        schema_version=schema,
        created_at=now,
        expires_at=now + timedelta(minutes=project.lease_minutes),
    )


def _seen_by(rater: AbstractBaseUser) -> Exists:
    return Exists(Assignment.objects.filter(image=OuterRef("pk"), rater=rater))


def _has_room(project: Project) -> Q:
    # wanted_count stays 0 until adaptive overlap asks for more raters than the project's overlap.
    return Q(assigned_count__lt=project.overlap) | Q(assigned_count__lt=F("wanted_count"))


# On PostgreSQL one statement picks, counts and leases: one round trip on the hottest path there is.
# The pick is the function labeling_pick_image (migration labeling 0003): the same choice as the ORM
# version below (which SQLite runs, and which the tests run on both databases), with SELECT ... FOR
# UPDATE SKIP LOCKED so that concurrent raters pass over the row another transaction is taking, and a
# plan that walks the order index whatever the planner's statistics say.
_LEASE_SQL = """
WITH picked AS (
    SELECT labeling_pick_image(%(project)s, %(rater)s, %(overlap)s) AS id
), bumped AS (
    UPDATE images_image SET assigned_count = images_image.assigned_count + 1
    FROM picked WHERE images_image.id = picked.id
    RETURNING images_image.id, images_image.project_id, images_image.display, images_image.thumbnail,
              images_image.width, images_image.height
), leased AS (
    INSERT INTO labeling_assignment
        (project_id, image_id, rater_id, status, kind, schema_version_id, created_at, expires_at, skip_reason)
    SELECT %(project)s, bumped.id, %(rater)s, 'leased', 'regular', %(schema)s, %(now)s, %(expires)s, ''
    FROM bumped
    RETURNING id, image_id
)
SELECT leased.id, bumped.id, bumped.project_id, bumped.display, bumped.thumbnail, bumped.width, bumped.height
FROM leased JOIN bumped ON bumped.id = leased.image_id
"""
_LEASED_IMAGE_FIELDS = ["id", "project_id", "display", "thumbnail", "width", "height"]


def _lease_regular_postgres(
    project: Project, rater: AbstractBaseUser, now: datetime, schema: SchemaVersion
) -> Assignment | None:
    expires = now + timedelta(minutes=project.lease_minutes)
    with connection.cursor() as cursor:
        cursor.execute(
            _LEASE_SQL,
            {"project": project.pk, "overlap": project.overlap, "rater": rater.pk, "schema": schema.pk, "now": now, "expires": expires},
        )
        row = cursor.fetchone()
    if row is None:
        return None
    # The image's other columns stay deferred: the rater's client needs only these.
    image = Image.from_db(connection.alias, _LEASED_IMAGE_FIELDS, row[1:])
    assignment = Assignment(
        id=row[0],
        project=project,
        image=image,
        rater=rater,
        status=Assignment.Status.LEASED,
        kind=Assignment.Kind.REGULAR,
        schema_version=schema,
        created_at=now,
        expires_at=expires,
        skip_reason="",
    )
    assignment._state.adding = False
    assignment._state.db = connection.alias
    return assignment


def _lease_regular(project: Project, rater: AbstractBaseUser, now: datetime, schema: SchemaVersion) -> Assignment | None:
    if connection.vendor == "postgresql":
        return _lease_regular_postgres(project, rater, now, schema)
    # savepoint=False: inside a submit a failure here fails the whole request, which the client retries.
    with transaction.atomic(savepoint=False):
        image = (
            Image.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(project=project, is_gold=False)
            .filter(_has_room(project))
            .filter(~_seen_by(rater))
            .order_by("-priority", "assigned_count", "id")
            .first()
        )
        if image is None:
            return None
        Image.objects.filter(pk=image.pk).update(assigned_count=F("assigned_count") + 1)
        return _lease(project, rater, image, Assignment.Kind.REGULAR, now, schema)


def _lease_gold(
    project: Project, rater: AbstractBaseUser, now: datetime, schema: SchemaVersion, *, qualification: bool
) -> Assignment | None:
    # Gold images take any number of raters, so no counter and no lock: a random unseen one.
    candidates = GoldAnswer.objects.filter(image__project=project, for_qualification=qualification).filter(
        ~Exists(Assignment.objects.filter(image=OuterRef("image"), rater=rater))
    )
    ordered = candidates.order_by("image_id") if qualification else candidates.order_by("?")
    gold = ordered.select_related("image").first()
    if gold is None:
        return None
    kind = Assignment.Kind.QUALIFICATION if qualification else Assignment.Kind.GOLD
    return _lease(project, rater, gold.image, kind, now, schema)


def assignment_next(
    *,
    project: Project,
    rater: AbstractBaseUser,
    exclude: Collection[int] = (),
    rng: random.Random | None = None,
    known_schema: SchemaVersion | None = None,
) -> Assignment | NoAssignment:
    """The rater's next assignment: a live lease they already hold (oldest first, except those in
    `exclude`, which the page has on screen), else a new lease. Raises ProjectClosed when the rater may
    not label here."""
    membership = (
        Membership(project=project, rater=rater, status=Membership.Status.ACTIVE)
        if _known_active(project, rater)
        else membership_ensure(project=project, rater=rater)
    )
    if membership.status in (Membership.Status.FAILED, Membership.Status.EXCLUDED) or not project.is_active:
        raise ProjectClosed(
            "you did not pass the qualification round of this project"
            if membership.status == Membership.Status.FAILED
            else f"project {project.slug!r} is closed to you"
        )
    now = timezone.now()
    # At most LEASES_PER_RATER rows: one small query answers both "is one held?" and "may one more be
    # leased?"; the held one is loaded in full only when there is one.
    live = list(
        Assignment.objects.filter(rater=rater, project=project, status=Assignment.Status.LEASED, expires_at__gt=now)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
    )
    held_id = next((assignment_id for assignment_id in live if assignment_id not in exclude), None)
    if held_id is not None:
        return (
            Assignment.objects.select_related("project", "image", "schema_version")
            .defer("schema_version__definition")
            .get(pk=held_id)
        )
    if len(live) >= LEASES_PER_RATER:
        return NoAssignment("lease_limit")

    schema = _current_schema(project, known_schema)
    if membership.status == Membership.Status.QUALIFYING:
        assignment = _lease_gold(project, rater, now, schema, qualification=True)
        if assignment is not None:
            return assignment
        if live:
            return NoAssignment("lease_limit")  # the last qualification answer is still on screen
        # Fewer qualification images than the round asks for: judge on what there was.
        _qualification_close(membership)
        if membership.status == Membership.Status.FAILED:
            raise ProjectClosed("you did not pass the qualification round of this project")

    if project.daily_cap is not None:
        today = Annotation.objects.filter(rater=rater, project=project, created_at__gte=start_of_day(now)).count()
        if today >= project.daily_cap:
            return NoAssignment("daily_cap")
    if project.gold_rate > 0 and (rng or random).random() < project.gold_rate:
        assignment = _lease_gold(project, rater, now, schema, qualification=False)
        if assignment is not None:
            return assignment
    assignment = _lease_regular(project, rater, now, schema)
    # Abandoned leases are only looked for when the pool seems empty: until then an expired lease merely
    # keeps its image a little behind the others, and the hot path saves a query.
    if assignment is None and leases_expire(project=project, now=now):
        assignment = _lease_regular(project, rater, now, schema)
    return assignment or NoAssignment("done")


def _qualification_close(membership: Membership) -> None:
    if membership.qualification_answered == 0:
        membership.status = Membership.Status.ACTIVE
    else:
        share = membership.qualification_score / membership.qualification_answered
        membership.status = (
            Membership.Status.ACTIVE
            if share >= membership.project.qualification_pass_share
            else Membership.Status.FAILED
        )
    membership.qualified_at = timezone.now()
    membership.save(update_fields=["status", "qualified_at"])


def _qualification_record(membership: Membership, score: float) -> None:
    Membership.objects.filter(pk=membership.pk).update(
        qualification_answered=F("qualification_answered") + 1, qualification_score=F("qualification_score") + score
    )
    membership.refresh_from_db()
    if membership.qualification_answered >= membership.project.qualification_size:
        _qualification_close(membership)


def _overall_half_width(image: Image, spec_fields: list[str]) -> float:
    """Widest 95% CI half-width (normal approximation, 1.96·s/√n as in BT.500 and sureal) over the
    overall score fields, from the labels that statistics may use."""
    from annotation_site.quality.selectors import annotations_for_statistics  # quality reads labeling's models

    rows = annotations_for_statistics(project=image.project).filter(image=image).values_list("values", flat=True)
    widest = 0.0
    for key in spec_fields:
        values = [float(row[key]) for row in rows if row.get(key) is not None]
        if len(values) < 2:
            return math.inf
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        widest = max(widest, Z95 * sd / math.sqrt(len(values)))
    return widest


def _adapt_overlap(assignment: Assignment) -> None:
    """Adaptive overlap: once an image has its base overlap, it asks for one more rater at a time
    while its overall scores are still uncertain, up to the project's cap."""
    project = assignment.project
    if project.max_overlap <= project.overlap:
        return
    image = Image.objects.get(pk=assignment.image_id)
    if image.label_count < project.overlap:
        return
    spec = schema_spec(schema_version=assignment.schema_version)
    overall = [f.key for f in spec.fields if f.level == "overall" and f.is_score]
    if not overall:
        return
    uncertain = _overall_half_width(image, overall) > project.target_ci_half_width
    wanted = min(image.label_count + 1, project.max_overlap) if uncertain else image.label_count
    Image.objects.filter(pk=image.pk).update(wanted_count=wanted)


def assignment_submit(
    *,
    assignment_id: int,
    rater: AbstractBaseUser,
    labels: object,
    idempotency_key: str | None = None,
    seconds_spent: float | None = None,
    client_info: dict | None = None,
) -> SubmitResult:
    """Store the rater's labels for an assignment and hand out the next one.

    A retry with an idempotency key already stored changes nothing and answers as the first call did.
    Raises AssignmentNotFound, AssignmentClosed, LabelError (a message per field) or AnnotationConflict."""
    try:
        return _submit(assignment_id, rater, labels, idempotency_key, seconds_spent, client_info)
    except IntegrityError:
        # The label's insert hit a unique constraint and rolled the whole submit back; say which one.
        if idempotency_key:
            used = Annotation.objects.filter(rater=rater, idempotency_key=idempotency_key).first()
            if used is not None:
                raise AnnotationConflict(
                    f"idempotency key already used for a label on assignment #{used.assignment_id}"
                ) from None
        image_id = Assignment.objects.filter(pk=assignment_id).values_list("image_id", flat=True).first()
        raise AnnotationConflict(f"this rater has already labeled image #{image_id}") from None


def _submit(
    assignment_id: int,
    rater: AbstractBaseUser,
    labels: object,
    idempotency_key: str | None,
    seconds_spent: float | None,
    client_info: dict | None,
) -> SubmitResult:
    now = timezone.now()
    feedback = None
    with transaction.atomic():
        try:
            assignment = (
                Assignment.objects.select_for_update(of=("self",))
                .select_related("project", "schema_version")
                .defer("schema_version__definition")
                .get(pk=assignment_id, rater=rater)
            )
        except Assignment.DoesNotExist:
            raise AssignmentNotFound(f"no assignment #{assignment_id} of yours") from None
        project = assignment.project
        if assignment.status == Assignment.Status.SUBMITTED and idempotency_key:
            stored = Annotation.objects.filter(rater=rater, idempotency_key=idempotency_key).first()
            if stored is not None and stored.assignment_id == assignment.pk:
                # A retry of a submit that was stored: answer as the first call did, store nothing.
                return SubmitResult(stored, False, None, _next_after_submit(project, rater, assignment.schema_version))
        if assignment.status in (Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED):
            raise AssignmentClosed(f"assignment #{assignment_id} was already {assignment.status}")
        membership_may_still_work(project=project, rater=rater)  # excluded, deleted or closed since the lease
        if assignment.status == Assignment.Status.EXPIRED and assignment.kind == Assignment.Kind.REGULAR:
            # A late answer is still welcome while the image has room for it.
            reclaimed = (
                Image.objects.filter(pk=assignment.image_id)
                .filter(_has_room(project))
                .update(assigned_count=F("assigned_count") + 1)
            )
            if not reclaimed:
                raise AssignmentClosed(f"the lease of assignment #{assignment_id} ran out and the image is full")

        annotation, created = annotation_create(
            # Only the image's id and project are needed, and both are on the assignment already.
            image=Image.from_db(connection.alias, ["id", "project_id"], [assignment.image_id, project.pk]),
            rater=rater,
            labels=labels,
            seconds_spent=seconds_spent,
            client_info=client_info,
            idempotency_key=idempotency_key,
            assignment=assignment,
            schema_version=assignment.schema_version,
            conflicts_to_caller=True,
        )
        _assignment_finish(assignment, now)
        if assignment.kind == Assignment.Kind.REGULAR:
            _adapt_overlap(assignment)
        else:
            gold = GoldAnswer.objects.get(image_id=assignment.image_id)
            check = gold_check(
                schema_spec(schema_version=assignment.schema_version),
                expected=gold.values,
                tolerances=gold.tolerances,
                given=annotation.values,
            )
            annotation.gold_score = check.score
            annotation.save(update_fields=["gold_score"])
            if assignment.kind == Assignment.Kind.QUALIFICATION:
                membership = Membership.objects.select_related("project").get(project=project, rater=rater)
                _qualification_record(membership, check.score)
                feedback = {
                    "score": check.score,
                    "correct": check.correct,
                    "expected": check.expected,
                    "message": gold.feedback,
                    "status": membership.status,
                }
        # The next lease shares the submit's transaction: one commit (one WAL flush) per label.
        if feedback and feedback["status"] == Membership.Status.FAILED:
            following: Assignment | NoAssignment = NoAssignment("failed_qualification")
        else:
            following = _next_after_submit(project, rater, assignment.schema_version)
    return SubmitResult(annotation, created, feedback, following)


# PostgreSQL closes the assignment and counts the image's label in one statement.
_FINISH_SQL = """
WITH done AS (
    UPDATE labeling_assignment SET status = 'submitted', finished_at = %(now)s WHERE id = %(id)s RETURNING image_id
)
UPDATE images_image SET label_count = images_image.label_count + 1 FROM done WHERE images_image.id = done.image_id
"""


def _assignment_finish(assignment: Assignment, now: datetime) -> None:
    """Mark the assignment submitted and, for a regular image, count the label on the image."""
    assignment.status = Assignment.Status.SUBMITTED
    assignment.finished_at = now
    if assignment.kind == Assignment.Kind.REGULAR and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_FINISH_SQL, {"id": assignment.pk, "now": now})
        return
    Assignment.objects.filter(pk=assignment.pk).update(status=assignment.status, finished_at=now)
    if assignment.kind == Assignment.Kind.REGULAR:
        Image.objects.filter(pk=assignment.image_id).update(label_count=F("label_count") + 1)


def _next_after_submit(project: Project, rater: AbstractBaseUser, schema: SchemaVersion) -> Assignment | NoAssignment:
    try:
        return assignment_next(project=project, rater=rater, known_schema=schema)
    except ProjectClosed:
        return NoAssignment("closed")  # excluded meanwhile: the label is kept all the same


def assignment_skip(*, assignment_id: int, rater: AbstractBaseUser, reason: str) -> Assignment | NoAssignment:
    """Give an image back with a reason; the rater never gets it again, and it returns to the pool."""
    if reason not in Assignment.SkipReason.values:
        raise AssignmentError(f"reason must be one of {', '.join(Assignment.SkipReason.values)}")
    with transaction.atomic():
        try:
            assignment = (
                Assignment.objects.select_for_update(of=("self",)).select_related("project").get(pk=assignment_id, rater=rater)
            )
        except Assignment.DoesNotExist:
            raise AssignmentNotFound(f"no assignment #{assignment_id} of yours") from None
        if assignment.status != Assignment.Status.LEASED:
            raise AssignmentClosed(f"assignment #{assignment_id} was already {assignment.status}")
        assignment.status = Assignment.Status.SKIPPED
        assignment.skip_reason = reason
        assignment.finished_at = timezone.now()
        assignment.save(update_fields=["status", "skip_reason", "finished_at"])
        if assignment.kind == Assignment.Kind.REGULAR:
            Image.objects.filter(pk=assignment.image_id, assigned_count__gt=0).update(assigned_count=F("assigned_count") - 1)
    return assignment_next(project=assignment.project, rater=rater)
