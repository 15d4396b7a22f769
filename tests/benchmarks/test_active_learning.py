"""The active-learning simulation (`make bench-active`) end to end at a tiny size: it runs the platform's
queue and CPU scorer round after round and prints the figures BENCHMARKS.md records. No timing and no
savings threshold here: the figures themselves are what the benchmark measures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks import active_learning


def test_a_tiny_simulation_prints_label_savings_and_srcc_curves_for_both_strategies(capsys):
    small_model = json.dumps({"epochs": 30, "ensemble_size": 2})
    argv = ["--images", "40", "--per-round", "8", "--rounds", "2", "--seeds", "2", "--prescore-files", "0", "--config", small_model, "--queue-batch", "12"]

    assert active_learning.main(argv) == 0

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["benchmark"] for line in lines] == ["active_learning"]
    result = lines[0]
    assert result["labels"] == [24, 48] and result["labels_budget"] == 48 and result["seeds"] == [0, 1]
    for key in ("srcc_random", "srcc_active"):
        assert len(result[key]) == 2 and all(-1.0 <= value <= 1.0 for value in result[key])
    assert len(result["label_savings_per_seed"]) == 2
    # A fraction of labels saved is at most 1; null means the active queue never reached random's figure.
    for value in [result["label_savings"], *result["label_savings_per_seed"], *result["label_savings_by_budget"].values()]:
        assert value is None or (math.isfinite(value) and value <= 1.0)


def test_both_strategies_get_the_same_ratings_for_the_same_image():
    pool = active_learning.build_pool(12, seed=3)

    first, again = active_learning.draw_ratings(pool, 3, seed=5), active_learning.draw_ratings(pool, 3, seed=5)

    assert np.array_equal(first, again) and first.shape == (12, 3)
    assert ((first >= 1) & (first <= 10)).all()
    assert not np.array_equal(first, active_learning.draw_ratings(pool, 3, seed=6))


def test_savings_compare_labels_needed_to_reach_randoms_final_srcc():
    random_curve = [(100, 0.5), (200, 0.6), (300, 0.7)]

    assert active_learning.savings(random_curve, [(100, 0.6), (200, 0.7), (300, 0.8)], 0.7) == pytest.approx(1 - 200 / 300)
    assert active_learning.savings(random_curve, [(100, 0.65), (200, 0.75), (300, 0.8)], 0.7) == pytest.approx(1 - 150 / 300)
    # just short at the end, still rising: extended along the last step
    assert active_learning.savings(random_curve, [(100, 0.5), (200, 0.6), (300, 0.65)], 0.7) == pytest.approx(1 - 400 / 300)
    # further short than one more step would go: never
    assert active_learning.savings(random_curve, [(100, 0.4), (200, 0.5), (300, 0.55)], 0.7) == -math.inf


def test_the_prescore_figure_is_pre_scoring_rate_over_decode_rate(tmp_path):
    result = active_learning.measure_prescore(2, tmp_path)

    assert result["benchmark"] == "prescore"
    assert result["prescore_vs_decode"] == pytest.approx(result["prescore_per_s"] / result["decode_per_s"], rel=0.01)
