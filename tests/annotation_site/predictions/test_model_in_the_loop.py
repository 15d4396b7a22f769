"""The model in the loop on the web side: consensus it learns from, the queue order it sets, the staff page."""

from __future__ import annotations

import numpy as np
import pytest

from annotation_site.images.models import Image
from annotation_site.predictions.models import ModelRun, Prediction
from annotation_site.predictions.selectors import blind_predictions, consensus_labels, model_vs_consensus
from annotation_site.predictions.services import features_store, prediction_store, priorities_recompute
from annotation_site.quality.services import membership_exclude
from annotation_site.raters.services import rater_create
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import api_client_for, make_images

pytestmark = pytest.mark.django_db

FEATURES = "test-features-1"


def _label(project, username: str, scores: dict[int, float], clarity: dict[int, str] | None = None):  # type: ignore[no-untyped-def]
    """One rater labels, through the API, every image the engine gives them."""
    user = rater_create(username=username, password="pw-123456")
    client = api_client_for(user)
    assignment = client.post(f"/api/v1/projects/{project.slug}/next", {}, format="json").json()
    while assignment and assignment.get("id"):
        image_id = assignment["image"]["id"]
        labels = {**REALQA_LABELS, "quality": scores[image_id], "aesthetics": scores[image_id]}
        if clarity:
            labels["clarity"] = clarity[image_id]
        assignment = client.post(f"/api/v1/assignments/{assignment['id']}/submit", {"labels": labels}, format="json").json()["next"]
    return user


@pytest.fixture
def small_project(project):  # type: ignore[no-untyped-def]
    project.overlap = project.max_overlap = 3
    project.gold_rate = 0
    project.save()
    return project


def _guess(quality: float, clarity: str = "good", uncertainty: float = 0.1) -> dict:
    return {
        "quality": {"value": quality, "confidence": 0.9, "uncertainty": uncertainty},
        "clarity": {"value": clarity, "confidence": 0.8, "uncertainty": 0.2},
    }


def test_the_consensus_is_the_mean_score_and_the_majority_choice_without_excluded_raters(small_project):
    images = make_images(small_project, 2)
    a, b = (image.pk for image in images)
    _label(small_project, "r1", {a: 6.0, b: 2.0}, {a: "good", b: "bad"})
    _label(small_project, "r2", {a: 7.0, b: 3.0}, {a: "good", b: "poor"})
    outlier = _label(small_project, "r3", {a: 1.0, b: 9.0}, {a: "bad", b: "poor"})

    with_all = consensus_labels(project=small_project)
    assert with_all.labels[a]["quality"] == pytest.approx(14 / 3, abs=1e-4)
    assert with_all.labels[b]["clarity"] == "poor" and with_all.labels_used == 6

    membership_exclude(project=small_project, rater_id=outlier.pk, by=outlier)
    without = consensus_labels(project=small_project)
    assert without.labels[a]["quality"] == 6.5 and without.labels[a]["clarity"] == "good"
    # a tie between "bad" and "poor" goes to the choice the schema lists first
    assert without.labels[b]["clarity"] == "bad"
    assert "subject_background" not in without.labels[a]  # text has no consensus


def test_the_queue_follows_the_models_uncertainty_and_says_why(small_project):
    small_project.priority_strategy = "uncertainty"
    small_project.save()
    images = make_images(small_project, 4)
    ModelRun.objects.create(project=small_project, model_version="m:1", checkpoint="x", images_used=0, labels_used=0)
    for image, u in zip(images, [0.1, 0.9, 0.5, 0.3]):
        prediction_store(image=image, model_version="m:1", values=_guess(5.0), uncertainty=u)

    assert priorities_recompute(project=small_project) == 4

    order = list(Image.objects.filter(project=small_project).order_by("-priority").values_list("pk", flat=True))
    assert order == [images[1].pk, images[2].pk, images[3].pk, images[0].pk]
    assert "uncertainty 0.9" in Image.objects.get(pk=images[1].pk).priority_reason
    # and the assignment engine hands out the most uncertain image first
    client = api_client_for(rater_create(username="next", password="pw-123456"))
    assert client.post(f"/api/v1/projects/{small_project.slug}/next", {}, format="json").json()["image"]["id"] == images[1].pk


def test_the_active_strategy_uses_the_stored_features_for_a_covering_batch(small_project):
    images = make_images(small_project, 6)
    rng = np.random.default_rng(0)
    for i, image in enumerate(images):
        centre = 5.0 if i < 3 else float(i)
        features_store(image_id=image.pk, version=FEATURES, vector=rng.normal(centre, 0.01, 4))

    priorities_recompute(project=small_project, features_version=FEATURES, batch_size=3)

    top = set(Image.objects.filter(project=small_project).order_by("-priority").values_list("pk", flat=True)[:3])
    assert len(top & {image.pk for image in images[:3]}) == 1
    assert all("covering batch" in reason for reason in Image.objects.filter(pk__in=top).values_list("priority_reason", flat=True))


def test_the_covering_batch_starts_where_no_labelled_photo_is_near(small_project):
    images = make_images(small_project, 6)
    rng = np.random.default_rng(0)
    for i, image in enumerate(images):
        features_store(image_id=image.pk, version=FEATURES, vector=rng.normal(5.0 if i < 4 else -5.0, 0.01, 4))
    # Three unlabelled photos of the first kind, two of the second; but the first kind already has a label.
    Image.objects.filter(pk=images[0].pk).update(label_count=1)

    priorities_recompute(project=small_project, features_version=FEATURES, batch_size=1)

    first = Image.objects.filter(project=small_project, label_count=0).order_by("-priority").first()
    assert first.pk in {images[4].pk, images[5].pk}
    assert "nearest photo for 2 unlabelled photos" in first.priority_reason


def test_where_the_models_guess_before_the_labels_and_the_raters_disagree_most_the_image_gets_one_more_rater(small_project):
    small_project.overlap = 2
    small_project.max_overlap = 4
    small_project.save()
    images = make_images(small_project, 4)
    scores = {image.pk: 5.0 for image in images}
    ModelRun.objects.create(project=small_project, model_version="m:1", checkpoint="x", images_used=0, labels_used=0)
    for image in images:  # scored while the photos waited for raters
        prediction_store(image=image, model_version="m:1", values=_guess(9.5 if image == images[2] else 5.1), trained_on=False)
    _label(small_project, "r1", scores)
    _label(small_project, "r2", scores)
    # The retrained model learnt the consensus and repeats it everywhere.
    ModelRun.objects.create(project=small_project, model_version="m:2", checkpoint="x", images_used=4, labels_used=8)
    for image in images:
        prediction_store(image=image, model_version="m:2", values=_guess(5.0), trained_on=True)

    priorities_recompute(project=small_project)

    disputed = Image.objects.get(pk=images[2].pk)
    assert disputed.wanted_count == 3 and "guess before these labels" in disputed.priority_reason
    assert disputed.priority_reason.endswith("most on quality: 9.50 against 5.00")
    assert list(Image.objects.filter(project=small_project, wanted_count=3)) == [disputed]
    client = api_client_for(rater_create(username="third", password="pw-123456"))
    assert client.post(f"/api/v1/projects/{small_project.slug}/next", {}, format="json").json()["image"]["id"] == images[2].pk


def test_a_guess_one_clarity_level_off_is_no_reason_for_another_rater_but_one_at_the_other_end_of_the_scale_is(small_project):
    small_project.overlap = 2
    small_project.max_overlap = 4
    small_project.save()
    near, far, same = make_images(small_project, 3)
    ModelRun.objects.create(project=small_project, model_version="m:1", checkpoint="x", images_used=0, labels_used=0)
    for image, clarity in ((near, "excellent"), (far, "bad"), (same, "good")):
        prediction_store(image=image, model_version="m:1", values=_guess(5.0, clarity=clarity), trained_on=False)
    everyone_says_good = {image.pk: "good" for image in (near, far, same)}
    _label(small_project, "r1", {image.pk: 5.0 for image in (near, far, same)}, everyone_says_good)
    _label(small_project, "r2", {image.pk: 5.0 for image in (near, far, same)}, everyone_says_good)

    priorities_recompute(project=small_project)

    assert list(Image.objects.filter(project=small_project, wanted_count=3)) == [far]
    assert Image.objects.get(pk=far.pk).priority_reason.endswith("most on clarity: bad against good")


def test_a_model_that_learnt_an_images_labels_is_not_asked_whether_it_disagrees_with_them(small_project):
    small_project.overlap = 2
    small_project.max_overlap = 4
    small_project.save()
    images = make_images(small_project, 4)
    _label(small_project, "r1", {image.pk: 5.0 for image in images})
    _label(small_project, "r2", {image.pk: 5.0 for image in images})
    ModelRun.objects.create(project=small_project, model_version="m:1", checkpoint="x", images_used=4, labels_used=8)
    for image in images:
        # Learnt from these labels, and not knowing whether a model did, are alike: no blind guess to judge by.
        prediction_store(image=image, model_version="m:1", values=_guess(9.5), trained_on=True if image != images[0] else None)

    priorities_recompute(project=small_project)

    assert set(Image.objects.filter(project=small_project).values_list("wanted_count", flat=True)) == {2}


def test_the_blind_guess_of_an_image_is_the_newest_one_made_without_its_labels(small_project):
    a, b, c = make_images(small_project, 3)
    _label(small_project, "r1", {a.pk: 5.0, b.pk: 5.0, c.pk: 5.0})
    runs = ["cpu-multihead:1", "cpu-multihead:2", "cpu-multihead:3"]
    for version in runs:
        ModelRun.objects.create(project=small_project, model_version=version, checkpoint="x", images_used=0, labels_used=0)
    prediction_store(image=a, model_version=runs[0], values=_guess(1.0), trained_on=False)
    prediction_store(image=a, model_version=runs[1], values=_guess(2.0), trained_on=False)
    prediction_store(image=a, model_version=runs[2], values=_guess(3.0), trained_on=True)
    prediction_store(image=b, model_version=runs[2], values=_guess(4.0), trained_on=None)
    prediction_store(image=c, model_version="qwen2-vl:feedfacecafe", values=_guess(6.0), trained_on=False)  # not this project's model

    blind = blind_predictions(project=small_project)

    assert set(blind) == {a.pk}
    assert blind[a.pk].model_version == runs[1] and blind[a.pk].values["quality"]["value"] == 2.0


def test_staff_see_model_against_consensus_and_can_switch_the_strategy(small_project, admin_client):
    images = make_images(small_project, 4)
    truth = {image.pk: 2.0 + 2 * i for i, image in enumerate(images)}
    _label(small_project, "r1", truth)
    ModelRun.objects.create(
        project=small_project, model_version="m:1", checkpoint="x", images_used=4, labels_used=4, metrics={"fields": {"quality": {"srcc": 0.8, "plcc": 0.7, "n": 4}}}
    )
    for image in images:
        prediction_store(image=image, model_version="m:1", values=_guess(truth[image.pk] + 0.5))

    [quality] = [c for c in model_vs_consensus(project=small_project, model_version="m:1") if c.key == "quality"]
    assert quality.n == 4 and quality.srcc == pytest.approx(1.0)

    page = admin_client.get(f"/staff/projects/{small_project.slug}/model/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-field="quality"' in html and "SRCC 1.000" in html and "<svg" in html
    assert "anchors raters" in html  # the pre-annotation warning
    assert 'data-curve="quality"' in html  # the learning curve from the held-out figures
    # every photo was labelled before a model guessed it, so there is nothing to judge the model by yet
    assert "none yet: every labelled photo got its labels before a model had guessed it" in html
    assert '<div class="plots" data-model="before-labels">' not in html
    # the queue says why a labelled photo is still in it
    assert "waiting for more raters: 1 of 3 labels" in html

    response = admin_client.post(
        f"/staff/projects/{small_project.slug}/model/",
        {"priority_strategy": "random", "retrain_min_new_labels": 20, "pre_annotation": ""},
    )
    assert response.status_code == 302
    small_project.refresh_from_db()
    assert small_project.priority_strategy == "random" and small_project.retrain_min_new_labels == 20


def test_a_bad_strategy_is_refused_on_the_page_without_a_change(small_project, admin_client):
    response = admin_client.post(f"/staff/projects/{small_project.slug}/model/", {"priority_strategy": "smart", "retrain_min_new_labels": 5})

    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    small_project.refresh_from_db()
    assert small_project.priority_strategy == "active"


def test_raters_cannot_open_the_model_page(small_project, client, rater):
    client.force_login(rater)
    assert client.get(f"/staff/projects/{small_project.slug}/model/").status_code == 302
    assert client.post(f"/staff/projects/{small_project.slug}/model/retrain").status_code == 302
    assert Prediction.objects.count() == 0


def _comparison_cell(html: str, field: str, column: int) -> str:
    row = html[html.index(f'<tr data-field="{field}">') :]
    row = row[: row.index("</tr>")]
    return row.split('<td class="num">')[1 + column].split("</td>")[0]


def test_staff_compare_the_cpu_model_with_the_multimodal_llm_field_by_field(small_project, admin_client):
    images = make_images(small_project, 5)
    truth = {image.pk: 2.0 + 1.5 * i for i, image in enumerate(images)}
    _label(small_project, "r1", truth, {image.pk: "good" for image in images})
    older = ModelRun.objects.create(project=small_project, model_version="cpu-multihead:old", checkpoint="x", images_used=3, labels_used=3)
    ModelRun.objects.filter(pk=older.pk).update(created_at=older.created_at.replace(year=2020))
    ModelRun.objects.create(project=small_project, model_version="cpu-multihead:new", checkpoint="x", images_used=5, labels_used=5)
    mllm = "qwen2-vl:0123456789ab"
    reversed_truth = dict(zip(truth, reversed(list(truth.values()))))
    # Before it had any label the old model ranked the photos right but for the two best, which it swapped.
    blind = dict(zip(truth, [*list(truth.values())[:3], truth[images[4].pk], truth[images[3].pk]]))
    for image in images:
        prediction_store(image=image, model_version="cpu-multihead:old", values=_guess(blind[image.pk]), trained_on=False)
        prediction_store(image=image, model_version="cpu-multihead:new", values=_guess(truth[image.pk] + 0.5), trained_on=True)
        # The MLLM ranks the photos the other way round and calls every one "bad".
        prediction_store(image=image, model_version=mllm, values=_guess(reversed_truth[image.pk], clarity="bad"))

    html = admin_client.get(f"/staff/projects/{small_project.slug}/model/").content.decode()

    # one column per model: the current CPU model, its guesses before the labels, then the MLLM; the replaced
    # training has no column of its own
    assert html.index('data-model="cpu-multihead:new"') < html.index('data-model="before-labels"') < html.index(f'data-model="{mllm}"')
    assert "cpu-multihead:old" not in html
    assert _comparison_cell(html, "quality", 0).startswith("SRCC 1.000 · PLCC 1.000")
    assert _comparison_cell(html, "quality", 1).startswith("SRCC 0.900")  # one swapped pair of five
    assert _comparison_cell(html, "quality", 2).startswith("SRCC -1.000 · PLCC -1.000")
    assert "n=5" in _comparison_cell(html, "quality", 2)
    assert _comparison_cell(html, "clarity", 0).startswith("accuracy 100%")
    assert _comparison_cell(html, "clarity", 2).startswith("accuracy 0%")
    # the same scatter plot for each model, the model's name on its axis
    for version, scorer in (("cpu-multihead:new", "cpu-multihead"), ("before-labels", "cpu-multihead"), (mllm, "qwen2-vl")):
        plots = html[html.index(f'<div class="plots" data-model="{version}">') :]
        plots = plots[: plots.index("</div>")]
        assert 'data-field="quality"' in plots and f'aria-label="{scorer} against' in plots


def test_mllm_predictions_are_shown_before_any_model_is_trained_here(small_project, admin_client):
    images = make_images(small_project, 3)
    truth = {image.pk: 3.0 + 2 * i for i, image in enumerate(images)}
    _label(small_project, "r1", truth)
    for image in images:
        prediction_store(image=image, model_version="qwen2-vl:feedfacecafe", values=_guess(truth[image.pk] - 1))

    html = admin_client.get(f"/staff/projects/{small_project.slug}/model/").content.decode()

    assert "No model trained here yet" in html
    assert _comparison_cell(html, "quality", 0).startswith("SRCC 1.000 · PLCC 1.000")


def test_photos_with_every_label_they_want_go_to_the_end_of_the_order_and_half_labelled_ones_keep_their_place(
    small_project,
):
    small_project.priority_strategy = "uncertainty"
    small_project.save()
    done, half, fresh = make_images(small_project, 3)
    # Labelled while they led the queue: the pick would walk past `done` for every later label.
    Image.objects.filter(pk=done.pk).update(priority=1.9, label_count=3, assigned_count=3)
    Image.objects.filter(pk=half.pk).update(priority=1.8, label_count=1, assigned_count=1)

    priorities_recompute(project=small_project)

    by_priority = list(Image.objects.filter(project=small_project).order_by("-priority").values_list("pk", flat=True))
    assert by_priority == [half.pk, fresh.pk, done.pk]
    assert Image.objects.get(pk=done.pk).priority_reason == "has every label it wants"
