from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation_site.projects.models import Project
from annotation_site.releases.options import IMAGE_MODES, ReleaseError, parse_ratios
from annotation_site.releases.services import release_build, release_create


class Command(BaseCommand):
    help = (
        "Export the next release of a project into a new folder: per-image scores with their confidence intervals "
        "and MLE estimates, every label, agreement per field, rater figures, Parquet files for Hugging Face datasets, "
        "LLaMA-Factory training conversations, an IQA-PyTorch meta-info file, a datasheet, plots and a checksum "
        "manifest. Images keep the split the previous release gave them."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("slug", help="project slug")
        parser.add_argument("--out", required=True, help="folder to create (must not exist, or be empty)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the splits and the bootstrap (default 0)")
        parser.add_argument(
            "--ratios", default="train=0.8,validation=0.1,test=0.1", help="split shares, summing to 1 (default %(default)s)"
        )
        parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per alpha (default 1000)")
        parser.add_argument("--images", choices=IMAGE_MODES, default="copy", help="copy the photos or reference them")
        parser.add_argument(
            "--reassign-splits", action="store_true", help="split afresh instead of keeping the previous release's splits"
        )
        parser.add_argument("--score-field", default="", help="overall score to stratify by (default: the first)")
        parser.add_argument("--split-half-splits", type=int, default=100, help="random halvings in the split-half figure")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: object, **options: object) -> None:
        from workers.release_formats import ConversationWriter

        try:
            project = Project.objects.get(slug=options["slug"])
        except Project.DoesNotExist:
            known = ", ".join(Project.objects.values_list("slug", flat=True)[:20]) or "none"
            raise CommandError(f"no project with slug {options['slug']!r} (projects: {known})") from None
        try:
            release = release_create(
                project=project,
                options={
                    "seed": options["seed"],
                    "ratios": parse_ratios(options["ratios"]),
                    "resamples": options["resamples"],
                    "images": options["images"],
                    "reassign_splits": options["reassign_splits"],
                    "score_field": options["score_field"],
                    "split_half_splits": options["split_half_splits"],
                },
                output_dir=options["out"],
            )
        except ReleaseError as exc:
            raise CommandError(str(exc)) from None
        bar = tqdm(total=1000, unit="‰", disable=bool(options["no_progress"]), file=self.stderr, bar_format="{percentage:3.0f}%|{bar}| {desc}")

        def progress(fraction: float, stage: str) -> None:
            bar.update(int(fraction * 1000) - bar.n)
            bar.set_description_str(stage, refresh=False)

        try:
            release = release_build(release_id=release.pk, writers=[ConversationWriter()], on_progress=progress)
        except ReleaseError as exc:
            raise CommandError(f"{release.release_id} failed: {exc}") from None
        finally:
            bar.close()
        counts = release.counts
        splits = ", ".join(f"{name} {n}" for name, n in counts.get("splits", {}).items())
        self.stdout.write(
            f"{release.release_id}: {counts['images']} images, {counts['labels']} labels, {counts['raters']} raters "
            f"({splits}) written to {release.output_dir}"
        )
