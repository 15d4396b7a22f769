"""Reads for annotation schemas."""

from __future__ import annotations

from annotation_site.projects.models import Project

from .models import SchemaVersion
from .spec import SchemaSpec, parse_schema

# Versions are immutable, so a parsed spec is valid for as long as the process lives; the digest in
# the key guards against a reused primary key (a test database, a restored backup).
_parsed_specs: dict[tuple[int, str], SchemaSpec] = {}


def schema_version_current(*, project: Project) -> SchemaVersion:
    """The project's newest schema version, which schema_version_create keeps on the project
    (SchemaVersion.DoesNotExist when it has none)."""
    if project.current_schema_id is None:
        raise SchemaVersion.DoesNotExist(f"project {project.slug!r} has no schema")
    return project.current_schema


def schema_spec(*, schema_version: SchemaVersion) -> SchemaSpec:
    key = (schema_version.pk, schema_version.digest)
    spec = _parsed_specs.get(key)
    if spec is None:
        spec = _parsed_specs[key] = parse_schema(schema_version.definition)
    return spec
