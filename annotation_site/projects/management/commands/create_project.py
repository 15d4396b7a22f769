from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand, CommandError

from annotation_site.projects.models import Project
from annotation_site.projects.services import ProjectError, project_create
from annotation_site.schemas.services import schema_version_create
from annotation_site.schemas.spec import SchemaError, load_schema_file


class Command(BaseCommand):
    help = (
        "Create a project with an annotation schema from a JSON file. On an existing project, a changed "
        "schema becomes its next version (stored labels keep the version they were made with)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--schema", required=True, help="schema JSON file, e.g. fixtures/realqa_schema.json")
        parser.add_argument("--name", default="")
        parser.add_argument("--description", default="")
        parser.add_argument("--overlap", type=int, default=5, help="raters per image (default 5)")

    def handle(self, *args: object, **options: object) -> None:
        try:
            spec = load_schema_file(options["schema"])
            definition = spec.to_dict()
            project = Project.objects.filter(slug=options["slug"]).first()
            if project is None:
                project = project_create(
                    slug=options["slug"],
                    schema_definition=definition,
                    name=options["name"],
                    description=options["description"],
                    overlap=options["overlap"],
                )
                self.stdout.write(
                    f"created project {project.slug} with schema {spec.name!r} v1 ({len(spec.fields)} fields)"
                )
                return
            version, created = schema_version_create(project=project, definition=definition)
        except (SchemaError, ProjectError) as exc:
            raise CommandError(str(exc)) from None
        if created:
            self.stdout.write(f"project {project.slug}: schema changed, now at version {version.version}")
        else:
            self.stdout.write(f"project {project.slug}: schema unchanged (version {version.version})")
