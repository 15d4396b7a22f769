"""Writes for model predictions."""

from __future__ import annotations

from annotation_site.images.models import Image

from .models import Prediction


def prediction_store(*, image: Image, model_version: str, values: dict) -> tuple[Prediction, bool]:
    """Store a model's prediction once per image and model version; a redelivered task that stores
    the same prediction again changes nothing and gets the stored row back."""
    return Prediction.objects.get_or_create(image=image, model_version=model_version, defaults={"values": values})
