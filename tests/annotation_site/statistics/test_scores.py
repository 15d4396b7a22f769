"""MOS table, z-score MOS, split-half reliability and the per-rater table."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from annotation_site.statistics import mos_table, rater_table, rater_zscores, split_half, zscore_mos

nan = np.nan


def simulated(
    seed: int, *, raters: int = 20, images: int = 400, noise: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    quality = rng.normal(0.0, 1.0, images)
    return quality, quality[None, :] + rng.normal(0.0, noise, (raters, images))


# ---------------------------------------------------------------------------------------------------------------
# mos_table
# ---------------------------------------------------------------------------------------------------------------


def test_mos_table_gives_count_mean_sample_sd_and_a_student_t_interval_per_image() -> None:
    x = np.array([[1.0, 4.0, nan, nan], [2.0, 5.0, 3.0, nan], [3.0, nan, nan, nan], [4.0, 3.0, nan, nan]])
    table = mos_table(x)
    assert table.n.tolist() == [4, 3, 1, 0]
    np.testing.assert_allclose(table.mean[:3], [2.5, 4.0, 3.0])
    assert np.isnan(table.mean[3])
    np.testing.assert_allclose(table.sd[:2], [np.std([1, 2, 3, 4], ddof=1), 1.0])
    assert np.isnan(table.sd[2:]).all() and np.isnan(table.ci95[2:]).all()
    expected = stats.t.ppf(0.975, [3, 2]) * table.sd[:2] / np.sqrt([4, 3])
    np.testing.assert_allclose(table.ci95[:2], expected)


def test_mos_table_raises_no_warnings_on_unrated_images() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = mos_table(np.full((3, 2), nan))
    assert table.n.tolist() == [0, 0]


def test_the_student_t_interval_approaches_1_96_sd_over_root_n_for_many_ratings() -> None:
    _, x = simulated(0, raters=2000, images=3)
    table = mos_table(x)
    np.testing.assert_allclose(table.ci95, 1.96 * table.sd / np.sqrt(2000), rtol=2e-3)


# ---------------------------------------------------------------------------------------------------------------
# zscore_mos
# ---------------------------------------------------------------------------------------------------------------


def test_z_scores_remove_each_raters_offset_and_scale() -> None:
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 3.0])
    x = np.vstack([base, base + 2.0, 3.0 * base - 1.0])  # same judgement, different use of the scale
    z = rater_zscores(x)
    np.testing.assert_allclose(z[0], z[1])
    np.testing.assert_allclose(z[0], z[2])
    np.testing.assert_allclose(z[0], (base - base.mean()) / base.std(ddof=1))


def test_a_rater_without_spread_contributes_no_z_scores() -> None:
    x = np.array([[1.0, 2.0, 3.0], [4.0, 4.0, 4.0], [5.0, nan, nan]])
    z = rater_zscores(x)
    assert np.isnan(z[1]).all() and np.isnan(z[2]).all()
    assert not np.isnan(z[0]).any()


def test_zscore_mos_maps_z_minus_3_to_plus_3_linearly_onto_the_scale_and_clips() -> None:
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    x = np.vstack([base, base + 1.0])
    result = zscore_mos(x, low=1.0, high=5.0)
    z = (base - base.mean()) / base.std(ddof=1)
    np.testing.assert_allclose(result.z, z)
    np.testing.assert_allclose(result.scaled, 1.0 + (z + 3.0) * 4.0 / 6.0)
    assert result.n.tolist() == [2] * 5
    outlier = np.hstack([np.zeros(50), [100.0]])[None, :].repeat(2, axis=0)  # z of the last image is ~7
    assert zscore_mos(outlier, low=0.0, high=100.0).scaled[-1] == 100.0


def test_zscore_mos_minmax_puts_the_extremes_of_the_release_on_low_and_high() -> None:
    _, x = simulated(1, raters=6, images=50)
    result = zscore_mos(x, low=0.0, high=100.0, method="minmax")
    assert np.nanmin(result.scaled) == pytest.approx(0.0)
    assert np.nanmax(result.scaled) == pytest.approx(100.0)
    assert stats.spearmanr(result.scaled, result.z).statistic == pytest.approx(1.0)


def test_zscore_mos_refuses_an_empty_range() -> None:
    with pytest.raises(ValueError):
        zscore_mos(np.ones((2, 2)), low=5.0, high=1.0)


# ---------------------------------------------------------------------------------------------------------------
# split_half
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("noise", [0.5, 1.0, 2.0])
def test_split_half_with_spearman_brown_estimates_the_reliability_of_the_full_mos(noise: float) -> None:
    # True quality variance 1, rating noise variance noise^2, k raters: the full MOS has reliability
    # 1 / (1 + noise^2 / k), which is what the stepped-up split-half correlation estimates.
    raters = 10
    _, x = simulated(2, raters=raters, images=2000, noise=noise)
    result = split_half(x, splits=20)
    expected = 1.0 / (1.0 + noise**2 / raters)
    assert result.plcc == pytest.approx(expected, abs=0.015)
    assert result.srcc == pytest.approx(expected, abs=0.03)
    assert (result.images, result.splits) == (2000, 20)


def test_split_half_of_pure_noise_is_near_zero() -> None:
    rng = np.random.default_rng(3)
    result = split_half(rng.normal(size=(10, 2000)), splits=10)
    assert abs(result.plcc) < 0.1 and abs(result.srcc) < 0.1


def test_split_half_is_reproducible_and_works_with_missing_ratings_and_odd_counts() -> None:
    _, x = simulated(4, raters=15, images=300)
    rng = np.random.default_rng(5)
    x[rng.random(x.shape) < 0.5] = nan  # 0..15 ratings per image, many odd
    x[:, :3] = nan
    x[0, 3] = 1.0  # an image with one rating cannot be split
    x[1:, 3] = nan
    a = split_half(x, seed=9, splits=30)
    assert a == split_half(x, seed=9, splits=30)
    assert a != split_half(x, seed=10, splits=30)
    assert a.images == int(((~np.isnan(x)).sum(axis=0) >= 2).sum())
    assert 0.5 < a.plcc < 1.0


def test_split_half_needs_three_splittable_images() -> None:
    result = split_half(np.array([[1.0, 2.0], [1.5, 2.5]]))
    assert np.isnan(result.plcc) and np.isnan(result.srcc)


def test_split_half_is_undefined_rather_than_an_error_when_a_split_correlates_at_minus_one() -> None:
    # Two ratings per image, mirrored: whichever rating lands in which half, the halves' MOS correlate at exactly
    # -1, where Spearman-Brown 2r/(1+r) divides by zero.
    x = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    result = split_half(x, splits=5)
    assert np.isnan(result.plcc) and np.isnan(result.srcc)
    assert (result.images, result.splits) == (3, 5)


def _split_half_split_by_split(x: np.ndarray, seed: int, splits: int) -> tuple[float, float]:
    """The definition, one split at a time: random keys per cell, the smallest half of each image's keys in A."""
    mask = ~np.isnan(x)
    keep = mask.sum(axis=0) >= 2
    x, mask = x[:, keep], mask[:, keep]
    n = mask.sum(axis=0)
    rng = np.random.default_rng(seed)
    filled = np.where(mask, x, 0.0)
    srcc, plcc = [], []
    for _ in range(splits):
        keys = np.where(mask, rng.random(x.shape), np.inf)
        rank = np.argsort(np.argsort(keys, axis=0), axis=0)
        size_a = n // 2 + ((n % 2 == 1) & (rng.random(n.shape) < 0.5))
        in_a = mask & (rank < size_a[None, :])
        in_b = mask & ~in_a
        mos_a = (filled * in_a).sum(axis=0) / in_a.sum(axis=0)
        mos_b = (filled * in_b).sum(axis=0) / in_b.sum(axis=0)
        for r, out in ((np.corrcoef(mos_a, mos_b)[0, 1], plcc), (stats.spearmanr(mos_a, mos_b)[0], srcc)):
            out.append(2 * r / (1 + r))
    return float(np.mean(srcc)), float(np.mean(plcc))


@pytest.mark.parametrize("draws", [1, 500, 1 << 20])
def test_split_half_gives_the_figures_of_drawing_split_by_split_however_many_splits_it_draws_at_once(
    draws: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("annotation_site.statistics.scores._SPLIT_HALF_DRAWS", draws)
    rng = np.random.default_rng(8)
    x = np.round(rng.normal(3.0, 1.0, (7, 60)) * 2) / 2  # half points: many ties in the Spearman ranks
    x[rng.random(x.shape) < 0.3] = nan
    result = split_half(x, seed=4, splits=23)
    srcc, plcc = _split_half_split_by_split(x, 4, 23)
    assert result.srcc == pytest.approx(srcc, abs=1e-12)
    assert result.plcc == pytest.approx(plcc, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# rater_table
# ---------------------------------------------------------------------------------------------------------------


def test_rater_table_measures_each_rater_against_the_mos_of_the_others() -> None:
    quality, x = simulated(6, raters=8, images=300, noise=0.3)
    x[2] = x[2] + 1.0  # rates everything one point high
    x[5] = -x[5]  # reads the scale backwards
    table = rater_table(x)
    assert table.n_ratings.tolist() == [300] * 8
    assert table.n_compared.tolist() == [300] * 8
    # for rater 2 the others' MOS is (6q - q) / 7 = 5q/7, and mean(q) is close to 0
    assert table.bias[2] == pytest.approx(1.0 + 2.0 / 7.0 * quality.mean(), abs=0.05)
    assert table.plcc[5] < -0.5
    consistent = [0, 1, 3, 4, 6, 7]
    assert (table.plcc[consistent] > 0.9).all()


def test_rater_table_leaves_the_rater_out_of_the_reference() -> None:
    x = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [3.0, 4.0, 5.0]])
    table = rater_table(x)
    # rater 0 vs mean of raters 1 and 2 = [2.5, 3.5, 4.5]: bias -1.5, perfect correlation
    np.testing.assert_allclose(table.bias, [-1.5, 0.0, 1.5])
    np.testing.assert_allclose(table.plcc, [1.0, 1.0, 1.0])


def test_rater_table_only_compares_images_with_two_other_ratings() -> None:
    x = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 3.0, nan, 5.0], [3.0, 4.0, nan, nan], [nan, 1.0, 2.0, nan]])
    table = rater_table(x)
    assert table.n_ratings.tolist() == [4, 3, 2, 2]
    # image 0 has 3 ratings, image 1 has 4; images 2 and 3 have 2: only images 0 and 1 are compared
    assert table.n_compared.tolist() == [2, 2, 2, 1]
    assert np.isnan(table.plcc).all()  # fewer than three compared images each
    assert table.bias[3] == pytest.approx(1.0 - 3.0)
