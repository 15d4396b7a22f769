from django.conf import settings
from django.db import models
from django.utils import timezone


class Assignment(models.Model):
    """A lease of one image to one rater. Leases expire so abandoned images return to the pool; a rater
    is never leased the same image twice."""

    class Status(models.TextChoices):
        LEASED = "leased"
        SUBMITTED = "submitted"
        SKIPPED = "skipped"
        EXPIRED = "expired"

    class Kind(models.TextChoices):
        REGULAR = "regular"
        GOLD = "gold"
        QUALIFICATION = "qualification"

    class SkipReason(models.TextChoices):
        CANNOT_JUDGE = "cannot_judge", "Cannot judge"
        BROKEN_IMAGE = "broken_image", "Broken image"
        INAPPROPRIATE = "inappropriate", "Inappropriate"

    # Foreign keys whose lookups a composite index below already serves get no index of their own:
    # every index is written on every lease and submit.
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="assignments", db_index=False)
    image = models.ForeignKey("images.Image", on_delete=models.PROTECT, related_name="assignments", db_index=False)
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments", db_index=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LEASED)
    kind = models.CharField(max_length=14, choices=Kind.choices, default=Kind.REGULAR)
    schema_version = models.ForeignKey(
        "schemas.SchemaVersion",
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        help_text="The version the rater's form was built from; the label is validated against it.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=20, choices=SkipReason.choices, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "rater"], name="assignment_once_per_rater_and_image"),
        ]
        indexes = [
            models.Index(fields=["rater", "status"], name="assignment_rater_status_idx"),
            models.Index(fields=["project", "status", "expires_at"], name="assignment_project_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"assignment #{self.pk} image #{self.image_id} rater #{self.rater_id} ({self.status})"


class Annotation(models.Model):
    """One rater's labels for one image, validated against the schema version stored with it."""

    class Source(models.TextChoices):
        PLATFORM = "platform"
        IMPORT = "import"

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="annotations", db_index=False)
    image = models.ForeignKey("images.Image", on_delete=models.PROTECT, related_name="annotations", db_index=False)
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations", db_index=False)
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.PROTECT, related_name="annotation"
    )
    schema_version = models.ForeignKey("schemas.SchemaVersion", on_delete=models.PROTECT, related_name="+", db_index=False)
    values = models.JSONField(help_text="Field key to typed value (choice value, number or text).")
    reasons = models.JSONField(default=dict, blank=True, help_text="Field key to the free-text reason.")
    seconds_spent = models.FloatField(null=True, blank=True)
    client_info = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PLATFORM)
    gold_score = models.FloatField(
        null=True, blank=True, help_text="On a gold image: the share of its known answers this label got right."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "rater"], name="annotation_once_per_rater_and_image"),
            models.UniqueConstraint(
                fields=["rater", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="annotation_idempotency_key_unique_per_rater",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "created_at"], name="annotation_project_created_idx"),
            models.Index(fields=["rater", "created_at"], name="annotation_rater_created_idx"),
        ]

    def __str__(self) -> str:
        return f"annotation #{self.pk} image #{self.image_id} rater #{self.rater_id}"
