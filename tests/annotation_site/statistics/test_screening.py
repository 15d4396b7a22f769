"""ITU-R BT.500 observer screening on constructed data, and against sureal's implementation."""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings

import numpy as np
import pytest

from annotation_site.statistics import bt500_reject, bt500_screening
from tests.annotation_site.statistics.data import sureal_reader

nan = np.nan


def panel(seed: int, raters: int = 25, images: int = 120) -> tuple[np.random.Generator, np.ndarray, np.ndarray]:
    """Consistent raters on a 0-100 slider: true quality plus a small personal offset plus noise of SD 6."""
    rng = np.random.default_rng(seed)
    quality = rng.uniform(15, 85, images)
    offset = rng.normal(0, 2, raters)
    x = quality[None, :] + offset[:, None] + rng.normal(0, 6, (raters, images))
    return rng, quality, np.clip(x, 0, 100)


@pytest.mark.parametrize("seed", range(5))
def test_an_erratic_rater_who_strays_from_the_panel_both_ways_is_rejected_and_consistent_raters_are_not(
    seed: int,
) -> None:
    rng, quality, x = panel(seed)
    x[3] = np.clip(quality + rng.normal(0, 12, x.shape[1]), 0, 100)  # twice the panel's noise, both directions
    assert bt500_reject(x) == [3]


def test_a_random_clicker_is_rejected() -> None:
    rng, _, x = panel(0)
    x[3] = rng.uniform(0, 100, x.shape[1])
    assert bt500_reject(x) == [3]


def test_the_counts_behind_a_rejection_are_reported() -> None:
    rng, quality, x = panel(0)
    x[3] = np.clip(quality + rng.normal(0, 12, x.shape[1]), 0, 100)
    result = bt500_screening(x)
    assert result.rejected == [3]
    assert result.ratio[3] > 0.05 and result.balance[3] < 0.3
    assert result.p[3] + result.q[3] == pytest.approx(result.ratio[3] * result.scored[3])
    assert (result.scored == x.shape[1]).all()


def test_a_rater_with_a_constant_offset_is_kept_because_the_rule_only_rejects_two_sided_deviation() -> None:
    # BT.500's second condition |P - Q| / (P + Q) < 0.3 spares one-sided deviation: a rater who always scores
    # 20 points high lands in P only (balance 1). Bias is what the MLE model (or P.913 bias removal) deals with.
    _, _, x = panel(1)
    x[5] = np.clip(x[5] + 20, 0, 100)
    result = bt500_screening(x)
    assert result.p[5] > 0.05 * x.shape[1] and result.q[5] == 0
    assert result.rejected == []


def test_screening_never_rejects_every_rater() -> None:
    # 8 raters, 16 images; on image e rater e % 8 scores +2 and rater (e + 3) % 8 scores -2, the rest 0. Then the
    # mean is 0, the population SD is 1 and beta2 is exactly 4 ("normal"), so +-2 sits on the 2-SD cut-off: every
    # rater has P = Q = 2 of 16 scores, ratio 0.25 and balance 0, and every rater meets the rejection rule.
    x = np.zeros((8, 16))
    for e in range(16):
        x[e % 8, e] = 2.0
        x[(e + 3) % 8, e] = -2.0
    result = bt500_screening(x, sd_ddof=0)
    assert ((result.ratio > 0.05) & (result.balance < 0.3)).all()
    assert result.rejected == []


def test_images_without_spread_or_with_too_few_ratings_are_not_screened() -> None:
    x = np.array(
        [
            [3.0, 3.0, 5.0],
            [3.0, 3.0, nan],
            [3.0, 3.0, nan],
            [3.0, nan, nan],
        ]
    )
    result = bt500_screening(x)  # image 0: no spread; images 1 and 2: fewer than 4 ratings
    assert result.rejected == []
    assert (result.scored == 0).all()
    assert (result.p == 0).all() and (result.q == 0).all()


def test_a_crowd_design_divides_by_the_scores_each_rater_gave() -> None:
    # 40 raters, 15 per image: each rater scores ~225 of 600 images. (With far fewer scores per rater the two
    # ratios are too noisy for BT.500 to tell an erratic rater from a consistent one: the rule was written for
    # panels where everyone scores everything.)
    rng, quality, x = panel(3, raters=40, images=600)
    seen = np.argsort(rng.random(x.shape), axis=0) < 15
    x[3] = np.clip(quality + rng.normal(0, 18, x.shape[1]), 0, 100)
    x = np.where(seen, x, nan)
    result = bt500_screening(x)
    assert result.rejected == [3]
    assert (result.scored == seen.sum(axis=1)).all()


def test_screening_matches_sureal_bt500_with_its_population_standard_deviation(capsys: pytest.CaptureFixture) -> None:
    importlib.import_module("sureal")
    from sureal import BT500Model

    rng = np.random.default_rng(4)
    quality = rng.uniform(1, 5, 80)
    x = np.clip(np.round(quality[None, :] + rng.normal(0, 0.6, (24, 80))), 1, 5)
    x[0] = rng.integers(1, 6, 80)
    x[1] = 6 - x[1]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sureal's 0/0 for raters with P + Q = 0
        theirs = BT500Model(sureal_reader(x)).run_modeling()
    ours = bt500_screening(x, sd_ddof=0, min_ratings=2)
    assert ours.rejected == [i for i, rejected in enumerate(theirs["observer_rejected"]) if rejected]
    assert ours.rejected  # not vacuous
    np.testing.assert_allclose(ours.ratio, theirs["observer_rejected_1st_stats"])
    np.testing.assert_allclose(
        np.nan_to_num(ours.balance), np.nan_to_num(np.asarray(theirs["observer_rejected_2nd_stats"], dtype=float))
    )
