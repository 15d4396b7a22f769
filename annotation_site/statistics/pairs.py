"""Pairwise comparisons: scaling, pair selection and Compare2Score's training pairs. numpy/scipy only.

Data. A comparison is (i, j, p): items i and j were compared and p in [0, 1] is the (soft) preference for i over
j. The five answer levels of Compare2Score (arXiv 2405.19298) describe the *second* photo against the first, so
an answer (first, second, level) is the comparison (i=second, j=first, p=LEVEL_PREFERENCE[level]) with
inferior, worse, similar, better, superior = 0, 0.25, 0.5, 0.75, 1 (`level_comparison` does this).

Scaling (`pair_scale`). Maximum a posteriori under Thurstone Case V with a Gaussian prior s ~ N(0, prior_sd^2):

    log P(s | data) = sum_k [ p_k log F(s_i - s_j) + (1 - p_k) log F(s_j - s_i) ] - sum_i s_i^2 / (2 prior_sd^2)

with F = Phi (the standard normal CDF; one unit is the sd of a comparison's judged difference) or, with
model="bradley_terry", the logistic function (choix's and Compare2Score's released code's link). Both terms are
concave, so Newton's method with a backtracking line search finds the unique maximum. prior_sd=None is maximum
likelihood, centred to mean zero (choix's convention); it exists only when every item beats and is beaten by the
others through a chain of comparisons (the directed comparison graph is strongly connected), else
PairScaleError. Identical pairs are summed first, so the work grows with the distinct pairs, not the answers.

Intervals: Laplace, i.e. the posterior is approximated by a Gaussian at the MAP whose covariance is the inverse of
the negative Hessian of the log posterior (for ML: its pseudo-inverse, the covariance under sum-zero), and the
interval is score +- z * sd. Exact inverse up to DENSE_MAX items; beyond that the Newton steps use conjugate
gradients on the sparse Hessian and the interval uses 1 / H_ii (the variance given all other items, which
understates the interval; `ci_method` says "laplace-diagonal").

MOS and comparisons on one scale (`joint_scale`). MOS_k are Gaussian observations of a linear function of the
latent scale, MOS_k ~ N(a + b s_k, se_k^2) with se_k the standard error of item k's MOS. The MAP over s (with the
prior above) and (a, b) is found by alternating: Newton on s given (a, b), which stays concave; weighted least
squares for (a, b) given s; until the log posterior stops rising. Items with only a MOS, or only comparisons, are
placed on the same scale. Reported both on the latent scale and in MOS units (a + b s); the intervals treat
(a, b) as known. b must come out positive (higher MOS = preferred), else PairScaleError: the two kinds of data
disagree.

Pair selection. `expected_information_gain` is the mutual information between the answer (taken as binary under
the same link) and the scale, for a pair whose difference is N(m, v) under the current posterior (Gauss-Hermite
quadrature, as Hybrid-MST, Li et al. NeurIPS 2018). `select_pairs_active` returns a batch: a minimum spanning tree
over 1/EIG on the candidate pairs (Hybrid-MST / ASAP batch mode: n - 1 pairs that connect every item, the most
informative first) or a greedy matching by EIG. `select_pairs_random` is the balanced random control (a random
matching that prefers the least-compared items and avoids repeats). `anchor_select` picks Compare2Score's
anchors: the MOS range cut into equal intervals, in each the item with the least rating variance;
`anchor_pairs` compares every other item with each anchor, and the anchors with each other.

Training pairs (`compare2score_levels`, `training_pairs`), Compare2Score section 3.1: with q_ij = q_i - q_j
(first minus second) and s_ij = sqrt(sd_i^2 + sd_j^2), the level of the second item is inferior if q_ij > 2 s_ij,
worse if s_ij < q_ij <= 2 s_ij, similar if -s_ij < q_ij <= s_ij, better if -2 s_ij <= q_ij <= -s_ij and superior
if q_ij < -2 s_ij (the paper leaves q_ij = -2 s_ij in no class; it goes to better here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.sparse.linalg import cg
from scipy.special import expit, log_expit, log_ndtr, ndtr, ndtri

COMPARISON_LEVELS = ("inferior", "worse", "similar", "better", "superior")
LEVEL_PREFERENCE = {"inferior": 0.0, "worse": 0.25, "similar": 0.5, "better": 0.75, "superior": 1.0}
PAIR_MODELS = ("thurstone", "bradley_terry")
DENSE_MAX = 3000
Model = Literal["thurstone", "bradley_terry"]

_HERMITE_X, _HERMITE_W = np.polynomial.hermite_e.hermegauss(24)
_HERMITE_W = _HERMITE_W / _HERMITE_W.sum()  # expectation under N(0, 1)


class PairScaleError(ValueError):
    """The data cannot give a scale: the message says why (one-sided or disconnected comparisons without a
    prior, or MOS and comparisons ordering the items in opposite directions)."""


@dataclass(frozen=True)
class PairScale:
    score: np.ndarray  # (n,) MAP (or ML) scale, mean zero without MOS
    sd: np.ndarray  # (n,) posterior standard deviation (Laplace)
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_comparisons: np.ndarray  # (n,) comparisons each item took part in (summed weights)
    model: str
    prior_sd: float | None
    confidence: float
    ci_method: str  # "laplace" (inverse Hessian) or "laplace-diagonal" (1 / H_ii, large n)
    covariance: np.ndarray | None  # (n, n) when computed exactly, for pair selection
    iterations: int


@dataclass(frozen=True)
class JointScale:
    latent: PairScale  # the scale of the comparisons, MOS included as observations
    intercept: float  # a in MOS ~ a + b * s
    slope: float  # b > 0
    score: np.ndarray  # a + b * latent.score: every item in MOS units
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_mos: int  # items with a MOS


# ----------------------------------------------------------------------------------------------------- input


def level_comparison(first: int, second: int, level: str) -> tuple[int, int, float]:
    """An answer "the second is <level> than the first" as the comparison (i, j, p): p prefers i over j."""
    if level not in LEVEL_PREFERENCE:
        raise ValueError(f"level must be one of {', '.join(COMPARISON_LEVELS)}, got {level!r}")
    return second, first, LEVEL_PREFERENCE[level]


def _as_comparisons(
    n_items: int, i: object, j: object, p: object, weight: object | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(n_items, (int, np.integer)) or isinstance(n_items, bool) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    first = np.asarray(i)
    second = np.asarray(j)
    pref = np.asarray(p, dtype=np.float64)
    w = np.ones(pref.shape) if weight is None else np.asarray(weight, dtype=np.float64)
    if not (first.ndim == second.ndim == pref.ndim == w.ndim == 1):
        raise ValueError("i, j, p and weight must be 1-D")
    if not (len(first) == len(second) == len(pref) == len(w)):
        raise ValueError(f"i, j, p and weight differ in length: {len(first)}, {len(second)}, {len(pref)}, {len(w)}")
    if len(first) and not (np.issubdtype(first.dtype, np.integer) and np.issubdtype(second.dtype, np.integer)):
        raise ValueError("i and j must be integer item indices")
    first = first.astype(np.int64)
    second = second.astype(np.int64)
    if len(first) and (min(first.min(), second.min()) < 0 or max(first.max(), second.max()) >= n_items):
        raise ValueError(f"item indices must lie in [0, {n_items})")
    if np.any(first == second):
        raise ValueError(f"an item is compared with itself at comparison {int(np.argmax(first == second))}")
    if not np.all(np.isfinite(pref)) or np.any((pref < 0) | (pref > 1)):
        raise ValueError("p must be finite preferences in [0, 1]")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weight must be finite and non-negative")
    return first, second, pref, w


@dataclass(frozen=True)
class _Pairs:
    """Distinct unordered pairs (u < v) with the soft wins of u over v and of v over u."""

    u: np.ndarray
    v: np.ndarray
    wins_u: np.ndarray
    wins_v: np.ndarray


def _aggregate(n_items: int, i: np.ndarray, j: np.ndarray, p: np.ndarray, w: np.ndarray) -> _Pairs:
    u = np.minimum(i, j)
    v = np.maximum(i, j)
    p_u = np.where(i == u, p, 1.0 - p)  # preference for the lower index
    keys, inverse = np.unique(u * n_items + v, return_inverse=True)
    wins_u = np.bincount(inverse, weights=w * p_u, minlength=len(keys))
    wins_v = np.bincount(inverse, weights=w * (1.0 - p_u), minlength=len(keys))
    return _Pairs(keys // n_items, keys % n_items, wins_u, wins_v)


# --------------------------------------------------------------------------------------------------- links


def _log_f(d: np.ndarray, model: str) -> np.ndarray:
    return log_ndtr(d) if model == "thurstone" else log_expit(d)


def _score_terms(d: np.ndarray, wins_u: np.ndarray, wins_v: np.ndarray, model: str) -> tuple[np.ndarray, np.ndarray]:
    """First derivative and curvature (minus the second derivative, >= 0) of
    wins_u log F(d) + wins_v log F(-d) with respect to d."""
    if model == "thurstone":
        lam_pos = np.exp(-0.5 * d * d - 0.5 * np.log(2 * np.pi) - log_ndtr(d))  # phi(d) / Phi(d)
        lam_neg = np.exp(-0.5 * d * d - 0.5 * np.log(2 * np.pi) - log_ndtr(-d))
        grad = wins_u * lam_pos - wins_v * lam_neg
        curv = wins_u * lam_pos * (d + lam_pos) + wins_v * lam_neg * (-d + lam_neg)
        return grad, curv
    sig = expit(d)
    grad = wins_u * (1.0 - sig) - wins_v * sig
    curv = (wins_u + wins_v) * sig * (1.0 - sig)
    return grad, curv


# -------------------------------------------------------------------------------------------------- solver


def _log_posterior(s: np.ndarray, pairs: _Pairs, model: str, h: np.ndarray, g: np.ndarray) -> float:
    d = s[pairs.u] - s[pairs.v]
    ll = np.sum(pairs.wins_u * _log_f(d, model) + pairs.wins_v * _log_f(-d, model))
    return float(ll - 0.5 * np.sum(h * s * s) + np.sum(g * s))


def _precision(n: int, s: np.ndarray, pairs: _Pairs, model: str, h: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Minus the Hessian of the log posterior (sparse) and the comparisons' part of the gradient."""
    d = s[pairs.u] - s[pairs.v]
    grad_d, curv = _score_terms(d, pairs.wins_u, pairs.wins_v, model)
    grad = np.bincount(pairs.u, weights=grad_d, minlength=n) - np.bincount(pairs.v, weights=grad_d, minlength=n)
    diag = np.bincount(pairs.u, weights=curv, minlength=n) + np.bincount(pairs.v, weights=curv, minlength=n) + h
    rows = np.concatenate([pairs.u, pairs.v, np.arange(n)])
    cols = np.concatenate([pairs.v, pairs.u, np.arange(n)])
    vals = np.concatenate([-curv, -curv, diag])
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, n)), grad


def _solve(a: sparse.csr_matrix, b: np.ndarray, gauge_free: bool) -> np.ndarray:
    n = a.shape[0]
    if n <= DENSE_MAX:
        dense = a.toarray()
        if gauge_free:
            dense += 1.0 / n  # A + 11'/n is invertible; the solution of a sum-zero b stays sum-zero
        return np.linalg.solve(dense, b)
    diag = a.diagonal()
    preconditioner = sparse.diags(1.0 / np.where(diag > 0, diag, 1.0))
    x, _ = cg(a, b, rtol=1e-12, maxiter=10 * n, M=preconditioner)
    return x - x.mean() if gauge_free else x


def _newton(
    n: int, pairs: _Pairs, model: str, h: np.ndarray, g: np.ndarray, start: np.ndarray, max_iterations: int, tol: float
) -> tuple[np.ndarray, int]:
    gauge_free = not np.any(h > 0)
    s = start.copy()
    value = _log_posterior(s, pairs, model, h, g)
    for iteration in range(1, max_iterations + 1):
        a, grad = _precision(n, s, pairs, model, h)
        grad = grad - h * s + g
        step = _solve(a, grad, gauge_free)
        size = 1.0
        while True:
            trial = s + size * step
            trial_value = _log_posterior(trial, pairs, model, h, g)
            if trial_value >= value - 1e-12 * abs(value) or size < 1e-8:
                break
            size *= 0.5
        s, value = trial, trial_value
        if np.max(np.abs(size * step)) < tol:
            return s, iteration
    return s, max_iterations


def _covariance(a: sparse.csr_matrix, gauge_free: bool) -> tuple[np.ndarray | None, np.ndarray, str]:
    n = a.shape[0]
    if n <= DENSE_MAX:
        dense = a.toarray()
        if gauge_free:
            cov = np.linalg.inv(dense + 1.0 / n) - 1.0 / n  # the pseudo-inverse: covariance under sum-zero
        else:
            cov = np.linalg.inv(dense)
        cov = 0.5 * (cov + cov.T)
        return cov, np.sqrt(np.clip(np.diag(cov), 0.0, None)), "laplace"
    return None, 1.0 / np.sqrt(a.diagonal()), "laplace-diagonal"


def _check_ml_exists(n: int, pairs: _Pairs) -> None:
    took_part = np.zeros(n, dtype=bool)
    took_part[pairs.u] = True
    took_part[pairs.v] = True
    if not took_part.all():
        raise PairScaleError(
            f"{int((~took_part).sum())} item(s) have no comparison; maximum likelihood needs a prior (prior_sd) for them"
        )
    beats_u = pairs.wins_u > 0
    beats_v = pairs.wins_v > 0
    rows = np.concatenate([pairs.u[beats_u], pairs.v[beats_v]])
    cols = np.concatenate([pairs.v[beats_u], pairs.u[beats_v]])
    graph = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    count, _ = connected_components(graph, directed=True, connection="strong")
    if count > 1:
        raise PairScaleError(
            f"the comparisons split the items into {count} groups that never lose (or never win) against each other; "
            "maximum likelihood diverges there: give a prior (prior_sd)"
        )


def _check_prior(prior_sd: float | None) -> None:
    if prior_sd is not None and not (np.isfinite(prior_sd) and prior_sd > 0):
        raise ValueError(f"prior_sd must be a positive number or None, got {prior_sd!r}")


def _check_common(model: str, confidence: float) -> float:
    if model not in PAIR_MODELS:
        raise ValueError(f"model must be one of {', '.join(PAIR_MODELS)}, got {model!r}")
    if not (0 < confidence < 1):
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    return float(ndtri(0.5 + confidence / 2))


def _fit(
    n: int, pairs: _Pairs, model: str, h: np.ndarray, g: np.ndarray, start: np.ndarray, z: float,
    counts: np.ndarray, prior_sd: float | None, confidence: float, max_iterations: int, tol: float,
) -> PairScale:
    score, iterations = _newton(n, pairs, model, h, g, start, max_iterations, tol)
    gauge_free = not np.any(h > 0)
    if gauge_free:
        score = score - score.mean()
    a, _ = _precision(n, score, pairs, model, h)
    cov, sd, method = _covariance(a, gauge_free)
    return PairScale(
        score=score, sd=sd, ci_low=score - z * sd, ci_high=score + z * sd, n_comparisons=counts, model=model,
        prior_sd=prior_sd, confidence=confidence, ci_method=method, covariance=cov, iterations=iterations,
    )


def pair_scale(
    n_items: int,
    i: Sequence[int] | np.ndarray,
    j: Sequence[int] | np.ndarray,
    p: Sequence[float] | np.ndarray,
    *,
    weight: Sequence[float] | np.ndarray | None = None,
    model: Model = "thurstone",
    prior_sd: float | None = 1.0,
    confidence: float = 0.95,
    max_iterations: int = 100,
    tol: float = 1e-10,
) -> PairScale:
    """The scale of n_items from comparisons (i[k], j[k], p[k]), p the preference for i over j (see the module
    docstring). prior_sd=1.0 is Compare2Score's sum of q^2 / 2; None gives maximum likelihood."""
    z = _check_common(model, confidence)
    _check_prior(prior_sd)
    first, second, pref, w = _as_comparisons(n_items, i, j, p, weight)
    pairs = _aggregate(n_items, first, second, pref, w)
    counts = np.bincount(first, weights=w, minlength=n_items) + np.bincount(second, weights=w, minlength=n_items)
    if prior_sd is None:
        _check_ml_exists(n_items, pairs)
        h = np.zeros(n_items)
    else:
        h = np.full(n_items, 1.0 / prior_sd**2)
    return _fit(
        n_items, pairs, model, h, np.zeros(n_items), np.zeros(n_items), z, counts, prior_sd, confidence,
        max_iterations, tol,
    )


def joint_scale(
    n_items: int,
    i: Sequence[int] | np.ndarray,
    j: Sequence[int] | np.ndarray,
    p: Sequence[float] | np.ndarray,
    *,
    mos: Sequence[float] | np.ndarray,
    mos_se: Sequence[float] | np.ndarray,
    weight: Sequence[float] | np.ndarray | None = None,
    model: Model = "thurstone",
    prior_sd: float = 1.0,
    confidence: float = 0.95,
    max_rounds: int = 200,
    tol: float = 1e-9,
) -> JointScale:
    """Comparisons and absolute MOS on one scale (module docstring). mos and mos_se have one entry per item,
    nan where an item has no MOS; mos_se is the standard error of the MOS (> 0)."""
    z = _check_common(model, confidence)
    if prior_sd is None:
        raise ValueError("joint_scale needs a prior (prior_sd > 0): it fixes the location of the latent scale")
    _check_prior(prior_sd)
    first, second, pref, w = _as_comparisons(n_items, i, j, p, weight)
    m = np.asarray(mos, dtype=np.float64)
    se = np.asarray(mos_se, dtype=np.float64)
    if m.shape != (n_items,) or se.shape != (n_items,):
        raise ValueError(f"mos and mos_se must have one entry per item ({n_items}), got {m.shape} and {se.shape}")
    has = ~np.isnan(m)
    if np.isinf(m).any():
        raise ValueError("mos must not contain infinities; use nan for an item without a MOS")
    if not np.all(np.isfinite(se[has]) & (se[has] > 0)):
        raise ValueError("mos_se must be a positive finite standard error wherever mos is given")
    pairs = _aggregate(n_items, first, second, pref, w)
    counts = np.bincount(first, weights=w, minlength=n_items) + np.bincount(second, weights=w, minlength=n_items)
    both = has & (counts > 0)
    if both.sum() < 3:
        raise PairScaleError(
            f"only {int(both.sum())} item(s) have both a MOS and comparisons; at least 3 are needed to put them on one scale"
        )
    prior_h = np.full(n_items, 1.0 / prior_sd**2)
    precision = np.where(has, 1.0 / np.where(has, se, 1.0) ** 2, 0.0)
    m0 = np.where(has, m, 0.0)

    # Start: the comparisons alone, and the weighted least-squares map of their scale onto the MOS.
    alone = _newton(n_items, pairs, model, prior_h, np.zeros(n_items), np.zeros(n_items), 100, 1e-8)[0]
    a, b = _wls(alone[both], m[both], precision[both])
    if b <= 0:
        raise PairScaleError(
            "the absolute ratings and the comparisons order the items in opposite directions (negative slope)"
        )
    s = alone
    previous = -np.inf
    for _ in range(max_rounds):
        h = prior_h + b * b * precision
        g = b * (m0 - a) * precision
        s, _ = _newton(n_items, pairs, model, h, g, s, 100, tol)
        a, b = _wls(s[has], m[has], precision[has])
        if b <= 0:
            raise PairScaleError(
                "the absolute ratings and the comparisons order the items in opposite directions (negative slope)"
            )
        value = _log_posterior(s, pairs, model, prior_h, np.zeros(n_items)) - 0.5 * np.sum(
            precision * (m0 - a - b * s) ** 2
        )
        if value - previous < tol * max(1.0, abs(value)):
            break
        previous = value
    h = prior_h + b * b * precision
    g = b * (m0 - a) * precision
    latent = _fit(n_items, pairs, model, h, g, s, z, counts, prior_sd, confidence, 100, tol)
    return JointScale(
        latent=latent, intercept=a, slope=b, score=a + b * latent.score, ci_low=a + b * latent.ci_low,
        ci_high=a + b * latent.ci_high, n_mos=int(has.sum()),
    )


def _wls(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """Weighted least squares y ~ a + b x."""
    total = weight.sum()
    mx = np.sum(weight * x) / total
    my = np.sum(weight * y) / total
    sxx = np.sum(weight * (x - mx) ** 2)
    if sxx <= 0:
        raise PairScaleError("the items with a MOS all sit at one point of the comparison scale")
    b = float(np.sum(weight * (x - mx) * (y - my)) / sxx)
    return float(my - b * mx), b


# ---------------------------------------------------------------------------------------------- selection


def _binary_entropy(q: np.ndarray) -> np.ndarray:
    q = np.clip(q, 1e-15, 1 - 1e-15)
    return -(q * np.log(q) + (1 - q) * np.log1p(-q))


@dataclass(frozen=True)
class AnswerModel:
    """How raters turn a difference on the scale into one of the five levels (an ordered probit): the level is
    the number of the cuts (-outer, -inner, inner, outer) below gain * d + N(0, 1), d the difference of the item
    preferred by a higher level. Fitted to the answers so far by `answer_model_fit`."""

    gain: float
    inner: float
    outer: float

    def probabilities(self, d: np.ndarray) -> np.ndarray:
        """P(level | d) for each of the five levels, along a new last axis."""
        cuts = np.array([-self.outer, -self.inner, self.inner, self.outer])
        below = ndtr(cuts - self.gain * np.asarray(d, dtype=np.float64)[..., None])
        upper = np.concatenate([below, np.ones(below.shape[:-1] + (1,))], axis=-1)
        lower = np.concatenate([np.zeros(below.shape[:-1] + (1,)), below], axis=-1)
        return np.clip(upper - lower, 1e-15, 1.0)


def answer_model_fit(
    scale: PairScale, i: Sequence[int] | np.ndarray, j: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray
) -> AnswerModel:
    """The ordered probit of the five levels given the current scale, by maximum likelihood over the answers so
    far (p rounded to the nearest level). Few answers, or answers the fit cannot separate, give the default
    model (gain 1, cuts 0.5 and 1.5)."""
    from scipy.optimize import minimize

    first, second, pref, _ = _as_comparisons(len(scale.score), i, j, p, None)
    default = AnswerModel(gain=1.0, inner=0.5, outer=1.5)
    if len(first) < 20:
        return default
    d = scale.score[first] - scale.score[second]
    level = np.clip(np.rint(pref * 4).astype(int), 0, 4)

    def negative_log_likelihood(theta: np.ndarray) -> float:
        model = AnswerModel(gain=float(np.exp(theta[0])), inner=float(np.exp(theta[1])),
                            outer=float(np.exp(theta[1]) + np.exp(theta[2])))
        return -float(np.sum(np.log(model.probabilities(d)[np.arange(len(d)), level])))

    start = np.log([1.0, 0.5, 1.0])
    result = minimize(negative_log_likelihood, start, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-6})
    if not result.success or not np.all(np.isfinite(result.x)) or np.any(np.abs(result.x) > 6):
        return default
    gain, inner, extra = np.exp(result.x)
    return AnswerModel(gain=float(gain), inner=float(inner), outer=float(inner + extra))


def _entropy(q: np.ndarray) -> np.ndarray:
    return -np.sum(q * np.log(q), axis=-1)


def expected_information_gain(
    mean_diff: np.ndarray | float,
    var_diff: np.ndarray | float,
    *,
    model: Model = "thurstone",
    answers: AnswerModel | None = None,
) -> np.ndarray:
    """Mutual information (nats) between the answer and the scale, for pairs whose difference is
    N(mean_diff, var_diff) under the current posterior: H(E[P(answer | d)]) - E[H(P(answer | d))], by
    Gauss-Hermite quadrature. The answer is binary under the scale's link, or one of the five levels under
    `answers` (which values far pairs more: "superior" against "better" still tells something)."""
    m = np.atleast_1d(np.asarray(mean_diff, dtype=np.float64))
    v = np.broadcast_to(np.clip(np.asarray(var_diff, dtype=np.float64), 0.0, None), m.shape)
    out = np.empty(m.shape)
    chunk = 20000
    for start in range(0, len(m), chunk):
        d = m[start : start + chunk, None] + np.sqrt(v[start : start + chunk, None]) * _HERMITE_X
        if answers is None:
            q = ndtr(d) if model == "thurstone" else expit(d)
            marginal = np.sum(q * _HERMITE_W, axis=-1)
            out[start : start + chunk] = _binary_entropy(marginal) - np.sum(_binary_entropy(q) * _HERMITE_W, axis=-1)
        else:
            q = answers.probabilities(d)  # (pairs, nodes, 5)
            marginal = np.einsum("pnk,n->pk", q, _HERMITE_W)
            out[start : start + chunk] = _entropy(marginal) - _entropy(q) @ _HERMITE_W
    return out if np.ndim(mean_diff) else out[0]


def _candidates(
    mean: np.ndarray, items: np.ndarray, rng: np.random.Generator, neighbours: int, exclude: set[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs among `items`: all of them for a few hundred items, else each item's nearest neighbours on
    the current scale (where the information is) plus as many random partners."""
    if len(items) <= 400:
        a, b = np.triu_indices(len(items), k=1)
        u, v = items[a], items[b]
    else:
        order = items[np.argsort(mean[items], kind="stable")]
        rank_u = np.repeat(np.arange(len(order)), neighbours)
        offsets = np.tile(np.arange(1, neighbours + 1), len(order))
        keep = rank_u + offsets < len(order)
        near_u, near_v = order[rank_u[keep]], order[(rank_u + offsets)[keep]]
        rand_u = np.repeat(order, neighbours)
        rand_v = rng.choice(order, size=len(rand_u))
        u = np.concatenate([near_u, rand_u])
        v = np.concatenate([near_v, rand_v])
        keep = u != v
        u, v = np.minimum(u[keep], v[keep]), np.maximum(u[keep], v[keep])
        keys = np.unique(u.astype(np.int64) * (int(mean.shape[0]) + 1) + v)
        u, v = keys // (mean.shape[0] + 1), keys % (mean.shape[0] + 1)
    if exclude:
        keep = np.array([(int(x), int(y)) not in exclude for x, y in zip(u, v)], dtype=bool)
        u, v = u[keep], v[keep]
    return u, v


def select_pairs_active(
    scale: PairScale,
    *,
    eligible: Iterable[int] | None = None,
    batch: Literal["mst", "greedy"] = "mst",
    size: int | None = None,
    exclude: Iterable[tuple[int, int]] = (),
    seed: int | np.random.Generator | None = 0,
    neighbours: int = 20,
    answers: AnswerModel | None = None,
) -> list[tuple[int, int]]:
    """The next batch of pairs (u < v) with the highest expected information gain under `scale`'s posterior.

    batch="mst": the minimum spanning tree over 1/EIG among the eligible items (Hybrid-MST): n - 1 pairs, the
    most informative first; "greedy": pairs by falling EIG, each item at most once (size pairs at most).
    exclude: pairs (u < v) not to propose again (e.g. already asked)."""
    rng = np.random.default_rng(seed)
    n = len(scale.score)
    items = np.arange(n) if eligible is None else np.unique(np.fromiter(eligible, dtype=np.int64))
    if len(items) < 2:
        return []
    u, v = _candidates(scale.score, items, rng, neighbours, set(exclude))
    if not len(u):
        return []
    mean_diff = scale.score[u] - scale.score[v]
    if scale.covariance is not None:
        cov = scale.covariance
        var_diff = cov[u, u] + cov[v, v] - 2 * cov[u, v]
    else:
        var_diff = scale.sd[u] ** 2 + scale.sd[v] ** 2
    eig = expected_information_gain(mean_diff, var_diff, model=scale.model, answers=answers)  # type: ignore[arg-type]
    eig = eig + 1e-12 * rng.random(len(eig))  # ties broken at random, not by index
    if batch == "greedy":
        taken: set[int] = set()
        chosen: list[tuple[int, int]] = []
        for k in np.argsort(-eig, kind="stable"):
            a, b = int(u[k]), int(v[k])
            if a in taken or b in taken:
                continue
            chosen.append((a, b))
            taken.update((a, b))
            if size is not None and len(chosen) >= size:
                break
        return chosen
    if batch != "mst":
        raise ValueError(f"batch must be 'mst' or 'greedy', got {batch!r}")
    graph = sparse.csr_matrix((1.0 / np.maximum(eig, 1e-12), (u, v)), shape=(n, n))
    tree = minimum_spanning_tree(graph).tocoo()
    edges = sorted(zip(tree.data, tree.row, tree.col))  # smallest 1/EIG (most informative) first
    chosen = [(int(min(a, b)), int(max(a, b))) for _, a, b in edges]
    return chosen[:size] if size is not None else chosen


def select_pairs_random(
    counts: Sequence[int] | np.ndarray,
    *,
    eligible: Iterable[int] | None = None,
    exclude: Iterable[tuple[int, int]] = (),
    seed: int | np.random.Generator | None = 0,
) -> list[tuple[int, int]]:
    """A random matching (pairs u < v, each item at most once) that takes the least-compared items first and
    avoids the pairs in `exclude` when it can: the balanced random control."""
    rng = np.random.default_rng(seed)
    counts = np.asarray(counts)
    items = np.arange(len(counts)) if eligible is None else np.unique(np.fromiter(eligible, dtype=np.int64))
    done = set(exclude)
    order = list(items[np.lexsort((rng.random(len(items)), counts[items]))])
    chosen: list[tuple[int, int]] = []
    while len(order) >= 2:
        a = order.pop(0)
        partners = [b for b in order if (min(a, b), max(a, b)) not in done]
        if not partners:
            continue
        # among the least-compared half of the fresh partners, at random
        partners.sort(key=lambda b: counts[b])
        pool = partners[: max(1, len(partners) // 2)]
        b = pool[int(rng.integers(len(pool)))]
        order.remove(b)
        chosen.append((int(min(a, b)), int(max(a, b))))
    return chosen


def anchor_select(
    mos: Sequence[float] | np.ndarray, variance: Sequence[float] | np.ndarray, *, intervals: int = 5
) -> list[int]:
    """Compare2Score's anchors: the MOS range cut into `intervals` equal intervals, in each the item with the
    least rating variance (ties: the lower index). Items with a nan MOS or variance are left out; an empty
    interval gives no anchor. Returned from the lowest interval up."""
    m = np.asarray(mos, dtype=np.float64)
    var = np.asarray(variance, dtype=np.float64)
    if m.shape != var.shape or m.ndim != 1:
        raise ValueError(f"mos and variance must be 1-D of one length, got {m.shape} and {var.shape}")
    if intervals < 1:
        raise ValueError(f"intervals must be at least 1, got {intervals}")
    known = np.flatnonzero(np.isfinite(m) & np.isfinite(var))
    if not len(known):
        return []
    low, high = m[known].min(), m[known].max()
    width = (high - low) / intervals
    bins = np.zeros(len(known), dtype=int) if width == 0 else np.minimum(((m[known] - low) / width).astype(int), intervals - 1)
    anchors = []
    for k in range(intervals):
        members = known[bins == k]
        if len(members):
            anchors.append(int(members[np.lexsort((members, var[members]))[0]]))
    return anchors


def anchor_pairs(n_items: int, anchors: Sequence[int]) -> list[tuple[int, int]]:
    """Every non-anchor item with every anchor, and the anchors with each other: pairs (u < v)."""
    anchor_set = sorted(set(int(a) for a in anchors))
    pairs = [(a, b) for x, a in enumerate(anchor_set) for b in anchor_set[x + 1 :]]
    for item in range(n_items):
        if item not in anchor_set:
            pairs.extend((min(item, a), max(item, a)) for a in anchor_set)
    return pairs


# ---------------------------------------------------------------------------------------- training pairs


def compare2score_levels(
    mos_first: np.ndarray | float, sd_first: np.ndarray | float, mos_second: np.ndarray | float, sd_second: np.ndarray | float
) -> np.ndarray:
    """Compare2Score's level of the second item against the first (indices into COMPARISON_LEVELS)."""
    q = np.asarray(mos_first, dtype=np.float64) - np.asarray(mos_second, dtype=np.float64)
    s = np.sqrt(np.asarray(sd_first, dtype=np.float64) ** 2 + np.asarray(sd_second, dtype=np.float64) ** 2)
    if np.any(~np.isfinite(q)) or np.any(~np.isfinite(s)):
        raise ValueError("MOS and standard deviations must be finite")
    level = np.full(np.broadcast(q, s).shape, 2)
    level = np.where(q > s, 1, level)
    level = np.where(q > 2 * s, 0, level)
    level = np.where(q <= -s, 3, level)
    level = np.where(q < -2 * s, 4, level)
    return level


@dataclass(frozen=True)
class TrainingPair:
    first: int
    second: int
    level: str  # of the second item against the first


def training_pairs(
    mos: Sequence[float] | np.ndarray,
    sd: Sequence[float] | np.ndarray,
    *,
    n_pairs: int,
    seed: int = 0,
) -> list[TrainingPair]:
    """n_pairs distinct random ordered pairs of items with a MOS and its standard deviation (one dataset,
    never across datasets), each labelled by Compare2Score's rule."""
    m = np.asarray(mos, dtype=np.float64)
    s = np.asarray(sd, dtype=np.float64)
    if m.shape != s.shape or m.ndim != 1:
        raise ValueError(f"mos and sd must be 1-D of one length, got {m.shape} and {s.shape}")
    known = np.flatnonzero(np.isfinite(m) & np.isfinite(s))
    possible = len(known) * (len(known) - 1)
    if n_pairs < 0 or n_pairs > possible:
        raise ValueError(f"n_pairs must lie in [0, {possible}] for {len(known)} rated items, got {n_pairs}")
    rng = np.random.default_rng(seed)
    if n_pairs * 4 > possible:  # dense: draw from the list of all ordered pairs
        a, b = np.meshgrid(known, known, indexing="ij")
        keep = a != b
        every = np.stack([a[keep], b[keep]], axis=1)
        drawn = every[rng.choice(len(every), size=n_pairs, replace=False)]
    else:  # sparse: draw and drop repeats (rarely any)
        found: dict[tuple[int, int], None] = {}
        while len(found) < n_pairs:
            a, b = (int(x) for x in rng.choice(known, size=2, replace=False))
            found.setdefault((a, b), None)
        drawn = np.array(list(found), dtype=np.int64).reshape(-1, 2)
    if not len(drawn):
        return []
    levels = compare2score_levels(m[drawn[:, 0]], s[drawn[:, 0]], m[drawn[:, 1]], s[drawn[:, 1]])
    return [TrainingPair(int(x), int(y), COMPARISON_LEVELS[int(k)]) for (x, y), k in zip(drawn, levels)]
