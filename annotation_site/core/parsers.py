"""The API's parsers and its JSON field: whatever the encoding (a JSON body, a urlencoded form or a multipart
form, whose JSON fields hold JSON text), every value goes through the same checks, and each gives a clear 400
naming the place instead of a 500 or a row no database can hold:

- JSON nested so deeply that Python's decoder gives up (`[[[[...` a few thousand levels deep would
  otherwise end in a RecursionError and a 500), or deeper than MAX_DEPTH levels;
- text no database column can hold: a NUL character (PostgreSQL refuses `\\u0000` in text and jsonb)
  or half a surrogate pair (`\\ud800`, which has no UTF-8 form), anywhere in keys or values;
- NaN and Infinity, which are not JSON (DRF's JSON parser already refuses them in a body)."""

from __future__ import annotations

import io
import json
import re
from typing import IO, Any

from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.utils.json import strict_constant

MAX_DEPTH = 64


def unstorable_text(text: str) -> str | None:
    """Why a string cannot be stored, or None."""
    if "\x00" in text:
        return _("contains a NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _("contains an unpaired surrogate (not valid Unicode)")
    return None


def _top(path: str) -> str:
    """The field a path is in: "boxes" of "boxes[0].note"."""
    return re.match(r"[^.\[]*", path).group(0) or path  # type: ignore[union-attr]


def value_problem(value: object, path: str = "", depth: int = 0) -> str | None:
    """Why a parsed JSON value (at `path`, `depth` levels down) cannot be taken, or None."""
    if depth > MAX_DEPTH:
        where = _top(path)
        if where:
            message = _("the value of %(field)s is nested deeper than %(levels)d levels")
            return message % {"field": where, "levels": MAX_DEPTH}
        return _("nested deeper than %(levels)d levels") % {"levels": MAX_DEPTH}
    if isinstance(value, str):
        problem = unstorable_text(value)
        if problem:
            return _("the text at %(place)s %(problem)s") % {"place": path or _("the top"), "problem": problem}
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = unstorable_text(key) if isinstance(key, str) else None
            if problem:
                return _("a key in %(place)s %(problem)s") % {"place": path or _("the top object"), "problem": problem}
            problem = value_problem(item, f"{path}.{key}" if path else str(key), depth + 1)
            if problem:
                return problem
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = value_problem(item, f"{path}[{index}]", depth + 1)
            if problem:
                return problem
    return None


SCAN_CHARS = 100_000
_TOKEN = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"(\s*:)?|[\[\]{}]', re.DOTALL)


def _too_deep_in(text: str) -> str | None:
    """The top-level key under which a JSON text nests deeper than MAX_DEPTH levels, when it can be named (it
    reads only as far as that place, and no further than SCAN_CHARS). Only for the error: the decoder gave up
    before any value was built."""
    depth = 0
    key: str | None = None
    for match in _TOKEN.finditer(text, 0, SCAN_CHARS):
        token = match.group(0)
        if token[0] == '"':
            if depth == 1 and match.group(2):
                key = match.group(1)
            continue
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return key if key is not None and unstorable_text(key) is None else None
        else:
            depth -= 1
    return None


def nested_too_deeply(text: str, field: str | None = None) -> str:
    where = field or _too_deep_in(text)
    if where:
        return _("the value of %(field)s is nested too deeply") % {"field": where}
    return _("nested too deeply")


def _json_error(problem: str) -> ParseError:
    return ParseError(_("JSON parse error - %(problem)s") % {"problem": problem})


class SafeJSONParser(JSONParser):
    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: dict | None = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise _json_error(nested_too_deeply(raw[: SCAN_CHARS * 4].decode("utf-8", errors="replace"))) from None
        problem = value_problem(data)
        if problem:
            raise _json_error(problem)
        return data


def _check_form(data: Any) -> None:
    """Every name and text value of a form (a QueryDict) is one a database can hold, else 400 naming it."""
    lists = data.lists() if hasattr(data, "lists") else ((key, [value]) for key, value in data.items())
    for key, values in lists:
        problem = unstorable_text(key)
        if problem:
            raise ValidationError({"non_field_errors": [_("a field name %(problem)s") % {"problem": problem}]})
        for value in values:
            problem = unstorable_text(value) if isinstance(value, str) else None
            if problem:
                raise ValidationError({key: [_("the text %(problem)s") % {"problem": problem}]})


class SafeFormParser(FormParser):
    """A urlencoded form, with the checks of the JSON parser on every field name and value."""

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: dict | None = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        _check_form(data)
        return data


class SafeMultiPartParser(MultiPartParser):
    """A multipart form, with the checks of the JSON parser on every field name and value (and file field name)."""

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: dict | None = None) -> Any:
        result = super().parse(stream, media_type, parser_context)
        _check_form(result.data)
        for key in result.files:
            problem = unstorable_text(key)
            if problem:
                raise ValidationError({"non_field_errors": [_("a field name %(problem)s") % {"problem": problem}]})
        return result


class SafeJSONField(serializers.JSONField):
    """DRF's JSONField with the JSON parser's checks. In a form the value is JSON text, which DRF's own field
    decodes with plain json.loads (no depth limit, NaN allowed, NUL and half surrogates kept)."""

    def to_internal_value(self, data: Any) -> Any:
        if self.binary or getattr(data, "is_json_string", False):
            text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)
            try:
                data = json.loads(text, parse_constant=strict_constant)
            except RecursionError:
                raise ValidationError(nested_too_deeply(text, self.field_name)) from None
            except ValueError:
                self.fail("invalid")
        value = super().to_internal_value(data)
        problem = value_problem(value, self.field_name)
        if problem:
            raise ValidationError(problem)
        return value
