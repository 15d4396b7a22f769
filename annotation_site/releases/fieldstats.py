"""The statistics of one schema field over a release's labels, from flat per-label arrays.

Pure numpy (through annotation_site.statistics): the builder streams the labels out of the database into a few
arrays per field and hands them here. Two matrix shapes are used:

- the (raters, images) matrix, for what depends on who rated (z-scores, the MLE, leave-one-out rater figures);
- a compact (slots, images) matrix holding each image's ratings in its first rows, for what only depends on the
  ratings of each image (MOS, alpha, split-half): the same numbers, on a matrix as tall as the most-rated image
  instead of as tall as the rater pool.

The split-half correlation is that of the MOS, so score fields have it and choice fields do not (a mean of ordinal
ranks is not a MOS; their reliability is the ordinal alpha).

`python -m annotation_site.releases.statsworker JOB RESULT` runs `field_stats` for some fields in a process of its
own (see builder.py): the statistics of a large release use both cores while the builder writes files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from annotation_site.schemas.spec import FieldSpec
from annotation_site.statistics import (
    AlphaResult,
    MleDegenerateError,
    SplitHalfResult,
    bootstrap_alpha,
    mos_table,
    rater_table,
    split_half,
    subjective_mle,
    zscore_mos,
)


@dataclass(frozen=True)
class LabelArrays:
    """One field's labels: image and rater positions, the label's slot among its image's labels, and the value
    (the number for score fields, the choice's index for choice fields, the answer's code for text fields; nan
    when the label has no valid value for this field)."""

    image: np.ndarray
    rater: np.ndarray
    slot: np.ndarray
    value: np.ndarray


@dataclass
class FieldStats:
    """Per image (arrays of length images) and per rater (arrays of length raters) figures of one field, plus its
    agreement. Arrays that do not apply to the field's kind are None."""

    field: FieldSpec
    measurement: str | None
    n: np.ndarray
    # score fields
    mos: np.ndarray | None = None
    sd: np.ndarray | None = None
    ci95: np.ndarray | None = None
    zmos: np.ndarray | None = None
    mle: np.ndarray | None = None
    mle_ci95: np.ndarray | None = None
    mle_fitted: bool = False
    mle_note: str = ""
    mle_iterations: int = 0
    # choice fields
    counts: np.ndarray | None = None  # (images, choices)
    majority: np.ndarray | None = None  # choice index, -1 without labels
    share: np.ndarray | None = None
    mean_rank: np.ndarray | None = None
    # agreement
    alpha: AlphaResult | None = None
    split_half: SplitHalfResult | None = None
    # raters
    rater_n: np.ndarray | None = None
    rater_loo_r: np.ndarray | None = None
    rater_bias: np.ndarray | None = None
    rater_mle_bias: np.ndarray | None = None
    rater_mle_inconsistency: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def _dense(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    matrix = np.full(shape, np.nan)
    ok = ~np.isnan(values)
    matrix[rows[ok], cols[ok]] = values[ok]
    return matrix


def _raters_in_pairable_units(labels: LabelArrays, values: np.ndarray, n_images: int) -> int:
    ok = ~np.isnan(values)
    per_image = np.bincount(labels.image[ok], minlength=n_images)
    pairable = per_image[labels.image] >= 2
    return int(np.unique(labels.rater[ok & pairable]).size)


def _agreement(
    labels: LabelArrays, values: np.ndarray, level: str, n_images: int, slots: int, resamples: int, seed: int
) -> AlphaResult:
    compact = _dense(labels.slot, labels.image, values, (slots, n_images))
    result = bootstrap_alpha(compact, level, resamples=resamples, seed=seed)
    # The compact matrix's rows are slots, not raters: count the raters behind the pairable values instead.
    return replace(result, raters=_raters_in_pairable_units(labels, values, n_images))


def _split_half(labels: LabelArrays, values: np.ndarray, n_images: int, slots: int, seed: int, splits: int) -> SplitHalfResult:
    # Each image's ratings are shuffled independently, so which row holds a rating does not matter: the compact
    # matrix gives the same halves at a fraction of the cost of the (raters, images) one.
    # (A split whose halves correlate at exactly -1 has no Spearman-Brown value: split_half reports nan.)
    return split_half(_dense(labels.slot, labels.image, values, (slots, n_images)), seed=seed, splits=splits)


def _rater_figures(stats: FieldStats, matrix: np.ndarray) -> None:
    table = rater_table(matrix)
    stats.rater_loo_r = table.plcc
    stats.rater_bias = table.bias


@dataclass(frozen=True)
class Consensus:
    """Per image: labels with a value, the MOS (score fields), and for choice fields the labels per choice
    (images, choices) and the majority choice index (-1 without labels; ties go to the choice listed first)."""

    n: np.ndarray
    mos: np.ndarray | None
    majority: np.ndarray | None
    counts: np.ndarray | None = None


def _compact(labels: LabelArrays, values: np.ndarray, n_images: int) -> np.ndarray:
    slots = int(labels.slot.max()) + 1 if labels.slot.size else 1
    return _dense(labels.slot, labels.image, values, (slots, n_images))


def _choice_counts(spec: FieldSpec, labels: LabelArrays, n_images: int) -> np.ndarray:
    ok = ~np.isnan(labels.value)
    choices = len(spec.choices)
    flat = np.bincount(labels.image[ok] * choices + labels.value[ok].astype(np.int64), minlength=n_images * choices)
    return flat.reshape(n_images, choices)


def image_consensus(spec: FieldSpec, labels: LabelArrays, n_images: int) -> Consensus:
    """The cheap per-image consensus, computed exactly as `field_stats` computes it."""
    ok = ~np.isnan(labels.value)
    n = np.bincount(labels.image[ok], minlength=n_images).astype(np.int64)
    mos = majority = counts = None
    if spec.is_score and ok.any():
        mos = mos_table(_compact(labels, labels.value, n_images)).mean
    elif spec.is_choice and ok.any():
        counts = _choice_counts(spec, labels, n_images)
        majority = np.where(n > 0, counts.argmax(axis=1), -1)
    return Consensus(n=n, mos=mos, majority=majority, counts=counts)


def field_stats(
    spec: FieldSpec,
    labels: LabelArrays,
    *,
    n_images: int,
    n_raters: int,
    resamples: int,
    seed: int,
    split_half_splits: int,
) -> FieldStats:
    """Everything the release reports about one field (see the module docstring for the matrices)."""
    values = labels.value
    ok = ~np.isnan(values)
    n = np.bincount(labels.image[ok], minlength=n_images).astype(np.int64)
    slots = int(labels.slot.max()) + 1 if labels.slot.size else 1
    stats = FieldStats(field=spec, measurement=spec.measurement, n=n)
    stats.rater_n = np.bincount(labels.rater[ok], minlength=n_raters).astype(np.int64)
    if not ok.any():
        stats.notes.append("no labels")
        return stats

    if spec.is_score:
        table = mos_table(_compact(labels, values, n_images))
        stats.mos, stats.sd, stats.ci95 = table.mean, table.sd, table.ci95
        matrix = _dense(labels.rater, labels.image, values, (n_raters, n_images))
        stats.zmos = zscore_mos(matrix, low=float(spec.min), high=float(spec.max)).scaled
        try:
            fit = subjective_mle(matrix)
        except (MleDegenerateError, ValueError) as exc:
            # Too few raters per image: the likelihood has no interior maximum. Report the MOS in its place and
            # say so, rather than exporting one rater's scores as "quality".
            stats.mle, stats.mle_ci95 = stats.mos, stats.ci95
            stats.mle_note = f"MLE not estimable ({exc}); the MLE columns repeat the MOS and its Student-t interval"
            stats.notes.append(stats.mle_note)
        else:
            stats.mle, stats.mle_ci95 = fit.quality, fit.quality_ci95
            stats.mle_fitted, stats.mle_iterations = True, fit.iterations
            stats.rater_mle_bias, stats.rater_mle_inconsistency = fit.bias, fit.inconsistency
            if not fit.converged:
                stats.notes.append(f"MLE stopped after {fit.iterations} iterations without meeting its tolerance")
        _rater_figures(stats, matrix)
        level = spec.measurement or "interval"
        stats.alpha = _agreement(labels, values, level, n_images, slots, resamples, seed)
        stats.split_half = _split_half(labels, values, n_images, slots, seed, split_half_splits)
        return stats

    if spec.is_choice:
        stats.counts = _choice_counts(spec, labels, n_images)
        # argmax takes the first maximum: ties go to the choice listed first in the schema.
        stats.majority = np.where(n > 0, stats.counts.argmax(axis=1), -1)
        with np.errstate(invalid="ignore", divide="ignore"):
            stats.share = np.where(n > 0, stats.counts.max(axis=1) / n, np.nan)
        rank_of_code = np.array(
            [np.nan if c.not_applicable else float(spec.ordinal_rank(c.value)) for c in spec.choices]
        )
        if spec.kind == "ordinal":
            ranks = np.full(values.shape, np.nan)
            ranks[ok] = rank_of_code[values[ok].astype(np.int64)]
            on_scale = ~np.isnan(ranks)
            count = np.bincount(labels.image[on_scale], minlength=n_images)
            total = np.bincount(labels.image[on_scale], weights=ranks[on_scale], minlength=n_images)
            with np.errstate(invalid="ignore", divide="ignore"):
                stats.mean_rank = np.where(count > 0, total / count, np.nan)
        if spec.measurement == "ordinal":
            # Ranks of the on-scale choices; a not-applicable answer is off the scale and out of the ordinal alpha.
            if np.isnan(ranks).all():
                stats.notes.append("no on-scale answers")
                return stats
            _rater_figures(stats, _dense(labels.rater, labels.image, ranks, (n_raters, n_images)))
            stats.alpha = _agreement(labels, ranks, "ordinal", n_images, slots, resamples, seed)
        else:
            stats.alpha = _agreement(labels, values, "nominal", n_images, slots, resamples, seed)
        return stats

    # text: the answers are coded by their normalised form; alpha only when the schema says they are nominal data
    if spec.measurement == "nominal":
        stats.alpha = _agreement(labels, values, "nominal", n_images, slots, resamples, seed)
    return stats
