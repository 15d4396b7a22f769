"""ITU-R BT.500 observer screening (the beta2 / kurtosis rule).

Source: Recommendation ITU-R BT.500, Annex 1, "Screening of the observers" (A1-2.3.1 in BT.500-14/-15), as
summarised in /work/shared/reference/protocols.md section 4.1 and as implemented by Netflix sureal
(sureal/subjective_model.py, `SubjectiveModel._get_opinion_score_3darray_with_preprocessing` with
subject_rejection=True, used by `BT500Model`; sureal 0.9.0). The rule, per image (stimulus) e:

  1. mean u_e, standard deviation S_e, and kurtosis beta2_e = m4 / m2^2 with m_x = sum (u - u_e)^x / N
     (Pearson's kurtosis, 3 for a normal distribution; moments with 1/N).
  2. If 2 <= beta2_e <= 4 the scores count as normal and the cut-off is 2 S_e, otherwise sqrt(20) S_e.
     A rater's score >= u_e + cut-off adds one to the rater's P, a score <= u_e - cut-off one to Q.
  3. Reject rater i if (P_i + Q_i) / (number of scores of rater i) > 0.05
     and |P_i - Q_i| / (P_i + Q_i) < 0.3.
  4. If every rater would be rejected, reject none (sureal's guard).

Choices where the sources differ or are silent:
- S_e uses N - 1 (ddof=1), the standard deviation of BT.500's MOS section (BT.500-10 as quoted at
  https://www.irisa.fr/armor/lesmembres/Mohamed/Thesis/node149.html: delta = sqrt(sum (u - u_bar)^2 / (N - 1)),
  beta2 from 1/N moments). sureal uses np.std with ddof=0; pass `sd_ddof=0` to reproduce sureal exactly.
- The denominator of the first ratio is the number of scores the rater actually gave. BT.500 writes J*K*L (every
  rater scores every presentation), sureal uses the number of stimuli times repetitions; on a complete design all
  three are the same, and on a crowd design where each rater sees a subset only the rater's own count makes sense.
- Images with fewer than `min_ratings` scores (default 4, BT.500's statistical minimum of observers) or with
  S_e = 0 are skipped: with S_e = 0 every score equals the mean and would count in both P and Q (sureal does this,
  since its kurtosis is nan there and the sqrt(20)*0 cut-off catches everyone), which is not an outlier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotation_site.statistics.matrix import as_ratings


@dataclass(frozen=True)
class Bt500Screening:
    """rejected: rater indices to reject (ascending). p, q: per-rater P and Q counts. scored: per-rater scores on
    the images that were screened. ratio: (P + Q) / scored. balance: |P - Q| / (P + Q) (nan when P + Q = 0)."""

    rejected: list[int]
    p: np.ndarray
    q: np.ndarray
    scored: np.ndarray
    ratio: np.ndarray
    balance: np.ndarray


def bt500_screening(ratings: np.ndarray, *, sd_ddof: int = 1, min_ratings: int = 4) -> Bt500Screening:
    """BT.500 observer screening with the counts behind the decision (see the module docstring for the rule)."""
    x = as_ratings(ratings)
    mask = ~np.isnan(x)
    n = mask.sum(axis=0).astype(np.float64)
    filled = np.where(mask, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / n
        dev = np.where(mask, x - mean, 0.0)
        m2 = (dev**2).sum(axis=0) / n
        m4 = (dev**4).sum(axis=0) / n
        beta2 = m4 / m2**2
        sd = np.sqrt((dev**2).sum(axis=0) / (n - sd_ddof))
    screened = (n >= max(min_ratings, 2)) & (m2 > 0)
    normal = (beta2 >= 2.0) & (beta2 <= 4.0)
    cutoff = np.where(normal, 2.0, np.sqrt(20.0)) * sd
    use = mask & screened[None, :]
    above = use & (x >= (mean + cutoff)[None, :])
    below = use & (x <= (mean - cutoff)[None, :])
    p = above.sum(axis=1)
    q = below.sum(axis=1)
    scored = use.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (p + q) / scored
        balance = np.abs(p - q) / (p + q)
    reject = (ratio > 0.05) & (balance < 0.3)  # nan compares False: raters with no screened score are kept
    rejected = [int(i) for i in np.flatnonzero(reject)]
    if len(rejected) == x.shape[0]:
        rejected = []  # never reject everyone: the rule would leave no data, so it tells us nothing
    return Bt500Screening(rejected=rejected, p=p, q=q, scored=scored, ratio=ratio, balance=balance)


def bt500_reject(ratings: np.ndarray, *, sd_ddof: int = 1, min_ratings: int = 4) -> list[int]:
    """Indices (rows of the (raters, images) matrix) of the raters ITU-R BT.500 observer screening rejects.

    Rule (BT.500 Annex 1, A1-2.3.1; see the module docstring for the sources and the choices made): per image,
    beta2 kurtosis decides a 2 SD (2 <= beta2 <= 4) or sqrt(20) SD cut-off; a rater's scores beyond it count in P
    (high) or Q (low); reject if (P+Q)/scores > 0.05 and |P-Q|/(P+Q) < 0.3; never reject everyone.
    """
    return bt500_screening(ratings, sd_ddof=sd_ddof, min_ratings=min_ratings).rejected
