"""Per-image and per-rater statistics for score fields.

Every function takes `ratings`, a (raters, images) array with nan for "this rater did not rate this image": the same
orientation as the reliability matrix of `alpha.py`, so one matrix serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from annotation_site.statistics.matrix import as_ratings
# scipy.special, not scipy.stats: the same quantile function, without the 0.6 s import of scipy.stats in every
# statistics worker of a release
from scipy.special import stdtrit


def _column_mean_sd(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n, mean, sd (ddof=1) per column without nanmean's 'empty slice' warnings: nan where undefined."""
    n = mask.sum(axis=0)
    filled = np.where(mask, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / n
        dev = np.where(mask, x - mean, 0.0)
        sd = np.sqrt((dev * dev).sum(axis=0) / (n - 1))
    mean = np.where(n > 0, mean, np.nan)
    sd = np.where(n > 1, sd, np.nan)
    return n, mean, sd


@dataclass(frozen=True)
class MosTable:
    """Per image: number of ratings, MOS, sample SD (ddof=1) and the half-width of the 95% CI of the MOS.

    mean is nan with no rating; sd and ci95 are nan with fewer than two ratings.
    """

    n: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    ci95: np.ndarray


def mos_table(ratings: np.ndarray) -> MosTable:
    """MOS per image with a Student-t 95% confidence interval: t.ppf(0.975, n-1) * sd / sqrt(n).

    Student's t rather than the 1.96 of BT.500 / sureal's MosModel because an image here often has only 3-10
    ratings, where 1.96 understates the interval (t = 2.78 at n = 5); the two agree for large n.
    """
    x = as_ratings(ratings)
    mask = ~np.isnan(x)
    n, mean, sd = _column_mean_sd(x, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = stdtrit(np.where(n > 1, n - 1, 1), 0.975)  # = scipy.stats.t.ppf(0.975, n - 1)
        ci95 = np.where(n > 1, t * sd / np.sqrt(n), np.nan)
    return MosTable(n=n.astype(np.int64), mean=mean, sd=sd, ci95=ci95)


@dataclass(frozen=True)
class ZScoreMos:
    """z: mean of the per-rater z-scores of each image (nan when no z-scored rating); scaled: z mapped onto
    [low, high]; n: z-scored ratings per image."""

    z: np.ndarray
    scaled: np.ndarray
    n: np.ndarray


def rater_zscores(ratings: np.ndarray) -> np.ndarray:
    """Each rating as a z-score within its rater: (rating - rater mean) / rater SD (ddof=1), as sureal's
    `zscore_mode` does (sureal/subjective_model.py, `_get_opinion_score_3darray_with_preprocessing`).

    A rater with fewer than two ratings, or who gave the same score every time, has no SD: those ratings become nan
    (there is no scale to normalise them by), rather than being kept raw on a different scale.
    """
    x = as_ratings(ratings)
    mask = ~np.isnan(x)
    _, mean, sd = _column_mean_sd(x.T, mask.T)
    usable = np.isfinite(sd) & (sd > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - mean[:, None]) / sd[:, None]
    return np.where(mask & usable[:, None], z, np.nan)


def zscore_mos(
    ratings: np.ndarray,
    *,
    low: float,
    high: float,
    method: Literal["fixed", "minmax"] = "fixed",
) -> ZScoreMos:
    """z-score MOS: per-rater z-scores averaged per image, then put on the field's [low, high] scale.

    Rescaling (the reference notes in /work/shared/reference cite no rescaling for KonIQ-10k or SPAQ, so this is
    a choice, not a citation):
      - "fixed" (default): scaled = low + (z + 3) * (high - low) / 6, clipped to [low, high]. This is the convention
        of the LIVE databases (z-scores assumed to lie in [-3, 3], mapped linearly onto the scale; recalled from
        the LIVE papers, not verified against them here). It is chosen because it does not depend on which images
        are in the release: adding images does not move the scores of the others, unlike min-max.
      - "minmax": the release's lowest z-MOS maps to low and highest to high (what many IQA training loaders do to
        KonIQ's MOS_zscore column). Scores then depend on the extremes of the release.
    """
    if not high > low:
        raise ValueError("high must be greater than low")
    z = rater_zscores(ratings)
    mask = ~np.isnan(z)
    n, z_mos, _ = _column_mean_sd(z, mask)
    if method == "fixed":
        scaled = np.clip(low + (z_mos + 3.0) * (high - low) / 6.0, low, high)
    elif method == "minmax":
        finite = z_mos[np.isfinite(z_mos)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (np.nan, np.nan)
        if finite.size and hi > lo:
            scaled = low + (z_mos - lo) * (high - low) / (hi - lo)
        else:
            # A single image, or all equal: there is no range to stretch; put them in the middle.
            scaled = np.where(np.isfinite(z_mos), (low + high) / 2.0, np.nan)
    else:
        raise ValueError("method must be 'fixed' or 'minmax'")
    return ZScoreMos(z=z_mos, scaled=np.where(np.isfinite(z_mos), scaled, np.nan), n=n.astype(np.int64))


@dataclass(frozen=True)
class SplitHalfResult:
    """Spearman-Brown corrected split-half correlations, averaged over random splits.

    srcc / plcc: mean over splits of 2r/(1+r) of the Spearman / Pearson correlation between the two halves' MOS.
    images: images used (those with at least two ratings). splits: splits averaged.
    """

    srcc: float
    plcc: float
    images: int
    splits: int


def _spearman_brown(r: np.ndarray) -> np.ndarray:
    """2r/(1+r); nan at r = -1, where the step-up is undefined (it tends to minus infinity), and for a nan r."""
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(r > -1.0, 2.0 * r / (1.0 + r), np.nan)


def split_half(ratings: np.ndarray, *, seed: int = 0, splits: int = 100) -> SplitHalfResult:
    """Split-half reliability of the MOS.

    For each split, the raters of every image are shuffled independently and divided into two halves (with an odd
    count the extra rating goes to either half at random), the MOS of each half is taken, and the halves are
    correlated across images (Pearson and Spearman). Each correlation is stepped up to the full number of ratings
    with Spearman-Brown, 2r/(1+r), then averaged over `splits` splits. Images with fewer than two ratings cannot be
    split and are left out. nan when fewer than three images can be split (no meaningful correlation), and nan when
    a split's halves correlate at exactly -1 or not at all (no variation): Spearman-Brown is undefined there, and
    an average over splits with an undefined one is undefined too.
    """
    x = as_ratings(ratings)
    if splits < 1:
        raise ValueError("splits must be at least 1")
    mask = ~np.isnan(x)
    keep = mask.sum(axis=0) >= 2
    x = x[:, keep]
    mask = mask[:, keep]
    images = int(keep.sum())
    if images < 3:
        return SplitHalfResult(srcc=float("nan"), plcc=float("nan"), images=images, splits=splits)
    n = mask.sum(axis=0)
    filled = np.where(mask, x, 0.0)
    # Each split draws a random key per cell of the (raters, images) matrix, then one coin per image. Several
    # splits are drawn at once, in that order and amount (a Generator's stream does not depend on how it is cut
    # into calls), so a seed gives the same halves, and the same figures, as drawing split by split.
    per_split = x.size + n.size
    rng = np.random.default_rng(seed)
    chunk = max(1, min(splits, _SPLIT_HALF_DRAWS // per_split))
    srcc = np.empty(splits)
    plcc = np.empty(splits)
    for first in range(0, splits, chunk):
        count = min(chunk, splits - first)
        draws = rng.random((count, per_split))
        keys = np.where(mask, draws[:, : x.size].reshape(count, *x.shape), np.inf)
        coin = draws[:, x.size :]
        # Odd counts: half A gets floor(n/2) or ceil(n/2) with equal chance, so neither half is always bigger.
        size_a = n // 2 + ((n % 2 == 1) & (coin < 0.5))
        # Half A: the size_a smallest keys of each image, i.e. the keys up to the size_a-th smallest (one sort
        # along each image's own contiguous keys instead of a double argsort across the matrix)
        by_image = np.sort(keys.transpose(0, 2, 1), axis=2)
        cut = np.take_along_axis(by_image, (size_a - 1)[:, :, None], axis=2)[:, :, 0]
        in_a = keys <= cut[:, None, :]
        in_b = mask & ~in_a
        # sums over the raters axis, row after row, as before: the same roundings, so the same ties in the ranks
        mos_a = (filled * in_a).sum(axis=1) / size_a
        mos_b = (filled * in_b).sum(axis=1) / (n - size_a)
        for row in range(count):
            plcc[first + row] = _pearson(mos_a[row], mos_b[row])
            srcc[first + row] = _pearson(_average_ranks(mos_a[row]), _average_ranks(mos_b[row]))
    plcc = _spearman_brown(plcc)
    srcc = _spearman_brown(srcc)
    return SplitHalfResult(srcc=float(np.mean(srcc)), plcc=float(np.mean(plcc)), images=images, splits=splits)


# Random numbers drawn at once in split_half: 1M doubles (8 MB), six splits of a release-sized field; chunks
# many times larger were slower (their temporaries come fresh from the OS, page by page).
_SPLIT_HALF_DRAWS = 1 << 20


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank: scipy.stats.rankdata(a) (method "average")."""
    sorter = np.argsort(a)
    inverse = np.empty(sorter.size, dtype=np.intp)
    inverse[sorter] = np.arange(sorter.size)
    ordered = a[sorter]
    first = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    dense = np.cumsum(first)[inverse]
    bounds = np.concatenate((np.flatnonzero(first), [first.size]))
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denom) if denom > 0 else float("nan")


@dataclass(frozen=True)
class RaterTable:
    """Per rater (arrays of length raters):

    n_ratings: ratings given.
    n_compared: ratings on images that at least two other raters also rated (the ones compared below).
    plcc: Pearson correlation between the rater's ratings and the leave-one-out MOS on those images (nan with fewer
        than three such images or no variation).
    bias: mean of (rating - leave-one-out MOS) on those images (nan with none).
    """

    n_ratings: np.ndarray
    n_compared: np.ndarray
    plcc: np.ndarray
    bias: np.ndarray


def rater_table(ratings: np.ndarray) -> RaterTable:
    """Agreement of each rater with everyone else.

    The leave-one-out MOS of image u for rater r is the mean of the other raters' ratings of u. Leaving the rater
    out matters: with the rater included, the MOS is pulled towards them and every rater looks more in line than
    they are, most of all on images with few ratings. Only images with at least two other ratings are compared, so
    that the reference is itself an average.
    """
    x = as_ratings(ratings)
    mask = ~np.isnan(x)
    filled = np.where(mask, x, 0.0)
    total = filled.sum(axis=0)
    count = mask.sum(axis=0)
    others = count[None, :] - 1
    use = mask & (others >= 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        loo = np.where(use, (total[None, :] - filled) / others, 0.0)
    r_vals = np.where(use, x, 0.0)
    k = use.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        bias = np.where(k > 0, (r_vals - loo).sum(axis=1) / k, np.nan)
        mean_r = r_vals.sum(axis=1) / k
        mean_l = loo.sum(axis=1) / k
        dr = np.where(use, r_vals - mean_r[:, None], 0.0)
        dl = np.where(use, loo - mean_l[:, None], 0.0)
        cov = (dr * dl).sum(axis=1)
        denom = np.sqrt((dr * dr).sum(axis=1) * (dl * dl).sum(axis=1))
        plcc = np.where((k >= 3) & (denom > 0), cov / denom, np.nan)
    return RaterTable(
        n_ratings=mask.sum(axis=1).astype(np.int64),
        n_compared=k.astype(np.int64),
        plcc=plcc,
        bias=bias,
    )
