"""Maximum-likelihood subjective model (ITU-T P.910 Annex E / Netflix sureal).

Model (sureal `MaximumLikelihoodEstimationModel` docstring, sureal/subjective_model.py, sureal 0.9.0; Li et al.,
"A Simple Model for Subject Behavior in Subjective Experiments", https://arxiv.org/abs/2004.02067):

    X_es = x_e + B_es + A_es,   B_es ~ N(b_s, v_s^2),   A_es ~ N(0, a_e^2)

x_e is the true quality of image e, b_s the bias and v_s the inconsistency of rater s, and a_e = a_c(e) the
ambiguity of the *content* c(e) of image e. So X_es ~ N(x_e + b_s, v_s^2 + a_c(e)^2).

Two variants, chosen by `content_ids`:
- content_ids=None (default): no ambiguity term, a = 0. This is sureal's `MLE_CO`, the model standardised in ITU-T
  P.910 (11/21) Annex E and P.913 (06/21) 12.6 (sureal README; sureal's `P910AnnexEModel` solves the same model by
  alternating projection and reaches the same maximum; the tests check both).
- content_ids given: sureal's full `MLE`, one ambiguity per content, where a content groups several images (in
  sureal, the distorted versions of one source video; here e.g. edits or crops of one photo, or one scene).
  Per-image ambiguity (every image its own content) is not offered: the likelihood is then unbounded (an image's
  ambiguity and one rater's inconsistency both go to 0 while x_e fits that rating exactly), and the iteration
  walks off towards that degenerate point; sureal's own `MLE` fails the same way on such data (it stops on NaN).
  The tests show this.

Solver: the damped coordinate-wise Newton-Raphson of sureal's `MaximumLikelihoodEstimationModel._run_modeling`
with gradient_method="simplified" (its default), reproduced update by update so the estimates agree with sureal:

  init  x_e = MOS, b_s = 0, v_s = SD over images of (rating - MOS) (ddof 0),
        a_c = SD of (rating - MOS) over the content's images and raters (ddof 0; none without contents)
  loop  b_s <- closed form given the others;                     then damped: b = 0.9 b + 0.1 b_new
        v_s <- one Newton step on d logL / d v_s;                 damped, clipped at 0
        a_c <- one Newton step on d logL / d a_c (full model);    damped, clipped at 0
        x_e <- closed form: weighted mean of (X_es - b_s) with weights 1/(v_s^2 + a_e^2); damped
  stop  when the L2 change of x over one iteration is below 1e-8, or after 10,000 iterations
  end   b shifted to mean zero and x shifted by the same amount (the model only fixes x + b)
The sums run over the list of given ratings (bincount) rather than sureal's dense images x raters arrays: the same
numbers (to ~1e-15 in the tests) in a sixth of the work on a 10-of-60-raters design. Without ambiguity (the
default model) every weight is a per-rater factor, so an iteration reduces to a few sparse matrix-vector products
(`_iterate_without_ambiguity`; ~1e-13 from the update-by-update form): about 400 iterations on 14,715 images x 58
raters x 10 ratings took 0.4-0.5 s here, against 1.7-2.0 s for the update-by-update form.

The 95% interval of x_e is 1.95996 / sqrt(sum_s 1/(v_s^2 + a_e^2)) (inverse Fisher information), as in sureal.

Degenerate fits. The likelihood has no upper bound: if one rater's inconsistency goes to 0 and the qualities of
their images are set to their ratings (minus bias), the log-likelihood goes to +infinity while everyone else's terms
stay finite. With many raters per image the iteration stops at the interior maximum; with few it often walks to the
degenerate point instead. In simulations from the model itself it happened for 5 raters x 100 images (6 of 6
seeds) and 10 raters x 50 images (3 of 6), never for 20 x 200; and on a crowd design of 14,715 images and 60 raters
with 5 raters per image, but not with 10 per image (one seed each). sureal 0.9.0 then returns v_s ~ 1e-8
(MLE_CO) or 0 (the P.910 alternating projection) without a word, i.e. the "quality" is one rater's scores. Here
that raises MleDegenerateError instead: the caller falls back to MOS / z-score MOS rather than exporting such
numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from annotation_site.statistics.matrix import as_ratings


class MleDegenerateError(FloatingPointError):
    """The fit went to a point where the likelihood is unbounded: some rater's inconsistency (plus the image's
    ambiguity) reached zero and their ratings are fitted exactly. No estimate exists there."""


_Z95 = 1.95996  # sureal's constant for the normal 97.5% quantile; kept so intervals match sureal digit for digit


@dataclass(frozen=True)
class MleResult:
    """quality, quality_ci95 (half-width): per image, nan for an image nobody rated.
    bias, inconsistency: per rater, nan for a rater left out of the fit (see `min_ratings_per_rater`).
    ambiguity: per image, the ambiguity of its content; nan without content_ids (not part of that model, and a 0
        would read as "unambiguous").
    iterations: iterations run; converged: whether the stopping rule was met before max_iterations.
    """

    quality: np.ndarray
    quality_ci95: np.ndarray
    bias: np.ndarray
    inconsistency: np.ndarray
    ambiguity: np.ndarray
    iterations: int
    converged: bool


def subjective_mle(
    ratings: np.ndarray,
    *,
    content_ids: np.ndarray | None = None,
    max_iterations: int = 10_000,
    tol: float = 1e-8,
    min_ratings_per_rater: int = 2,
) -> MleResult:
    """Fit the P.910 Annex E / sureal MLE model to a (raters, images) matrix with nan for missing ratings.

    content_ids: None for the P.910 Annex E model (sureal `MLE_CO`: rater bias and inconsistency, no ambiguity);
        or one integer per image naming its content, for sureal's full `MLE` with one ambiguity per content.
    Raises MleDegenerateError when the fit reaches the degenerate point (see the module docstring).
    min_ratings_per_rater: raters with fewer ratings are left out of the fit. With one rating a rater's bias can
        absorb it exactly, the inconsistency goes to 0 and the likelihood to infinity, and that rater would then
        dictate the quality of their image. Their bias and inconsistency come back nan.
    """
    x_se = as_ratings(ratings)
    n_raters, n_images = x_se.shape
    full = content_ids is not None
    if full:
        contents = np.asarray(content_ids)
        if contents.shape != (n_images,) or not np.issubdtype(contents.dtype, np.integer):
            raise ValueError("content_ids must hold one integer per image")

    rater_ok = (~np.isnan(x_se)).sum(axis=1) >= min_ratings_per_rater
    image_ok = (~np.isnan(x_se[rater_ok])).sum(axis=0) >= 1
    if rater_ok.sum() < 2 or image_ok.sum() < 1:
        raise ValueError("the MLE model needs at least two raters with enough ratings")

    # Work on the flat list of observations (image e, rater s, rating) of the raters and images that take part:
    # every sum of sureal's dense (images x raters) nansums becomes a bincount over the N ratings, which on a crowd
    # design (10 of 60 raters per image) is 6x less work than the dense matrix.
    x_es = x_se[np.ix_(rater_ok, image_ok)].T  # sureal's orientation: (images E, raters S)
    e_idx, s_idx = np.nonzero(~np.isnan(x_es))
    xv = x_es[e_idx, s_idx]
    n_e, n_s = x_es.shape

    def per_image(values: np.ndarray) -> np.ndarray:
        return np.bincount(e_idx, weights=values, minlength=n_e)

    def per_rater(values: np.ndarray) -> np.ndarray:
        return np.bincount(s_idx, weights=values, minlength=n_s)

    if full:
        # Renumber the contents of the images that take part 0..C-1; cid maps image -> content.
        _, cid = np.unique(contents[image_ok], return_inverse=True)
        n_c = int(cid.max()) + 1
        c_idx = cid[e_idx]

        def per_content(values: np.ndarray) -> np.ndarray:
            return np.bincount(c_idx, weights=values, minlength=n_c)

    # --- initialisation (as sureal) ---
    ones = np.ones(xv.size)
    count_e = per_image(ones)
    count_s = per_rater(ones)
    mos = per_image(xv) / count_e
    resid = xv - mos[e_idx]
    v = np.sqrt(per_rater((resid - (per_rater(resid) / count_s)[s_idx]) ** 2) / count_s)  # SD over images, ddof 0
    if full:
        # SD (ddof 0) of all residuals of each content, over its images and raters
        count_c = per_content(ones)
        a_c = np.sqrt(per_content((resid - (per_content(resid) / count_c)[c_idx]) ** 2) / count_c)
        a = a_c[cid]
    else:
        a_c = np.zeros(0)
        a = np.zeros(n_e)
    q = mos.copy()
    b = np.zeros(n_s)
    refresh = 0.1  # sureal's REFRESH_RATE: each update moves 10% of the way, which keeps the Newton steps stable
    # Below this an observation's variance v_s^2 + a_e^2 means the fit is collapsing onto exact ratings (see the
    # module docstring); relative to the spread of the ratings so that the scale of the field does not matter.
    floor = (1e-6 * (float(np.std(xv)) or 1.0)) ** 2

    if not full:
        q, q_var, b, v, iterations, converged = _iterate_without_ambiguity(
            e_idx, s_idx, xv, (n_e, n_s), q, b, v, count_s, refresh, floor, tol, max_iterations
        )
    else:
        q, q_var, b, v, a, iterations, converged = _iterate_with_ambiguity(
            e_idx, s_idx, xv, q, b, v, a, a_c, cid, c_idx, n_c, refresh, floor, tol, max_iterations, per_image, per_rater
        )

    # The likelihood only sees x_e + b_s: fix the free constant by making the mean bias zero (sureal's default,
    # force_subjbias_zeromean=True), so the quality stays on the rating scale.
    shift = b.mean()
    b = b - shift
    q = q + shift

    quality = np.full(n_images, np.nan)
    quality_ci95 = np.full(n_images, np.nan)
    ambiguity = np.full(n_images, np.nan)
    bias = np.full(n_raters, np.nan)
    inconsistency = np.full(n_raters, np.nan)
    quality[image_ok] = q
    quality_ci95[image_ok] = _Z95 * np.sqrt(q_var)
    if full:
        ambiguity[image_ok] = a
    bias[rater_ok] = b
    inconsistency[rater_ok] = v
    return MleResult(
        quality=quality,
        quality_ci95=quality_ci95,
        bias=bias,
        inconsistency=inconsistency,
        ambiguity=ambiguity,
        iterations=iterations,
        converged=converged,
    )


_DEGENERATE = (
    "the MLE fit degenerated: a rater's inconsistency (plus the image's ambiguity) reached zero, so "
    "their ratings are fitted exactly; this happens with few raters per image (fall back to MOS), "
    "or with content_ids that give a content a single image"
)


def _iterate_without_ambiguity(
    e_idx: np.ndarray,
    s_idx: np.ndarray,
    xv: np.ndarray,
    shape: tuple[int, int],
    q: np.ndarray,
    b: np.ndarray,
    v: np.ndarray,
    count_s: np.ndarray,
    refresh: float,
    floor: float,
    tol: float,
    max_iterations: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, bool]:
    """The updates of `_iterate_with_ambiguity` with a = 0, where every observation's variance is its rater's
    v_s^2. Each weight is then a per-rater factor that comes out of the sums, so an iteration needs the per-rater
    sums of (X - x_e) and of the squared residuals and two sparse products per image, not a dozen passes over the
    observations. Algebraically the same updates in the same order (the tests hold it to sureal at 1e-9; the
    difference is rounding, ~1e-14)."""
    n_e, n_s = shape
    # (images, raters) sparse matrices in the observations' order (nonzero() of the (E, S) array is row-major):
    # the ratings beside the pattern of who rated what, so that one product gives two sums per image, and their
    # transposes stacked, so that one product gives the per-rater sums.
    indptr = np.concatenate(([0], np.cumsum(np.bincount(e_idx, minlength=n_e))))
    ratings = sparse.csr_array((xv, s_idx, indptr), shape=(n_e, n_s))
    rated = sparse.csr_array((np.ones(xv.size), s_idx, indptr), shape=(n_e, n_s))
    per_image_sums = sparse.hstack([ratings, rated], format="csr")  # (E, 2S)
    per_rater_sums = sparse.vstack([rated.T, ratings.T], format="csr")  # (2S, E)
    rated_t = rated.T.tocsr()
    sum_x_s = np.bincount(s_idx, weights=xv, minlength=n_s)
    sum_x2_s = np.bincount(s_idx, weights=xv * xv, minlength=n_s)
    rated_s = count_s > 0  # the degeneracy test looks at the variances of actual observations only
    keep = 1.0 - refresh
    iterations = 0
    converged = False
    q_var = np.full(n_e, np.nan)
    image_weights = np.zeros(2 * n_s)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        while True:
            q_prev = q
            # per rater: sums of x_e and of X x_e over the rater's images, and of x_e^2 (matrix-vector products:
            # scipy's products with several columns at once were slower here)
            sums = per_rater_sums @ q
            sum_q, sum_xq = sums[:n_s], sums[n_s:]
            sum_q2 = rated_t @ (q * q)
            # b_s: weighted mean of (X - x_e) over the rater's images; the weight 1/v_s^2 is the rater's own
            inv = 1.0 / (v * v)
            sum_d = sum_x_s - sum_q  # sum of (X - x_e)
            b_new = (inv * sum_d) / (inv * count_s)
            b = b * keep + b_new * refresh

            # v_s: Newton step on d logL / d v_s. The only per-observation sum it needs, that of the squared
            # residuals (X - x_e - b_s)^2, expands into the sums above (cancellation costs ~1e-15 relative)
            r2_s = (sum_x2_s - 2.0 * sum_xq + sum_q2) - 2.0 * b * sum_d + count_s * b * b
            vs2 = v * v
            inv2 = inv * inv
            num = -v * inv * count_s + v * inv2 * r2_s
            den = vs2 * inv2 * count_s + (-3.0 * vs2 * vs2) * inv2 * inv2 * r2_s
            v = np.maximum(v * keep + (v - num / den) * refresh, 0.0)

            # x_e: weighted mean of (X - b_s) over the image's raters: sum X/v^2 - sum b/v^2, over sum 1/v^2
            var = v * v
            inv = 1.0 / var
            image_weights[:n_s] = inv
            image_weights[n_s:] = -b * inv
            den = rated @ inv
            q = q * keep + ((per_image_sums @ image_weights) / den) * refresh
            q_var = 1.0 / np.maximum(den, 0.0)

            iterations += 1
            if not np.all(np.isfinite(q)) or var[rated_s].min() < floor:
                raise MleDegenerateError(_DEGENERATE)
            if np.linalg.norm(q_prev - q) < tol:
                converged = True
                break
            if iterations >= max_iterations:
                break
    return q, q_var, b, v, iterations, converged


def _iterate_with_ambiguity(
    e_idx: np.ndarray,
    s_idx: np.ndarray,
    xv: np.ndarray,
    q: np.ndarray,
    b: np.ndarray,
    v: np.ndarray,
    a: np.ndarray,
    a_c: np.ndarray,
    cid: np.ndarray,
    c_idx: np.ndarray,
    n_c: int,
    refresh: float,
    floor: float,
    tol: float,
    max_iterations: int,
    per_image: Callable[[np.ndarray], np.ndarray],
    per_rater: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, bool]:
    """sureal's damped Newton iteration with one ambiguity per content, update by update (module docstring)."""

    def per_content(values: np.ndarray) -> np.ndarray:
        return np.bincount(c_idx, weights=values, minlength=n_c)

    iterations = 0
    converged = False
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        while True:
            q_prev = q

            # b_s: weighted mean of (X - x_e) over the rater's images, weights 1/(v_s^2 + a_e^2)
            # (squares are written as products: numpy's ** on float arrays is several times slower)
            vs, ae = v[s_idx], a[e_idx]
            vs2, ae2 = vs * vs, ae * ae
            var = vs2 + ae2
            inv = 1.0 / var
            b_new = per_rater((xv - q[e_idx]) * inv) / per_rater(inv)
            b = b * (1.0 - refresh) + b_new * refresh

            # v_s: Newton step on the score d logL / d v_s (a unchanged, so var too)
            res = xv - q[e_idx] - b[s_idx]
            r2 = res * res
            inv2 = inv * inv
            num = per_rater(-vs * inv + vs * r2 * inv2)
            poly = ae2 * ae2 - 3.0 * vs2 * vs2 - 2.0 * vs2 * ae2
            den = per_rater((vs2 - ae2) * inv2 + r2 * poly * inv2 * inv2)
            v = np.maximum(v * (1.0 - refresh) + (v - num / den) * refresh, 0.0)

            # a_c: Newton step on d logL / d a_c with the new v_s and b_s (full model only), summed per content
            vs = v[s_idx]
            vs2 = vs * vs
            inv = 1.0 / (vs2 + ae2)
            inv2 = inv * inv
            num = per_content(-ae * inv + ae * r2 * inv2)
            poly = vs2 * vs2 - 3.0 * ae2 * ae2 - 2.0 * vs2 * ae2
            den = per_content(-(vs2 - ae2) * inv2 + r2 * poly * inv2 * inv2)
            a_c = np.maximum(a_c * (1.0 - refresh) + (a_c - num / den) * refresh, 0.0)
            a = a_c[cid]

            # x_e: weighted mean of (X - b_s) over the image's raters
            vs, ae = v[s_idx], a[e_idx]
            var = vs * vs + ae * ae
            inv = 1.0 / var
            den = per_image(inv)
            q = q * (1.0 - refresh) + (per_image((xv - b[s_idx]) * inv) / den) * refresh
            q_var = 1.0 / np.maximum(den, 0.0)

            iterations += 1
            # The likelihood is unbounded where an observation's variance goes to 0 with its rating fitted
            # exactly; the iteration can head there (and even settle and call it convergence). Such a "maximum",
            # a quality with a zero-width interval, is not an estimate: stop as soon as it shows.
            if not np.all(np.isfinite(q)) or var.min() < floor:
                raise MleDegenerateError(_DEGENERATE)
            if np.linalg.norm(q_prev - q) < tol:
                converged = True
                break
            if iterations >= max_iterations:
                break

    return q, q_var, b, v, a, iterations, converged
