"""Reads for images."""

from __future__ import annotations

import re

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q

from annotation_site.projects.models import Project
from annotation_site.raters.models import Membership

from .models import Image

# Names the import gives files (images/services.py `_storage_name`): the sha256 in the name lets the lookup use
# the (project, sha256) index instead of scanning three file columns.
STORED_NAME = re.compile(r"images/(?:originals|display|thumbnails)/[0-9a-f]{2}/(?P<sha256>[0-9a-f]{64})\.\w+")
SEEING_STATUSES = (Membership.Status.QUALIFYING, Membership.Status.ACTIVE)


def image_file_visible(*, user: AbstractBaseUser | AnonymousUser, name: str) -> bool:
    """Whether `user` may fetch the stored file `name`: the original, display or thumbnail of an image in a project
    they label (an open project, membership qualifying or active), or of any image for staff. Nothing else in the
    storage (model checkpoints, ...) is anyone's to fetch this way."""
    if not user.is_authenticated:
        return False
    images = Image.objects.filter(Q(original=name) | Q(display=name) | Q(thumbnail=name))
    stored = STORED_NAME.fullmatch(name)
    if stored:
        images = images.filter(sha256=stored["sha256"])
    if user.is_staff:
        projects = Project.objects.values("pk")
    else:
        projects = Membership.objects.filter(rater=user, status__in=SEEING_STATUSES, project__is_active=True).values("project_id")
    return images.filter(project_id__in=projects).exists()
