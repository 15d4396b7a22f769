from __future__ import annotations

import argparse
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation_site.labeling.benchmark import benchmark_seed


class Command(BaseCommand):
    help = (
        "Prepare a benchmark project (replacing one of the same slug, labels included): images, the RealQA "
        "schema, the overlap, and raters bench-rater-0..N-1 with API tokens."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--images", type=int, default=3000)
        parser.add_argument("--raters", type=int, default=20)
        parser.add_argument("--overlap", type=int, default=3)
        parser.add_argument("--slug", default="benchmark")
        parser.add_argument("--tokens-file", type=Path, help="write one token per line here instead of printing them")

    def handle(self, *args: object, **options: object) -> None:
        if options["images"] < 1 or options["raters"] < 1 or options["overlap"] < 1:
            raise CommandError("--images, --raters and --overlap must be at least 1")
        seed = benchmark_seed(
            slug=options["slug"], images=options["images"], raters=options["raters"], overlap=options["overlap"]
        )
        if options["tokens_file"]:
            options["tokens_file"].write_text("\n".join(seed.tokens) + "\n")
            self.stdout.write(f"{len(seed.tokens)} rater tokens written to {options['tokens_file']}")
        else:
            for token in seed.tokens:
                self.stdout.write(token)
        self.stdout.write(
            f"project {seed.project.slug}: {options['images']} images, overlap {options['overlap']}, "
            f"{options['raters']} raters"
        )
