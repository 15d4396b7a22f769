"""Where a Qwen2-VL checkpoint is configured, workers pre-score with it too (a tiny one built here)."""

from __future__ import annotations

import pytest

from annotation_site.predictions.models import Prediction
from tests.conftest import make_images
from workers import modeling

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny_mllm(tmp_path, settings):  # type: ignore[no-untyped-def]
    from realqa_model.tiny import build_tiny_checkpoint

    settings.MLLM_CHECKPOINT = str(build_tiny_checkpoint(tmp_path / "tiny-qwen2-vl"))
    settings.MLLM_SETTINGS = {"device": "cpu", "max_new_tokens": 8}
    modeling._mllm.clear()
    yield settings.MLLM_CHECKPOINT
    modeling._mllm.clear()


def test_without_a_checkpoint_nothing_is_asked_of_a_multimodal_model(project, settings):
    settings.MLLM_CHECKPOINT = None
    [image] = make_images(project, 1)

    assert modeling.mllm_prescore_images(image_ids=[image.pk]) == 0
    assert not modeling.mllm_wanted()


def test_the_configured_qwen2_vl_checkpoint_scores_every_field_once_per_image(project, tiny_mllm):
    images = make_images(project, 2)
    ids = [image.pk for image in images]

    assert modeling.mllm_prescore_images(image_ids=ids) == 2
    assert modeling.mllm_prescore_images(image_ids=ids) == 0  # a redelivered task stores nothing twice

    rows = list(Prediction.objects.filter(image_id__in=ids))
    assert len(rows) == 2 and rows[0].model_version.startswith("qwen2-vl:")
    values = rows[0].values
    assert 1.0 <= values["quality"]["value"] <= 10.0 and 0.0 <= values["quality"]["confidence"] <= 1.0
    assert values["clarity"]["value"] in {"bad", "poor", "fair", "good", "excellent"}
