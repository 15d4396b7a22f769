from django.db import models
from django.utils import timezone


class Image(models.Model):
    """A photo in a project. Files are content-addressed (named by the sha256 of the original bytes),
    so storing one twice, or retrying an interrupted import, writes nothing new."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="images")
    sha256 = models.CharField(max_length=64, help_text="Digest of the original bytes.")
    phash = models.CharField(max_length=16, help_text="Perceptual hash of the upright image (hex).")
    original = models.FileField(max_length=255)
    display = models.FileField(
        max_length=255, help_text="Upright sRGB version at full resolution; the original itself when it already is."
    )
    thumbnail = models.FileField(max_length=255)
    original_name = models.CharField(max_length=255, help_text="File name or path it was imported from.")
    format = models.CharField(max_length=10)
    source_mode = models.CharField(max_length=16, help_text="Pillow mode of the original (RGB, CMYK, I;16, ...).")
    width = models.PositiveIntegerField(help_text="Upright width in pixels.")
    height = models.PositiveIntegerField(help_text="Upright height in pixels.")
    orientation = models.PositiveSmallIntegerField(default=1, help_text="EXIF orientation that was applied.")
    byte_size = models.PositiveBigIntegerField()
    near_duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="near_duplicates"
    )
    near_duplicate_distance = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["project", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="image_bytes_unique_per_project"),
        ]
        indexes = [models.Index(fields=["project", "near_duplicate_of"], name="image_project_neardup_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.original_name}"

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6
