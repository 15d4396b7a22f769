"""Krippendorff's alpha: published values, agreement with the `krippendorff` package, undefined cases, bootstrap."""

from __future__ import annotations

import time

import krippendorff
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from annotation_site.statistics import LEVELS, AlphaResult, bootstrap_alpha, krippendorff_alpha
from annotation_site.statistics import alpha as alpha_module
from annotation_site.statistics.alpha import _bootstrap_chunk_alphas, _bootstrap_stats, _pairable
from tests.annotation_site.statistics.data import (
    KRIPPENDORFF_2011,
    KRIPPENDORFF_2011_PUBLISHED,
    overlap_design,
)

nan = np.nan


def package_alpha(data: np.ndarray, level: str, value_domain: object = None) -> float | None:
    """The package's answer, with its two ways of saying "undefined" (ValueError, nan) mapped to None."""
    try:
        with np.errstate(invalid="ignore", divide="ignore"):  # its 0/0 for "undefined"
            value = krippendorff.alpha(data, level_of_measurement=level, value_domain=value_domain)
    except ValueError:
        return None
    return None if np.isnan(value) else float(value)


def random_matrix(rng: np.random.Generator, raters: int, units: int, values: str, missing: float) -> np.ndarray:
    if values == "continuous":
        x = np.round(rng.uniform(1.0, 10.0, (raters, units)), 1)  # 1..10 step 0.1: up to 91 distinct values
    else:
        x = rng.integers(1, 6, (raters, units)).astype(float)  # 1..5
    x[rng.random((raters, units)) < missing] = nan
    return x


@pytest.mark.parametrize("level", LEVELS)
def test_the_worked_example_of_krippendorff_2011_gives_the_published_alpha(level: str) -> None:
    assert round(krippendorff_alpha(KRIPPENDORFF_2011, level), 3) == KRIPPENDORFF_2011_PUBLISHED[level]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("values", ["continuous", "likert"])
def test_alpha_matches_the_krippendorff_package_to_1e_9_on_random_data_with_missing_values(
    level: str, values: str
) -> None:
    rng = np.random.default_rng(10 * LEVELS.index(level) + (values == "likert"))
    shapes = [(2, 5), (3, 40), (5, 12), (10, 200), (30, 25), (4, 400)]
    compared = 0
    for seed in range(40):
        raters, units = shapes[seed % len(shapes)]
        x = random_matrix(rng, raters, units, values, missing=rng.uniform(0.0, 0.7))
        ours = krippendorff_alpha(x, level)
        theirs = package_alpha(x, level)
        if theirs is None:
            assert ours is None
            continue
        assert ours is not None
        assert ours == pytest.approx(theirs, abs=1e-9)
        compared += 1
    assert compared >= 30  # the comparison was not vacuous


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_matches_the_package_on_a_crowd_overlap_design_with_many_distinct_values(level: str) -> None:
    x = overlap_design(np.random.default_rng(7), raters=60, units=400, per_unit=10, values="continuous")
    assert np.unique(x[~np.isnan(x)]).size > 60
    assert krippendorff_alpha(x, level) == pytest.approx(package_alpha(x, level), abs=1e-9)


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_matches_the_package_on_a_full_size_release_of_likert_ratings(level: str) -> None:
    # 14,715 images x 60 raters, 10 ratings per image: the release size of the engineering notes. With five
    # distinct values the package is fast too, so the full size can be checked.
    x = overlap_design(np.random.default_rng(8), raters=60, units=14_715, per_unit=10, values="likert")
    assert krippendorff_alpha(x, level) == pytest.approx(package_alpha(x, level), abs=1e-9)


def test_interval_alpha_of_a_full_size_release_with_91_distinct_values_takes_milliseconds() -> None:
    # The package takes ~9 s here (engineering notes: 9.4 s); the closed form must stay far below that.
    x = overlap_design(np.random.default_rng(9), raters=60, units=14_715, per_unit=10, values="continuous")
    krippendorff_alpha(x, "interval")  # warm-up
    start = time.perf_counter()
    for level in LEVELS:
        assert krippendorff_alpha(x, level) is not None
    assert time.perf_counter() - start < 1.0


_values = st.one_of(
    st.just(nan),
    st.sampled_from([-2.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
    st.floats(min_value=-10, max_value=10, allow_nan=False, allow_infinity=False).map(lambda v: round(v, 1)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 8)), elements=_values),
    level=st.sampled_from(LEVELS),
)
def test_the_fast_alpha_equals_the_package_on_arbitrary_small_matrices(data: np.ndarray, level: str) -> None:
    theirs = package_alpha(data, level)
    ours = krippendorff_alpha(data, level)
    event("defined" if theirs is not None else "undefined")
    if theirs is None:
        assert ours is None
    else:
        assert ours is not None
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_is_undefined_not_a_number_when_every_pairable_value_is_the_same(level: str) -> None:
    x = np.array([[3.0, 3.0, nan, 1.0], [3.0, 3.0, 3.0, nan], [nan, 3.0, 3.0, nan]])
    # the lone 1.0 is in a unit with one value: not pairable, so all pairable values are 3
    assert krippendorff_alpha(x, level) is None


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_is_undefined_when_no_unit_has_two_ratings(level: str) -> None:
    x = np.array([[1.0, nan, 3.0], [nan, 2.0, nan]])
    assert krippendorff_alpha(x, level) is None
    assert krippendorff_alpha(np.empty((3, 0)), level) is None
    assert krippendorff_alpha(np.array([[1.0, 2.0, 3.0]]), level) is None  # a single rater never pairs


def test_units_with_a_single_rating_are_dropped() -> None:
    x = KRIPPENDORFF_2011.copy()
    extra = np.array([[5.0], [nan], [nan], [nan]])
    for level in LEVELS:
        assert krippendorff_alpha(np.hstack([x, extra]), level) == pytest.approx(krippendorff_alpha(x, level))


def test_perfect_agreement_gives_alpha_one() -> None:
    x = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, nan, 3.0, 4.0]])
    for level in LEVELS:
        assert krippendorff_alpha(x, level) == pytest.approx(1.0)


def test_a_value_outside_the_value_domain_is_an_error_and_unused_domain_values_change_nothing() -> None:
    with pytest.raises(ValueError, match="outside value_domain"):
        krippendorff_alpha(KRIPPENDORFF_2011, "nominal", value_domain=[1, 2, 3, 4])
    for level in LEVELS:
        wide = krippendorff_alpha(KRIPPENDORFF_2011, level, value_domain=[0, 1, 2, 3, 4, 5, 6, 7])
        assert wide == pytest.approx(krippendorff_alpha(KRIPPENDORFF_2011, level), abs=1e-12)
        assert wide == pytest.approx(package_alpha(KRIPPENDORFF_2011, level, [0, 1, 2, 3, 4, 5, 6, 7]), abs=1e-9)


def test_an_ordinal_value_domain_out_of_rank_order_is_refused() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        krippendorff_alpha(KRIPPENDORFF_2011, "ordinal", value_domain=[5, 4, 3, 2, 1])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(KRIPPENDORFF_2011, "likert")
    with pytest.raises(ValueError, match="2-D"):
        krippendorff_alpha(np.array([1.0, 2.0]), "interval")
    with pytest.raises(ValueError, match="infinities"):
        krippendorff_alpha(np.array([[1.0, np.inf], [1.0, 2.0]]), "interval")


# ----------------------------------------------------------------------------------------------------------------
# bootstrap
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("values", ["continuous", "likert"])
def test_each_bootstrap_resample_equals_alpha_of_the_resampled_matrix(level: str, values: str) -> None:
    # The vectorised resample (draw counts times per-unit statistics) must be exactly the alpha of the matrix made
    # by taking the drawn units, duplicates included.
    rng = np.random.default_rng(11)
    x = overlap_design(rng, raters=12, units=80, per_unit=4, values=values)
    pairable = _pairable(x)
    keep = (~np.isnan(x)).sum(axis=0) >= 2
    xp = x[:, keep]
    stats = _bootstrap_stats(level, pairable)
    draws = rng.integers(0, xp.shape[1], size=(6, xp.shape[1]))
    weights = np.stack([np.bincount(d, minlength=xp.shape[1]) for d in draws]).astype(float)
    fast = _bootstrap_chunk_alphas(level, pairable, weights, stats)
    for b in range(len(draws)):
        # np.sort inside _pairable reorders values within units only, so unit order is that of xp
        assert fast[b] == pytest.approx(krippendorff_alpha(xp[:, draws[b]], level), abs=1e-9)


def test_bootstrap_reports_alpha_its_interval_and_the_counts() -> None:
    result = bootstrap_alpha(KRIPPENDORFF_2011, "interval", resamples=500, seed=3)
    assert isinstance(result, AlphaResult)
    assert result.alpha == pytest.approx(0.849, abs=5e-4)
    assert result.low is not None and result.high is not None
    assert result.low <= result.alpha <= result.high <= 1.0
    # 11 units have two or more values (unit 12 has one), 4 observers, 40 pairable values
    assert (result.units, result.raters, result.pairable_values) == (11, 4, 40)
    assert 0 < result.defined_resamples <= 500


def test_bootstrap_is_reproducible_with_a_seed_and_varies_without_it() -> None:
    x = overlap_design(np.random.default_rng(12), raters=20, units=300, per_unit=5)
    a = bootstrap_alpha(x, "ordinal", resamples=200, seed=5)
    b = bootstrap_alpha(x, "ordinal", resamples=200, seed=5)
    c = bootstrap_alpha(x, "ordinal", resamples=200, seed=6)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)


def test_bootstrap_interval_narrows_with_more_units() -> None:
    rng = np.random.default_rng(13)
    small = bootstrap_alpha(overlap_design(rng, raters=20, units=100, per_unit=5), "interval", resamples=400)
    large = bootstrap_alpha(overlap_design(rng, raters=20, units=2_000, per_unit=5), "interval", resamples=400)
    assert (large.high - large.low) < (small.high - small.low) / 2


def test_bootstrap_of_undefined_alpha_has_no_bounds() -> None:
    x = np.array([[2.0, 2.0, 2.0], [2.0, 2.0, nan]])
    result = bootstrap_alpha(x, "interval", resamples=50)
    assert (result.alpha, result.low, result.high) == (None, None, None)
    assert result.units == 2


def test_bootstrap_leaves_out_resamples_that_draw_only_agreeing_constant_units() -> None:
    # Two of three units hold only the value 1: some resamples draw only those, and have no expected disagreement.
    x = np.array([[1.0, 1.0, 2.0], [1.0, 1.0, 3.0]])
    result = bootstrap_alpha(x, "nominal", resamples=300, seed=1)
    assert result.alpha is not None
    assert 0 < result.defined_resamples < 300


def test_a_resample_of_constant_units_with_different_values_counts_as_defined() -> None:
    # Neither unit varies, but a resample that draws both has two values and a defined alpha (of 1).
    x = np.array([[1.0, 2.0], [1.0, 2.0]])
    result = bootstrap_alpha(x, "nominal", resamples=300, seed=2)
    assert result.alpha == 1.0
    assert 0 < result.defined_resamples < 300
    assert (result.low, result.high) == (1.0, 1.0)


def test_fields_bootstrapped_one_after_another_get_the_intervals_of_fresh_draws() -> None:
    # A release bootstraps many fields over the same units with one seed and reuses the resample draws between
    # them; whatever ran before must not change a field's interval.
    rng = np.random.default_rng(15)
    first = overlap_design(rng, raters=20, units=300, per_unit=5)
    second = overlap_design(rng, raters=20, units=300, per_unit=5, values="continuous")
    other_size = overlap_design(rng, raters=20, units=150, per_unit=5)
    alone = {}
    for name, x in [("first", first), ("second", second)]:
        alpha_module._weight_cache.clear()
        alone[name] = bootstrap_alpha(x, "interval", resamples=200, seed=4)
    alpha_module._weight_cache.clear()
    in_a_row = [
        bootstrap_alpha(first, "interval", resamples=200, seed=4),
        bootstrap_alpha(other_size, "interval", resamples=200, seed=4),
        bootstrap_alpha(second, "interval", resamples=200, seed=4),
        bootstrap_alpha(first, "interval", resamples=150, seed=4),
        bootstrap_alpha(first, "interval", resamples=200, seed=9),
        bootstrap_alpha(first, "interval", resamples=200, seed=4),
    ]
    assert in_a_row[0] == alone["first"] == in_a_row[5]
    assert in_a_row[2] == alone["second"]
    assert in_a_row[4] != alone["first"]


def test_a_thousand_resample_bootstrap_of_a_full_size_interval_release_takes_well_under_a_few_seconds() -> None:
    x = overlap_design(np.random.default_rng(14), raters=60, units=14_715, per_unit=10, values="continuous")
    start = time.perf_counter()
    result = bootstrap_alpha(x, "interval", resamples=1000)
    elapsed = time.perf_counter() - start
    assert result.defined_resamples == 1000
    assert result.low < result.alpha < result.high
    assert elapsed < 3.0
