"""Scoring a label against a gold image's known answer (pure: works on parsed schema specs)."""

from __future__ import annotations

from dataclasses import dataclass

from annotation_site.schemas.spec import FieldSpec, SchemaSpec

DEFAULT_TOLERANCE = 1.0  # one step on an ordinal scale, one unit on a score: P.808/P.910 accept gold within ±1


@dataclass(frozen=True)
class GoldCheck:
    score: float  # share of the known answers within tolerance
    correct: dict[str, bool]
    expected: dict[str, object]


def _within(field: FieldSpec, expected: object, given: object, tolerance: float) -> bool:
    if given is None:
        return False
    if field.kind == "ordinal":
        expected_rank, given_rank = field.ordinal_rank(expected), field.ordinal_rank(given)
        if expected_rank is None or given_rank is None:  # off-scale answers ("no horizon") must match exactly
            return expected == given
        return abs(expected_rank - given_rank) <= tolerance
    if field.is_score:
        return abs(float(given) - float(expected)) <= tolerance + 1e-9
    if field.kind == "text":
        return str(given).casefold().split() == str(expected).casefold().split()
    return given == expected


def gold_check(spec: SchemaSpec, *, expected: dict[str, object], tolerances: dict[str, float], given: dict[str, object]) -> GoldCheck:
    """Compare a rater's values with the known answers; fields the gold answer leaves out are not scored."""
    correct: dict[str, bool] = {}
    for key, value in expected.items():
        if key not in spec.keys:
            continue  # a field dropped by a later schema version
        field = spec.field(key)
        correct[key] = _within(field, value, given.get(key), float(tolerances.get(key, DEFAULT_TOLERANCE)))
    score = sum(correct.values()) / len(correct) if correct else 1.0
    return GoldCheck(score=score, correct=correct, expected={key: expected[key] for key in correct})


def gold_values_clean(spec: SchemaSpec, values: object, tolerances: object) -> tuple[dict[str, object], dict[str, float]]:
    """Validate a gold answer against the schema; ValueError naming the bad key."""
    if not isinstance(values, dict) or not values:
        raise ValueError("gold values: expected a non-empty object of field values")
    if not isinstance(tolerances, dict):
        raise ValueError("gold tolerances: expected an object of field tolerances")
    cleaned: dict[str, object] = {}
    for key, value in values.items():
        try:
            field = spec.field(key)
        except KeyError as exc:
            raise ValueError(f"gold values: {exc.args[0]}") from None
        cleaned[key] = field.clean_value(value)
    clean_tolerances: dict[str, float] = {}
    for key, tolerance in tolerances.items():
        if key not in cleaned:
            raise ValueError(f"gold tolerances: {key!r} has no gold value")
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 1e6:
            raise ValueError(f"gold tolerances: {key!r} must be a non-negative number")
        clean_tolerances[key] = float(tolerance)
    return cleaned, clean_tolerances
