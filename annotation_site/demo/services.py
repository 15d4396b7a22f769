"""The demo: a RealQA project of varied-quality photos, an admin and two raters, made idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from annotation_site.comparisons.services import comparison_setup_save
from annotation_site.grounding.services import description_setup_save, grounding_setup_save
from annotation_site.images.services import ImportReport, images_import
from annotation_site.images.sources import FileSource
from annotation_site.projects.models import Project
from annotation_site.projects.services import project_create
from annotation_site.raters.services import rater_profile_ensure
from annotation_site.schemas.spec import load_schema_file

from .photos import build_demo_photos

DEMO_SLUG = "realqa-demo"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str


DEMO_LOGINS = (
    DemoLogin("admin", "realqa-admin", "admin"),
    DemoLogin("rater1", "realqa-rater1", "rater"),
    DemoLogin("rater2", "realqa-rater2", "rater"),
)


def demo_users_ensure() -> tuple[DemoLogin, ...]:
    """The demo's accounts, with their documented passwords (reset on every run)."""
    User = get_user_model()
    with transaction.atomic():
        for login in DEMO_LOGINS:
            user, _ = User.objects.get_or_create(username=login.username)
            user.set_password(login.password)
            user.is_staff = user.is_superuser = login.role == "admin"
            user.save()
            rater_profile_ensure(user=user)
    return DEMO_LOGINS


def demo_project_ensure(*, photos_dir: Path | None = None, workers: int = 1, progress: bool = False) -> tuple[Project, ImportReport]:
    """The demo project on the RealQA schema, with its photos built from scikit-image's sample images
    and imported (a second run imports nothing new)."""
    project = Project.objects.filter(slug=DEMO_SLUG).first()
    if project is None:
        project = project_create(
            slug=DEMO_SLUG,
            name="RealQA demo",
            description="Photos built from scikit-image's sample images with graded blur, noise, JPEG, "
            "exposure, saturation, tilt and crop.",
            schema_definition=load_schema_file(settings.REALQA_SCHEMA_PATH).to_dict(),
        )
        # A demo shows the model in the loop after a few minutes of labelling, not after fifty photos.
        project.retrain_min_new_labels = 12
        project.save(update_fields=["retrain_min_new_labels"])
        # Every task type is on, so each can be tried: comparisons, regions and descriptions.
        comparison_setup_save(project=project, enabled=True, strategy="active")
        grounding_setup_save(project=project, enabled=True)
        description_setup_save(project=project, enabled=True)
    photos_dir = photos_dir or Path(settings.VAR_DIR) / "demo-photos"
    photos = build_demo_photos(photos_dir, progress=progress)
    sources = [FileSource(name=photo.filename, path=str(photos_dir / photo.filename)) for photo in photos]
    return project, images_import(project=project, sources=sources, workers=workers)
