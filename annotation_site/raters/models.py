import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def new_pseudonym() -> str:
    return "r" + secrets.token_hex(6)


class RaterProfile(models.Model):
    """What the platform knows about a rater beyond Django's user. Releases name raters by pseudonym only."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rater_profile")
    pseudonym = models.CharField(max_length=32, unique=True, default=new_pseudonym, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.pseudonym})"


class Membership(models.Model):
    """A rater's standing in one project: qualifying, active, failed qualification, or excluded by staff.

    Exclusion keeps every label but leaves the rater out of every statistic and release."""

    class Status(models.TextChoices):
        QUALIFYING = "qualifying"
        ACTIVE = "active"
        FAILED = "failed"
        EXCLUDED = "excluded"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="memberships")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUALIFYING)
    qualification_answered = models.PositiveSmallIntegerField(default=0)
    qualification_score = models.FloatField(default=0.0, help_text="Sum of per-answer shares within tolerance.")
    qualified_at = models.DateTimeField(null=True, blank=True)
    excluded_at = models.DateTimeField(null=True, blank=True)
    excluded_reason = models.TextField(blank=True)
    excluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "rater"], name="membership_once_per_project")]
        indexes = [models.Index(fields=["project", "status"], name="membership_project_status_idx")]

    def __str__(self) -> str:
        return f"{self.rater_id} in {self.project_id}: {self.status}"
