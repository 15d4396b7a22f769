"""Pure statistics for dataset releases: numpy and scipy only, no Django, so it runs in a worker or a notebook.

Every function takes a (raters, images) float matrix with nan for a missing rating (the orientation of the
`krippendorff` package's `reliability_data`). Choice fields are mapped to numeric codes, and ordinal ones to ranks,
by the caller.

alpha.py      Krippendorff's alpha (nominal, ordinal, interval, ratio) equal to the `krippendorff` package to
              ~1e-12 but O(N) / O(N log N) instead of O(units x values^2); None when undefined; a unit-bootstrap
              percentile interval that reuses per-unit sufficient statistics.
                  krippendorff_alpha(data, level, *, value_domain=None) -> float | None
                  bootstrap_alpha(data, level, *, resamples=1000, seed=0, confidence=0.95,
                                  value_domain=None) -> AlphaResult
scores.py     per-image and per-rater statistics of score fields.
                  mos_table(ratings) -> MosTable(n, mean, sd, ci95)                  Student-t 95% CI
                  zscore_mos(ratings, *, low, high, method="fixed") -> ZScoreMos(z, scaled, n)
                  rater_zscores(ratings) -> ndarray
                  split_half(ratings, *, seed=0, splits=100) -> SplitHalfResult(srcc, plcc, images, splits)
                  rater_table(ratings) -> RaterTable(n_ratings, n_compared, plcc, bias)   leave-one-out MOS
mle.py        the ITU-T P.910 Annex E / sureal maximum-likelihood subjective model (rater bias and
              inconsistency; content ambiguity when images are grouped into contents), sureal's damped Newton
              updates, equal to sureal 0.9.0 to ~1e-15.
                  subjective_mle(ratings, *, content_ids=None, max_iterations=10000, tol=1e-8,
                                 min_ratings_per_rater=2) -> MleResult
                  raises MleDegenerateError when the fit collapses onto one rater (few raters per image)
screening.py  ITU-R BT.500 Annex 1 observer screening (beta2 kurtosis, P/Q counts, 0.05 / 0.3).
                  bt500_reject(ratings, *, sd_ddof=1, min_ratings=4) -> list[int]
                  bt500_screening(ratings, *, sd_ddof=1, min_ratings=4) -> Bt500Screening
splits.py     release splits: seeded and input-order independent, stratified by score quantiles (unscored images
              a stratum of their own), near-duplicate groups never split, earlier assignments kept.
                  assign_splits(*, image_keys, strata_scores, groups, ratios, seed, previous=None,
                                strata=10) -> dict[str, str]
                  near_duplicate_groups(links) -> dict[str, str]      union-find over image -> near_duplicate_of
                  validate_ratios(ratios) -> dict[str, float]         ValueError naming the problem
                  split_counts(assignment, names=()) -> dict[str, int]
pairs.py      pairwise comparisons at five levels (soft preferences 0, .25, .5, .75, 1): Thurstone Case V MAP with a
              Gaussian prior (Bradley-Terry as an option; prior_sd=None is ML, equal to choix), Laplace intervals;
              MOS and comparisons on one scale; expected-information-gain pair selection (greedy or MST batches),
              balanced random pairs, Compare2Score's anchors and its training-pair levels from MOS.
                  pair_scale(n_items, i, j, p, *, model="thurstone", prior_sd=1.0, ...) -> PairScale
                  joint_scale(n_items, i, j, p, *, mos, mos_se, ...) -> JointScale
                  select_pairs_active(scale, *, eligible, batch, size, exclude, seed) -> list[(u, v)]
                  select_pairs_random(counts, *, eligible, exclude, seed) -> list[(u, v)]
                  anchor_select(mos, variance, *, intervals=5) -> list[int];  anchor_pairs(n_items, anchors)
                  compare2score_levels(...), training_pairs(mos, sd, *, n_pairs, seed) -> list[TrainingPair]
"""

from annotation_site.statistics.alpha import LEVELS, AlphaResult, bootstrap_alpha, krippendorff_alpha
from annotation_site.statistics.mle import MleDegenerateError, MleResult, subjective_mle
from annotation_site.statistics.scores import (
    MosTable,
    RaterTable,
    SplitHalfResult,
    ZScoreMos,
    mos_table,
    rater_table,
    rater_zscores,
    split_half,
    zscore_mos,
)
from annotation_site.statistics.pairs import (
    COMPARISON_LEVELS,
    LEVEL_PREFERENCE,
    AnswerModel,
    JointScale,
    PairScale,
    PairScaleError,
    TrainingPair,
    anchor_pairs,
    anchor_select,
    answer_model_fit,
    compare2score_levels,
    expected_information_gain,
    joint_scale,
    level_comparison,
    pair_scale,
    select_pairs_active,
    select_pairs_random,
    training_pairs,
)
from annotation_site.statistics.screening import Bt500Screening, bt500_reject, bt500_screening
from annotation_site.statistics.splits import assign_splits, near_duplicate_groups, split_counts, validate_ratios

__all__ = [
    "COMPARISON_LEVELS",
    "LEVEL_PREFERENCE",
    "AnswerModel",
    "JointScale",
    "PairScale",
    "PairScaleError",
    "TrainingPair",
    "anchor_pairs",
    "anchor_select",
    "answer_model_fit",
    "compare2score_levels",
    "expected_information_gain",
    "joint_scale",
    "level_comparison",
    "pair_scale",
    "select_pairs_active",
    "select_pairs_random",
    "training_pairs",
    "LEVELS",
    "AlphaResult",
    "Bt500Screening",
    "MleDegenerateError",
    "MleResult",
    "MosTable",
    "RaterTable",
    "SplitHalfResult",
    "ZScoreMos",
    "assign_splits",
    "bootstrap_alpha",
    "bt500_reject",
    "bt500_screening",
    "krippendorff_alpha",
    "mos_table",
    "near_duplicate_groups",
    "rater_table",
    "rater_zscores",
    "split_counts",
    "split_half",
    "subjective_mle",
    "validate_ratios",
    "zscore_mos",
]
