from __future__ import annotations

import pytest

from annotation_site.images.models import GoldAnswer, Image
from annotation_site.labeling.services import gold_answer_set
from tests.conftest import make_images

pytestmark = pytest.mark.django_db


def test_setting_a_gold_answer_validates_it_and_takes_the_image_out_of_the_regular_pool(project):
    [image] = make_images(project, 1)

    gold = gold_answer_set(image=image, values={"clarity": "bad", "quality": 2}, tolerances={"quality": 1.5}, for_qualification=True)

    assert gold.values == {"clarity": "bad", "quality": 2.0} and gold.tolerances == {"quality": 1.5}
    assert Image.objects.get(pk=image.pk).is_gold


@pytest.mark.parametrize(
    "values, tolerances, message",
    [
        ({"clarity": "blurry"}, {}, "clarity: must be one of bad, poor"),
        ({"clarty": "bad"}, {}, "did you mean 'clarity'"),
        ({"quality": 2.0}, {"clarity": 1}, "'clarity' has no gold value"),
        ({"quality": 2.0}, {"quality": -1}, "non-negative"),
        ({}, {}, "non-empty"),
    ],
)
def test_a_bad_gold_answer_is_refused_naming_the_problem_and_nothing_is_stored(project, values, tolerances, message):
    [image] = make_images(project, 1)
    with pytest.raises(ValueError, match=message):
        gold_answer_set(image=image, values=values, tolerances=tolerances)
    assert not GoldAnswer.objects.exists() and not Image.objects.get(pk=image.pk).is_gold


def test_staff_set_a_gold_answer_in_the_admin_and_see_schema_errors(admin_client, project):
    [image] = make_images(project, 1)
    url = "/admin/images/goldanswer/add/"
    bad = admin_client.post(url, {"image": image.pk, "values": '{"clarity": "blurry"}', "tolerances": "{}", "feedback": ""})
    assert bad.status_code == 200 and "must be one of bad, poor" in bad.content.decode()
    good = admin_client.post(url, {"image": image.pk, "values": '{"clarity": "bad"}', "tolerances": "{}", "feedback": "Look closer."})
    assert good.status_code == 302
    assert Image.objects.get(pk=image.pk).is_gold and GoldAnswer.objects.get().feedback == "Look closer."
