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
from annotation_site.statistics.screening import Bt500Screening, bt500_reject, bt500_screening

__all__ = [
    "LEVELS",
    "AlphaResult",
    "Bt500Screening",
    "MleDegenerateError",
    "MleResult",
    "MosTable",
    "RaterTable",
    "SplitHalfResult",
    "ZScoreMos",
    "bootstrap_alpha",
    "bt500_reject",
    "bt500_screening",
    "krippendorff_alpha",
    "mos_table",
    "rater_table",
    "rater_zscores",
    "split_half",
    "subjective_mle",
    "zscore_mos",
]
