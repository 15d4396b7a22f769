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


def project_create(
    *,
    slug: str,
    schema_definition: object,
    name: str = "",
    description: str = "",
    overlap: int = 5,
    created_by: AbstractBaseUser | None = None,
) -> Project:
    """Create a project with its first schema version, or nothing at all.

    Raises SchemaError for a bad schema and ProjectError for a bad slug, overlap or a taken slug."""
    try:
        validate_slug(slug)
    except ValidationError:
        raise ProjectError(f"slug {slug!r}: use only letters, numbers, underscores or hyphens") from None
    if overlap < 1:
        raise ProjectError(f"overlap {overlap}: at least one rater must label each image")
    spec = parse_schema(schema_definition)
    with transaction.atomic():
        if Project.objects.filter(slug=slug).exists():
            raise ProjectError(f"a project with slug {slug!r} already exists")
        project = Project.objects.create(
            slug=slug, name=name or spec.name or slug, description=description, overlap=overlap
        )
        schema_version_create(project=project, definition=schema_definition, created_by=created_by)
    return project
