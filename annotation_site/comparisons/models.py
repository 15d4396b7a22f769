"""Pairwise comparisons (Compare2Score's five levels): each project's setup, the pairs to ask, the leases that
hand a pair to a rater, and the answers. One answer per (pair, rater); a pair is stored once, its photos in
id order, whichever side a rater saw each on."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from annotation_site.statistics.pairs import COMPARISON_LEVELS


class Criterion(models.TextChoices):
    QUALITY = "quality"
    AESTHETICS = "aesthetics"


class Strategy(models.TextChoices):
    RANDOM = "random", "Random pairs (balanced)"
    ACTIVE = "active", "Active: most informative pairs"
    ANCHORS = "anchors", "Anchors: every photo against five anchors"


class Level(models.TextChoices):
    """How the second (right) photo compares with the first (left), in Compare2Score's words."""

    INFERIOR = COMPARISON_LEVELS[0]
    WORSE = COMPARISON_LEVELS[1]
    SIMILAR = COMPARISON_LEVELS[2]
    BETTER = COMPARISON_LEVELS[3]
    SUPERIOR = COMPARISON_LEVELS[4]


class ComparisonSetup(models.Model):
    """A project's comparison task. Its own table so that the project itself knows nothing of it."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, primary_key=True, related_name="comparison_setup"
    )
    enabled = models.BooleanField(default=False, help_text="Raters see the comparison task.")
    criterion = models.CharField(max_length=12, choices=Criterion.choices, default=Criterion.QUALITY)
    strategy = models.CharField(
        max_length=8,
        choices=Strategy.choices,
        default=Strategy.ACTIVE,
        help_text="Which pairs raters get. Random is the control; anchors is Compare2Score's inference setting.",
    )
    comparisons_per_image = models.PositiveSmallIntegerField(
        default=10,
        help_text="Comparisons each photo takes part in (with anchors: split over the five anchor pairs, at least "
        "one answer each).",
    )
    anchors = models.JSONField(
        default=list, blank=True, editable=False, help_text="Image ids of the anchors, chosen once, lowest first."
    )
    anchors_from = models.CharField(
        max_length=20, blank=True, editable=False, help_text="Where the anchors came from: ratings or random."
    )
    batches = models.PositiveIntegerField(default=0, editable=False, help_text="Batches of pairs made so far.")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(comparisons_per_image__gte=1, comparisons_per_image__lte=200),
                name="comparison_setup_comparisons_per_image_range",
            ),
        ]

    def __str__(self) -> str:
        return f"comparison task of {self.project}"


class Pair(models.Model):
    """Two photos to compare, in id order (image_low.id < image_high.id), made by a strategy in a batch.
    assigned_count is live leases plus answers; it moves only by conditional UPDATEs."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+", db_index=False)
    image_low = models.ForeignKey("images.Image", on_delete=models.PROTECT, related_name="+", db_index=False)
    image_high = models.ForeignKey("images.Image", on_delete=models.PROTECT, related_name="+", db_index=False)
    strategy = models.CharField(max_length=8, choices=Strategy.choices)
    batch = models.PositiveIntegerField(default=0)
    priority = models.FloatField(default=0.0, help_text="Higher first within a batch (active: information gain rank).")
    wanted = models.PositiveSmallIntegerField(default=1, help_text="Answers this pair should get.")
    assigned_count = models.PositiveSmallIntegerField(default=0)
    answer_count = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image_low", "image_high"], name="pair_once_per_two_images"),
            models.CheckConstraint(condition=models.Q(image_low__lt=models.F("image_high")), name="pair_images_in_id_order"),
        ]
        indexes = [models.Index(fields=["project", "batch", "-priority", "id"], name="pair_pool_idx")]

    def __str__(self) -> str:
        return f"pair #{self.pk} images #{self.image_low_id} and #{self.image_high_id}"


class PairAssignment(models.Model):
    """A lease of one pair to one rater, with the side each photo is shown on (random, against position bias).
    A rater never gets the same pair twice."""

    class Status(models.TextChoices):
        LEASED = "leased"
        SUBMITTED = "submitted"
        SKIPPED = "skipped"
        EXPIRED = "expired"

    class SkipReason(models.TextChoices):
        CANNOT_JUDGE = "cannot_judge", "Cannot judge"
        BROKEN_IMAGE = "broken_image", "Broken image"
        INAPPROPRIATE = "inappropriate", "Inappropriate"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+", db_index=False)
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False)
    low_on_left = models.BooleanField(help_text="The pair's lower-id photo is shown first (on the left).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LEASED)
    skip_reason = models.CharField(max_length=20, choices=SkipReason.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pair", "rater"], name="pair_assignment_once_per_rater")]
        indexes = [
            models.Index(fields=["rater", "project", "status"], name="pair_assignment_rater_idx"),
            models.Index(fields=["project", "status", "expires_at"], name="pair_assignment_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"pair assignment #{self.pk} pair #{self.pair_id} rater #{self.rater_id} ({self.status})"


class Comparison(models.Model):
    """One rater's answer on one pair: the level of the second (right) photo against the first (left) as shown,
    and the same answer normalised to the pair's order (preference_high: 0, .25, .5, .75 or 1 for image_high)."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="+", db_index=False)
    pair = models.ForeignKey(Pair, on_delete=models.PROTECT, related_name="comparisons", db_index=False)
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False)
    assignment = models.OneToOneField(PairAssignment, null=True, blank=True, on_delete=models.PROTECT, related_name="comparison")
    first_image = models.ForeignKey("images.Image", on_delete=models.PROTECT, related_name="+", db_index=False)
    second_image = models.ForeignKey("images.Image", on_delete=models.PROTECT, related_name="+", db_index=False)
    level = models.CharField(max_length=8, choices=Level.choices)
    preference_high = models.FloatField(help_text="Soft preference for the pair's higher-id photo, 0 to 1.")
    seconds_spent = models.FloatField(null=True, blank=True)
    client_info = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pair", "rater"], name="comparison_once_per_rater_and_pair"),
            models.UniqueConstraint(
                fields=["rater", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="comparison_idempotency_key_unique_per_rater",
            ),
        ]
        indexes = [models.Index(fields=["project", "created_at"], name="comparison_project_idx")]

    def __str__(self) -> str:
        return f"comparison #{self.pk} pair #{self.pair_id} rater #{self.rater_id}: {self.level}"
