from django.db import models
from django.utils import timezone


class Prediction(models.Model):
    """A model's guess for every schema field of one image, with its uncertainty.

    One row per image and model version, enforced by the database, which is what makes pre-scoring
    tasks safe to redeliver."""

    image = models.ForeignKey("images.Image", on_delete=models.CASCADE, related_name="predictions")
    model_version = models.CharField(max_length=120)
    values = models.JSONField(help_text='Field key to {"value": ..., "confidence": ..., "uncertainty": ...}.')
    uncertainty = models.FloatField(default=0.0, help_text="One number to rank images by; higher is less sure.")
    # A model fits the consensus it was trained on almost exactly, so only a prediction made without an
    # image's labels can say whether the model and the raters disagree on it.
    trained_on = models.BooleanField(
        null=True,
        help_text="Whether the model had learnt from this image's labels; empty where that is not known.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model_version"], name="prediction_once_per_image_and_model"),
        ]
        indexes = [
            models.Index(fields=["model_version", "created_at"], name="prediction_model_created_idx"),
            # An image's newest guess made without its labels (selectors.blind_predictions), found without reading
            # the guesses of every later model that did learn them.
            models.Index(
                fields=["image", "-created_at", "-id"], condition=models.Q(trained_on=False), name="prediction_blind_newest_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"prediction image #{self.image_id} by {self.model_version}"


class ImageFeatures(models.Model):
    """The model's input features of one image, computed once per feature extractor version, so that a
    retrained model scores a whole project without decoding a single photo again. The features also
    serve as the embedding in which the active-learning batch covers the photos."""

    image = models.ForeignKey("images.Image", on_delete=models.CASCADE, related_name="features", db_index=False)
    version = models.CharField(max_length=60)
    vector = models.BinaryField(help_text="float32, little-endian.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "version"], name="features_once_per_image_and_version")]

    def __str__(self) -> str:
        return f"features of image #{self.image_id} ({self.version})"


class ModelRun(models.Model):
    """One training of a project's model: what it learnt from and how well it does on held-out images.
    The runs in order are the project's learning curve; the newest finished run scores new images."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="model_runs")
    model_version = models.CharField(max_length=120)
    scorer = models.CharField(max_length=40, default="cpu-multihead")
    checkpoint = models.CharField(max_length=255, help_text="Folder in the default storage holding the weights.")
    images_used = models.PositiveIntegerField(help_text="Images with consensus labels it was trained on.")
    labels_used = models.PositiveIntegerField(help_text="Labels behind that consensus.")
    metrics = models.JSONField(default=dict, help_text='realqa_model.evaluation on the held-out images: {"fields": {key: {srcc, plcc, accuracy, n}}}.')
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "model_version"], name="model_run_once_per_version")]
        indexes = [models.Index(fields=["project", "-created_at"], name="model_run_project_newest_idx")]
        get_latest_by = "created_at"

    def __str__(self) -> str:
        return f"{self.model_version} on {self.images_used} images"
