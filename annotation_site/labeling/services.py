"""Writes for labels."""

from __future__ import annotations

import math

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from annotation_site.images.models import GoldAnswer, Image
from annotation_site.schemas.models import SchemaVersion
from annotation_site.schemas.selectors import schema_spec, schema_version_current
from annotation_site.schemas.spec import LabelError

from .gold import gold_values_clean
from .models import Annotation, Assignment

MAX_SECONDS_SPENT = 24 * 3600


class AnnotationConflict(ValueError):
    """The label cannot be stored because of labels already there; the message says which."""


def annotation_create(
    *,
    image: Image,
    rater: AbstractBaseUser,
    labels: object,
    seconds_spent: float | None = None,
    client_info: dict | None = None,
    idempotency_key: str | None = None,
    assignment: Assignment | None = None,
    schema_version: SchemaVersion | None = None,
    source: str = Annotation.Source.PLATFORM,
    conflicts_to_caller: bool = False,
) -> tuple[Annotation, bool]:
    """Validate labels against a schema version (by default the project's current one) and store them.

    Returns (annotation, created). A retry with an idempotency key already stored returns the stored
    annotation and writes nothing. Raises LabelError (a message per field) for invalid labels and
    AnnotationConflict for a second label from the same rater on the same image.

    conflicts_to_caller: the caller runs this inside its own transaction and sorts out conflicts itself
    (the submit path): no key lookup beforehand and no savepoint, so a conflict raises IntegrityError
    and aborts the caller's transaction. Two round trips fewer on every label."""
    if idempotency_key and not conflicts_to_caller:
        existing = Annotation.objects.filter(rater=rater, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replayed(existing, image)

    version = schema_version or schema_version_current(project=image.project)
    cleaned = schema_spec(schema_version=version).clean_labels(labels)
    if seconds_spent is not None and not (
        isinstance(seconds_spent, (int, float))
        and not isinstance(seconds_spent, bool)
        and math.isfinite(seconds_spent)
        and 0 <= seconds_spent <= MAX_SECONDS_SPENT
    ):
        raise LabelError({"seconds_spent": f"must be a number of seconds between 0 and {MAX_SECONDS_SPENT}"})

    fields = {
        "project_id": image.project_id,
        "image": image,
        "rater": rater,
        "assignment": assignment,
        "schema_version": version,
        "values": cleaned.values,
        "reasons": cleaned.reasons,
        "seconds_spent": seconds_spent,
        "client_info": client_info or {},
        "idempotency_key": idempotency_key or None,
        "source": source,
    }
    if conflicts_to_caller:
        return Annotation.objects.create(**fields), True
    try:
        with transaction.atomic():
            annotation = Annotation.objects.create(**fields)
    except IntegrityError:
        if idempotency_key:
            existing = Annotation.objects.filter(rater=rater, idempotency_key=idempotency_key).first()
            if existing is not None:
                return _replayed(existing, image)
        raise AnnotationConflict(f"this rater has already labeled image #{image.pk}") from None
    return annotation, True


def _replayed(existing: Annotation, image: Image) -> tuple[Annotation, bool]:
    if existing.image_id != image.pk:
        raise AnnotationConflict(
            f"idempotency key already used for a label on image #{existing.image_id}, not image #{image.pk}"
        )
    return existing, False


def gold_answer_set(
    *,
    image: Image,
    values: object,
    tolerances: object = None,
    feedback: str = "",
    for_qualification: bool = False,
) -> GoldAnswer:
    """Make an image a gold image with a known answer, validated against the project's current schema
    (ValueError naming the bad key). Gold images leave the pool of regular images and every statistic."""
    spec = schema_spec(schema_version=schema_version_current(project=image.project))
    clean_values, clean_tolerances = gold_values_clean(spec, values, tolerances or {})
    with transaction.atomic():
        gold, _ = GoldAnswer.objects.update_or_create(
            image=image,
            defaults={
                "values": clean_values,
                "tolerances": clean_tolerances,
                "feedback": feedback,
                "for_qualification": for_qualification,
            },
        )
        Image.objects.filter(pk=image.pk).update(is_gold=True)
    image.is_gold = True
    return gold
