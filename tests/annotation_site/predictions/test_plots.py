"""The model page's scatter plots stay small however many photos a project has."""

from __future__ import annotations

from annotation_site.predictions.plots import SCATTER_MAX_POINTS, scatter_svg


def test_a_scatter_of_many_photos_draws_a_bounded_even_sample_and_says_so():
    points = [(1 + 9 * i / 19_999, 1 + 9 * i / 19_999) for i in range(20_000)]

    svg = scatter_svg(points, low=1, high=10, x_label="raters' mean", y_label="cpu")

    assert svg.count("<circle") == SCATTER_MAX_POINTS
    assert f"cpu ({SCATTER_MAX_POINTS:,} of 20,000 photos drawn) against raters" in svg
    # evenly spread: the first and the last of the sample sit at the two ends of the diagonal
    assert 'cx="30.0" cy="170.0"' in svg and svg.count('r="2.2"') == SCATTER_MAX_POINTS


def test_a_scatter_of_few_photos_draws_every_one():
    svg = scatter_svg([(2.0, 3.0), (5.0, 5.0)], low=1, high=10, x_label="x", y_label="cpu")

    assert svg.count("<circle") == 2 and 'aria-label="cpu against x"' in svg
