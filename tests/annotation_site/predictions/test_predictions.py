from __future__ import annotations

import pytest

from annotation_site.images.services import images_import
from annotation_site.images.sources import BytesSource
from annotation_site.predictions.models import Prediction
from annotation_site.predictions.services import prediction_store, predictions_store_many
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


def test_a_batch_of_predictions_stored_twice_keeps_the_first_and_adds_only_the_new_images(project):
    report = images_import(project=project, sources=[BytesSource(f"p{i}.jpg", corpus.photo_jpeg(seed=70 + i)) for i in range(3)])
    a, b, c = (line.image_id for line in report.lines)

    predictions_store_many(model_version="cpu-heads@1", rows=[(a, {"quality": {"value": 6.5}}, 0.2, False), (b, {"quality": {"value": 3.0}}, 0.4, None)])
    predictions_store_many(model_version="cpu-heads@1", rows=[(b, {"quality": {"value": 9.9}}, 0.9, True), (c, {"quality": {"value": 5.0}}, 0.1, True)])

    stored = {p.image_id: p for p in Prediction.objects.filter(model_version="cpu-heads@1")}
    assert set(stored) == {a, b, c}
    assert stored[b].values == {"quality": {"value": 3.0}} and stored[b].uncertainty == 0.4 and stored[b].trained_on is None
    assert stored[a].trained_on is False and stored[c].trained_on is True
