from django.conf import settings
from django.db import models
from django.utils import timezone


class SchemaVersion(models.Model):
    """One immutable version of a project's annotation schema.

    Editing a live schema creates the next version; every annotation points at the version it was
    validated against, so stored labels are never reinterpreted."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="schema_versions")
    version = models.PositiveIntegerField()
    definition = models.JSONField(help_text="The normalised schema (see annotation_site/schemas/spec.py).")
    digest = models.CharField(max_length=64, help_text="sha256 of the canonical JSON of the definition.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["project", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="schema_version_unique_per_project"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug} schema v{self.version}"
