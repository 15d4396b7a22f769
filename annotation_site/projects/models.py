from django.db import models
from django.utils import timezone


class Project(models.Model):
    """A labeling campaign: a set of images, the schema raters answer, and how many raters see each image."""

    slug = models.SlugField(max_length=64, unique=True, help_text="Short name used in URLs and commands.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    overlap = models.PositiveSmallIntegerField(
        default=5, help_text="How many raters label each image before it leaves the pool."
    )
    is_active = models.BooleanField(default=True, help_text="Inactive projects are hidden from raters.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name or self.slug
