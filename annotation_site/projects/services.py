"""Writes for projects."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction

from annotation_site.schemas.services import schema_version_create
from annotation_site.schemas.spec import parse_schema

from .models import Project


class ProjectError(ValueError):
    """A project could not be created as asked; the message says why."""


# overlap and max_overlap are PositiveSmallIntegerFields
_MOST_RATERS = 32767


def project_create(
    *,
    slug: str,
    schema_definition: object,
    name: str = "",
    description: str = "",
    overlap: int = 5,
    max_overlap: int | None = None,
    created_by: AbstractBaseUser | None = None,
) -> Project:
    """Create a project with its first schema version, or nothing at all.

    max_overlap: the most raters an image may get under adaptive overlap. None keeps the model's default (5) but
    never below overlap, so asking for overlap=10 alone gives 10 raters per image (adaptive overlap off) rather
    than a project the database refuses (it requires max_overlap >= overlap).

    Raises SchemaError for a bad schema and ProjectError for a bad slug, overlap, max_overlap or a taken slug."""
    try:
        validate_slug(slug)
    except ValidationError:
        raise ProjectError(f"slug {slug!r}: use only letters, numbers, underscores or hyphens") from None
    if isinstance(overlap, bool) or not isinstance(overlap, int):
        raise ProjectError(f"overlap {overlap!r}: must be a whole number of raters")
    if overlap < 1:
        raise ProjectError(f"overlap {overlap}: at least one rater must label each image")
    if overlap > _MOST_RATERS:
        raise ProjectError(f"overlap {overlap}: at most {_MOST_RATERS} raters per image")
    if max_overlap is None:
        max_overlap = max(overlap, Project._meta.get_field("max_overlap").get_default())
    elif isinstance(max_overlap, bool) or not isinstance(max_overlap, int):
        raise ProjectError(f"max_overlap {max_overlap!r}: must be a whole number of raters")
    elif max_overlap < overlap:
        raise ProjectError(
            f"max_overlap {max_overlap} is below overlap {overlap}: adaptive overlap can only add raters "
            "(make them equal to turn it off)"
        )
    elif max_overlap > _MOST_RATERS:
        raise ProjectError(f"max_overlap {max_overlap}: at most {_MOST_RATERS} raters per image")
    spec = parse_schema(schema_definition)
    with transaction.atomic():
        if Project.objects.filter(slug=slug).exists():
            raise ProjectError(f"a project with slug {slug!r} already exists")
        project = Project.objects.create(
            slug=slug,
            name=name or spec.name or slug,
            description=description,
            overlap=overlap,
            max_overlap=max_overlap,
        )
        schema_version_create(project=project, definition=schema_definition, created_by=created_by)
    return project
