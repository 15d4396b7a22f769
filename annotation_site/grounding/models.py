"""Grounded regions (Grounding-IQA) and distortion descriptions (DepictQA-Wild): each project's setup, the
leases that hand photos to raters, and the raters' answers. One answer per (photo, rater) and task, held by the
database."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .taxonomy import DEFAULT_DISTORTIONS, DEFAULT_SEVERITIES, DEFAULT_TAGS


def default_tags() -> list[str]:
    return list(DEFAULT_TAGS)


def default_distortions() -> list[str]:
    return list(DEFAULT_DISTORTIONS)


def default_severities() -> list[str]:
    return list(DEFAULT_SEVERITIES)


class GroundingSetup(models.Model):
    """A project's region task: raters draw boxes on the photo, each with a tag and a note."""

    project = models.OneToOneField("projects.Project", on_delete=models.CASCADE, primary_key=True, related_name="grounding_setup")
    enabled = models.BooleanField(default=False, help_text="Raters see the region task.")
    tags = models.JSONField(default=default_tags, help_text="Region tags, 1 to 10; number keys pick them in this order.")
    region_questions = models.JSONField(
        default=list,
        blank=True,
        help_text='Up to 10 questions about regions: [{"key": "sharpest", "text": "Which region is sharpest?", '
        '"kind": "region"}] (kind "yes_no" or "region": answered by pointing at one of the rater\'s boxes).',
    )
    raters_per_image = models.PositiveSmallIntegerField(default=3, help_text="Raters who draw on each photo.")

    def __str__(self) -> str:
        return f"region task of {self.project}"


class DescriptionSetup(models.Model):
    """A project's description task: distortions with severities (brief) and free text (detailed)."""

    project = models.OneToOneField("projects.Project", on_delete=models.CASCADE, primary_key=True, related_name="description_setup")
    enabled = models.BooleanField(default=False, help_text="Raters see the description task.")
    distortions = models.JSONField(default=default_distortions, help_text="Distortion keys (DepictQA-Wild's 12 by default).")
    severities = models.JSONField(default=default_severities, help_text="Severity names from the mildest to the worst.")
    raters_per_image = models.PositiveSmallIntegerField(default=3, help_text="Raters who describe each photo.")
    detail_min_chars = models.PositiveSmallIntegerField(
        default=20, help_text="Shortest detailed answer accepted (0 makes the detailed answer optional)."
    )

    def __str__(self) -> str:
        return f"description task of {self.project}"


class TaskKind(models.TextChoices):
    REGIONS = "regions"
    DESCRIPTION = "description"


class GroundingLease(models.Model):
    """A photo handed to a rater for one task. A lease that runs out returns the photo to the pool (it
    simply stops counting); a rater is never handed the same photo twice for the same task."""

    class Status(models.TextChoices):
        LEASED = "leased"
        SUBMITTED = "submitted"
        SKIPPED = "skipped"

    class SkipReason(models.TextChoices):
        CANNOT_JUDGE = "cannot_judge", "Cannot judge"
        BROKEN_IMAGE = "broken_image", "Broken image"
        INAPPROPRIATE = "inappropriate", "Inappropriate"

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="+", db_index=False)
    image = models.ForeignKey("images.Image", on_delete=models.PROTECT, related_name="grounding_leases", db_index=False)
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(max_length=12, choices=TaskKind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LEASED)
    skip_reason = models.CharField(max_length=20, choices=SkipReason.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Leads with the image: it also serves "how many raters hold this photo for this task".
            models.UniqueConstraint(fields=["image", "kind", "rater"], name="grounding_lease_once_per_rater_image_task"),
        ]
        indexes = [
            models.Index(fields=["rater", "project", "kind", "status"], name="grounding_lease_rater_idx"),
            # Counting each photo's raters when picking the next photo.
            models.Index(fields=["project", "kind", "image"], name="grounding_lease_pool_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} lease #{self.pk} image #{self.image_id} rater #{self.rater_id} ({self.status})"


class _Answer(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="+", db_index=False)
    image = models.ForeignKey("images.Image", on_delete=models.PROTECT, related_name="+", db_index=False)
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False)
    lease = models.OneToOneField(GroundingLease, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    seconds_spent = models.FloatField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True


class RegionAnnotation(_Answer):
    """One rater's boxes on one photo: [{"box": [x0, y0, x1, y1] (0..1 of the upright image), "tag": ...,
    "note": ...}], and their answers to the region questions."""

    boxes = models.JSONField(default=list, blank=True)
    answers = models.JSONField(default=dict, blank=True, help_text="Question key to \"yes\"/\"no\", or to a box index (null: none).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "rater"], name="region_annotation_once_per_rater_and_image"),
            models.UniqueConstraint(
                fields=["rater", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="region_annotation_idempotency_key_unique_per_rater",
            ),
        ]
        indexes = [models.Index(fields=["project", "image"], name="region_annotation_project_idx")]

    def __str__(self) -> str:
        return f"regions #{self.pk} image #{self.image_id} rater #{self.rater_id}"


class DescriptionAnnotation(_Answer):
    """One rater's description of one photo: brief [{"distortion": ..., "severity": ...}] and detailed text."""

    brief = models.JSONField(default=list, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "rater"], name="description_once_per_rater_and_image"),
            models.UniqueConstraint(
                fields=["rater", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="description_idempotency_key_unique_per_rater",
            ),
        ]
        indexes = [models.Index(fields=["project", "image"], name="description_project_idx")]

    def __str__(self) -> str:
        return f"description #{self.pk} image #{self.image_id} rater #{self.rater_id}"
