from __future__ import annotations

import argparse
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation_site.labeling.importing import DEFAULT_RATER_PREFIX, FORMATS, RatingsImportError, ratings_import
from annotation_site.projects.models import Project


def _mapping(text: str) -> tuple[str, str]:
    source, equals, target = text.partition("=")
    if not equals or not source.strip() or not target.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected FROM_NAME=FIELD (or FROM_NAME=FIELD.reason)")
    return source.strip(), target.strip()


class Command(BaseCommand):
    help = (
        "Import ratings collected elsewhere into a project: a CSV with columns image, rater, field, value "
        "(and optionally reason), one row per field, or a Label Studio JSON export (rating, number, choices and "
        "textarea results). Images are found by the file name they were imported under or their sha256. All or "
        "nothing: every problem is listed with its line or task and nothing is stored. Pairs of image and rater "
        "that already have a label are skipped, so running the same file again changes nothing."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("slug", help="project slug")
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--format", choices=FORMATS, help="default: labelstudio for a .json file, csv otherwise"
        )
        parser.add_argument(
            "--rater-prefix",
            default=DEFAULT_RATER_PREFIX,
            help=f"put before each external rater id to make the user name (default {DEFAULT_RATER_PREFIX!r})",
        )
        parser.add_argument(
            "--map",
            action="append",
            type=_mapping,
            default=[],
            metavar="FROM_NAME=FIELD",
            help="a file's field name (Label Studio from_name) for a schema field key, or FIELD.reason for its "
            "reason; repeat for several",
        )
        parser.add_argument(
            "--partial",
            action="store_true",
            help="accept labels that answer only some of the schema's fields (by default all required ones)",
        )
        parser.add_argument("--dry-run", action="store_true", help="check and count everything, store nothing")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: object, **options: object) -> None:
        try:
            project = Project.objects.get(slug=options["slug"])
        except Project.DoesNotExist:
            raise CommandError(f"no project with slug {options['slug']!r}") from None
        path: Path = options["file"]  # type: ignore[assignment]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        file_format = options["format"] or ("labelstudio" if path.suffix.lower() == ".json" else "csv")
        field_map: dict[str, str] = {}
        for source, target in options["map"]:  # type: ignore[attr-defined]
            if field_map.get(source, target) != target:
                raise CommandError(f"--map {source}= is given twice with different fields")
            field_map[source] = target
        try:
            report = ratings_import(
                project=project,
                source=path,
                format=file_format,
                rater_prefix=options["rater_prefix"],  # type: ignore[arg-type]
                field_map=field_map,
                partial=bool(options["partial"]),
                dry_run=bool(options["dry_run"]),
                progress=None if options["no_progress"] else getattr(self.stderr, "_out", self.stderr),
            )
        except RatingsImportError as exc:
            lines = "\n".join(f"  {problem}" for problem in exc.problems)
            raise CommandError(
                f"{path.name}: {len(exc.problems)} problem(s), nothing imported:\n{lines}"
            ) from None
        except OSError as exc:
            raise CommandError(f"{path}: cannot read it ({exc.strerror or exc})") from None
        for line in report.differing:
            self.stderr.write(f"kept: {line}")
        self.stdout.write(f"{project.slug}: {report.summary()}")
