"""Writes for comparisons: the setup, the pairs (made in batches by the project's strategy), the leases that hand
a pair to a rater, and the answers.

Which pair next: the rater's live lease if they hold one, else the first pair (oldest batch, most informative
first) that still wants answers and that the rater never had. A pair is taken by a conditional UPDATE of its
counter (assigned_count < wanted), which PostgreSQL re-checks on the locked row, so no pair gets more raters
than it wants and two raters never wait on each other; (pair, rater) is unique, so a rater's two concurrent
requests cannot both take one pair. When no pair is left for the rater, a new batch is made under a lock on the
project's setup row (one batch at a time; a request that waited finds the other's batch and uses it). On
SQLite every write transaction is IMMEDIATE (see settings), which serialises the same paths.

Batches: random, a balanced random matching of the photos still under `comparisons_per_image`; active, the
sqrt(n) pairs of those photos with the highest expected information gain under the scale fitted to the
answers so far (each photo once per batch); anchors, every photo against the five anchors (and the anchors
among themselves), all at once. No two photos are ever paired twice."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Collection

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from annotation_site.images.models import Image
from annotation_site.labeling.assignments import ProjectClosed, membership_ensure, membership_may_still_work
from annotation_site.projects.models import Project
from annotation_site.raters.models import Membership
from annotation_site.statistics.pairs import (
    LEVEL_PREFERENCE,
    anchor_pairs,
    anchor_select,
    pair_scale,
    select_pairs_active,
    select_pairs_random,
)

from .models import Comparison, ComparisonSetup, Criterion, Level, Pair, PairAssignment, Strategy
from .selectors import comparison_data, criterion_ratings

LEASES_PER_RATER = 2  # the pair on screen and the one the page prefetches
LEASE_MINUTES = 10
ANCHORS = 5
MAX_COMPARISONS_PER_IMAGE = 200
MAX_SECONDS_SPENT = 24 * 3600


class SetupError(ValueError):
    """A setup that cannot be saved; `errors` maps each field to its problem."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))


class ComparisonInputError(ValueError):
    """An answer that cannot be stored; `errors` maps each field to its problem."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))


class TaskError(Exception):
    """A lease, submit or skip that cannot go ahead; the message says why."""


class LeaseNotFound(TaskError):
    """No such pair assignment of this rater (another rater's looks the same as a missing one)."""


class LeaseClosed(TaskError):
    """The assignment was already answered or skipped, or ran out and its pair filled up."""


class TaskClosed(TaskError):
    """Comparisons are off in this project, or the rater may not work in it."""


class AnswerConflict(TaskError):
    """An answer already stored stands in the way (the same pair, or the idempotency key used elsewhere)."""


@dataclass(frozen=True)
class NoPair:
    """Nothing to compare right now, and why: done, lease_limit or closed."""

    reason: str


@dataclass(frozen=True)
class SubmitResult:
    comparison: Comparison
    created: bool
    next: PairAssignment | NoPair


# ------------------------------------------------------------------------------------------------ setup


def comparison_setup_save(
    *,
    project: Project,
    enabled: object = None,
    criterion: object = None,
    strategy: object = None,
    comparisons_per_image: object = None,
) -> ComparisonSetup:
    """Create or change a project's comparison task; arguments left None keep their value (or the default).
    Raises SetupError naming every bad field. Changing the strategy affects the batches made from then on."""
    errors = {}
    if enabled is not None and not isinstance(enabled, bool):
        errors["enabled"] = f"must be true or false, not {enabled!r}"
    if criterion is not None and criterion not in Criterion.values:
        errors["criterion"] = f"must be one of {', '.join(Criterion.values)}, not {criterion!r}"
    if strategy is not None and strategy not in Strategy.values:
        errors["strategy"] = f"must be one of {', '.join(Strategy.values)}, not {strategy!r}"
    if comparisons_per_image is not None and (
        isinstance(comparisons_per_image, bool)
        or not isinstance(comparisons_per_image, int)
        or not 1 <= comparisons_per_image <= MAX_COMPARISONS_PER_IMAGE
    ):
        errors["comparisons_per_image"] = f"must be a whole number from 1 to {MAX_COMPARISONS_PER_IMAGE}, not {comparisons_per_image!r}"
    if errors:
        raise SetupError(errors)
    with transaction.atomic():
        setup = ComparisonSetup.objects.select_for_update().filter(project=project).first() or ComparisonSetup(project=project)
        for name, value in (
            ("enabled", enabled),
            ("criterion", criterion),
            ("strategy", strategy),
            ("comparisons_per_image", comparisons_per_image),
        ):
            if value is not None:
                setattr(setup, name, value)
        setup.save()
    return setup


def _enabled_setup(project: Project) -> ComparisonSetup:
    setup = ComparisonSetup.objects.filter(project=project, enabled=True).first()
    if setup is None or not project.is_active:
        raise TaskClosed(f"project {project.slug!r} has no comparison task")
    return setup


def _rater_may_compare(project: Project, rater: AbstractBaseUser) -> None:
    # The qualification round is about absolute labels, so a rater still in it may compare; a rater who
    # failed it or was excluded may not.
    try:
        membership = membership_ensure(project=project, rater=rater)
    except ProjectClosed as exc:
        raise TaskClosed(str(exc)) from None
    if membership.status in (Membership.Status.FAILED, Membership.Status.EXCLUDED):
        raise TaskClosed(f"project {project.slug!r} is closed to you")


# ------------------------------------------------------------------------------------------------ leases


def pair_leases_expire(*, project: Project, now: datetime | None = None) -> int:
    """Return the pairs of abandoned leases to the pool. Cheap when nothing expired (one indexed EXISTS)."""
    now = now or timezone.now()
    expired = PairAssignment.objects.filter(project=project, status=PairAssignment.Status.LEASED, expires_at__lte=now)
    if not expired.exists():
        return 0
    with transaction.atomic():
        rows = list(expired.select_for_update(skip_locked=True).values_list("id", "pair_id"))
        if not rows:
            return 0
        PairAssignment.objects.filter(id__in=[row[0] for row in rows]).update(status=PairAssignment.Status.EXPIRED)
        for _, pair_id in rows:
            Pair.objects.filter(pk=pair_id, assigned_count__gt=0).update(assigned_count=F("assigned_count") - 1)
    return len(rows)


def _open_pairs(project: Project, rater: AbstractBaseUser):  # type: ignore[no-untyped-def]
    return Pair.objects.filter(project=project, assigned_count__lt=F("wanted")).exclude(
        Exists(PairAssignment.objects.filter(pair=OuterRef("pk"), rater=rater))
    )


def _load(assignment_id: int) -> PairAssignment:
    return PairAssignment.objects.select_related("pair__image_low", "pair__image_high").get(pk=assignment_id)


def _lease(project: Project, rater: AbstractBaseUser, now: datetime, rng: random.Random) -> PairAssignment | None:
    candidates = list(_open_pairs(project, rater).order_by("batch", "-priority", "id").values_list("id", flat=True)[:20])
    for pair_id in candidates:
        with transaction.atomic():
            taken = Pair.objects.filter(pk=pair_id, assigned_count__lt=F("wanted")).update(
                assigned_count=F("assigned_count") + 1
            )
            if not taken:
                continue  # another rater took its last place meanwhile
            try:
                with transaction.atomic():
                    assignment = PairAssignment.objects.create(
                        project=project,
                        pair_id=pair_id,
                        rater=rater,
                        low_on_left=rng.random() < 0.5,
                        created_at=now,
                        expires_at=now + timedelta(minutes=LEASE_MINUTES),
                    )
            except IntegrityError:  # this rater's concurrent request took the same pair
                Pair.objects.filter(pk=pair_id).update(assigned_count=F("assigned_count") - 1)
                continue
        return _load(assignment.pk)
    return None


def pair_assignment_next(
    *,
    project: Project,
    rater: AbstractBaseUser,
    exclude: Collection[int] = (),
    rng: random.Random | None = None,
) -> PairAssignment | NoPair:
    """The rater's next pair: a live lease they already hold (oldest first, except those in `exclude`, which the
    page has on screen), else a new lease, making a new batch of pairs when none is left for them. Raises
    TaskClosed when comparisons are off or the rater may not work in the project."""
    _enabled_setup(project)
    _rater_may_compare(project, rater)
    rng = rng or random.Random()
    now = timezone.now()
    live = list(
        PairAssignment.objects.filter(rater=rater, project=project, status=PairAssignment.Status.LEASED, expires_at__gt=now)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
    )
    held = next((assignment_id for assignment_id in live if assignment_id not in exclude), None)
    if held is not None:
        return _load(held)
    if len(live) >= LEASES_PER_RATER:
        return NoPair("lease_limit")
    for _ in range(3):
        assignment = _lease(project, rater, now, rng)
        if assignment is not None:
            return assignment
        if pair_leases_expire(project=project, now=now):
            continue
        if not pairs_generate(project=project, rater=rater):
            break
    return NoPair("done")


# ------------------------------------------------------------------------------------------------ batches


def pairs_generate(*, project: Project, rater: AbstractBaseUser | None = None, seed: int | None = None) -> int:
    """Make the next batch of pairs by the project's strategy; returns how many pairs are now open to `rater`
    (or were made). 0 means the task is done: every photo has its comparisons, or no new pair is left."""
    with transaction.atomic():
        setup = ComparisonSetup.objects.select_for_update().get(project=project)
        if rater is not None:
            waiting = _open_pairs(project, rater).count()
            if waiting:
                return waiting  # another request made a batch while this one waited for the lock
        image_ids = list(Image.objects.filter(project=project, is_gold=False).order_by("id").values_list("id", flat=True))
        if len(image_ids) < 2:
            return 0
        index = {image_id: k for k, image_id in enumerate(image_ids)}
        existing = [
            (index[low], index[high])
            for low, high in Pair.objects.filter(project=project).values_list("image_low_id", "image_high_id")
            if low in index and high in index
        ]
        rng = np.random.default_rng(seed)
        if setup.strategy == Strategy.ANCHORS:
            chosen, wanted = _anchor_batch(setup, image_ids, index, existing, rng)
        else:
            chosen, wanted = _budget_batch(setup, project, image_ids, existing, rng), 1
        if not chosen:
            return 0
        setup.batches += 1
        setup.save(update_fields=["batches", "anchors", "anchors_from"])
        Pair.objects.bulk_create(
            [
                Pair(
                    project=project,
                    image_low_id=image_ids[u],
                    image_high_id=image_ids[v],
                    strategy=setup.strategy,
                    batch=setup.batches,
                    priority=float(len(chosen) - rank),
                    wanted=wanted,
                )
                for rank, (u, v) in enumerate(chosen)
            ]
        )
    return len(chosen)


def _budget_batch(
    setup: ComparisonSetup, project: Project, image_ids: list[int], existing: list[tuple[int, int]], rng: np.random.Generator
) -> list[tuple[int, int]]:
    counts = np.zeros(len(image_ids), dtype=np.int64)
    for u, v in existing:
        counts[u] += 1
        counts[v] += 1
    eligible = np.flatnonzero(counts < setup.comparisons_per_image)
    if len(eligible) < 2:
        return []
    if setup.strategy == Strategy.RANDOM:
        return select_pairs_random(counts, eligible=eligible, exclude=existing, seed=rng)
    data = comparison_data(project=project)
    scale = pair_scale(len(image_ids), data.i, data.j, data.p)
    # Batches of about sqrt(n) pairs: small enough to learn from the answers between batches (the benchmark's
    # savings grew from 28% to 40% on 100 photos going from n/4 to sqrt(n)), large enough for many raters.
    size = max(2, round(math.sqrt(len(eligible))))
    return select_pairs_active(scale, eligible=eligible, batch="greedy", size=size, exclude=existing, seed=rng)


def _anchor_batch(
    setup: ComparisonSetup,
    image_ids: list[int],
    index: dict[int, int],
    existing: list[tuple[int, int]],
    rng: np.random.Generator,
) -> tuple[list[tuple[int, int]], int]:
    anchors = [index[a] for a in setup.anchors if a in index]
    if len(anchors) < min(ANCHORS, len(image_ids)):
        anchors, setup.anchors_from = _anchors_choose(setup, image_ids, rng)
        setup.anchors = [image_ids[a] for a in anchors]
    done = set(existing)
    chosen = [pair for pair in anchor_pairs(len(image_ids), anchors) if pair not in done]
    wanted = max(1, math.ceil(setup.comparisons_per_image / max(1, len(anchors))))
    return chosen, wanted


def _anchors_choose(setup: ComparisonSetup, image_ids: list[int], rng: np.random.Generator) -> tuple[list[int], str]:
    """Compare2Score's anchors from the absolute ratings of the criterion (the least-variance photo of each of
    five MOS intervals) when at least five photos have two ratings or more; else five photos at random."""
    ratings = criterion_ratings(project=setup.project, criterion=setup.criterion)
    mos = np.full(len(image_ids), np.nan)
    variance = np.full(len(image_ids), np.nan)
    for k, image_id in enumerate(image_ids):
        values = ratings.get(image_id, [])
        if len(values) >= 2:
            mos[k] = float(np.mean(values))
            variance[k] = float(np.var(values, ddof=1))
    if int(np.sum(~np.isnan(mos))) >= ANCHORS:
        anchors = anchor_select(mos, variance, intervals=ANCHORS)
        if len(anchors) >= 2:
            return anchors, "ratings"
    count = min(ANCHORS, len(image_ids))
    return sorted(int(a) for a in rng.choice(len(image_ids), size=count, replace=False)), "random"


# ------------------------------------------------------------------------------------------------ answers


def _check_answer(level: object, seconds_spent: object) -> None:
    errors = {}
    if level not in Level.values:
        errors["level"] = f"must be one of {', '.join(Level.values)}, not {level!r}"
    if seconds_spent is not None and not (
        isinstance(seconds_spent, (int, float))
        and not isinstance(seconds_spent, bool)
        and math.isfinite(seconds_spent)
        and 0 <= seconds_spent <= MAX_SECONDS_SPENT
    ):
        errors["seconds_spent"] = f"must be a number of seconds between 0 and {MAX_SECONDS_SPENT}"
    if errors:
        raise ComparisonInputError(errors)


def pair_assignment_submit(
    *,
    assignment_id: int,
    rater: AbstractBaseUser,
    level: object,
    idempotency_key: str | None = None,
    seconds_spent: float | None = None,
    client_info: dict | None = None,
) -> SubmitResult:
    """Store the rater's answer on a leased pair (the level of the right photo against the left one) and hand
    out the next pair. A retry with an idempotency key already stored on this assignment changes nothing and
    answers as the first call did. Raises ComparisonInputError, LeaseNotFound, LeaseClosed or AnswerConflict."""
    _check_answer(level, seconds_spent)
    try:
        comparison, created, project = _submit(assignment_id, rater, str(level), idempotency_key, seconds_spent, client_info)
    except IntegrityError:
        # The insert hit a unique constraint and rolled the whole submit back; say which one.
        if idempotency_key:
            used = Comparison.objects.filter(rater=rater, idempotency_key=idempotency_key).first()
            if used is not None:
                raise AnswerConflict(
                    f"idempotency key already used for the answer on pair assignment #{used.assignment_id}"
                ) from None
        raise AnswerConflict("this rater has already answered this pair") from None
    try:
        following: PairAssignment | NoPair = pair_assignment_next(project=project, rater=rater)
    except TaskClosed:
        following = NoPair("closed")  # turned off or excluded meanwhile: the answer is kept all the same
    return SubmitResult(comparison, created, following)


def _submit(
    assignment_id: int,
    rater: AbstractBaseUser,
    level: str,
    idempotency_key: str | None,
    seconds_spent: float | None,
    client_info: dict | None,
) -> tuple[Comparison, bool, Project]:
    now = timezone.now()
    with transaction.atomic():
        try:
            assignment = (
                PairAssignment.objects.select_for_update(of=("self",))
                .select_related("pair", "project")
                .get(pk=assignment_id, rater=rater)
            )
        except PairAssignment.DoesNotExist:
            raise LeaseNotFound(f"no pair assignment #{assignment_id} of yours") from None
        project = assignment.project
        if assignment.status == PairAssignment.Status.SUBMITTED and idempotency_key:
            stored = Comparison.objects.filter(rater=rater, idempotency_key=idempotency_key).first()
            if stored is not None and stored.assignment_id == assignment.pk:
                return stored, False, project
        if assignment.status in (PairAssignment.Status.SUBMITTED, PairAssignment.Status.SKIPPED):
            raise LeaseClosed(f"pair assignment #{assignment_id} was already {assignment.status}")
        try:  # excluded, no longer a member, or the project closed since the lease
            membership_may_still_work(project=project, rater=rater)
        except ProjectClosed as exc:
            raise TaskClosed(str(exc)) from None
        pair = assignment.pair
        if assignment.status == PairAssignment.Status.EXPIRED:
            # A late answer is still welcome while the pair has room for it.
            reclaimed = Pair.objects.filter(pk=pair.pk, assigned_count__lt=F("wanted")).update(
                assigned_count=F("assigned_count") + 1
            )
            if not reclaimed:
                raise LeaseClosed(f"the lease of pair assignment #{assignment_id} ran out and the pair has its answers")
        if assignment.low_on_left:
            first, second = pair.image_low_id, pair.image_high_id
        else:
            first, second = pair.image_high_id, pair.image_low_id
        second_preferred = LEVEL_PREFERENCE[level]
        comparison = Comparison.objects.create(
            project=project,
            pair=pair,
            rater=rater,
            assignment=assignment,
            first_image_id=first,
            second_image_id=second,
            level=level,
            preference_high=second_preferred if second == pair.image_high_id else 1.0 - second_preferred,
            seconds_spent=seconds_spent,
            client_info=client_info or {},
            idempotency_key=idempotency_key or None,
            created_at=now,
        )
        PairAssignment.objects.filter(pk=assignment.pk).update(status=PairAssignment.Status.SUBMITTED, finished_at=now)
        Pair.objects.filter(pk=pair.pk).update(answer_count=F("answer_count") + 1)
    return comparison, True, project


def pair_assignment_skip(*, assignment_id: int, rater: AbstractBaseUser, reason: str) -> PairAssignment | NoPair:
    """Give a pair back with a reason; the rater never gets it again, and it returns to the pool."""
    if reason not in PairAssignment.SkipReason.values:
        raise ComparisonInputError({"reason": f"must be one of {', '.join(PairAssignment.SkipReason.values)}"})
    with transaction.atomic():
        try:
            assignment = (
                PairAssignment.objects.select_for_update(of=("self",)).select_related("project").get(pk=assignment_id, rater=rater)
            )
        except PairAssignment.DoesNotExist:
            raise LeaseNotFound(f"no pair assignment #{assignment_id} of yours") from None
        if assignment.status != PairAssignment.Status.LEASED:
            raise LeaseClosed(f"pair assignment #{assignment_id} was already {assignment.status}")
        assignment.status = PairAssignment.Status.SKIPPED
        assignment.skip_reason = reason
        assignment.finished_at = timezone.now()
        assignment.save(update_fields=["status", "skip_reason", "finished_at"])
        Pair.objects.filter(pk=assignment.pair_id, assigned_count__gt=0).update(assigned_count=F("assigned_count") - 1)
    return pair_assignment_next(project=assignment.project, rater=rater)
