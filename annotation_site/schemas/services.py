"""Writes for annotation schemas: every change is a new immutable version."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotation_site.projects.models import Project

from .models import SchemaVersion
from .spec import parse_schema


def schema_version_create(
    *, project: Project, definition: object, created_by: AbstractBaseUser | None = None
) -> tuple[SchemaVersion, bool]:
    """Validate a schema and make it the project's current version. Returns (version, created):
    a definition equal to the current one (same canonical digest) creates nothing.

    Raises SchemaError, naming every bad key, before anything is written."""
    spec = parse_schema(definition)
    digest = spec.digest()
    with transaction.atomic():
        # Locking the project row serialises version numbering between concurrent edits.
        Project.objects.select_for_update().filter(pk=project.pk).exists()
        latest = SchemaVersion.objects.filter(project=project).order_by("-version").first()
        if latest is not None and latest.digest == digest:
            return latest, False
        version = SchemaVersion.objects.create(
            project=project,
            version=latest.version + 1 if latest else 1,
            definition=spec.to_dict(),
            digest=digest,
            created_by=created_by,
        )
        Project.objects.filter(pk=project.pk).update(current_schema=version)
        project.current_schema = version
    return version, True
