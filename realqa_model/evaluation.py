"""How well a feature-based scorer agrees with consensus labels on held-out images.

    metrics = evaluate(scorer, features, labels)      # JSON-ready dict
    print(format_report(metrics))

Per score field (``integer``, ``continuous``): SRCC and PLCC (the figures IQA papers report, RealQA
included), MAE, and n. Per choice field: accuracy, the share of the most common true answer (what
always guessing it would score) and n; ordinal fields also get the SRCC between the true position on
the scale and the predicted one (the expected position under the predicted probabilities, which ranks
finer than the top choice), over images whose true answer is on the scale (not a ``not_applicable``
choice). A figure that cannot be computed (fewer than 3 images, or constant values) is None, never NaN,
so the result can be stored as JSON.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from realqa_model.cpu_scorer import LabelError, UntrainedScorerError, collect_labels, heads_from_schema

__all__ = ["evaluate", "format_report"]


def _correlation(kind: str, truth: np.ndarray, predicted: np.ndarray) -> float | None:
    if truth.size < 3 or np.ptp(truth) == 0 or np.ptp(predicted) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = (stats.spearmanr if kind == "srcc" else stats.pearsonr)(truth, predicted)[0]
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


def evaluate(scorer: Any, features: np.ndarray, labels: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Compare ``scorer``'s predictions for ``features`` (N, D) with ``labels`` (as for training: per image
    a mapping field key -> consensus value, keys may be missing). Raises LabelError on a value the schema
    does not allow, naming the image index and field."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] != len(labels):
        raise LabelError(f"{features.shape[0] if features.ndim else 0} feature rows but {len(labels)} label rows")
    if not getattr(scorer, "trained", True):
        raise UntrainedScorerError("cannot evaluate an untrained scorer: it predicts nothing")
    heads = heads_from_schema(scorer.schema)
    truth = collect_labels(scorer.schema, labels)

    count = features.shape[0]
    predicted_fields = set(getattr(scorer, "predicted_fields", [])) if count else set()
    members = scorer.predict_members(features) if count else {}
    result: dict[str, Any] = {"n_images": count, "model_version": scorer.version, "fields": {}}
    for head in heads:
        known = truth[head.key]
        entry: dict[str, Any] = {"kind": head.kind, "n": len(known)}
        result["fields"][head.key] = entry
        if head.key not in predicted_fields:
            entry["predicted"] = False
            continue
        rows = np.array(sorted(known), dtype=np.int64)
        if head.is_choice:
            probabilities = members[head.key].mean(axis=0)[rows] if rows.size else np.zeros((0, len(head.choices)))
            true_index = np.array([known[i] for i in rows], dtype=np.int64)
            guess = probabilities.argmax(axis=1) if rows.size else np.zeros(0, dtype=np.int64)
            entry["accuracy"] = round(float((guess == true_index).mean()), 6) if rows.size else None
            entry["majority_share"] = (
                round(Counter(true_index.tolist()).most_common(1)[0][1] / rows.size, 6) if rows.size else None
            )
            if head.kind == "ordinal":
                on_scale = np.array(head.applicable, dtype=bool)
                ranked = on_scale[true_index] if rows.size else np.zeros(0, dtype=bool)
                scale_positions = np.cumsum(on_scale) - 1  # position of each applicable choice on the scale
                p = probabilities[ranked][:, on_scale]
                p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
                expected = p @ np.arange(on_scale.sum(), dtype=np.float64)
                entry["n_on_scale"] = int(ranked.sum())
                entry["srcc"] = _correlation("srcc", scale_positions[true_index[ranked]].astype(np.float64), expected)
        else:
            values = members[head.key].mean(axis=0)[rows] if rows.size else np.zeros(0)
            true_values = np.array([known[i] for i in rows], dtype=np.float64)
            entry["srcc"] = _correlation("srcc", true_values, values)
            entry["plcc"] = _correlation("plcc", true_values, values)
            entry["mae"] = round(float(np.abs(true_values - values).mean()), 6) if rows.size else None
    return result


def _figure(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_report(metrics: Mapping[str, Any]) -> str:
    """The metrics of :func:`evaluate` as a plain table, one line per field."""
    lines = [
        f"{metrics['model_version']} on {metrics['n_images']} images",
        f"{'field':24} {'kind':11} {'n':>5}  figures",
    ]
    for key, entry in metrics["fields"].items():
        if entry.get("predicted") is False:
            figures = "not predicted (too few training labels)"
        elif entry["kind"] in ("integer", "continuous"):
            figures = f"SRCC {_figure(entry['srcc'])}  PLCC {_figure(entry['plcc'])}  MAE {_figure(entry['mae'])}"
        else:
            figures = f"accuracy {_figure(entry['accuracy'])} (majority {_figure(entry['majority_share'])})"
            if entry["kind"] == "ordinal":
                figures += f"  SRCC {_figure(entry['srcc'])} (n {entry['n_on_scale']})"
        lines.append(f"{key:24} {entry['kind']:11} {entry['n']:>5}  {figures}")
    return "\n".join(lines)
