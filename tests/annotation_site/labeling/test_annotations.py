from __future__ import annotations

import pytest

from annotation_site.images.services import images_import
from annotation_site.images.sources import BytesSource
from annotation_site.labeling.models import Annotation
from annotation_site.labeling.services import AnnotationConflict, annotation_create
from annotation_site.schemas.spec import LabelError
from tests.annotation_site.images import corpus
from tests.annotation_site.labels import REALQA_LABELS

pytestmark = pytest.mark.django_db


@pytest.fixture
def image(project):  # type: ignore[no-untyped-def]
    report = images_import(project=project, sources=[BytesSource("photo.jpg", corpus.photo_jpeg(seed=3))])
    return project.images.get(pk=report.lines[0].image_id)


def test_it_stores_typed_values_with_the_schema_version_time_and_client(image, rater):
    annotation, created = annotation_create(
        image=image, rater=rater, labels=REALQA_LABELS, seconds_spent=41.5, client_info={"ua": "test"}
    )
    assert created
    stored = Annotation.objects.get(pk=annotation.pk)
    assert stored.values["eye_catching"] == 7 and stored.values["quality"] == 6.8
    assert stored.reasons["composition"].startswith("Centred subject")
    assert stored.schema_version.version == 1
    assert stored.seconds_spent == 41.5 and stored.client_info == {"ua": "test"}


def test_it_rejects_a_second_label_from_the_same_rater(image, rater):
    annotation_create(image=image, rater=rater, labels=REALQA_LABELS)
    with pytest.raises(AnnotationConflict, match="already labeled"):
        annotation_create(image=image, rater=rater, labels=REALQA_LABELS)
    assert Annotation.objects.count() == 1


def test_a_retry_with_the_same_idempotency_key_stores_nothing_twice(image, rater):
    first, created_first = annotation_create(image=image, rater=rater, labels=REALQA_LABELS, idempotency_key="k-1")
    again, created_again = annotation_create(image=image, rater=rater, labels=REALQA_LABELS, idempotency_key="k-1")
    assert created_first and not created_again
    assert again.pk == first.pk
    assert Annotation.objects.count() == 1


def test_invalid_labels_get_a_message_per_field_and_nothing_is_stored(image, rater):
    labels = {**REALQA_LABELS, "clarity": "sharp", "quality": 11, "eye_catching": 7}
    with pytest.raises(LabelError) as caught:
        annotation_create(image=image, rater=rater, labels=labels)
    assert set(caught.value.errors) == {"clarity", "quality", "eye_catching"}
    assert "bad, poor, fair, good" in caught.value.errors["clarity"]
    assert Annotation.objects.count() == 0


def test_an_impossible_time_on_task_is_refused(image, rater):
    with pytest.raises(LabelError, match="seconds_spent"):
        annotation_create(image=image, rater=rater, labels=REALQA_LABELS, seconds_spent=float("nan"))
