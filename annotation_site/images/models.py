from django.db import models
from django.utils import timezone


class Image(models.Model):
    """A photo in a project. Files are content-addressed (named by the sha256 of the original bytes),
    so storing one twice, or retrying an interrupted import, writes nothing new."""

    # The unique (project, sha256) index serves lookups by project.
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="images", db_index=False)
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

    # Assignment bookkeeping, kept on the row so that picking the next image is one indexed query and
    # every change is a conditional UPDATE (see annotation_site/labeling/assignment.py).
    is_gold = models.BooleanField(default=False, help_text="Gold images have known answers and never reach statistics.")
    priority = models.FloatField(default=0.0, help_text="Higher first; set by the model-in-the-loop strategy.")
    priority_reason = models.CharField(max_length=200, blank=True, help_text="Why the strategy put the image there.")
    assigned_count = models.PositiveSmallIntegerField(default=0, help_text="Live leases plus submitted labels.")
    label_count = models.PositiveSmallIntegerField(default=0, help_text="Submitted labels.")
    wanted_count = models.PositiveSmallIntegerField(
        default=0, help_text="Raters this image should get; 0 means the project's overlap (adaptive overlap raises it)."
    )

    class Meta:
        ordering = ["project", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="image_bytes_unique_per_project"),
        ]
        indexes = [
            models.Index(
                fields=["project", "-priority", "assigned_count", "id"],
                condition=models.Q(is_gold=False),
                name="image_assignment_order_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.original_name}"

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


class GoldAnswer(models.Model):
    """The known answer of a gold image, with how far a rater may be from it and still be right."""

    image = models.OneToOneField(Image, on_delete=models.CASCADE, primary_key=True, related_name="gold")
    values = models.JSONField(help_text='Field key to the expected value, e.g. {"clarity": "bad", "quality": 2.0}.')
    tolerances = models.JSONField(
        default=dict,
        blank=True,
        help_text="Field key to the accepted distance: score units for scores, steps on the scale for ordinal "
        "fields (nominal fields must match). Missing fields use 1 step or 1 score unit.",
    )
    feedback = models.TextField(blank=True, help_text="Shown to a rater after a qualification answer.")
    for_qualification = models.BooleanField(default=False, help_text="Used in the qualification round.")

    def __str__(self) -> str:
        return f"gold answer of image #{self.image_id}"
