"""Release splits: seeded, order independent, stratified by score, near-duplicates together, stable between releases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from annotation_site.statistics import assign_splits, near_duplicate_groups, split_counts, validate_ratios

RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def project(
    n: int, *, seed: int = 0, unscored: float = 0.0, grouped: float = 0.0
) -> tuple[list[str], list[float | None], list[str | None]]:
    """Keys, overall scores (skewed like real MOS, some missing) and near-duplicate groups of `n` images."""
    rng = np.random.default_rng(seed)
    keys = [f"{i:064x}" for i in rng.permutation(10 * n)[:n]]
    raw = np.clip(rng.beta(5, 2, n) * 9 + 1, 1, 10)
    scores: list[float | None] = [None if rng.random() < unscored else float(s) for s in raw]
    groups: list[str | None] = [f"g{rng.integers(n // 6)}" if rng.random() < grouped else None for _ in range(n)]
    return keys, scores, groups


def split(keys: list[str], scores: list[float | None], groups: list[str | None], **kwargs: object) -> dict[str, str]:
    options = {"ratios": RATIOS, "seed": 7, **kwargs}
    return assign_splits(image_keys=keys, strata_scores=scores, groups=groups, **options)  # type: ignore[arg-type]


def test_the_same_seed_gives_the_same_splits_and_another_seed_other_ones() -> None:
    keys, scores, groups = project(2000, grouped=0.2)
    first = split(keys, scores, groups)
    assert split(keys, scores, groups) == first
    other = split(keys, scores, groups, seed=8)
    assert sum(first[k] != other[k] for k in keys) > 200
    assert set(first) == set(keys)


def test_the_splits_do_not_depend_on_the_order_the_images_arrive_in() -> None:
    keys, scores, groups = project(3000, unscored=0.1, grouped=0.2)
    order = np.random.default_rng(1).permutation(len(keys))
    shuffled = split([keys[i] for i in order], [scores[i] for i in order], [groups[i] for i in order])
    assert shuffled == split(keys, scores, groups)


def test_ten_thousand_images_are_split_in_the_requested_ratios() -> None:
    keys, scores, groups = project(10_000, unscored=0.05, grouped=0.1)
    counts = split_counts(split(keys, scores, groups), RATIOS)
    for name, ratio in RATIOS.items():
        # Groups here hold up to a dozen images; the apportionment is off by at most about one group per stratum.
        assert abs(counts[name] / 10_000 - ratio) < 0.002, counts
    ungrouped = split_counts(split(keys, scores, [None] * len(keys)), RATIOS)
    assert {name: abs(ungrouped[name] - 10_000 * r) <= 11 for name, r in RATIOS.items()} == dict.fromkeys(RATIOS, True)


def test_every_split_has_the_same_score_distribution() -> None:
    keys, scores, groups = project(10_000, unscored=0.05)
    assignment = split(keys, scores, groups)
    by_split = {
        name: np.array([s for k, s in zip(keys, scores) if assignment[k] == name and s is not None]) for name in RATIOS
    }
    everything = np.array([s for s in scores if s is not None])
    for name, values in by_split.items():
        # Stratified, the split's deciles sit on the whole set's deciles (measured: within 0.013 score units);
        # a random split of 1,000 images wanders 0.1-0.2 here, and its KS statistic reaches 0.03-0.05.
        deciles = np.quantile(values, np.linspace(0.1, 0.9, 9))
        np.testing.assert_allclose(deciles, np.quantile(everything, np.linspace(0.1, 0.9, 9)), atol=0.03)
        assert stats.ks_2samp(values, everything).statistic < 0.02, name
    unscored = {assignment[k] for k, s in zip(keys, scores) if s is None}
    assert unscored == set(RATIOS)  # the unscored stratum is shared out too, not dumped in one split


def test_images_of_one_near_duplicate_group_always_share_a_split() -> None:
    keys, scores, groups = project(5000, grouped=0.5)
    assignment = split(keys, scores, groups)
    members: dict[str, set[str]] = {}
    for key, group in zip(keys, groups):
        if group is not None:
            members.setdefault(group, set()).add(assignment[key])
    assert len(members) > 500
    assert all(len(splits) == 1 for splits in members.values())
    assert {next(iter(s)) for s in members.values()} == set(RATIOS)


def test_earlier_assignments_stay_and_new_images_fill_toward_the_ratios() -> None:
    keys, scores, groups = project(6000, grouped=0.2)
    old_keys, new_keys = keys[:5000], keys[5000:]
    # An earlier release split differently (say a 70/15/15 project) and a later one adds 1000 images.
    first = assign_splits(
        image_keys=old_keys,
        strata_scores=scores[:5000],
        groups=groups[:5000],
        ratios={"train": 0.7, "validation": 0.15, "test": 0.15},
        seed=3,
    )
    second = split(keys, scores, groups, previous=first)
    assert {k: second[k] for k in old_keys} == first
    new = split_counts({k: second[k] for k in new_keys}, RATIOS)
    # 80/10/10 of 6000 wants 4800 train: 3500 are there, so the new images go to train first.
    assert new["train"] > 900, new
    # A new near-duplicate of an earlier image joins that image's split.
    for key, group in zip(new_keys, groups[5000:]):
        old_members = {first[k] for k, g in zip(old_keys, groups[:5000]) if g == group} if group else set()
        if len(old_members) == 1:
            assert second[key] in old_members
    # Asking again with the same earlier assignments changes nothing, and gone images are ignored.
    assert split(keys, scores, groups, previous={**first, "gone": "train"}) == second


def test_a_group_already_spread_over_splits_keeps_its_images_and_new_ones_join_the_majority() -> None:
    keys = ["a", "b", "c", "d"]
    result = assign_splits(
        image_keys=keys,
        strata_scores=[1.0, 2.0, 3.0, 4.0],
        groups=["g", "g", "g", "g"],
        ratios=RATIOS,
        seed=0,
        previous={"a": "test", "b": "train", "c": "test"},
    )
    assert result == {"a": "test", "b": "train", "c": "test", "d": "test"}


def test_with_one_split_every_image_goes_there_and_no_images_give_no_splits() -> None:
    keys, scores, groups = project(50)
    assert set(split(keys, scores, groups, ratios={"all": 1.0}).values()) == {"all"}
    assert assign_splits(image_keys=[], strata_scores=[], groups=[], ratios=RATIOS, seed=0) == {}


@pytest.mark.parametrize(
    ("ratios", "message"),
    [
        ({}, "non-empty"),
        ({"train": 0.8, "test": 0.1}, "sum to 1"),
        ({"train": 1.1, "test": -0.1}, "positive"),
        ({"train": 1.0, "test": 0.0}, "positive"),
        ({"train": 0.5, "": 0.5}, "non-empty strings"),
        ({"train": 0.5, "test": float("nan")}, "positive and finite"),
        ({"train": 0.5, "test": "half"}, "must be a number"),
        ({"train": 0.8, "test": 0.2 + 2e-9}, "sum to 1"),
    ],
)
def test_bad_ratios_are_refused_with_the_problem_named(ratios: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        assign_splits(image_keys=["a"], strata_scores=[1.0], groups=[None], ratios=ratios, seed=0)


def test_ratios_that_sum_to_one_up_to_rounding_are_accepted() -> None:
    assert validate_ratios({"a": 0.7, "b": 0.2, "c": 0.1}) == {"a": 0.7, "b": 0.2, "c": 0.1}


def test_inconsistent_inputs_are_refused_with_the_problem_named() -> None:
    with pytest.raises(ValueError, match="same length"):
        assign_splits(image_keys=["a", "b"], strata_scores=[1.0], groups=[None, None], ratios=RATIOS, seed=0)
    with pytest.raises(ValueError, match="unique.*'a'"):
        assign_splits(image_keys=["a", "a"], strata_scores=[1.0, 2.0], groups=[None, None], ratios=RATIOS, seed=0)
    with pytest.raises(ValueError, match="infinite"):
        assign_splits(image_keys=["a"], strata_scores=[float("inf")], groups=[None], ratios=RATIOS, seed=0)
    with pytest.raises(ValueError, match=r"\['holdout'\].*previous=None"):
        assign_splits(
            image_keys=["a"], strata_scores=[1.0], groups=[None], ratios=RATIOS, seed=0, previous={"a": "holdout"}
        )


def test_near_duplicate_links_become_groups_that_follow_chains() -> None:
    links = {"e": "d", "d": "c", "b": "a", "c": None, "a": None, "f": None, "g": "b", "h": "x"}
    groups = near_duplicate_groups(links)
    assert groups == {"a": "a", "b": "a", "g": "a", "c": "c", "d": "c", "e": "c", "f": "f", "h": "h", "x": "h"}
    reordered = dict(reversed(list(links.items())))
    assert near_duplicate_groups(reordered) == groups
    # Two chains joined by a later link merge into one group.
    assert set(near_duplicate_groups({**links, "f": "e", "x": "g"}).values()) == {"a", "c"}
