"""Krippendorff's alpha for nominal, ordinal, interval and ratio data, plus a unit-bootstrap interval.

Definitions follow Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability"
(https://repository.upenn.edu/asc_papers/43): for the pairable units (units with at least two values), the
coincidence matrix is o_ck = sum_u (number of c-k pairs in u) / (m_u - 1), n_c = sum_k o_ck, n = sum_c n_c, and

    alpha = 1 - (n - 1) * sum_ck o_ck d2_ck / sum_ck n_c n_k d2_ck.

The results are those of the `krippendorff` package (0.9.0, `krippendorff.alpha`) to ~1e-12; the tests hold that to
1e-9. The package builds a units x values x values array, which is what took 9.4 s on a 14,715-unit interval matrix
with 91 distinct values (see /work/shared/reference/engineering-notes.md). Here no step is O(units * V^2):

- interval: closed form over per-unit sums. For a unit with values x_1..x_m, the sum over ordered pairs of
  (x_i - x_j)^2 is 2 m SS_u (SS_u = sum of squared deviations from the unit mean), so the observed term is
  sum_u 2 m_u SS_u / (m_u - 1) and the expected term is 2 n SS_total. O(N).
- ordinal: Krippendorff's ordinal distance between values c <= k is (sum_{g=c..k} n_g - (n_c + n_k)/2)^2, which is
  exactly (p_k - p_c)^2 with the "mid-rank" p_c = sum_{g<c} n_g + n_c/2 (a cumulative sum). Ordinal alpha is
  therefore interval alpha on the values mapped to p, O(N log N) for any number of distinct values V.
- nominal: the observed term only needs, per unit, the number of equal pairs sum_c n_uc (n_uc - 1) and the expected
  term is n^2 - sum_c n_c^2. O(N log N).
- ratio: d2 = ((c - k) / (c + k))^2 has no sum form. The observed term is summed over the pairs inside each unit
  (O(sum_u m_u^2)); the expected term is n^T D n over the distinct values, O(V^2) time, done in row blocks so that
  memory stays bounded. Fast for the few distinct values of a rating scale; slow if V reaches tens of thousands.

"Undefined" is returned as None, never as a number: when no unit has two values, or when the expected
disagreement is zero (all pairable values equal). DKPro returns 0 there and the package returns nan; both are
easy to mistake for a real value (see protocols.md section 6).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from annotation_site.statistics.matrix import as_ratings
import scipy.sparse as sp

LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")

# Row block for the O(V^2) ratio expected-disagreement sum: 2**22 doubles (32 MB) at a time.
_BLOCK_ELEMENTS = 1 << 22
# Resamples processed together in the bootstrap: big enough for BLAS to be efficient, small enough that the
# (resamples x units) weight matrix of a 15k-unit release stays at a few MB.
_BOOTSTRAP_CHUNK = 64


@dataclass(frozen=True)
class AlphaResult:
    """Alpha with its bootstrap percentile interval and the counts a release should report next to it.

    alpha, low, high: None when undefined (see `krippendorff_alpha`).
    units: pairable units (units with at least two values), the units the bootstrap resamples.
    raters: raters with at least one value in a pairable unit.
    pairable_values: n, the number of values in pairable units.
    defined_resamples: resamples whose alpha was defined (a resample that drew only units holding one same value
        has no expected disagreement); the interval is taken over these.
    """

    alpha: float | None
    low: float | None
    high: float | None
    units: int
    raters: int
    pairable_values: int
    defined_resamples: int = 0


@dataclass(frozen=True)
class _Pairable:
    """The pairable part of a reliability matrix, compacted per unit.

    y: (K, U) values of each pairable unit sorted ascending in rows 0..m_u-1, nan below (K = max m_u). Sorting
       puts each unit's values first, so pair loops only visit K rows instead of all raters.
    m: (U,) values per unit.
    raters: raters with a value in some pairable unit.
    """

    y: np.ndarray
    m: np.ndarray
    raters: int

    @property
    def valid(self) -> np.ndarray:
        return np.arange(self.y.shape[0])[:, None] < self.m[None, :]

    @property
    def values(self) -> np.ndarray:
        # Column-major order walks unit by unit, so values of the same unit are contiguous.
        return self.y.T[self.valid.T]

    @property
    def unit_of_value(self) -> np.ndarray:
        return np.repeat(np.arange(self.m.size), self.m)

    @property
    def n(self) -> int:
        return int(self.m.sum())


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def _check_domain(x: np.ndarray, level: str, value_domain: object) -> None:
    """The domain only validates: values outside it are an error, as in the package. Values of the domain that
    never occur have n_c = 0 and change no level's alpha, so the domain plays no part in the arithmetic."""
    if value_domain is None:
        return
    domain = np.asarray(value_domain, dtype=np.float64).ravel()
    if domain.size < 2:
        raise ValueError("value_domain needs at least two values")
    if level == "ordinal" and np.any(np.diff(domain) <= 0):
        # Ordinal ranks are taken from numeric order (the caller passes ranks); a domain in another order would
        # silently mean something else, so refuse it.
        raise ValueError("for ordinal data value_domain must be strictly increasing (it is the rank order)")
    present = x[~np.isnan(x)]
    if not np.isin(present, domain).all():
        raise ValueError("the reliability data contains values outside value_domain")


def _pairable(x: np.ndarray) -> _Pairable:
    present = ~np.isnan(x)
    m_all = present.sum(axis=0)
    keep = m_all >= 2  # a unit with a single value has no pair: it carries no information about agreement
    m = m_all[keep]
    raters = int((present[:, keep]).any(axis=1).sum())
    k = int(m.max()) if m.size else 0
    y = np.sort(x[:, keep], axis=0)[:k]  # np.sort puts nan last
    return _Pairable(y=y, m=m.astype(np.int64), raters=raters)


def _midranks(values: np.ndarray) -> np.ndarray:
    """Map each value to p_c = (number of pairable values below c) + n_c / 2."""
    _, codes, counts = np.unique(values, return_inverse=True, return_counts=True)
    p = np.cumsum(counts) - counts / 2.0
    return p[codes]


def _interval_terms(p: _Pairable, y: np.ndarray) -> tuple[float, float]:
    """Observed and expected disagreement sums for squared differences, from per-unit deviations.

    Deviations are taken from the unit mean (observed) and from the grand mean (expected) rather than from raw sums
    of squares, so that 2 m S2 - 2 S1^2 style cancellation cannot cost digits."""
    valid = p.valid
    filled = np.where(valid, y, 0.0)
    unit_mean = filled.sum(axis=0) / p.m
    dev = np.where(valid, y - unit_mean, 0.0)
    ss_unit = (dev * dev).sum(axis=0)
    observed = float(np.sum(2.0 * p.m * ss_unit / (p.m - 1)))
    values = y.T[valid.T]
    centred = values - values.mean()
    expected = 2.0 * values.size * float(centred @ centred)
    return observed, expected


def _nominal_terms(p: _Pairable) -> tuple[float, float]:
    values = p.values
    _, codes, counts = np.unique(values, return_inverse=True, return_counts=True)
    v = counts.size
    key = p.unit_of_value * v + codes
    keys, per_key = np.unique(key, return_counts=True)
    equal_pairs = np.bincount(keys // v, weights=per_key * (per_key - 1.0), minlength=p.m.size)
    m = p.m.astype(np.float64)
    # ordered unequal pairs in a unit = m(m-1) - equal pairs, each weighted 1/(m-1)
    observed = float(np.sum(m - equal_pairs / (m - 1)))
    n = float(values.size)
    expected = n * n - float(counts.astype(np.float64) @ counts)
    return observed, expected


def _ratio_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    total = a + b
    diff = a - b
    # The package defines the distance as 0 where c + k == 0 (only possible with non-positive values); keep that.
    return np.square(np.divide(diff, total, out=np.zeros(np.broadcast(diff, total).shape), where=total != 0))


def _ratio_unit_observed(p: _Pairable) -> np.ndarray:
    """Per-unit observed ratio term sum_{i != j} d2(x_i, x_j) / (m_u - 1)."""
    y = p.y
    k, u = y.shape
    total = np.zeros(u)
    for i in range(k - 1):
        # Row i is valid wherever row j > i is (values are packed at the top), so masking on j is enough.
        d = _ratio_distance(y[i][None, :], y[i + 1 :])
        total += np.where(p.valid[i + 1 :], d, 0.0).sum(axis=0)
    return 2.0 * total / (p.m - 1)


def _ratio_expected(distinct: np.ndarray, counts: np.ndarray) -> float:
    """sum_ck n_c n_k d2(c, k) over the distinct values, in row blocks (O(V^2) time, bounded memory)."""
    v = distinct.size
    block = max(1, _BLOCK_ELEMENTS // max(v, 1))
    total = 0.0
    counts = counts.astype(np.float64)
    for start in range(0, v, block):
        stop = min(v, start + block)
        d = _ratio_distance(distinct[start:stop, None], distinct[None, :])
        total += float(counts[start:stop] @ (d @ counts))
    return total


def _alpha_from_terms(n: float, observed: float, expected: float) -> float | None:
    if expected <= 0.0:
        return None
    return 1.0 - (n - 1.0) * observed / expected


def _prepare(data: np.ndarray, level: str, value_domain: object) -> tuple[np.ndarray, _Pairable]:
    _check_level(level)
    x = as_ratings(data, units="units")
    _check_domain(x, level, value_domain)
    return x, _pairable(x)


def _is_undefined(p: _Pairable) -> bool:
    # Exact test for D_e = 0 at the nominal, ordinal and interval levels: a single distinct pairable value.
    # (Comparing a floating D_e with 0 would not be exact: the mean of equal floats need not equal them.)
    if p.n < 2:
        return True
    values = p.values
    return bool(values.min() == values.max())


def krippendorff_alpha(data: np.ndarray, level: str, *, value_domain: object = None) -> float | None:
    """Krippendorff's alpha of a (raters, units) reliability matrix with nan for a missing value.

    level: "nominal", "ordinal", "interval" or "ratio". Values are numbers; the caller maps choices to codes and,
    for "ordinal", to ranks (numeric order is the rank order).
    value_domain: optional allowed values; a value outside it raises ValueError (as `krippendorff.alpha` does).
    It never changes the result: values of the domain that do not occur have a zero marginal.

    Units with fewer than two values are not pairable and are dropped (Krippendorff 2011). Returns None when alpha
    is undefined: fewer than two pairable values, or zero expected disagreement (all pairable values equal).
    """
    _, p = _prepare(data, level, value_domain)
    if _is_undefined(p):
        return None
    n = float(p.n)
    if level == "interval":
        return _alpha_from_terms(n, *_interval_terms(p, p.y))
    if level == "ordinal":
        ranks = np.full(p.y.shape, np.nan)
        ranks.T[p.valid.T] = _midranks(p.values)  # ranks are monotone in value, so rows stay sorted
        return _alpha_from_terms(n, *_interval_terms(p, ranks))
    if level == "nominal":
        return _alpha_from_terms(n, *_nominal_terms(p))
    # ratio
    distinct, counts = np.unique(p.values, return_counts=True)
    observed = float(_ratio_unit_observed(p).sum())
    return _alpha_from_terms(n, observed, _ratio_expected(distinct, counts))


# ---------------------------------------------------------------------------------------------------------------
# Bootstrap
# ---------------------------------------------------------------------------------------------------------------


def _resample_weights(rng: np.random.Generator, resamples: int, units: int) -> np.ndarray:
    """(resamples, units) counts: how often each unit is drawn when `units` units are drawn with replacement.

    Returned in the smallest unsigned integer type that holds them (counts are exact in any of them), so that a
    cached set of 1,000 x 15k weights takes ~15 MB rather than 118 MB of float64."""
    draws = rng.integers(0, units, size=(resamples, units))
    offsets = (np.arange(resamples) * units)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=resamples * units).reshape(resamples, units)
    top = int(counts.max()) if counts.size else 0
    dtype = np.uint8 if top <= np.iinfo(np.uint8).max else np.uint16 if top <= np.iinfo(np.uint16).max else np.int64
    return counts.astype(dtype)


# A release bootstraps a dozen fields over the same units with the same seed, and the draws depend only on
# (seed, resamples, units): keep the last few weight sets rather than draw them again for every field.
# Bounded to two entries (~15 MB each for a 15k-unit release).
_WEIGHT_CACHE_SIZE = 2
_weight_cache: OrderedDict[tuple[int, int, int], tuple[np.ndarray, ...]] = OrderedDict()
_weight_cache_lock = threading.Lock()


def _draw_weight_chunks(seed: object, resamples: int, units: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    chunks = []
    for start in range(0, resamples, _BOOTSTRAP_CHUNK):
        chunk = _resample_weights(rng, min(resamples, start + _BOOTSTRAP_CHUNK) - start, units)
        chunk.setflags(write=False)  # shared between calls through the cache
        chunks.append(chunk)
    return tuple(chunks)


def _weight_chunks(seed: object, resamples: int, units: int) -> tuple[np.ndarray, ...]:
    """The resample weights in chunks of _BOOTSTRAP_CHUNK rows, drawn in the same order from the same generator
    as one pass would, so the results do not depend on whether they came from the cache."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        return _draw_weight_chunks(seed, resamples, units)  # a SeedSequence, None, ...: not a safe cache key
    key = (int(seed), resamples, units)
    with _weight_cache_lock:
        cached = _weight_cache.get(key)
        if cached is not None:
            _weight_cache.move_to_end(key)
            return cached
    chunks = _draw_weight_chunks(seed, resamples, units)
    with _weight_cache_lock:
        _weight_cache[key] = chunks
        _weight_cache.move_to_end(key)
        while len(_weight_cache) > _WEIGHT_CACHE_SIZE:
            _weight_cache.popitem(last=False)
    return chunks


def _unit_counts(p: _Pairable) -> tuple[np.ndarray, sp.csr_matrix]:
    """Distinct pairable values and the sparse (units, values) count matrix n_uc."""
    distinct, codes = np.unique(p.values, return_inverse=True)
    c = sp.csr_matrix(
        (np.ones(codes.size), (p.unit_of_value, codes)), shape=(p.m.size, distinct.size)
    )
    c.sum_duplicates()
    return distinct, c


def _bootstrap_chunk_alphas(level: str, p: _Pairable, w: np.ndarray, stats: dict[str, object]) -> np.ndarray:
    """Alpha of each resample in a chunk, from per-unit sufficient statistics computed once.

    Every observed term is a sum over units, so a resample's observed term is w @ (per-unit term). The expected
    term needs the resample's value marginals n^b = w @ C (C = per-unit value counts, sparse)."""
    m = p.m.astype(np.float64)
    n = w @ m
    if level == "interval":
        f = stats["interval"]  # columns: observed term, sum of centred values, sum of their squares
        sums = w @ f
        observed = sums[:, 0]
        expected = 2.0 * n * sums[:, 2] - 2.0 * sums[:, 1] ** 2
    elif level == "nominal":
        observed = w @ stats["unit_observed"]
        c: sp.csr_matrix = stats["counts"]
        marg = np.asarray((c.T @ w.T).T)
        expected = n * n - np.einsum("bv,bv->b", marg, marg)
    elif level == "ratio":
        observed = w @ stats["unit_observed"]
        c = stats["counts"]
        marg = np.asarray((c.T @ w.T).T)
        distinct: np.ndarray = stats["distinct"]
        v = distinct.size
        block = max(1, _BLOCK_ELEMENTS // max(v, 1))
        expected = np.zeros(w.shape[0])
        for start in range(0, v, block):
            stop = min(v, start + block)
            d = _ratio_distance(distinct[start:stop, None], distinct[None, :])
            expected += np.einsum("bv,bv->b", marg[:, start:stop], marg @ d.T)
    else:  # ordinal: the mid-ranks depend on the resample's marginals, so they are recomputed per resample
        c = stats["counts"]
        marg = np.asarray((c.T @ w.T).T)  # (B, V)
        ranks = np.cumsum(marg, axis=1) - marg / 2.0  # (B, V)
        # Centre each resample's ranks on its own mean (shift-invariant) to keep the squares small.
        mean_rank = np.einsum("bv,bv->b", marg, ranks) / n
        ranks = ranks - mean_rank[:, None]
        q1 = np.asarray(c @ ranks.T)  # (U, B): sum of ranks per unit
        q2 = np.asarray(c @ (ranks**2).T)  # (U, B): sum of squared ranks per unit
        per_unit = (2.0 * m[:, None] * q2 - 2.0 * q1**2) / (m[:, None] - 1.0)
        observed = np.einsum("bu,ub->b", w, per_unit)
        expected = 2.0 * n * np.einsum("bv,bv->b", marg, ranks**2)  # sum n_c r_c = 0 after centring
    with np.errstate(divide="ignore", invalid="ignore"):
        alphas = 1.0 - (n - 1.0) * observed / expected
    # A resample whose units all hold one and the same value has D_e = 0: undefined, marked nan. A resample that
    # drew any unit with two different values is defined, and the count of such draws is one exact integer
    # matrix-vector product; only resamples without one (rare on real data) need the min/max over their units.
    candidates = np.flatnonzero((w @ stats["unit_varies"]) == 0)
    if candidates.size:
        chosen = w[candidates] > 0
        lo = np.where(chosen, stats["unit_min"], np.inf).min(axis=1)
        hi = np.where(chosen, stats["unit_max"], -np.inf).max(axis=1)
        alphas[candidates[lo == hi]] = np.nan
    alphas[~(expected > 0)] = np.nan
    return alphas


def _bootstrap_stats(level: str, p: _Pairable) -> dict[str, object]:
    unit_min = p.y[0]
    unit_max = p.y[p.m - 1, np.arange(p.m.size)]
    stats: dict[str, object] = {
        "unit_min": unit_min,
        "unit_max": unit_max,
        "unit_varies": (unit_min != unit_max).astype(np.float64),
    }
    if level == "interval":
        valid = p.valid
        filled = np.where(valid, p.y, 0.0)
        unit_mean = filled.sum(axis=0) / p.m
        dev = np.where(valid, p.y - unit_mean, 0.0)
        unit_observed = 2.0 * p.m * (dev * dev).sum(axis=0) / (p.m - 1)
        grand = p.values.mean()
        centred = np.where(valid, p.y - grand, 0.0)
        stats["interval"] = np.column_stack([unit_observed, centred.sum(axis=0), (centred * centred).sum(axis=0)])
        return stats
    distinct, counts = _unit_counts(p)
    stats["counts"] = counts
    stats["distinct"] = distinct
    if level == "nominal":
        m = p.m.astype(np.float64)
        equal_pairs = np.asarray(counts.multiply(counts).sum(axis=1)).ravel() - m  # sum_c n_uc (n_uc - 1)
        stats["unit_observed"] = m - equal_pairs / (m - 1)
    elif level == "ratio":
        stats["unit_observed"] = _ratio_unit_observed(p)
    return stats


def bootstrap_alpha(
    data: np.ndarray,
    level: str,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    value_domain: object = None,
) -> AlphaResult:
    """Alpha with a percentile bootstrap interval over units.

    Resampling scheme: the pairable units (images) are drawn with replacement, as many as there are, and each drawn
    unit brings all its values. Units are what a dataset release samples from the world of images, and the values
    inside a unit are not independent of each other (they share the image), so the unit is the resampling unit;
    the raters stay as they are. (Hayes & Krippendorff's KALPHA macro bootstraps pairs of values instead; that
    treats the values of an image as independent and tends to give narrower intervals.)

    Speed: per-unit sufficient statistics are computed once; each resample is then a vector of draw counts w over
    units and its alpha follows from w @ (per-unit terms) and the resample's value marginals w @ C, so 1000
    resamples are a few matrix products. The interval is the (1-confidence)/2 and (1+confidence)/2 percentiles of
    the defined resample alphas. All of alpha, low and high are None when alpha itself is undefined.
    """
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be between 0 and 1")
    point = krippendorff_alpha(data, level, value_domain=value_domain)
    _, p = _prepare(data, level, value_domain)
    base = dict(units=int(p.m.size), raters=p.raters, pairable_values=p.n)
    if point is None:
        return AlphaResult(alpha=None, low=None, high=None, **base)
    stats = _bootstrap_stats(level, p)
    alphas = np.empty(resamples)
    start = 0
    for counts in _weight_chunks(seed, resamples, int(p.m.size)):
        stop = start + counts.shape[0]
        alphas[start:stop] = _bootstrap_chunk_alphas(level, p, counts.astype(np.float64), stats)
        start = stop
    defined = alphas[~np.isnan(alphas)]
    if defined.size == 0:
        return AlphaResult(alpha=point, low=None, high=None, **base)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(defined, [tail, 100.0 - tail])
    return AlphaResult(
        alpha=point, low=float(low), high=float(high), defined_resamples=int(defined.size), **base
    )
