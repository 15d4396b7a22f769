"""A benchmark project: many images that share one placeholder photo, and raters with API tokens.

Load tests measure the rater loop, not image decoding, so the images are rows that point at one small
stored photo instead of N imported files; everything else (schema, overlap, assignment engine) is the
real thing."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image as PILImage
from rest_framework.authtoken.models import Token

from annotation_site.core.dbstats import tables_analyze
from annotation_site.images.models import GoldAnswer, Image
from annotation_site.labeling.models import Annotation, Assignment
from annotation_site.projects.models import Project
from annotation_site.projects.services import project_create
from annotation_site.raters.models import Membership, RaterProfile
from annotation_site.schemas.models import SchemaVersion
from annotation_site.schemas.spec import load_schema_file

PLACEHOLDER_NAME = "images/benchmark/placeholder.jpg"


@dataclass(frozen=True)
class BenchmarkSeed:
    project: Project
    tokens: list[str]


def _placeholder() -> str:
    if not default_storage.exists(PLACEHOLDER_NAME):
        buffer = io.BytesIO()
        PILImage.linear_gradient("L").resize((640, 480)).convert("RGB").save(buffer, "JPEG", quality=85)
        default_storage.save(PLACEHOLDER_NAME, ContentFile(buffer.getvalue()))
    return PLACEHOLDER_NAME


def project_delete_everything(*, project: Project) -> None:
    """Remove a project with its labels and images (benchmark projects only: labels are never deleted
    anywhere else)."""
    with transaction.atomic():
        Annotation.objects.filter(project=project).delete()
        Assignment.objects.filter(project=project).delete()
        GoldAnswer.objects.filter(image__project=project).delete()
        Image.objects.filter(project=project).update(near_duplicate_of=None)
        Image.objects.filter(project=project).delete()
        Membership.objects.filter(project=project).delete()
        Project.objects.filter(pk=project.pk).update(current_schema=None)
        SchemaVersion.objects.filter(project=project).delete()
        project.delete()


def benchmark_seed(*, slug: str, images: int, raters: int, overlap: int) -> BenchmarkSeed:
    """A fresh benchmark project on the RealQA schema, its images, and raters bench-rater-0..N-1 with tokens."""
    existing = Project.objects.filter(slug=slug).first()
    if existing is not None:
        project_delete_everything(project=existing)
    project = project_create(
        slug=slug,
        name=f"Benchmark ({images} images, overlap {overlap})",
        schema_definition=load_schema_file(settings.REALQA_SCHEMA_PATH).to_dict(),
        overlap=overlap,
    )
    project.max_overlap = overlap
    project.gold_rate = 0
    project.qualification_size = 0
    project.lease_minutes = 60
    project.save()
    placeholder = _placeholder()
    rows = [
        Image(
            project=project,
            sha256=hashlib.sha256(f"{slug}-{i}".encode()).hexdigest(),
            phash="0" * 16,
            original=placeholder,
            display=placeholder,
            thumbnail=placeholder,
            original_name=f"benchmark placeholder {i}",
            format="JPEG",
            source_mode="RGB",
            width=640,
            height=480,
            byte_size=0,
        )
        for i in range(images)
    ]
    Image.objects.bulk_create(rows, batch_size=1000)
    # As every bulk write of the platform: the benchmark's first label is planned on these statistics.
    tables_analyze(Image)
    User = get_user_model()
    tokens = []
    for i in range(raters):
        user, _ = User.objects.get_or_create(username=f"bench-rater-{i}")
        RaterProfile.objects.get_or_create(user=user)
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    return BenchmarkSeed(project=project, tokens=tokens)
