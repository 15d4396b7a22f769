"""Training and evaluation text built from a project schema: questions, answers, chain of thought.

The schema is the plain dict of the platform's schema JSON (``fixtures/realqa_schema.json``;
``SchemaSpec.to_dict()`` gives the same shape). Each field has ``key``, ``label``, ``level``
(low, middle, high, overall) and ``kind``:

* ``ordinal`` / ``nominal``: ``choices``, each ``{value, label, not_applicable?}``;
* ``integer`` / ``continuous``: ``min``, ``max`` (and ``step``);
* ``text``: free text;
* optionally ``reason`` (a free-text justification rated alongside the value).

This module only reads the dict; it does not import the platform (``annotation_site``) and
does no more validation than it needs to produce correct text.

Wording per kind, with the fixture's fields as examples (labels are lower-cased at the first
letter in sentences unless they start with an acronym, and title-cased in chain-of-thought
headers). :func:`field_question` / :func:`answer_text`:

* ordinal: ``<image>How would you rate the image clarity of this image? Answer with one of:
  bad, poor, fair, good, excellent.`` / ``The image clarity of this image is good.``
* nominal: ``<image>How would you describe the subject clutter of this image? Answer with one
  of: uncluttered, cluttered.`` / ``The subject clutter of this image is uncluttered.``
* integer: ``<image>What is the composition score of this image? Answer with a score from 1
  to 10.`` / ``The composition score of this image is 7.``
* continuous: ``<image>What is the overall quality score of this image? Answer with a score
  from 1 to 10 with two decimals.`` / ``The overall quality score of this image is 6.59.``
  (RealQA's form, written by ``format_score``)
* text: ``<image>Describe the subject and background of this image in a few words.`` / the
  text itself, ending with a period.

Choices are offered and answered by their labels, not their stored values ("partially
complete (slightly cut off or slightly obscured)", as in the RealQA dataset figure), and
``not_applicable`` choices are offered too. A label already ending in "score" is not given a
second one ("The overall score of this image is ...").

Chain of thought (RealQA's "regular form", CoT2 of the dataset figure), see :func:`cot_answer`::

    1.1 Reason for Eye-Catching Score: <reason>, 1.2 Eye-Catching Score: 8,
    1.3 Reason for Composition Score: <reason>, 1.4 Composition Score: 7,
    2.1 Subject and Background: Subject: bed; background: hotel room, 2.2 Subject Integrity:
    partially complete (slightly cut off or slightly obscured), ..., 3.1 Image Clarity: good, ...,
    4.1 Overall Quality Score: 6.20. The final score is <6.59>.

(one line in reality; wrapped here).
"""

from __future__ import annotations

import copy
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from realqa_model.numeric import SCORE_MAX, SCORE_MIN, format_score, parse_score

__all__ = [
    "IMAGE_TOKEN",
    "COT_LEVEL_ORDER",
    "ParsedCot",
    "field_question",
    "answer_text",
    "cot_question",
    "cot_answer",
    "parse_cot_answer",
    "PreparedSchema",
    "prepare_schema",
]

#: The image placeholder LLaMA-Factory replaces with the image tokens; every question starts with it.
IMAGE_TOKEN = "<image>"
#: Order of the levels in a chain-of-thought answer; each non-empty level is one numbered section.
COT_LEVEL_ORDER: tuple[str, ...] = ("high", "middle", "low", "overall")

_CHOICE_KINDS = frozenset({"ordinal", "nominal"})
_SCORE_KINDS = frozenset({"integer", "continuous"})
_KINDS = _CHOICE_KINDS | _SCORE_KINDS | {"text"}

_COT_QUESTION = IMAGE_TOKEN + "Rate the aesthetics and quality of this image step by step"
_FINAL_SENTENCE = "The final score is <{score}>."
# The final sentence at the very end of a chain-of-thought answer (trailing period optional).
_FINAL_RE = re.compile(r"The final score is\s*<[^<>]*>\s*\.?\s*\Z", re.IGNORECASE)
_INTEGER_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER_RE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?", re.ASCII)
# Words kept lower-case inside a title-cased header (unless first).
_SMALL_WORDS = frozenset("a an and as at but by for from in into of on or per the to vs with".split())


class ParsedCot(TypedDict):
    """What :func:`parse_cot_answer` returns."""

    values: dict[str, Any]  # field key -> choice value / int / float / text, in answer order
    reasons: dict[str, str]  # field key -> reason text, for the fields that had a reason item
    final_score: float  # the number in "The final score is <X.XX>."


# --------------------------------------------------------------------------- single questions


def field_question(field: Mapping[str, Any], *, with_reason: bool = False) -> str:
    """The question that asks for one field, starting with ``<image>``.

    See the module docstring for the wording per kind. With ``with_reason=True`` (for training
    conversations whose answers carry the rater's reason, see :func:`answer_text`) the question
    ends with " Give a short reason first, then your answer."; text fields take no reason.

    Raises:
        ValueError: the field is malformed (unknown kind, no choices, no score range, ...).
    """
    field = _check_field(field)
    kind = field["kind"]
    name = _lower_first(field["label"])
    if kind in _CHOICE_KINDS:
        verb = "rate" if kind == "ordinal" else "describe"
        labels = [_lower_first(choice["label"]) for choice in field["choices"]]
        separator = "; " if any("," in label for label in labels) else ", "
        question = f"How would you {verb} the {name} of this image? Answer with one of: {separator.join(labels)}."
    elif kind in _SCORE_KINDS:
        low, high = _format_bound(field["min"]), _format_bound(field["max"])
        decimals = " with two decimals" if kind == "continuous" else ""
        question = f"What is the {_score_noun(name)} of this image? Answer with a score from {low} to {high}{decimals}."
    else:
        if with_reason:
            raise ValueError(f"{field['key']}: a text field takes no reason")
        question = f"Describe the {name} of this image in a few words."
    if with_reason:
        question += " Give a short reason first, then your answer."
    return IMAGE_TOKEN + question


def answer_text(field: Mapping[str, Any], value: Any, reason: str | None = None) -> str:
    """The assistant's answer to :func:`field_question` in a training conversation.

    * choice fields: ``The image clarity of this image is good.`` (the choice's label);
    * integer fields: ``The composition score of this image is 7.``;
    * continuous fields: RealQA's form ``The overall quality score of this image is 6.59.``,
      written by :func:`~realqa_model.numeric.format_score` (two decimals, 10 written as 9.99),
      so :func:`~realqa_model.numeric.parse_score` reads it back;
    * text fields: the text itself (whitespace collapsed), ending with a period.

    A non-blank ``reason`` goes first, as its own sentence: ``The subject is cut off at the
    edge. The composition score of this image is 4.`` (ask with ``field_question(...,
    with_reason=True)``). Note that RealQA's numeric-consistency code finds the score by the
    first '.' of the answer, so continuous answers meant for it should carry no reason.

    Raises:
        ValueError: the value does not suit the field (not one of the choices, not a whole
            number, outside min/max, a continuous field whose range does not fit the one-digit
            answer form, ...), or a reason was given for a text field.
    """
    field = _check_field(field)
    value = _check_value(field, value, where=field["key"])
    kind = field["kind"]
    name = _lower_first(field["label"])
    if kind in _CHOICE_KINDS:
        sentence = f"The {name} of this image is {_choice_label(field, value)}."
    elif kind in _SCORE_KINDS:
        sentence = f"The {_score_noun(name)} of this image is {_format_value(field, value)}."
    else:
        if not value:
            raise ValueError(f"{field['key']}: the text is blank")
        sentence = _as_sentence(value)
    if reason is not None and not isinstance(reason, str):
        raise ValueError(f"{field['key']}: the reason must be text, not {type(reason).__name__}")
    if reason is not None and _one_line(reason):
        if kind == "text":
            raise ValueError(f"{field['key']}: a text field takes no reason")
        sentence = f"{_as_sentence(reason)} {sentence}"
    return sentence


# --------------------------------------------------------------------------- chain of thought


def cot_question(*, regular_form: bool = True) -> str:
    """RealQA's chain-of-thought question.

    ``regular_form=True`` (the default, for :func:`cot_answer`) gives CoT2 "Regular Expression
    Extraction": ``<image>Rate the aesthetics and quality of this image step by step with the
    regular form.``; ``regular_form=False`` gives CoT1 "Natural Human Language", the same
    question without " with the regular form".
    """
    return _COT_QUESTION + (" with the regular form." if regular_form else ".")


def cot_answer(
    schema: Mapping[str, Any] | PreparedSchema,
    values: Mapping[str, Any],
    reasons: Mapping[str, str],
    final_key: str,
    final_value: float,
) -> str:
    """The numbered chain-of-thought answer (RealQA's "regular form") ending in the final score.

    Template, one line, items separated by ", "::

        S.I Reason for <Header>: <reason>, S.I+1 <Header>: <value>, ..., S.I <Header>: <value>.
        The final score is <X.XX>.

    * Sections: the levels in the order high, middle, low, overall (:data:`COT_LEVEL_ORDER`);
      each level with at least one item is one section, numbered 1, 2, 3, ... with no gaps.
      Items are numbered 1, 2, 3, ... within their section. Within a level, fields keep the
      schema's order.
    * A field with a non-blank reason gives two items, "Reason for <Header>: <reason>" then
      "<Header>: <value>"; a field without one gives the value item only.
    * ``<Header>`` is the label title-cased ("Eye-catching" -> "Eye-Catching", "Subject and
      background" -> "Subject and Background"), plus " Score" for integer and continuous
      fields ("Composition Score"), unless the label already ends in "score".
    * Values: choice fields give their label lower-cased at the first letter ("good",
      "partially complete (slightly cut off or slightly obscured)"); integer fields the number;
      continuous fields ``format_score`` (two decimals); text fields the text.
    * Reasons and text values are put on one line (whitespace runs collapsed to one space) and
      lose trailing periods, commas and semicolons, so an item never ends in "., ".
      :func:`parse_cot_answer` returns them in that normalised form.
    * The final field (``final_key``, an integer or continuous field) is not an item: its
      score ``final_value`` closes the answer as ``The final score is <6.59>.``, written by
      ``format_score`` (so 10 is written 9.99). ``values[final_key]`` and
      ``reasons[final_key]`` are ignored if present.
    * Fields missing from ``values`` (or None, or blank text) are left out.

    Hence ``parse_score(cot_answer(...)) == round(final_value, 2)`` for final values below
    9.995, and ``parse_cot_answer(schema, cot_answer(schema, values, reasons, ...))`` gives back
    the values and the normalised reasons.

    ``schema`` is the schema dict or a :func:`prepare_schema` of it (the same answer, without
    checking the schema again on every call).

    Raises:
        ValueError: a key of ``values`` or ``reasons`` is not a schema field, a value does not
            suit its field, a reason is given for a text field, ``final_key`` is not a score
            field, ``final_value`` is outside the field's range or [0, 10], or a reason or text
            contains ", N.M <Header>:", which would read as an item of the template.
    """
    prepared = prepare_schema(schema)
    by_key = prepared.by_key
    for name, mapping in (("values", values), ("reasons", reasons)):
        unknown = sorted(str(key) for key in mapping if key not in by_key)
        if unknown:
            raise ValueError(f"{name} has keys that are not fields of the schema: {', '.join(unknown)}")
    orphans = sorted(key for key in reasons if key != final_key and values.get(key) is None)
    if orphans:
        raise ValueError(f"reasons has keys without a value: {', '.join(orphans)}")
    if final_key not in by_key:
        raise ValueError(f"final_key {final_key!r} is not a field of the schema")
    final_field = by_key[final_key]
    if final_field["kind"] not in _SCORE_KINDS:
        raise ValueError(
            f"final_key {final_key!r} is {_article(final_field['kind'])} {final_field['kind']} field, "
            "not an integer or continuous score"
        )
    final_value = _check_number(final_field, final_value, where=f"final_value for {final_key}", whole=False)
    final_text = format_score(final_value)

    item_re = prepared.item_re_in_text
    sections: list[list[str]] = []
    for level_fields in prepared.by_level:
        items: list[str] = []
        for field in level_fields:
            key = field["key"]
            if key == final_key:
                continue
            raw = values.get(key)
            if raw is None:
                continue
            kind = field["kind"]
            if kind in _CHOICE_KINDS:
                labels = prepared.choice_labels[key]
                if not isinstance(raw, str) or raw not in labels:
                    _check_value(field, raw, where=key)  # raises with the usual message
                shown = labels[raw]
            else:
                value = _check_value(field, raw, where=key)
                if kind == "text":
                    value = _cot_text(value)
                    if not value:
                        continue
                    _reject_item_lookalike(item_re, value, f"{key}: the text")
                    shown = value
                else:
                    shown = _format_value(field, value)
            header = prepared.header[key]
            reason = reasons.get(key)
            if reason is not None:
                if not isinstance(reason, str):
                    raise ValueError(f"{key}: the reason must be text, not {type(reason).__name__}")
                reason = _cot_text(reason)
            if reason:
                if kind == "text":
                    raise ValueError(f"{key}: a text field takes no reason")
                _reject_item_lookalike(item_re, reason, f"{key}: the reason")
                items.append(f"Reason for {header}: {reason}")
            items.append(f"{header}: {shown}")
        if items:
            sections.append(items)

    numbered = [
        f"{section}.{item} {text}"
        for section, items in enumerate(sections, start=1)
        for item, text in enumerate(items, start=1)
    ]
    final = _FINAL_SENTENCE.format(score=final_text)
    return f"{', '.join(numbered)}. {final}" if numbered else final


def parse_cot_answer(schema: Mapping[str, Any] | PreparedSchema, text: str) -> ParsedCot:
    """Read the attribute values, reasons and final score back out of a :func:`cot_answer` text.

    Meant for evaluating a model's chain of thought against the template. Returns a
    :class:`ParsedCot` dict: ``{"values": {key: value}, "reasons": {key: reason},
    "final_score": float}``. Values come back typed: the choice's *value* (not its label) for
    choice fields, ``int`` for integer fields, ``float`` for continuous ones, ``str`` for text.

    What is accepted:

    * item headers and choice labels in any letter case; a choice may also be written as its
      stored value; items separated by ", " (as written) or by line breaks;
    * fields left out (the template leaves out fields without a value), so check
      ``values.keys()`` if every attribute must be present;
    * the final sentence with or without its closing period.

    What is rejected (ValueError, saying where and why): no "The final score is <...>" at the
    end, a final score ``parse_score`` rejects, text before the first item, an unknown header,
    items out of the template's order or repeated, numbering that does not follow the
    template (sections 1, 2, ... one per level, items 1, 2, ... within a section), a reason not
    followed by its own field's value, an empty value, and a value that does not suit its
    field (not a choice, not a whole number, outside min/max).
    """
    prepared = prepare_schema(schema)
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, not {type(text).__name__}")
    final = _FINAL_RE.search(text)
    if final is None:
        raise ValueError("the answer does not end with 'The final score is <X.XX>.'")
    try:
        final_score = parse_score(final.group(0))
    except ValueError as error:
        raise ValueError(f"final score: {error}") from None
    body = text[: final.start()].strip()
    if body.endswith("."):
        body = body[:-1].rstrip()

    headers = prepared.headers
    rank = prepared.rank
    by_key = prepared.by_key
    matches = list(prepared.item_re_in_answer.finditer(body))
    if body and (not matches or matches[0].start() != 0):
        first = _item_regex(headers, before=_BEFORE_ANYWHERE).search(body)
        if first is None:
            raise ValueError(f"no numbered items before the final score: {_short(body)}")
        raise ValueError(f"unexpected text before the first item: {_short(body[: first.start()].rstrip(', '))}")

    values: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    previous: tuple[int, int, str, int] | None = None  # (section, item, level, position)
    pending_reason: str | None = None  # key whose reason was just read
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(body)
        section, item = int(match.group("section")), int(match.group("item"))
        label = f"{section}.{item} {match.group('header')}"
        key, is_reason = headers[match.group("header").casefold()]
        field = by_key[key]
        raw = _cot_text(body[match.end() : end])

        if pending_reason is not None and (is_reason or key != pending_reason):
            raise ValueError(f"{label}: expected the value of {pending_reason} right after its reason")
        position = 2 * rank[key] + (0 if is_reason else 1)
        if previous is None:
            expected = (1, 1)
        elif field["level"] == previous[2]:
            expected = (previous[0], previous[1] + 1)
        else:
            expected = (previous[0] + 1, 1)
        if previous is not None and position <= previous[3]:
            raise ValueError(
                f"{label}: out of order or repeated (the template goes through the high, middle, low "
                "and overall levels in turn, in schema order within a level)"
            )
        if (section, item) != expected:
            raise ValueError(f"{label}: expected item number {expected[0]}.{expected[1]}")
        if not raw:
            raise ValueError(f"{label}: empty value")
        previous = (section, item, field["level"], position)

        if is_reason:
            reasons[key] = raw
            pending_reason = key
        else:
            values[key] = _parse_value(field, raw, where=label)
            pending_reason = None
    if pending_reason is not None:
        raise ValueError(f"the reason for {pending_reason} is not followed by its value")
    return {"values": values, "reasons": reasons, "final_score": final_score}


# --------------------------------------------------------------------------- prepared schemas


class PreparedSchema:
    """A schema checked once, with what :func:`cot_answer` and :func:`parse_cot_answer` derive
    from it (headers, item patterns, choice labels) worked out once.

    Both functions take one in place of the schema dict and give the same results; pass one
    when writing or reading many answers for the same schema (a release writes one per image,
    and checking the schema took most of the time). It holds a deep copy of the schema, so later
    changes to the dict do not reach it: prepare again after changing the schema.
    """

    __slots__ = ("schema", "fields", "by_key", "by_level", "header", "headers", "rank", "choice_labels",
                 "item_re_in_text", "item_re_in_answer")

    def __init__(self, schema: Mapping[str, Any]) -> None:
        if isinstance(schema, PreparedSchema):
            schema = schema.schema
        self.schema: Mapping[str, Any] = copy.deepcopy(schema)
        fields = _check_schema(self.schema)
        self.fields: tuple[Mapping[str, Any], ...] = tuple(fields)
        self.by_key: dict[str, Mapping[str, Any]] = {field["key"]: field for field in fields}
        self.by_level: tuple[tuple[Mapping[str, Any], ...], ...] = tuple(
            tuple(field for field in fields if field["level"] == level) for level in COT_LEVEL_ORDER
        )
        self.header: dict[str, str] = {field["key"]: _header(field) for field in fields}
        self.headers = _headers(fields)
        self.rank: dict[str, int] = {key: index for index, key in enumerate(_cot_order(fields))}
        self.choice_labels: dict[str, dict[str, str]] = {
            field["key"]: {choice["value"]: _lower_first(choice["label"]) for choice in reversed(field["choices"])}
            for field in fields
            if field["kind"] in _CHOICE_KINDS
        }
        self.item_re_in_text = _item_regex(self.headers, before=_BEFORE_ITEM_IN_TEXT)
        self.item_re_in_answer = _item_regex(self.headers, before=_BEFORE_ITEM)


def prepare_schema(schema: Mapping[str, Any] | PreparedSchema) -> PreparedSchema:
    """The schema as a :class:`PreparedSchema` (itself when it is one already).

    Raises:
        ValueError: the schema is malformed, or two fields have the same header.
    """
    return schema if isinstance(schema, PreparedSchema) else PreparedSchema(schema)


# --------------------------------------------------------------------------- schema checks


def _check_schema(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if not isinstance(schema, Mapping) or not isinstance(schema.get("fields"), Sequence):
        raise ValueError("schema must be a dict with a 'fields' list")
    fields = [_check_field(field) for field in schema["fields"]]
    seen: set[str] = set()
    for field in fields:
        if field["key"] in seen:
            raise ValueError(f"schema has two fields with key {field['key']!r}")
        seen.add(field["key"])
    return fields


def _check_field(field: Mapping[str, Any]) -> Mapping[str, Any]:
    """Check what this module relies on; return the field unchanged."""
    if not isinstance(field, Mapping):
        raise ValueError(f"a field must be a dict, not {type(field).__name__}")
    key = field.get("key")
    if not isinstance(key, str) or not key:
        raise ValueError(f"field {field!r} has no key")
    for name in ("label", "level", "kind"):
        if not isinstance(field.get(name), str) or not field[name].strip():
            raise ValueError(f"{key}: missing {name}")
    if field["level"] not in COT_LEVEL_ORDER:
        raise ValueError(f"{key}: level {field['level']!r} is not one of {', '.join(COT_LEVEL_ORDER)}")
    kind = field["kind"]
    if kind not in _KINDS:
        raise ValueError(f"{key}: kind {kind!r} is not one of {', '.join(sorted(_KINDS))}")
    if kind in _CHOICE_KINDS:
        choices = field.get("choices")
        if not isinstance(choices, Sequence) or not choices:
            raise ValueError(f"{key}: a {kind} field needs choices")
        for choice in choices:
            if not isinstance(choice, Mapping) or not all(isinstance(choice.get(n), str) for n in ("value", "label")):
                raise ValueError(f"{key}: every choice needs a string value and label, got {choice!r}")
    if kind in _SCORE_KINDS:
        for bound in ("min", "max"):
            number = field.get(bound)
            if isinstance(number, bool) or not isinstance(number, numbers.Real) or not math.isfinite(number):
                raise ValueError(f"{key}: a {kind} field needs a numeric {bound}")
        if field["min"] > field["max"]:
            raise ValueError(f"{key}: min {field['min']} is above max {field['max']}")
    return field


def _check_value(field: Mapping[str, Any], value: Any, *, where: str) -> Any:
    """The value, normalised (int for integer fields, float for continuous), or ValueError."""
    kind = field["kind"]
    if kind in _CHOICE_KINDS:
        allowed = [choice["value"] for choice in field["choices"]]
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(f"{where}: {value!r} is not one of {', '.join(allowed)}")
        return value
    if kind in _SCORE_KINDS:
        return _check_number(field, value, where=where, whole=kind == "integer")
    if not isinstance(value, str):
        raise ValueError(f"{where}: must be text, not {type(value).__name__}")
    return _one_line(value)


def _check_number(field: Mapping[str, Any], value: Any, *, where: str, whole: bool) -> int | float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{where}: must be a number, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{where}: must be a finite number, got {number!r}")
    if whole and not number.is_integer():
        raise ValueError(f"{where}: must be a whole number, got {value!r}")
    low, high = field["min"], field["max"]
    if not low <= number <= high:
        raise ValueError(f"{where}: {_format_bound(number)} is outside {_format_bound(low)}-{_format_bound(high)}")
    if whole:
        return int(number)
    if field["kind"] == "continuous" and (low < SCORE_MIN or high > SCORE_MAX):
        raise ValueError(
            f"{where}: the field's range {_format_bound(low)}-{_format_bound(high)} does not fit the RealQA "
            "answer form (one integer digit, 0-10); rescale it to 1-10"
        )
    return number


# --------------------------------------------------------------------------- wording helpers


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _lower_first(label: str) -> str:
    """'Image clarity' -> 'image clarity'; acronyms stay ('JPEG artefacts'). Whitespace collapsed."""
    label = _one_line(label)
    if len(label) > 1 and label[1].isupper():
        return label
    return label[:1].lower() + label[1:]


def _title(label: str) -> str:
    """'Eye-catching' -> 'Eye-Catching', 'Subject and background' -> 'Subject and Background'."""
    words = []
    for position, word in enumerate(label.split()):
        parts = word.split("-")
        words.append(
            "-".join(
                part if (position and not index and part.casefold() in _SMALL_WORDS) else part[:1].upper() + part[1:]
                for index, part in enumerate(parts)
            )
        )
    return " ".join(words)


def _score_noun(name: str) -> str:
    return name if name.casefold().endswith("score") else f"{name} score"


def _header(field: Mapping[str, Any]) -> str:
    """The item header of a field in the chain of thought: 'Image Clarity', 'Composition Score'."""
    title = _title(field["label"])
    if field["kind"] in _SCORE_KINDS and not title.casefold().endswith("score"):
        return f"{title} Score"
    return title


def _headers(fields: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, bool]]:
    """casefolded header -> (field key, is the reason item); ValueError when two fields collide."""
    found: dict[str, tuple[str, bool]] = {}
    for field in fields:
        header = _header(field)
        items = [(header, False)] if field["kind"] == "text" else [(header, False), (f"Reason for {header}", True)]
        for text, is_reason in items:
            folded = text.casefold()
            if folded in found and found[folded][0] != field["key"]:
                raise ValueError(f"fields {found[folded][0]} and {field['key']} have the same header {text!r}")
            found[folded] = (field["key"], is_reason)
    return found


def _item_regex(headers: Mapping[str, tuple[str, bool]], *, before: str) -> re.Pattern[str]:
    """An item header "N.M <Header>:" preceded by ``before`` (one of the ``_BEFORE_*`` patterns)."""
    alternatives = "|".join(re.escape(header) for header in sorted(headers, key=len, reverse=True))
    return re.compile(
        before + r"(?P<section>[0-9]+)\.(?P<item>[0-9]+)\s+(?P<header>" + alternatives + r")\s*:\s*",
        re.IGNORECASE,
    )


# Where an item may start: the parser takes the start of the text, ", " or a line break; inside
# free text only ", " matters (line breaks are collapsed); to report text before the first item,
# anywhere a number can start.
_BEFORE_ITEM = r"(?:^|,\s+|\s*\n\s*)"
_BEFORE_ITEM_IN_TEXT = r",\s+"
_BEFORE_ANYWHERE = r"(?<![0-9.])"


def _reject_item_lookalike(item_re: re.Pattern[str], text: str, where: str) -> None:
    match = item_re.search(text)
    if match:
        found = match.group(0).lstrip(", ").rstrip()
        raise ValueError(f"{where} contains {found!r}, which would read as an item of the template")


def _cot_order(fields: Sequence[Mapping[str, Any]]) -> list[str]:
    return [field["key"] for level in COT_LEVEL_ORDER for field in fields if field["level"] == level]


def _choice_label(field: Mapping[str, Any], value: str) -> str:
    for choice in field["choices"]:
        if choice["value"] == value:
            return _lower_first(choice["label"])
    raise AssertionError(value)  # _check_value ran first


def _format_value(field: Mapping[str, Any], value: int | float) -> str:
    return str(value) if field["kind"] == "integer" else format_score(value)


def _cot_value(field: Mapping[str, Any], value: Any) -> str:
    if field["kind"] in _CHOICE_KINDS:
        return _choice_label(field, value)
    if field["kind"] in _SCORE_KINDS:
        return _format_value(field, value)
    return value


def _parse_value(field: Mapping[str, Any], raw: str, *, where: str) -> Any:
    kind = field["kind"]
    if kind in _CHOICE_KINDS:
        folded = raw.casefold()
        for choice in field["choices"]:
            if folded in (_cot_text(choice["label"]).casefold(), choice["value"].casefold()):
                return choice["value"]
        labels = ", ".join(_lower_first(choice["label"]) for choice in field["choices"])
        raise ValueError(f"{where}: {raw!r} is not one of {labels}")
    if kind in _SCORE_KINDS:
        pattern = _INTEGER_RE if kind == "integer" else _NUMBER_RE
        if not pattern.fullmatch(raw):
            noun = "a whole number" if kind == "integer" else "a number"
            raise ValueError(f"{where}: {raw!r} is not {noun}")
        return _check_number(field, int(raw) if kind == "integer" else float(raw), where=where, whole=kind == "integer")
    return raw


def _format_bound(number: float) -> str:
    number = float(number)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cot_text(text: str) -> str:
    """How reasons and text values stand in the template: one line, without trailing periods,
    commas or semicolons (which would run into the ", " before the next item). Idempotent."""
    return _one_line(text).rstrip(".,; ")


def _as_sentence(text: str) -> str:
    text = _one_line(text)
    return text if text.endswith((".", "!", "?")) else text + "."


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
