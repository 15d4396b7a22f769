"""The P.910 Annex E / sureal maximum-likelihood subjective model: recovery of simulated truth and equality with
sureal when it is installed."""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings

import numpy as np
import pytest

from annotation_site.statistics import MleDegenerateError, mos_table, subjective_mle
from tests.annotation_site.statistics.data import sureal_reader

nan = np.nan


def simulate(
    seed: int,
    *,
    images: int = 200,
    raters: int = 20,
    missing: float = 0.0,
    contents: int | None = None,
) -> dict[str, np.ndarray]:
    """Ratings drawn from the model itself: X = x_e + b_s + N(0, v_s^2 + a_c(e)^2)."""
    rng = np.random.default_rng(seed)
    quality = rng.uniform(1.0, 5.0, images)
    bias = rng.normal(0.0, 0.4, raters)
    bias -= bias.mean()
    inconsistency = rng.uniform(0.2, 0.8, raters)
    if contents is None:
        content_ids = None
        ambiguity = np.zeros(images)
    else:
        content_ids = np.repeat(np.arange(contents), images // contents)
        ambiguity = rng.uniform(0.1, 0.6, contents)[content_ids]
    sd = np.sqrt(inconsistency[:, None] ** 2 + ambiguity[None, :] ** 2)
    ratings = quality[None, :] + bias[:, None] + rng.normal(0.0, 1.0, (raters, images)) * sd
    ratings[rng.random(ratings.shape) < missing] = nan
    return dict(
        ratings=ratings,
        quality=quality,
        bias=bias,
        inconsistency=inconsistency,
        ambiguity=ambiguity,
        content_ids=content_ids,
    )


def run_sureal(model_class: type, ratings: np.ndarray, content_ids: np.ndarray | None = None) -> dict:
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sureal's own divide-by-zero warnings at convergence
        return model_class(sureal_reader(ratings, content_ids)).run_modeling()


def test_mle_recovers_the_true_quality_bias_and_inconsistency_of_simulated_raters() -> None:
    truth = simulate(0)  # 200 images x 20 raters
    result = subjective_mle(truth["ratings"])
    assert result.converged
    assert np.corrcoef(result.quality, truth["quality"])[0, 1] > 0.99
    # the bias of a rater is estimated from 200 ratings of noise SD <= 0.8: standard error <= 0.06
    assert np.abs(result.bias - truth["bias"]).max() < 0.15
    assert np.sqrt(np.mean((result.bias - truth["bias"]) ** 2)) < 0.06
    assert np.abs(result.inconsistency - truth["inconsistency"]).max() < 0.1
    assert np.isnan(result.ambiguity).all()  # not part of the content-oblivious model


def test_mle_recovers_the_truth_with_missing_ratings() -> None:
    truth = simulate(1, missing=0.4)
    result = subjective_mle(truth["ratings"])
    assert np.corrcoef(result.quality, truth["quality"])[0, 1] > 0.98
    assert np.abs(result.bias - truth["bias"]).max() < 0.2


def test_mle_quality_is_closer_to_the_truth_than_the_mos_when_some_raters_are_unreliable() -> None:
    truth = simulate(2)
    ratings = truth["ratings"].copy()
    rng = np.random.default_rng(3)
    ratings[:3] = truth["quality"][None, :] + rng.normal(0.0, 3.0, (3, ratings.shape[1]))  # three noisy raters
    result = subjective_mle(ratings)
    mos = mos_table(ratings).mean
    mle_error = np.sqrt(np.mean((result.quality - truth["quality"]) ** 2))
    mos_error = np.sqrt(np.mean((mos - truth["quality"]) ** 2))
    assert mle_error < 0.8 * mos_error
    assert (result.inconsistency[:3] > 2.5).all()  # the noisy raters are found, and weighted down


def test_mle_intervals_contain_the_truth_about_95_percent_of_the_time() -> None:
    truth = simulate(4, images=400)
    result = subjective_mle(truth["ratings"])
    covered = np.abs(result.quality - truth["quality"]) <= result.quality_ci95
    assert 0.9 < covered.mean() <= 1.0


def test_mle_with_contents_estimates_one_ambiguity_per_content() -> None:
    truth = simulate(5, images=300, raters=25, contents=15)
    result = subjective_mle(truth["ratings"], content_ids=truth["content_ids"])
    assert result.converged
    assert np.corrcoef(result.quality, truth["quality"])[0, 1] > 0.99
    per_content = result.ambiguity.reshape(15, 20)
    assert (per_content == per_content[:, :1]).all()  # one value per content
    assert np.corrcoef(per_content[:, 0], truth["ambiguity"].reshape(15, 20)[:, 0])[0, 1] > 0.6


def test_raters_with_a_single_rating_and_unrated_images_are_left_out_and_reported_as_nan() -> None:
    truth = simulate(6, images=50, raters=20)
    ratings = np.vstack([truth["ratings"], np.full((1, 50), nan)])
    ratings[20, 7] = 3.0  # a rater with one rating
    ratings[:, 20] = nan  # an image nobody rated
    result = subjective_mle(ratings)
    assert np.isnan(result.bias[20]) and np.isnan(result.inconsistency[20])
    assert np.isnan(result.quality[20]) and np.isnan(result.quality_ci95[20])
    assert not np.isnan(np.delete(result.quality, 20)).any()
    assert np.nansum(result.bias) == pytest.approx(0.0, abs=1e-12)  # mean bias fixed at zero


def test_one_ambiguity_per_image_is_refused_by_divergence_like_sureal() -> None:
    # With every image its own content the likelihood is unbounded; the iteration heads for the degenerate
    # point and is stopped with an error instead of returning numbers.
    truth = simulate(7, contents=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(MleDegenerateError):
            subjective_mle(truth["ratings"], content_ids=np.arange(200))


@pytest.mark.parametrize("seed", range(3))
def test_a_fit_that_collapses_onto_one_rater_raises_instead_of_returning_numbers(seed: int) -> None:
    # 5 raters x 100 images drawn from the model itself: the iteration walks to v_s -> 0 for one rater.
    truth = simulate(seed, images=100, raters=5)
    with pytest.raises(MleDegenerateError):
        subjective_mle(truth["ratings"])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        subjective_mle(np.ones(4))
    with pytest.raises(ValueError):
        subjective_mle(np.ones((1, 5)))
    with pytest.raises(ValueError, match="content_ids"):
        subjective_mle(np.ones((3, 5)), content_ids=np.arange(4))


# ---------------------------------------------------------------------------------------------------------------
# against sureal, the reference implementation (pinned in requirements.txt)
# ---------------------------------------------------------------------------------------------------------------


def test_content_oblivious_mle_matches_sureal_mle_co_to_1e_9() -> None:
    subjective_model = importlib.import_module("sureal.subjective_model")
    truth = simulate(8, missing=0.2)
    ours = subjective_mle(truth["ratings"])
    theirs = run_sureal(subjective_model.MaximumLikelihoodEstimationModelContentOblivious, truth["ratings"])
    assert ours.iterations == theirs["num_iter"]
    np.testing.assert_allclose(ours.quality, theirs["quality_scores"], atol=1e-9)
    np.testing.assert_allclose(ours.quality_ci95, theirs["quality_scores_ci95"][0], atol=1e-9)
    np.testing.assert_allclose(ours.bias, theirs["observer_bias"], atol=1e-9)
    np.testing.assert_allclose(ours.inconsistency, theirs["observer_inconsistency"], atol=1e-9)


def test_mle_with_contents_matches_sureal_mle_to_1e_9() -> None:
    subjective_model = importlib.import_module("sureal.subjective_model")
    truth = simulate(9, contents=20, missing=0.2)
    ours = subjective_mle(truth["ratings"], content_ids=truth["content_ids"])
    theirs = run_sureal(
        subjective_model.MaximumLikelihoodEstimationModel, truth["ratings"], truth["content_ids"]
    )
    assert ours.iterations == theirs["num_iter"]
    np.testing.assert_allclose(ours.quality, theirs["quality_scores"], atol=1e-9)
    np.testing.assert_allclose(ours.bias, theirs["observer_bias"], atol=1e-9)
    np.testing.assert_allclose(ours.inconsistency, theirs["observer_inconsistency"], atol=1e-9)
    np.testing.assert_allclose(
        ours.ambiguity, np.asarray(theirs["content_ambiguity"])[truth["content_ids"]], atol=1e-9
    )


def test_content_oblivious_mle_reaches_the_same_maximum_as_sureal_p910_alternating_projection() -> None:
    sureal = importlib.import_module("sureal")
    truth = simulate(10, missing=0.2)
    ours = subjective_mle(truth["ratings"])
    theirs = run_sureal(sureal.P910AnnexEModel, truth["ratings"])
    np.testing.assert_allclose(ours.quality, theirs["quality_scores"], atol=1e-4)
    np.testing.assert_allclose(ours.bias, theirs["observer_bias"], atol=1e-4)
    np.testing.assert_allclose(ours.inconsistency, theirs["observer_inconsistency"], atol=1e-4)


def test_sureal_returns_the_collapsed_fit_silently_where_we_raise() -> None:
    sureal = importlib.import_module("sureal")
    subjective_model = importlib.import_module("sureal.subjective_model")
    truth = simulate(0, images=100, raters=5)
    newton = run_sureal(subjective_model.MaximumLikelihoodEstimationModelContentOblivious, truth["ratings"])
    projection = run_sureal(sureal.P910AnnexEModel, truth["ratings"])
    assert min(newton["observer_inconsistency"]) < 1e-6
    assert min(projection["observer_inconsistency"]) < 1e-6
    assert truth["inconsistency"].min() > 0.2


def test_sureal_mle_also_fails_with_one_content_per_image() -> None:
    subjective_model = importlib.import_module("sureal.subjective_model")
    truth = simulate(7)
    with pytest.raises(ValueError, match="infs or NaNs"):
        run_sureal(subjective_model.MaximumLikelihoodEstimationModel, truth["ratings"], np.arange(200))
