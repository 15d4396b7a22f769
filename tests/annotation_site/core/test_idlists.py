"""Lookups by a project's worth of ids go in batches: PostgreSQL takes at most 65,535 bound parameters a
statement, and a retrain at 10x RealQA passed 147,150."""

from __future__ import annotations

import numpy as np
import pytest

from annotation_site.core import idlists
from annotation_site.core.idlists import id_batches
from annotation_site.predictions.selectors import features_matrix
from annotation_site.predictions.services import features_store
from tests.conftest import make_images


def test_ids_come_in_batches_of_the_size_asked_in_their_order():
    assert list(id_batches(iter(range(7)), size=3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(id_batches([], size=3)) == []


@pytest.mark.django_db
def test_the_features_of_more_images_than_a_batch_are_all_found_one_query_a_batch(
    project, monkeypatch, django_assert_num_queries
):
    images = make_images(project, 5)
    for image in images:
        features_store(image_id=image.pk, version="v", vector=np.full(4, image.pk, dtype=np.float32))
    monkeypatch.setattr(idlists, "ID_BATCH", 2)

    with django_assert_num_queries(3):
        found = features_matrix(image_ids=[image.pk for image in images], version="v")

    assert sorted(found) == [image.pk for image in images]
    assert all(found[image.pk][0] == image.pk for image in images)
