"""Maximum-likelihood subjective model (ITU-T P.910 Annex E / Netflix sureal).

Model (sureal `MaximumLikelihoodEstimationModel` docstring, sureal/subjective_model.py, sureal 0.9.0; Li et al.,
"A Simple Model for Subject Behavior in Subjective Experiments", https://arxiv.org/abs/2004.02067):

    X_es = x_e + B_es + A_es,   B_es ~ N(b_s, v_s^2),   A_es ~ N(0, a_e^2)

x_e is the true quality of image e, b_s the bias and v_s the inconsistency of rater s, a_e the ambiguity of image e.
So X_es ~ N(x_e + b_s, v_s^2 + a_e^2). In sureal the ambiguity belongs to a source "content" shared by several
distorted videos; on this platform every image is its own content, so there is one a_e per image.

`model="content_oblivious"` drops the ambiguity (a_e = 0): sureal's `MLE_CO`, which is the model standardised in
ITU-T P.910 (11/21) Annex E and P.913 (06/21) 12.6 (sureal README; sureal solves that one with the alternating
projection `P910AnnexEModel`, which reaches the same maximum).

Solver: the damped coordinate-wise Newton-Raphson of sureal's `MaximumLikelihoodEstimationModel._run_modeling`
with gradient_method="simplified" (its default), reproduced update by update so the estimates agree with sureal:

  init  x_e = MOS, b_s = 0, v_s = SD over images of (rating - MOS) (ddof 0),
        a_e = SD over raters of (rating - MOS) (ddof 0; 0 in the content-oblivious model)
  loop  b_s <- closed form given the others;                     then damped: b = 0.9 b + 0.1 b_new
        v_s <- one Newton step on d logL / d v_s;                 damped, clipped at 0
        a_e <- one Newton step on d logL / d a_e (full model);    damped, clipped at 0
        x_e <- closed form: weighted mean of (X_es - b_s) with weights 1/(v_s^2 + a_e^2); damped
  stop  when the L2 change of x over one iteration is below 1e-8, or after 10,000 iterations
  end   b shifted to mean zero and x shifted by the same amount (the model only fixes x + b)

The 95% interval of x_e is 1.95996 / sqrt(sum_s 1/(v_s^2 + a_e^2)) (inverse Fisher information), as in sureal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

_Z95 = 1.95996  # sureal's constant for the normal 97.5% quantile; kept so intervals match sureal digit for digit


@dataclass(frozen=True)
class MleResult:
    """quality, quality_ci95 (half-width): per image, nan for an image nobody rated.
    bias, inconsistency: per rater, nan for a rater left out of the fit (see `min_ratings_per_rater`).
    ambiguity: per image (zeros in the content-oblivious model).
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
    model: Literal["full", "content_oblivious"] = "full",
    max_iterations: int = 10_000,
    tol: float = 1e-8,
    min_ratings_per_rater: int = 2,
) -> MleResult:
    """Fit the P.910 Annex E / sureal MLE model to a (raters, images) matrix with nan for missing ratings.

    model: "full" (rater bias + inconsistency + per-image ambiguity, sureal `MLE` with one content per image) or
        "content_oblivious" (no ambiguity, sureal `MLE_CO`, the P.910 Annex E model).
    min_ratings_per_rater: raters with fewer ratings are left out of the fit. With one rating a rater's bias can
        absorb it exactly, the inconsistency goes to 0 and the likelihood to infinity, and that rater would then
        dictate the quality of their image. Their bias and inconsistency come back nan.
    """
    x_se = np.asarray(ratings, dtype=np.float64)
    if x_se.ndim != 2:
        raise ValueError(f"ratings must be 2-D (raters, images), got shape {x_se.shape}")
    if np.isinf(x_se).any():
        raise ValueError("ratings must not contain infinities; use nan for a missing rating")
    if model not in ("full", "content_oblivious"):
        raise ValueError("model must be 'full' or 'content_oblivious'")
    n_raters, n_images = x_se.shape

    rater_ok = (~np.isnan(x_se)).sum(axis=1) >= min_ratings_per_rater
    image_ok = (~np.isnan(x_se[rater_ok])).sum(axis=0) >= 1
    if rater_ok.sum() < 2 or image_ok.sum() < 1:
        raise ValueError("the MLE model needs at least two raters with enough ratings")

    # Work in sureal's orientation, (images E, raters S), on the raters and images that take part.
    x = x_se[np.ix_(rater_ok, image_ok)].T
    mask = ~np.isnan(x)
    w = mask.astype(np.float64)  # 1 where rated: sums below are written as sums of w * term, i.e. nansum
    x0 = np.where(mask, x, 0.0)
    full = model == "full"

    # --- initialisation (as sureal) ---
    per_image = w.sum(axis=1)
    per_rater = w.sum(axis=0)
    mos = x0.sum(axis=1) / per_image
    resid = np.where(mask, x - mos[:, None], 0.0)
    v = np.sqrt(((resid - (resid.sum(axis=0) / per_rater)[None, :] * w) ** 2).sum(axis=0) / per_rater)
    if full:
        a = np.sqrt(((resid - (resid.sum(axis=1) / per_image)[:, None] * w) ** 2).sum(axis=1) / per_image)
    else:
        a = np.zeros(x.shape[0])
    q = mos.copy()
    b = np.zeros(x.shape[1])
    refresh = 0.1  # sureal's REFRESH_RATE: each update moves 10% of the way, which keeps the Newton steps stable

    iterations = 0
    converged = False
    q_var = None
    with np.errstate(divide="ignore", invalid="ignore"):
        while True:
            q_prev = q

            # b_s: weighted mean of (X - x_e) over the rater's images, weights 1/(v_s^2 + a_e^2)
            var = v[None, :] ** 2 + a[:, None] ** 2
            num = (w * (x0 - q[:, None]) / var).sum(axis=0)
            den = (w / var).sum(axis=0)
            b = b * (1.0 - refresh) + (num / den) * refresh

            # v_s: Newton step on the score d logL / d v_s using the current a_e
            var = v[None, :] ** 2 + a[:, None] ** 2
            diff = v[None, :] ** 2 - a[:, None] ** 2
            r2 = np.where(mask, x0 - q[:, None] - b[None, :], 0.0) ** 2
            num = (w * (-v[None, :] / var + v[None, :] * r2 / var**2)).sum(axis=0)
            poly = a[:, None] ** 4 - 3.0 * v[None, :] ** 4 - 2.0 * v[None, :] ** 2 * a[:, None] ** 2
            den = (w * (diff / var**2 + r2 * poly / var**4)).sum(axis=0)
            v = np.maximum(v * (1.0 - refresh) + (v - num / den) * refresh, 0.0)

            # a_e: Newton step on d logL / d a_e using the new v_s and b_s (full model only)
            if full:
                var = v[None, :] ** 2 + a[:, None] ** 2
                diff = v[None, :] ** 2 - a[:, None] ** 2
                r2 = np.where(mask, x0 - q[:, None] - b[None, :], 0.0) ** 2
                num = (w * (-a[:, None] / var + a[:, None] * r2 / var**2)).sum(axis=1)
                poly = v[None, :] ** 4 - 3.0 * a[:, None] ** 4 - 2.0 * v[None, :] ** 2 * a[:, None] ** 2
                den = (w * (-diff / var**2 + r2 * poly / var**4)).sum(axis=1)
                a = np.maximum(a * (1.0 - refresh) + (a - num / den) * refresh, 0.0)

            # x_e: weighted mean of (X - b_s) over the image's raters
            var = v[None, :] ** 2 + a[:, None] ** 2
            num = (w * (x0 - b[None, :]) / var).sum(axis=1)
            den = (w / var).sum(axis=1)
            q = q * (1.0 - refresh) + (num / den) * refresh
            q_var = 1.0 / np.maximum(den, 0.0)

            iterations += 1
            if not np.all(np.isfinite(q)):
                raise FloatingPointError(
                    "the MLE iteration diverged (a rater or image variance reached zero); "
                    "check for raters whose ratings the model can fit exactly"
                )
            if np.linalg.norm(q_prev - q) < tol:
                converged = True
                break
            if iterations >= max_iterations:
                break

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
