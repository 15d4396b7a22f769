"""The active-learning order, as pure functions: what raters are sent to next."""

from __future__ import annotations

import re

import numpy as np
import pytest

from annotation_site.predictions.priority import Comparable, disagreement_by_field, rank_images


def _clustered_pool(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ten near-identical, very uncertain photos (one dark concert, ten crops) and forty varied photos."""
    rng = np.random.default_rng(seed)
    cluster = rng.normal(5.0, 0.01, size=(10, 8))
    varied = rng.normal(0.0, 1.0, size=(40, 8))
    uncertainty = np.concatenate([np.full(10, 0.9), rng.uniform(0.3, 0.8, 40)])
    return np.vstack([cluster, varied]), uncertainty


def _top(priority: np.ndarray, k: int) -> set[int]:
    return set(np.argsort(-priority, kind="stable")[:k].tolist())


def test_uncertainty_alone_sends_raters_to_the_whole_cluster_of_near_duplicates():
    embeddings, uncertainty = _clustered_pool()

    ranking = rank_images(strategy="uncertainty", uncertainty=uncertainty, embeddings=embeddings)

    assert _top(ranking.priority, 10) == set(range(10))


def test_the_active_batch_takes_a_cluster_of_near_duplicates_once_however_uncertain():
    embeddings, uncertainty = _clustered_pool()

    ranking = rank_images(strategy="active", uncertainty=uncertainty, embeddings=embeddings, batch_size=10)
    top = _top(ranking.priority, 10)

    assert len(top & set(range(10))) == 1  # the cluster is represented, not repeated
    assert all("covering batch" in ranking.reasons[i] for i in top)


def test_after_the_batch_the_queue_follows_the_uncertainty():
    embeddings, uncertainty = _clustered_pool()

    ranking = rank_images(strategy="active", uncertainty=uncertainty, embeddings=embeddings, batch_size=5)
    rest = np.argsort(-ranking.priority, kind="stable")[5:]

    assert np.all(np.diff(uncertainty[rest]) <= 0)
    assert ranking.reasons[rest[0]].startswith("uncertainty ") and "covering batch" not in ranking.reasons[rest[0]]


def test_before_any_model_exists_the_first_batch_spreads_over_the_photos():
    embeddings, _ = _clustered_pool()

    ranking = rank_images(strategy="active", uncertainty=np.full(50, np.nan), embeddings=embeddings, batch_size=10)

    assert len(_top(ranking.priority, 10) & set(range(10))) <= 2


def test_random_is_a_fixed_order_from_its_seed_and_says_it_is_the_control():
    u = np.linspace(0, 1, 30)
    a = rank_images(strategy="random", uncertainty=u, embeddings=None, seed=4)
    b = rank_images(strategy="random", uncertainty=u, embeddings=None, seed=4)
    c = rank_images(strategy="random", uncertainty=u, embeddings=None, seed=5)

    assert np.array_equal(a.priority, b.priority) and not np.array_equal(a.priority, c.priority)
    assert "control" in a.reasons[0]


def test_an_unknown_strategy_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown strategy 'smart'"):
        rank_images(strategy="smart", uncertainty=np.zeros(3), embeddings=None)


def test_disagreement_is_a_share_of_each_fields_scale_so_a_neighbouring_level_is_a_small_one():
    clarity = {"bad": 0, "poor": 1, "fair": 2, "good": 3, "excellent": 4}
    level = {"level": 0, "slightly_tilted": 1, "clearly_tilted": 2, "no_horizon": None}
    fields = [Comparable("quality", span=9.0), Comparable("clarity", ranks=clarity), Comparable("level", ranks=level), Comparable("cluttered")]
    consensus = {"quality": 4.0, "clarity": "good", "level": "level", "cluttered": "yes"}

    def parts(**guess):  # type: ignore[no-untyped-def]
        return disagreement_by_field(predicted={**consensus, **guess}, consensus=consensus, fields=fields)

    assert parts() == {"quality": 0.0, "clarity": 0.0, "level": 0.0, "cluttered": 0.0}
    assert parts(quality=8.5)["quality"] == pytest.approx(0.5)
    assert parts(quality=40.0)["quality"] == 1.0
    assert parts(clarity="excellent")["clarity"] == pytest.approx(0.25)
    assert parts(clarity="bad")["clarity"] == pytest.approx(0.75)
    assert parts(level="clearly_tilted")["level"] == 1.0
    assert parts(level="no_horizon")["level"] == 1.0  # off the scale: no distance to speak of
    assert parts(cluttered="no")["cluttered"] == 1.0
    assert disagreement_by_field(predicted={"quality": None}, consensus=consensus, fields=fields) == {}


def _dense_groups_and_outliers(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four dense groups of twenty similar photos and four odd ones out, far from everything."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(4, 6))
    groups = np.vstack([c + rng.normal(0.0, 0.5, size=(20, 6)) for c in centres])
    outliers = rng.normal(0.0, 3.0, size=(4, 6)) + np.array([25.0, -25.0, 25.0, -25.0, 0.0, 0.0])[:, None].T * np.array([[1], [-1], [1], [-1]])
    return np.vstack([groups, outliers]), rng.uniform(0.4, 0.6, 84)


def test_the_first_batch_before_any_model_stands_for_common_photos_not_odd_ones_out():
    embeddings, _ = _dense_groups_and_outliers()

    ranking = rank_images(strategy="active", uncertainty=np.full(84, np.nan), embeddings=embeddings, batch_size=4)
    top = _top(ranking.priority, 4)

    assert not top & set(range(80, 84))  # k-center greedy would have taken exactly these four
    assert sorted(i // 20 for i in top) == [0, 1, 2, 3]  # one per group of similar photos
    assert all(ranking.reasons[i].startswith("no model yet; covering batch") for i in top)


def test_the_batch_goes_first_to_the_group_of_photos_no_labelled_photo_is_near():
    embeddings, uncertainty = _dense_groups_and_outliers()
    labelled = np.vstack([embeddings[g * 20 : g * 20 + 20].mean(axis=0) for g in (0, 2, 3)])  # three groups have labels

    ranking = rank_images(strategy="active", uncertainty=uncertainty, embeddings=embeddings, labelled_embeddings=labelled, batch_size=4)
    first = int(np.argmax(ranking.priority))

    assert 20 <= first < 40
    assert re.search(r"covering batch #1, nearest photo for 2[0-4] unlabelled photos", ranking.reasons[first])  # its group


def test_without_the_labelled_photos_the_same_pool_starts_elsewhere():
    embeddings, uncertainty = _dense_groups_and_outliers()
    labelled = np.vstack([embeddings[g * 20 : g * 20 + 20].mean(axis=0) for g in (1, 2, 3)])

    first_without_group_0 = int(np.argmax(rank_images(strategy="active", uncertainty=uncertainty, embeddings=embeddings, labelled_embeddings=labelled).priority))

    assert first_without_group_0 < 20


def test_labelled_embeddings_of_another_width_are_refused_by_shape():
    with pytest.raises(ValueError, match=r"labelled embeddings of shape \(2, 3\) for embeddings of width 2"):
        rank_images(strategy="active", uncertainty=np.zeros(3), embeddings=np.zeros((3, 2)), labelled_embeddings=np.zeros((2, 3)))


def test_a_pool_of_identical_photos_still_fills_the_batch_by_uncertainty():
    ranking = rank_images(strategy="active", uncertainty=np.linspace(0.1, 0.5, 5), embeddings=np.ones((5, 3)), batch_size=3)

    assert (ranking.priority > 1.0).sum() == 3 and _top(ranking.priority, 3) >= {4}


def test_a_pool_larger_than_the_coverage_sample_is_ordered_too(monkeypatch):
    from annotation_site.predictions import priority

    monkeypatch.setattr(priority, "COVER_SAMPLE", 60)
    embeddings, uncertainty = _dense_groups_and_outliers()

    ranking = rank_images(strategy="active", uncertainty=np.full(84, np.nan), embeddings=embeddings, batch_size=4)

    assert sorted(i // 20 for i in _top(ranking.priority, 4)) == [0, 1, 2, 3]


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        rank_images(strategy="active", uncertainty=np.zeros(3), embeddings=np.zeros((3, 2)), batch_size=0)
