"""Pairwise comparisons: a known scale is recovered, Bradley-Terry equals choix, intervals cover, MOS and
comparisons share one scale, Compare2Score's levels and anchors, and the pair selectors."""

from __future__ import annotations

import choix
import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_ndtr, ndtr
from scipy.stats import spearmanr

from annotation_site.statistics import pairs as pairs_module
from annotation_site.statistics import (
    COMPARISON_LEVELS,
    PairScaleError,
    anchor_pairs,
    anchor_select,
    compare2score_levels,
    expected_information_gain,
    joint_scale,
    level_comparison,
    pair_scale,
    select_pairs_active,
    select_pairs_random,
    training_pairs,
)

PREFERENCE = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


def five_level_answers(truth: np.ndarray, count: int, seed: int, noise: float = 1.0) -> tuple[np.ndarray, ...]:
    """Raters shown random (first, second) pairs answer at five levels from a noisy difference."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, len(truth), count)
    second = (first + rng.integers(1, len(truth), count)) % len(truth)
    level = np.digitize(truth[second] - truth[first] + rng.normal(0, noise, count), [-1.5, -0.5, 0.5, 1.5])
    # the level describes the second photo, so it is the preference for second over first
    return second, first, PREFERENCE[level]


def hard_wins(truth: np.ndarray, count: int, seed: int, link: str) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        a, b = rng.choice(len(truth), size=2, replace=False)
        d = truth[a] - truth[b]
        p = 1 / (1 + np.exp(-d)) if link == "logistic" else float(ndtr(d))
        out.append((a, b) if rng.random() < p else (b, a))
    return out


def test_a_known_scale_is_recovered_from_five_level_answers_with_srcc_above_095():
    truth = np.random.default_rng(7).normal(0, 1.5, 120)
    i, j, p = five_level_answers(truth, 1800, seed=8)  # 15 comparisons per photo

    scale = pair_scale(120, i, j, p)

    assert spearmanr(scale.score, truth)[0] >= 0.95
    assert abs(scale.score.mean()) < 1e-9
    assert scale.n_comparisons.sum() == 2 * 1800
    assert scale.ci_method == "laplace" and np.all(scale.ci_low < scale.score) and np.all(scale.score < scale.ci_high)


def test_bradley_terry_maximum_likelihood_equals_choix_on_hard_wins():
    truth = np.random.default_rng(3).normal(0, 1.0, 40)
    wins = hard_wins(truth, 900, seed=4, link="logistic")
    winner = np.array([w for w, _ in wins])
    loser = np.array([loser for _, loser in wins])

    ours = pair_scale(40, winner, loser, np.ones(len(wins)), model="bradley_terry", prior_sd=None)

    spectral = choix.ilsr_pairwise(40, wins, alpha=0.0, tol=1e-12, max_iter=10000)
    optimised = choix.opt_pairwise(40, wins, alpha=0.0, tol=1e-12)
    assert np.max(np.abs(ours.score - spectral)) < 1e-8
    assert np.max(np.abs(ours.score - optimised)) < 1e-6


def test_thurstone_maximum_likelihood_equals_a_generic_optimiser_on_soft_answers():
    truth = np.random.default_rng(11).normal(0, 1.0, 12)
    i, j, p = five_level_answers(truth, 300, seed=12)

    ours = pair_scale(12, i, j, p, prior_sd=None)

    def negative(s: np.ndarray) -> float:
        full = np.append(s, -s.sum())  # sum-zero, as ours
        d = full[i] - full[j]
        return -float(np.sum(p * log_ndtr(d) + (1 - p) * log_ndtr(-d)))

    reference = minimize(negative, np.zeros(11), method="BFGS", options={"gtol": 1e-10}).x
    assert np.max(np.abs(ours.score - np.append(reference, -reference.sum()))) < 1e-5


def test_the_map_with_a_prior_sits_where_the_log_posterior_is_flat():
    truth = np.random.default_rng(5).normal(0, 1.0, 15)
    i, j, p = five_level_answers(truth, 60, seed=6)
    scale = pair_scale(15, i, j, p, prior_sd=0.8, model="bradley_terry")

    def log_posterior(s: np.ndarray) -> float:
        d = s[i] - s[j]
        return float(np.sum(-p * np.log1p(np.exp(-d)) - (1 - p) * np.log1p(np.exp(d))) - np.sum(s**2) / (2 * 0.8**2))

    best = log_posterior(scale.score)
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert log_posterior(scale.score + 1e-3 * rng.normal(size=15)) < best


def test_95_percent_laplace_intervals_cover_the_truth_about_95_percent_of_the_time():
    covered = []
    for seed in range(40):
        truth = np.random.default_rng(seed).normal(0, 1.0, 20)  # drawn from the prior the fit assumes
        wins = hard_wins(truth, 100, seed=seed + 100, link="probit")
        winner = np.array([w for w, _ in wins])
        loser = np.array([loser for _, loser in wins])
        scale = pair_scale(20, winner, loser, np.ones(100), prior_sd=1.0)
        covered.extend((scale.ci_low <= truth) & (truth <= scale.ci_high))
    assert 0.92 <= np.mean(covered) <= 0.98


def test_an_answer_level_prefers_the_second_photo_as_compare2score_words_it():
    assert level_comparison(3, 8, "superior") == (8, 3, 1.0)
    assert level_comparison(3, 8, "inferior") == (8, 3, 0.0)
    i, j, p = zip(*[level_comparison(0, 1, "better")] * 5, *[level_comparison(1, 2, "similar")] * 5)
    scale = pair_scale(3, i, j, p)
    assert scale.score[1] > scale.score[0]
    with pytest.raises(ValueError, match="level must be one of inferior, worse, similar, better, superior"):
        level_comparison(0, 1, "much better")


def test_maximum_likelihood_refuses_an_item_that_never_loses():
    with pytest.raises(PairScaleError, match="never lose"):
        pair_scale(3, [0, 0, 1, 2], [1, 2, 2, 1], [1, 1, 0.5, 0.5], prior_sd=None)
    with pytest.raises(PairScaleError, match="1 item\\(s\\) have no comparison"):
        pair_scale(3, [0], [1], [0.5], prior_sd=None)
    # a prior gives every item a place, even one never compared
    scale = pair_scale(3, [0, 0], [1, 2], [1, 1])
    assert scale.score[0] > 0 and scale.score[1] == pytest.approx(scale.score[2])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"i": [0, 1], "j": [1], "p": [0.5]}, "differ in length"),
        ({"i": [0], "j": [0], "p": [0.5]}, "compared with itself"),
        ({"i": [0], "j": [5], "p": [0.5]}, "must lie in \\[0, 3\\)"),
        ({"i": [0], "j": [1], "p": [1.5]}, "preferences in \\[0, 1\\]"),
        ({"i": [0.5], "j": [1], "p": [0.5]}, "integer item indices"),
        ({"i": [0], "j": [1], "p": [0.5], "model": "elo"}, "model must be one of"),
        ({"i": [0], "j": [1], "p": [0.5], "prior_sd": 0}, "prior_sd must be a positive number"),
    ],
)
def test_bad_input_is_refused_naming_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pair_scale(3, **kwargs)


def test_many_items_use_the_sparse_path_and_agree_with_the_dense_one(monkeypatch):
    truth = np.random.default_rng(1).normal(0, 1.0, 50)
    i, j, p = five_level_answers(truth, 400, seed=2)
    dense = pair_scale(50, i, j, p)
    monkeypatch.setattr(pairs_module, "DENSE_MAX", 10)
    sparse = pair_scale(50, i, j, p)
    assert sparse.ci_method == "laplace-diagonal" and sparse.covariance is None
    assert np.max(np.abs(sparse.score - dense.score)) < 1e-6
    assert np.all(sparse.sd <= dense.sd + 1e-12)  # 1/H_ii understates, never overstates


def test_mos_and_comparisons_share_one_scale_and_mos_only_photos_take_their_place():
    rng = np.random.default_rng(21)
    truth = rng.normal(0, 1.0, 80)
    mos = 3 + 0.8 * truth + rng.normal(0, 0.15, 80)
    mos[40:60] = np.nan  # photos 40..59 only compared
    i, j, p = five_level_answers(truth[:60], 240, seed=22)  # photos 60..79 only rated

    joint = joint_scale(80, i, j, p, mos=mos, mos_se=np.full(80, 0.15))

    assert joint.slope > 0 and joint.n_mos == 60
    assert spearmanr(joint.score, truth)[0] >= 0.9
    comparisons_only = pair_scale(80, i, j, p).score[:60]
    assert spearmanr(joint.score[:60], truth[:60])[0] > spearmanr(comparisons_only, truth[:60])[0]
    rated = np.r_[0:40, 60:80]
    assert np.max(np.abs(joint.score[rated] - mos[rated])) < 1.0  # in MOS units
    assert np.all(joint.ci_low < joint.score) and np.all(joint.score < joint.ci_high)


def test_mos_that_contradicts_the_comparisons_is_refused():
    truth = np.random.default_rng(2).normal(0, 1.0, 30)
    i, j, p = five_level_answers(truth, 300, seed=3)
    with pytest.raises(PairScaleError, match="opposite directions"):
        joint_scale(30, i, j, p, mos=3 - truth, mos_se=np.full(30, 0.1))
    with pytest.raises(PairScaleError, match="at least 3"):
        joint_scale(30, i, j, p, mos=np.where(np.arange(30) < 2, 3.0, np.nan), mos_se=np.full(30, 0.1))


def test_compare2score_levels_follow_the_mos_difference_against_the_combined_sd():
    # first MOS 3, both sd 0.3: combined sd 0.3 * sqrt(2) = 0.424; the level describes the second photo
    sigma = 0.3 * np.sqrt(2)
    second = 3 - np.array([2.5, 1.5, 0.99, 0.0, -1.01, -1.5, -2.5]) * sigma
    levels = [COMPARISON_LEVELS[k] for k in compare2score_levels(3.0, 0.3, second, 0.3)]
    assert levels == ["inferior", "worse", "similar", "similar", "better", "better", "superior"]


def test_training_pairs_are_distinct_labelled_by_the_rule_and_reproducible():
    rng = np.random.default_rng(0)
    mos = rng.uniform(1, 5, 30)
    sd = rng.uniform(0.2, 0.8, 30)
    made = training_pairs(mos, sd, n_pairs=200, seed=4)
    assert len({(t.first, t.second) for t in made}) == 200
    for t in made:
        assert t.level == COMPARISON_LEVELS[int(compare2score_levels(mos[t.first], sd[t.first], mos[t.second], sd[t.second]))]
    assert made == training_pairs(mos, sd, n_pairs=200, seed=4)
    assert len(training_pairs(mos, sd, n_pairs=30 * 29, seed=1)) == 870
    with pytest.raises(ValueError, match="n_pairs must lie in"):
        training_pairs(mos, sd, n_pairs=871)


def test_anchors_are_the_least_variable_photo_of_each_mos_interval():
    mos = np.array([1.0, 1.2, 1.9, 2.5, 3.5, 3.6, 4.1, 5.0, 4.9, np.nan])
    variance = np.array([0.5, 0.2, 0.3, 0.4, 0.9, 0.1, 0.2, 0.6, 0.3, 0.0])
    # intervals of width 0.8 from 1.0: [1, 1.8) [1.8, 2.6) [2.6, 3.4) [3.4, 4.2) [4.2, 5]
    assert anchor_select(mos, variance) == [1, 2, 5, 8]  # [2.6, 3.4) is empty; the nan is never chosen
    pairs = anchor_pairs(10, [1, 2, 5, 8])
    assert len(pairs) == 6 + 6 * 4 and len(set(pairs)) == len(pairs) and all(u < v for u, v in pairs)


def test_information_gain_is_highest_for_close_uncertain_pairs():
    gain = expected_information_gain(np.array([0.0, 1.0, 3.0, 0.0]), np.array([1.0, 1.0, 1.0, 0.1]))
    assert gain[0] > gain[1] > gain[2] > 0 and gain[0] > gain[3]


def test_active_batches_connect_every_photo_or_form_a_matching_of_informative_pairs():
    truth = np.random.default_rng(4).normal(0, 2.0, 30)
    i, j, p = five_level_answers(truth, 90, seed=5)
    scale = pair_scale(30, i, j, p)

    tree = select_pairs_active(scale, batch="mst")
    assert len(tree) == 29 and len({x for pair in tree for x in pair}) == 30

    greedy = select_pairs_active(scale, batch="greedy", size=8, exclude={(0, 1)})
    flat = [x for pair in greedy for x in pair]
    assert len(greedy) == 8 and len(set(flat)) == 16 and (0, 1) not in greedy
    chosen_gaps = np.mean([abs(scale.score[u] - scale.score[v]) for u, v in greedy])
    assert chosen_gaps < np.mean(np.abs(scale.score[:, None] - scale.score[None, :]))


def test_random_pairs_take_the_least_compared_photos_first_and_avoid_repeats():
    counts = np.array([5, 0, 5, 0, 5, 0])
    chosen = select_pairs_random(counts, exclude={(1, 3)}, seed=3)
    assert len(chosen) == 3 and (1, 3) not in chosen
    assert {x for pair in chosen for x in pair} == set(range(6))
    assert select_pairs_random(counts, eligible=[1, 3], exclude={(1, 3)}) == []
