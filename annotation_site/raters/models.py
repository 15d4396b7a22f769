import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def new_pseudonym() -> str:
    return "r" + secrets.token_hex(6)


class RaterProfile(models.Model):
    """What the platform knows about a rater beyond Django's user.

    Exclusion keeps every label but leaves the rater out of statistics and releases; releases name
    raters by pseudonym only."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rater_profile")
    pseudonym = models.CharField(max_length=32, unique=True, default=new_pseudonym, editable=False)
    is_excluded = models.BooleanField(default=False)
    excluded_at = models.DateTimeField(null=True, blank=True)
    excluded_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.pseudonym})"
