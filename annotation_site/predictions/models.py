from django.db import models
from django.utils import timezone


class Prediction(models.Model):
    """A model's guess for every schema field of one image, with its uncertainty.

    One row per image and model version, enforced by the database, which is what makes pre-scoring
    tasks safe to redeliver."""

    image = models.ForeignKey("images.Image", on_delete=models.CASCADE, related_name="predictions")
    model_version = models.CharField(max_length=120)
    values = models.JSONField(help_text='Field key to {"value": ..., "uncertainty": ...}.')
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model_version"], name="prediction_once_per_image_and_model"),
        ]
        indexes = [models.Index(fields=["model_version", "created_at"], name="prediction_model_created_idx")]

    def __str__(self) -> str:
        return f"prediction image #{self.image_id} by {self.model_version}"
