from __future__ import annotations

import pytest

from annotation_site.images.services import images_import
from annotation_site.images.sources import BytesSource
from annotation_site.predictions.models import Prediction
from annotation_site.predictions.services import prediction_store
from tests.annotation_site.images import corpus

pytestmark = pytest.mark.django_db


def test_a_prediction_is_stored_once_per_image_and_model_version(project):
    report = images_import(project=project, sources=[BytesSource("p.jpg", corpus.photo_jpeg(seed=60))])
    image = project.images.get(pk=report.lines[0].image_id)
    values = {"quality": {"value": 6.59, "uncertainty": 0.4}}

    first, created = prediction_store(image=image, model_version="cpu-heads@1", values=values)
    again, created_again = prediction_store(image=image, model_version="cpu-heads@1", values={"quality": {"value": 1.0}})
    newer, created_newer = prediction_store(image=image, model_version="cpu-heads@2", values=values)

    assert created and not created_again and created_newer
    assert again.pk == first.pk and again.values == values
    assert Prediction.objects.filter(image=image).count() == 2
