"""Writes for rater quality control: excluding and reinstating raters (labels are never deleted)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from annotation_site.labeling.assignments import membership_forget
from annotation_site.projects.models import Project
from annotation_site.raters.models import Membership


def membership_exclude(*, project: Project, rater_id: int, by: AbstractBaseUser, reason: str = "") -> Membership:
    """Leave a rater's labels out of every statistic and release of the project, and stop giving them
    images. Nothing is deleted; reinstating brings everything back."""
    membership, _ = Membership.objects.get_or_create(project=project, rater_id=rater_id)
    membership.status = Membership.Status.EXCLUDED
    membership.excluded_at = timezone.now()
    membership.excluded_by = by
    membership.excluded_reason = reason.strip()[:2000]
    membership.save(update_fields=["status", "excluded_at", "excluded_by", "excluded_reason"])
    membership_forget(project_id=project.pk, rater_id=rater_id)
    return membership


def membership_reinstate(*, project: Project, rater_id: int) -> Membership:
    membership = Membership.objects.get(project=project, rater_id=rater_id)
    membership.status = Membership.Status.ACTIVE
    membership.excluded_at = None
    membership.excluded_by = None
    membership.excluded_reason = ""
    membership.save(update_fields=["status", "excluded_at", "excluded_by", "excluded_reason"])
    return membership
