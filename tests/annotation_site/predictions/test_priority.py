"""The active-learning order, as pure functions: what raters are sent to next."""

from __future__ import annotations

import numpy as np
import pytest

from annotation_site.predictions.priority import disagreement, rank_images


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


def test_the_active_strategy_keeps_the_first_batch_diverse_while_still_preferring_uncertain_images():
    embeddings, uncertainty = _clustered_pool()

    ranking = rank_images(strategy="active", uncertainty=uncertainty, embeddings=embeddings, batch_size=10)
    top = _top(ranking.priority, 10)

    assert len(top & set(range(10))) <= 2  # the cluster is represented, not repeated
    varied_in_top = [uncertainty[i] for i in top if i >= 10]
    assert np.mean(varied_in_top) > np.mean(uncertainty[10:])  # and the rest lean to the uncertain ones
    assert all("diverse batch" in ranking.reasons[i] or "first of the diverse batch" in ranking.reasons[i] for i in top)


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


def test_disagreement_is_the_share_of_the_scale_and_counts_a_different_choice_fully():
    fields = [("quality", "score", 9.0), ("clarity", "choice", 1.0)]

    assert disagreement(predicted={"quality": 8.5, "clarity": "good"}, consensus={"quality": 4.0, "clarity": "good"}, fields=fields) == pytest.approx(0.25)
    assert disagreement(predicted={"quality": 4.0, "clarity": "bad"}, consensus={"quality": 4.0, "clarity": "good"}, fields=fields) == pytest.approx(0.5)
    assert disagreement(predicted={}, consensus={"quality": 4.0}, fields=fields) is None


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
    assert all(ranking.reasons[i].startswith("no model yet; diverse batch") for i in top)


def test_the_batch_leads_with_the_largest_group_the_model_is_unsure_about():
    embeddings, uncertainty = _dense_groups_and_outliers()
    uncertainty[20:40] = 0.9  # the model is least sure about the second group

    ranking = rank_images(strategy="active", uncertainty=uncertainty, embeddings=embeddings, batch_size=4)
    order = np.argsort(-ranking.priority, kind="stable")

    assert 20 <= order[0] < 40
    assert "diverse batch #1" in ranking.reasons[order[0]] and "similar uncertain images" in ranking.reasons[order[0]]
    assert not set(order[:4].tolist()) & set(range(80, 84))


def test_a_pool_of_identical_photos_still_fills_the_batch_by_uncertainty():
    ranking = rank_images(strategy="active", uncertainty=np.linspace(0.1, 0.5, 5), embeddings=np.ones((5, 3)), batch_size=3)

    assert (ranking.priority > 1.0).sum() == 3 and _top(ranking.priority, 3) >= {4}


def test_a_pool_larger_than_the_kmeans_sample_is_ordered_too(monkeypatch):
    from annotation_site.predictions import priority

    monkeypatch.setattr(priority, "KMEANS_SAMPLE", 30)
    embeddings, uncertainty = _dense_groups_and_outliers()

    ranking = rank_images(strategy="active", uncertainty=np.full(84, np.nan), embeddings=embeddings, batch_size=4)

    assert sorted(i // 20 for i in _top(ranking.priority, 4)) == [0, 1, 2, 3]


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        rank_images(strategy="active", uncertainty=np.zeros(3), embeddings=np.zeros((3, 2)), batch_size=0)
