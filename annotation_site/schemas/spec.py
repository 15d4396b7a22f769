"""Annotation schemas: parse and validate a schema (JSON data), then validate rater labels.

Pure Python, no Django import: the web app, the workers and the statistics code all
use it, and it is cheap to import.

A schema is JSON data like::

    {
      "name": "RealQA",
      "description": "optional text",
      "fields": [
        {"key": "clarity", "label": "Image clarity", "level": "low", "kind": "ordinal",
         "choices": [{"value": "bad", "label": "Bad"}, ...]},
        ...
      ]
    }

``parse_schema(data)`` turns it into a frozen ``SchemaSpec`` or raises ``SchemaError``
listing every problem it found, each message starting with the location of the bad
key (``fields[3].kind: ...``). ``SchemaSpec.clean_labels(raw)`` validates what a rater
submitted and returns ``CleanedLabels`` or raises ``LabelError`` (field key -> message).

Conventions callers can rely on:

* An optional key set to ``null`` is the same as leaving it out.
* ``SchemaSpec.to_dict()`` is canonical (every default filled in, only the keys that
  belong to each field's kind, continuous bounds and steps as floats), so
  ``parse_schema(spec.to_dict()) == spec`` and ``digest()`` ignores whitespace, key
  order and ``1`` versus ``1.0`` in continuous bounds.
* ``ordinal_rank`` is 0-based, in ``choices`` list order, counting only on-scale
  choices; a ``not_applicable`` choice has rank ``None``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

__all__ = [
    "LEVELS",
    "KINDS",
    "MEASUREMENTS",
    "CHOICE_KINDS",
    "SCORE_KINDS",
    "DEFAULT_TEXT_MAX_LENGTH",
    "DEFAULT_REASON_MAX_LENGTH",
    "SchemaError",
    "LabelError",
    "AnchorSpec",
    "ChoiceSpec",
    "ReasonSpec",
    "FieldSpec",
    "SchemaSpec",
    "CleanedLabels",
    "parse_schema",
    "load_schema_file",
]

LEVELS: tuple[str, ...] = ("low", "middle", "high", "overall")
KINDS: tuple[str, ...] = ("ordinal", "nominal", "integer", "continuous", "text")
MEASUREMENTS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")
CHOICE_KINDS: frozenset[str] = frozenset({"ordinal", "nominal"})
SCORE_KINDS: frozenset[str] = frozenset({"integer", "continuous"})

DEFAULT_TEXT_MAX_LENGTH = 2000
DEFAULT_REASON_MAX_LENGTH = 2000

KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")

# Measurement level used when a field does not say, and the levels that suit each kind.
DEFAULT_MEASUREMENT: dict[str, str | None] = {
    "ordinal": "ordinal",
    "nominal": "nominal",
    "integer": "interval",
    "continuous": "interval",
    "text": None,
}
ALLOWED_MEASUREMENTS: dict[str, tuple[str | None, ...]] = {
    "nominal": ("nominal",),
    "ordinal": ("ordinal", "nominal"),
    "integer": ("interval", "ratio", "ordinal"),
    "continuous": ("interval", "ratio", "ordinal"),
    "text": (None, "nominal"),
}

# Tolerances: a schema's (max - min) / step must be whole within GRID_TOLERANCE; a
# label's (value - min) / step within LABEL_GRID_TOLERANCE (a fraction of one step).
GRID_TOLERANCE = 1e-9
LABEL_GRID_TOLERANCE = 1e-6

_TOP_KEYS = ("name", "description", "fields")
_COMMON_FIELD_KEYS = ("key", "label", "level", "kind", "measurement", "required", "help", "anchors")
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "ordinal": ("choices", "reason"),
    "nominal": ("choices", "reason"),
    "integer": ("min", "max", "reason"),
    "continuous": ("min", "max", "step", "reason"),
    "text": ("max_length",),
}
_ALL_FIELD_KEYS = _COMMON_FIELD_KEYS + ("choices", "min", "max", "step", "max_length", "reason")
_CHOICE_KEYS = ("value", "label", "help", "not_applicable")
_ANCHOR_KEYS = ("value", "example")
_REASON_KEYS = ("label", "required", "max_length")
_LABEL_OBJECT_KEYS = ("value", "reason")


# --------------------------------------------------------------------------- errors


class SchemaError(ValueError):
    """A schema is invalid. ``errors`` lists every problem, each starting with its location."""

    def __init__(self, errors: Iterable[str] | str) -> None:
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        super().__init__(self.errors)

    def __str__(self) -> str:
        return "; ".join(self.errors)


class LabelError(ValueError):
    """Submitted labels are invalid. ``errors`` maps field key (or ``"__all__"``) to a message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors: dict[str, str] = dict(errors)
        super().__init__(self.errors)

    def __str__(self) -> str:
        return "; ".join(f"{key}: {message}" for key, message in self.errors.items())


# ------------------------------------------------------------------- parsed objects


@dataclasses.dataclass(frozen=True)
class AnchorSpec:
    """An example for one value of the field, shown to raters (e.g. 1 = "a cluttered snapshot")."""

    value: str | int | float
    example: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "example": self.example}


@dataclasses.dataclass(frozen=True)
class ChoiceSpec:
    """One answer of an ordinal or nominal field. ``not_applicable`` answers lie off the scale."""

    value: str
    label: str
    help: str = ""
    not_applicable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "label": self.label,
            "help": self.help,
            "not_applicable": self.not_applicable,
        }


@dataclasses.dataclass(frozen=True)
class ReasonSpec:
    """A free-text reason linked to a field (e.g. "Why this score?")."""

    label: str
    required: bool = True
    max_length: int = DEFAULT_REASON_MAX_LENGTH

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "required": self.required, "max_length": self.max_length}


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One question of the schema. Build it with ``parse_schema``: the constructor does not validate."""

    key: str
    label: str
    level: str
    kind: str
    measurement: str | None
    required: bool = True
    help: str = ""
    anchors: tuple[AnchorSpec, ...] = ()
    choices: tuple[ChoiceSpec, ...] = ()
    min: int | float | None = None
    max: int | float | None = None
    step: float | None = None
    max_length: int | None = None
    reason: ReasonSpec | None = None

    def __post_init__(self) -> None:
        # Lookup tables for the hot path, kept out of the dataclass fields (eq, repr, asdict).
        ranks: dict[str, int | None] = {}
        on_scale = 0
        for choice in self.choices:
            if choice.not_applicable:
                ranks[choice.value] = None
            else:
                ranks[choice.value] = on_scale
                on_scale += 1
        object.__setattr__(self, "_values", frozenset(ranks))
        object.__setattr__(self, "_ranks", ranks)
        decimals = 0
        if self.step is not None:
            decimals = max(_decimals(self.step), _decimals(self.min) if self.min is not None else 0)
        object.__setattr__(self, "_decimals", decimals)

    @property
    def is_choice(self) -> bool:
        """True for ordinal and nominal fields (answers come from ``choices``)."""
        return self.kind in CHOICE_KINDS

    @property
    def is_score(self) -> bool:
        """True for integer and continuous fields (numeric answers in [min, max])."""
        return self.kind in SCORE_KINDS

    @property
    def choice_values(self) -> tuple[str, ...]:
        """All choice values in list order, not_applicable ones included (empty for other kinds)."""
        return tuple(choice.value for choice in self.choices)

    def ordinal_rank(self, value: str) -> int | None:
        """0-based position of ``value`` among the on-scale choices; None for a not_applicable one.

        Raises ValueError for a field without choices or a value that is not a choice.
        """
        if not self.is_choice:
            raise ValueError(f"{self.key}: a {self.kind} field has no choices")
        try:
            return self._ranks[value]
        except (KeyError, TypeError):
            raise ValueError(
                f"{self.key}: {value!r} is not one of {', '.join(self.choice_values)}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-able form: defaults filled in, only the keys this kind takes."""
        data: dict[str, Any] = {
            "key": self.key,
            "label": self.label,
            "level": self.level,
            "kind": self.kind,
            "measurement": self.measurement,
            "required": self.required,
            "help": self.help,
            "anchors": [anchor.to_dict() for anchor in self.anchors],
        }
        if self.is_choice:
            data["choices"] = [choice.to_dict() for choice in self.choices]
        if self.is_score:
            data["min"] = self.min
            data["max"] = self.max
        if self.kind == "continuous":
            data["step"] = self.step
        if self.kind == "text":
            data["max_length"] = self.max_length
        else:
            data["reason"] = self.reason.to_dict() if self.reason is not None else None
        return data

    # ----------------------------------------------------------- value cleaning

    def clean_value(self, value: object) -> object:
        """One answer of this field cleaned as ``clean_labels`` would; ValueError naming the problem otherwise."""
        cleaned, problem = self._clean_value(value)
        if problem is not None:
            raise ValueError(f"{self.key}: {problem}")
        return cleaned

    def _clean_value(self, value: object) -> tuple[object, str | None]:
        """Check one non-null value; return (cleaned value, None) or (None, error message).

        A text value that is blank after stripping comes back as ("", None).
        """
        kind = self.kind
        if kind in CHOICE_KINDS:
            if isinstance(value, str) and value in self._values:
                return value, None
            return None, f"must be one of {', '.join(self.choice_values)} (got {_describe(value)})"
        if kind == "integer":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None, f"must be a whole number (got {_describe(value)})"
            if isinstance(value, float):
                if not value.is_integer():  # also False for NaN and inf
                    return None, f"must be a whole number (got {_describe(value)})"
                value = int(value)
            if not self.min <= value <= self.max:  # type: ignore[operator]
                return None, f"must be between {_fmt(self.min)} and {_fmt(self.max)} (got {_fmt(value)})"
            return value, None
        if kind == "continuous":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None, f"must be a number (got {_describe(value)})"
            if isinstance(value, float) and not math.isfinite(value):
                return None, f"must be a finite number (got {_describe(value)})"
            if not self.min <= value <= self.max:  # type: ignore[operator]
                return None, f"must be between {_fmt(self.min)} and {_fmt(self.max)} (got {_fmt(value)})"
            value = float(value)
            if self.step is None:
                return value, None
            steps = (value - self.min) / self.step  # type: ignore[operator]
            whole = round(steps)
            if abs(steps - whole) > LABEL_GRID_TOLERANCE:
                return None, (
                    f"must be a multiple of {_fmt(self.step)} from {_fmt(self.min)} (got {_fmt(value)})"
                )
            return round(self.min + whole * self.step, self._decimals), None  # type: ignore[operator]
        # text
        if not isinstance(value, str):
            return None, f"must be text (got {_describe(value)})"
        problem = unstorable_text_problem(value)
        if problem:
            return None, problem
        value = value.strip()
        limit = self.max_length if self.max_length is not None else DEFAULT_TEXT_MAX_LENGTH
        if len(value) > limit:
            return None, f"must be at most {limit} characters (got {len(value)})"
        return value, None


@dataclasses.dataclass(frozen=True)
class CleanedLabels:
    """Validated labels: ``values`` field key -> cleaned value (omitted optional fields are absent),
    ``reasons`` field key -> stripped non-empty reason. Both in schema field order."""

    values: dict[str, object]
    reasons: dict[str, str]


@dataclasses.dataclass(frozen=True)
class SchemaSpec:
    """A parsed, valid annotation schema. Build it with ``parse_schema`` or ``load_schema_file``."""

    name: str
    description: str
    fields: tuple[FieldSpec, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {f.key: f for f in self.fields})

    def field(self, key: str) -> FieldSpec:
        """The field with this key; KeyError (with a suggestion) if there is none."""
        try:
            return self._by_key[key]
        except (KeyError, TypeError):
            raise KeyError(f"no field {key!r}{_suggest(key, self._by_key)}") from None

    @property
    def keys(self) -> tuple[str, ...]:
        """Field keys in schema order."""
        return tuple(self._by_key)

    def by_level(self) -> dict[str, tuple[FieldSpec, ...]]:
        """Fields grouped by level, levels in order low, middle, high, overall.

        Only levels that have at least one field appear; fields keep schema order.
        """
        grouped: dict[str, tuple[FieldSpec, ...]] = {}
        for level in LEVELS:
            fields = tuple(f for f in self.fields if f.level == level)
            if fields:
                grouped[level] = fields
        return grouped

    def to_dict(self) -> dict[str, Any]:
        """Canonical, normalised JSON-able dict; ``parse_schema(spec.to_dict()) == spec``."""
        return {
            "name": self.name,
            "description": self.description,
            "fields": [f.to_dict() for f in self.fields],
        }

    def canonical_json(self) -> str:
        """``to_dict()`` as compact JSON with sorted keys (what ``digest`` hashes)."""
        return json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )

    def digest(self) -> str:
        """sha256 hex of the canonical JSON: equal for schemas that differ only in layout."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def clean_labels(self, raw: object) -> CleanedLabels:
        """Validate one rater's submission; raise LabelError with every field's problem.

        ``raw`` maps field key -> value, or -> ``{"value": v, "reason": "..."}`` to send a reason.
        """
        if not isinstance(raw, dict):
            raise LabelError({"__all__": f"expected an object of field values (got {_describe(raw)})"})
        by_key = self._by_key
        errors: dict[str, str] = {}
        for key in raw:
            if key not in by_key:  # all keys are str, so no TypeError for hashable keys
                name = key if isinstance(key, str) else repr(key)
                errors[name] = f"unknown field{_suggest(key, by_key)}"
        values: dict[str, object] = {}
        reasons: dict[str, str] = {}
        for field in self.fields:
            entry = raw.get(field.key)
            reason: object = None
            object_form = isinstance(entry, dict)
            problems: list[str] = []
            if object_form:
                for extra in entry:
                    if extra not in _LABEL_OBJECT_KEYS:
                        problems.append(
                            f"unexpected key {_key_repr(extra)} (send {{\"value\": ..., \"reason\": ...}})"
                            f"{_suggest(extra, _LABEL_OBJECT_KEYS)}"
                        )
                reason = entry.get("reason")
                entry = entry.get("value")
            given = entry is not None
            value: object = None
            if given:
                value, problem = field._clean_value(entry)
                if problem is not None:
                    problems.append(problem)
                elif value == "":  # a blank text answer counts as no answer
                    given = False
            if not given and field.required:
                problems.append("this field is required")
            spec = field.reason
            if reason is not None and not isinstance(reason, str):
                problems.append(f"the reason must be text (got {_describe(reason)})")
            elif reason is not None and unstorable_text_problem(reason):
                problems.append(f"the reason {unstorable_text_problem(reason)}")
            else:
                text = reason.strip() if reason is not None else ""
                if spec is None:
                    if text:
                        problems.append("this field takes no reason")
                elif len(text) > spec.max_length:
                    problems.append(f"the reason must be at most {spec.max_length} characters (got {len(text)})")
                elif text:
                    if given:
                        reasons[field.key] = text
                    elif not field.required:
                        problems.append("a reason was given without a value")
                elif given and spec.required:
                    if object_form:
                        problems.append("a reason is required")
                    else:
                        problems.append('a reason is required (send {"value": ..., "reason": "..."})')
            if problems:
                errors[field.key] = "; ".join(problems)
            elif given:
                values[field.key] = value
        if errors:
            raise LabelError(errors)
        return CleanedLabels(values=values, reasons=reasons)


# ------------------------------------------------------------------------ helpers


def _describe(value: object) -> str:
    """A short description of a wrong value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return _fmt(value)
    if isinstance(value, int):
        return _fmt(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _fmt(number: object) -> str:
    """Numbers as a person writes them: 1 for 1.0, 0.1 for 0.1, huge ints abbreviated."""
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    if isinstance(number, int) and not isinstance(number, bool) and abs(number) >= 10**30:
        return f"{float(number):.3g}" if abs(number) < 10**300 else "a huge number"
    return repr(number)


def _decimals(number: float | int) -> int:
    """Decimal places in the shortest repr of a number (0.1 -> 1, 0.25 -> 2, 5 -> 0)."""
    try:
        exponent = Decimal(repr(number)).as_tuple().exponent
    except (InvalidOperation, ValueError):
        return 0
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _key_repr(key: object) -> str:
    return repr(key) if isinstance(key, str) else f"{_describe(key)}"


def _suggest(word: object, possibilities: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a close match, else ''."""
    if not isinstance(word, str):
        return ""
    matches = difflib.get_close_matches(word, list(possibilities), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _article(kind: str) -> str:
    return "an" if kind[:1] in "aeiou" else "a"


def _join_or(options: Iterable[str | None]) -> str:
    words = ["null" if option is None else option for option in options]
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


# ------------------------------------------------------------------------ parsing


class _Parser:
    """Walks schema data and collects every error with its location."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    # small typed readers; each returns a value or None after recording an error

    def check_keys(self, obj: dict, path: str, allowed: Iterable[str], known: Iterable[str], what: str = "") -> None:
        allowed = tuple(allowed)
        known = tuple(known)
        for key in obj:
            if key in allowed:
                continue
            if isinstance(key, str) and key in known:
                if obj[key] is not None:  # null means "not set", which is fine for any kind
                    self.error(f"{path}.{key}", f"not allowed for {what}")
            else:
                self.error(path, f"unknown key {_key_repr(key)}{_suggest(key, known)}")

    def text(self, obj: dict, key: str, path: str, *, required: bool, default: str = "") -> str | None:
        value = obj.get(key)
        where = f"{path}.{key}" if path else key
        if value is None:
            if required:
                self.error(where, "is required" if key not in obj else "must be a non-empty string, not null")
                return None
            return default
        if not isinstance(value, str):
            self.error(where, f"must be a string, not {_json_type(value)}")
            return None
        value = value.strip()
        if required and not value:
            self.error(where, "must be a non-empty string")
            return None
        return value

    def boolean(self, obj: dict, key: str, path: str, default: bool) -> bool | None:
        value = obj.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(f"{path}.{key}", f"must be true or false, not {_describe(value) if isinstance(value, str) else _json_type(value)}")
            return None
        return value

    def number(self, obj: dict, key: str, path: str, *, integer: bool, required: bool) -> int | float | None:
        where = f"{path}.{key}"
        value = obj.get(key)
        if value is None:
            if required:
                self.error(where, "is required")
            return None
        wanted = "a whole number" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            extra = f" ({value!r})" if isinstance(value, str) and len(value) <= 20 else ""
            self.error(where, f"must be {wanted}, not {_json_type(value)}{extra}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.error(where, f"must be a finite number, not {_describe(value)}")
            return None
        if integer:
            if isinstance(value, float):
                if not value.is_integer():
                    self.error(where, f"must be a whole number, not {_fmt(value)}")
                    return None
                value = int(value)
            return value
        try:
            result = float(value)
        except OverflowError:
            result = math.inf
        if not math.isfinite(result):
            self.error(where, "is too large")
            return None
        return result

    def positive_int(self, obj: dict, key: str, path: str, default: int) -> int | None:
        if obj.get(key) is None:
            return default
        value = self.number(obj, key, path, integer=True, required=True)
        if value is None:
            return None
        if value < 1:
            self.error(f"{path}.{key}", f"must be at least 1, not {_fmt(value)}")
            return None
        return int(value)

    # the structure

    def schema(self, data: object) -> SchemaSpec | None:
        if not isinstance(data, dict):
            self.error("schema", f"must be an object, not {_json_type(data)}")
            return None
        self.check_keys(data, "schema", _TOP_KEYS, _TOP_KEYS)
        name = self.text(data, "name", "", required=True)
        description = self.text(data, "description", "", required=False)
        raw_fields = data.get("fields")
        fields: list[FieldSpec] = []
        if not isinstance(raw_fields, list) or not raw_fields:
            got = "an empty list" if isinstance(raw_fields, list) else _json_type(raw_fields)
            if "fields" not in data:
                got = "missing"
            self.error("fields", f"must be a non-empty list (got {got})")
        else:
            seen: dict[str, int] = {}
            for index, raw in enumerate(raw_fields):
                field = self.field(raw, index, seen)
                if field is not None:
                    fields.append(field)
        if self.errors:
            return None
        return SchemaSpec(name=name, description=description, fields=tuple(fields))  # type: ignore[arg-type]

    def field(self, raw: object, index: int, seen: dict[str, int]) -> FieldSpec | None:
        path = f"fields[{index}]"
        if not isinstance(raw, dict):
            self.error(path, f"must be an object, not {_json_type(raw)}")
            return None
        before = len(self.errors)

        # key
        key = raw.get("key")
        if key is None:
            self.error(f"{path}.key", "is required")
        elif not isinstance(key, str):
            self.error(f"{path}.key", f"must be a string, not {_json_type(key)}")
            key = None
        elif not KEY_RE.fullmatch(key):
            self.error(
                f"{path}.key",
                f"{_describe(key)} must be lower case letters, digits and _, start with a letter, "
                f"at most 64 characters",
            )
        elif key in seen:
            self.error(f"{path}.key", f"duplicate key {key!r} (also fields[{seen[key]}])")
        else:
            seen[key] = index

        # kind, then which keys the field may carry
        kind = raw.get("kind")
        if kind is None:
            self.error(f"{path}.kind", f"is required (one of {', '.join(KINDS)})")
        elif not isinstance(kind, str):
            self.error(f"{path}.kind", f"must be a string, not {_json_type(kind)}")
            kind = None
        elif kind not in KINDS:
            self.error(f"{path}.kind", f"{_describe(kind)} is not one of {', '.join(KINDS)}{_suggest(kind, KINDS)}")
            kind = None
        if kind is not None:
            self.check_keys(raw, path, _COMMON_FIELD_KEYS + _KIND_KEYS[kind], _ALL_FIELD_KEYS, f"{_article(kind)} {kind} field")
        else:
            self.check_keys(raw, path, _ALL_FIELD_KEYS, _ALL_FIELD_KEYS)

        label = self.text(raw, "label", path, required=True)
        level = raw.get("level")
        if level is None:
            self.error(f"{path}.level", f"is required (one of {', '.join(LEVELS)})")
        elif not isinstance(level, str):
            self.error(f"{path}.level", f"must be a string, not {_json_type(level)}")
        elif level not in LEVELS:
            self.error(f"{path}.level", f"{_describe(level)} is not one of {', '.join(LEVELS)}{_suggest(level, LEVELS)}")
        required = self.boolean(raw, "required", path, True)
        help_text = self.text(raw, "help", path, required=False)

        # measurement
        measurement = raw.get("measurement")
        if measurement is not None and not isinstance(measurement, str):
            self.error(f"{path}.measurement", f"must be a string or null, not {_json_type(measurement)}")
        elif measurement is not None and measurement not in MEASUREMENTS:
            self.error(
                f"{path}.measurement",
                f"{_describe(measurement)} is not one of {', '.join(MEASUREMENTS)}{_suggest(measurement, MEASUREMENTS)}",
            )
        elif kind is not None:
            if measurement is None:
                measurement = DEFAULT_MEASUREMENT[kind]
            elif measurement not in ALLOWED_MEASUREMENTS[kind]:
                self.error(
                    f"{path}.measurement",
                    f"{measurement!r} does not suit {_article(kind)} {kind} field "
                    f"(use {_join_or(ALLOWED_MEASUREMENTS[kind])})",
                )

        # kind-specific settings
        choices: tuple[ChoiceSpec, ...] = ()
        lo = hi = step = None
        max_length = None
        reason = None
        if kind in CHOICE_KINDS:
            choices = self.choices(raw, path)
        elif kind in SCORE_KINDS:
            integer = kind == "integer"
            lo = self.number(raw, "min", path, integer=integer, required=True)
            hi = self.number(raw, "max", path, integer=integer, required=True)
            if lo is not None and hi is not None and not lo < hi:
                self.error(f"{path}.max", f"must be greater than min ({_fmt(hi)} <= {_fmt(lo)})")
            if kind == "continuous":
                step = self.number(raw, "step", path, integer=False, required=False)
                if step is not None:
                    if step <= 0:
                        self.error(f"{path}.step", f"must be greater than 0, not {_fmt(step)}")
                    elif lo is not None and hi is not None and lo < hi:
                        count = (hi - lo) / step
                        if not math.isfinite(count) or abs(count - round(count)) > GRID_TOLERANCE:
                            self.error(
                                f"{path}.step",
                                f"(max - min) / step must be a whole number "
                                f"(({_fmt(hi)} - {_fmt(lo)}) / {_fmt(step)} = {_fmt(count)})",
                            )
        elif kind == "text":
            max_length = self.positive_int(raw, "max_length", path, DEFAULT_TEXT_MAX_LENGTH)
        if kind is not None and kind != "text":
            reason = self.reason(raw, path)

        anchors = self.anchors(raw, path)

        if len(self.errors) > before:
            return None
        field = FieldSpec(
            key=key,  # type: ignore[arg-type]
            label=label,  # type: ignore[arg-type]
            level=level,  # type: ignore[arg-type]
            kind=kind,  # type: ignore[arg-type]
            measurement=measurement,  # type: ignore[arg-type]
            required=required,  # type: ignore[arg-type]
            help=help_text,  # type: ignore[arg-type]
            anchors=(),
            choices=choices,
            min=lo,
            max=hi,
            step=step,
            max_length=max_length,
            reason=reason,
        )
        # anchor values are checked like a rater's answer, and normalised the same way
        cleaned: list[AnchorSpec] = []
        for i, (value, example) in enumerate(anchors):
            clean, problem = field._clean_value(value)
            if problem is None and clean == "":
                problem = "must not be blank"
            if problem is not None:
                self.error(f"{path}.anchors[{i}].value", f"not a valid value of this field: {problem}")
            else:
                cleaned.append(AnchorSpec(value=clean, example=example))  # type: ignore[arg-type]
        if len(self.errors) > before:
            return None
        return dataclasses.replace(field, anchors=tuple(cleaned))

    def choices(self, raw: dict, path: str) -> tuple[ChoiceSpec, ...]:
        where = f"{path}.choices"
        items = raw.get("choices")
        if items is None:
            self.error(where, "is required (a list of at least 2 choices)")
            return ()
        if not isinstance(items, list):
            self.error(where, f"must be a list, not {_json_type(items)}")
            return ()
        if len(items) < 2:
            self.error(where, f"needs at least 2 choices (got {len(items)})")
        result: list[ChoiceSpec] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            here = f"{where}[{i}]"
            if not isinstance(item, dict):
                self.error(here, f"must be an object with value and label, not {_json_type(item)}")
                continue
            self.check_keys(item, here, _CHOICE_KEYS, _CHOICE_KEYS)
            value = item.get("value")
            if value is None:
                self.error(f"{here}.value", "is required")
            elif not isinstance(value, str):
                self.error(f"{here}.value", f"must be a string, not {_json_type(value)}")
                value = None
            elif not value.strip() or value != value.strip():
                self.error(f"{here}.value", f"{_describe(value)} must be non-empty with no surrounding spaces")
                value = None
            elif value in seen:
                self.error(f"{here}.value", f"duplicate value {value!r} (also choices[{seen[value]}])")
                value = None
            else:
                seen[value] = i
            label = self.text(item, "label", here, required=True)
            help_text = self.text(item, "help", here, required=False)
            not_applicable = self.boolean(item, "not_applicable", here, False)
            if value is not None and label is not None and help_text is not None and not_applicable is not None:
                result.append(ChoiceSpec(value=value, label=label, help=help_text, not_applicable=not_applicable))
        on_scale = sum(1 for item in items if isinstance(item, dict) and item.get("not_applicable") is not True)
        if len(items) >= 2 and on_scale < 2:
            self.error(where, f"needs at least 2 choices that are not not_applicable (got {on_scale})")
        return tuple(result)

    def reason(self, raw: dict, path: str) -> ReasonSpec | None:
        where = f"{path}.reason"
        item = raw.get("reason")
        if item is None:
            return None
        if not isinstance(item, dict):
            self.error(where, f"must be an object like {{\"label\": ..., \"required\": true}}, not {_json_type(item)}")
            return None
        self.check_keys(item, where, _REASON_KEYS, _REASON_KEYS)
        label = self.text(item, "label", where, required=True)
        required = self.boolean(item, "required", where, True)
        max_length = self.positive_int(item, "max_length", where, DEFAULT_REASON_MAX_LENGTH)
        if label is None or required is None or max_length is None:
            return None
        return ReasonSpec(label=label, required=required, max_length=max_length)

    def anchors(self, raw: dict, path: str) -> list[tuple[object, str]]:
        """Anchor structure only; values are checked against the built field afterwards."""
        where = f"{path}.anchors"
        items = raw.get("anchors")
        if items is None:
            return []
        if not isinstance(items, list):
            self.error(where, f"must be a list, not {_json_type(items)}")
            return []
        result: list[tuple[object, str]] = []
        for i, item in enumerate(items):
            here = f"{where}[{i}]"
            if not isinstance(item, dict):
                self.error(here, f"must be an object with value and example, not {_json_type(item)}")
                continue
            self.check_keys(item, here, _ANCHOR_KEYS, _ANCHOR_KEYS)
            if item.get("value") is None:
                self.error(f"{here}.value", "is required")
            example = self.text(item, "example", here, required=True)
            if item.get("value") is not None and example is not None:
                result.append((item["value"], example))
        return result


def parse_schema(data: object) -> SchemaSpec:
    """Validate schema data (already decoded JSON) and return a SchemaSpec.

    Raises SchemaError listing every problem found, never TypeError/KeyError.
    """
    parser = _Parser()
    spec = parser.schema(data)
    if parser.errors or spec is None:
        raise SchemaError(parser.errors or ["schema: invalid"])
    unstorable = list(_unstorable_strings(spec.to_dict(), ""))
    if unstorable:
        raise SchemaError(unstorable)
    return spec


def unstorable_text_problem(text: str) -> str | None:
    """Why a string cannot be stored in a database (PostgreSQL refuses NUL in text and jsonb; an
    unpaired surrogate has no UTF-8 form), or None."""
    if "\x00" in text:
        return "must not contain a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (it holds an unpaired surrogate)"
    return None


def _unstorable_strings(value: object, path: str) -> Iterable[str]:
    if isinstance(value, str):
        problem = unstorable_text_problem(value)
        if problem:
            yield f"{path or 'schema'}: {problem}"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unstorable_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _unstorable_strings(item, f"{path}[{index}]")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not allowed in JSON")


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r} in one object")
        result[key] = value
    return result


def load_schema_file(path: str | os.PathLike[str]) -> SchemaSpec:
    """Read and parse a schema JSON file.

    Every error message is prefixed with the file path, e.g.
    ``fixtures/x.json: not valid JSON: Expecting ',' delimiter at line 12 column 5`` or
    ``fixtures/x.json: fields[3].kind: 'ordnial' is not one of ...``. NaN/Infinity and
    repeated keys in one JSON object are rejected.
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise SchemaError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise SchemaError(f"{name}: is a directory, not a schema file") from None
    except UnicodeDecodeError as exc:
        raise SchemaError(f"{name}: not valid UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise SchemaError(f"{name}: cannot read the file: {exc.strerror or exc}") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{name}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # from the hooks above, or an integer too long to convert
        raise SchemaError(f"{name}: not valid JSON: {exc}") from None
    except RecursionError:
        raise SchemaError(f"{name}: not valid JSON: nested too deeply") from None
    try:
        return parse_schema(data)
    except SchemaError as exc:
        raise SchemaError([f"{name}: {message}" for message in exc.errors]) from None
