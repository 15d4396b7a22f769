from __future__ import annotations

import argparse
import os

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation_site.images.services import ImportLine, images_import
from annotation_site.images.sources import collect_sources
from annotation_site.projects.models import Project


class Command(BaseCommand):
    help = (
        "Import photos into a project from files, folders (recursively) and zip archives. Exact duplicates "
        "are skipped, near-duplicates flagged, and every rejected file gets one line saying why. "
        "Running it again imports nothing new."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument(
            "--workers", type=int, default=os.cpu_count() or 1, help="decoding processes (default: one per core)"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: object, **options: object) -> None:
        try:
            project = Project.objects.get(slug=options["project"])
        except Project.DoesNotExist:
            raise CommandError(f"no project with slug {options['project']!r} (create it with create_project)") from None
        sources = list(collect_sources(options["paths"]))
        bar = tqdm(total=len(sources), unit="file", disable=options["no_progress"] or not sources, file=self.stderr)

        def say(text: str) -> None:
            # Lines go to stdout (for scripts); the bar redraws below them on stderr.
            bar.clear()
            self.stdout.write(text)
            bar.refresh()

        def on_line(line: ImportLine) -> None:
            bar.update(1)
            if line.outcome == "rejected":
                say(f"rejected   {line.name}: {line.detail}")
            elif line.outcome == "duplicate":
                say(f"duplicate  {line.name}: {line.detail}")
            elif line.detail:
                say(f"imported   {line.name} as #{line.image_id}: {line.detail}")

        report = images_import(project=project, sources=sources, workers=max(1, options["workers"]), on_line=on_line)
        bar.close()
        self.stdout.write(f"{project.slug}: {report.summary()}")
