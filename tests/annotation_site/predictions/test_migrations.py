"""The data step of migrations that fill in what older rows could not say."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from annotation_site.labeling.models import Annotation
from annotation_site.predictions.models import Prediction
from annotation_site.predictions.services import prediction_store
from tests.annotation_site.predictions.test_model_in_the_loop import _guess, _label
from tests.conftest import make_images

pytestmark = pytest.mark.django_db

backfill = importlib.import_module(
    "annotation_site.predictions.migrations.0003_record_whether_a_prediction_learnt_from_the_images_labels"
).mark_predictions_made_before_any_label


def test_a_prediction_stored_before_its_images_first_label_is_marked_as_not_trained_on_it(project):
    labelled_later, labelled_earlier = make_images(project, 2)
    _label(project, "r1", {labelled_later.pk: 5.0, labelled_earlier.pk: 5.0})
    [unlabelled] = make_images(project, 1, start_seed=2000)
    first_label = timezone.now() - timedelta(hours=1)
    Annotation.objects.filter(image=labelled_later).update(created_at=first_label)
    for image in (unlabelled, labelled_later, labelled_earlier):
        prediction_store(image=image, model_version="m:1", values=_guess(5.0))
    Prediction.objects.filter(image=labelled_later).update(created_at=first_label - timedelta(minutes=1))

    backfill(apps, None)

    marked = dict(Prediction.objects.values_list("image_id", "trained_on"))
    assert marked == {unlabelled.pk: False, labelled_later.pk: False, labelled_earlier.pk: None}
