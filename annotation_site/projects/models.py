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
    max_overlap = models.PositiveSmallIntegerField(
        default=5,
        help_text="Adaptive overlap: an image keeps receiving raters up to this many while the 95% confidence "
        "interval of its overall scores is wider than the target half-width. Equal to overlap turns it off.",
    )
    target_ci_half_width = models.FloatField(
        default=0.5, help_text="Target 95% CI half-width of the overall scores, in score units."
    )
    lease_minutes = models.PositiveSmallIntegerField(
        default=15, help_text="An assignment not submitted within this time returns to the pool."
    )
    gold_rate = models.FloatField(
        default=0.05, help_text="Share of assignments that are gold images with known answers (0 to turn off)."
    )
    qualification_size = models.PositiveSmallIntegerField(
        default=3, help_text="Qualification gold images a new rater answers, with feedback, before real images."
    )
    qualification_pass_share = models.FloatField(
        default=0.7, help_text="Share of qualification answers within tolerance needed to pass."
    )
    daily_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most labels one rater may give in a day (empty: no cap)."
    )
    pre_annotation = models.BooleanField(
        default=False,
        help_text="Show raters the model's guess. Off by default: a visible guess anchors raters towards it.",
    )
    class Strategy(models.TextChoices):
        ACTIVE = "active", "Active: a batch covering the unlabelled photos, then uncertainty; model-consensus disagreement"
        UNCERTAINTY = "uncertainty", "Uncertainty only"
        RANDOM = "random", "Random (the control)"

    priority_strategy = models.CharField(
        max_length=12,
        choices=Strategy.choices,
        default=Strategy.ACTIVE,
        help_text="How the model orders the images raters get next. Random is the control to compare against.",
    )
    retrain_min_new_labels = models.PositiveIntegerField(
        default=50,
        help_text="Retrain the project's model once this many images gained consensus labels since the last training.",
    )
    is_active = models.BooleanField(default=True, help_text="Inactive projects are hidden from raters.")
    open_to_all_raters = models.BooleanField(
        default=True, help_text="Any rater may join. Off: only raters staff added (a membership) see the project."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    current_schema = models.ForeignKey(
        "schemas.SchemaVersion",
        null=True,
        editable=False,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The newest schema version, kept here so the labeling hot path needs no lookup.",
    )

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=models.Q(max_overlap__gte=models.F("overlap")), name="project_max_overlap_gte_overlap"),
            models.CheckConstraint(condition=models.Q(gold_rate__gte=0, gold_rate__lte=1), name="project_gold_rate_is_a_share"),
        ]

    def __str__(self) -> str:
        return self.name or self.slug
