"""The API's JSON parser: DRF's (which already refuses NaN and Infinity), plus a clear 400 for

- JSON nested so deeply that Python's decoder gives up (`[[[[...` a few thousand levels deep would
  otherwise end in a RecursionError and a 500);
- text no database column can hold: a NUL character (PostgreSQL refuses `\\u0000` in text and jsonb)
  or half a surrogate pair (`\\ud800`, which has no UTF-8 form), anywhere in keys or values."""

from __future__ import annotations

from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 64


def unstorable_text(text: str) -> str | None:
    """Why a string cannot be stored, or None."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (not valid Unicode)"
    return None


def _check(value: object, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        problem = unstorable_text(value)
        if problem:
            raise ParseError(f"JSON parse error - the text at {path or 'the top'} {problem}")
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = unstorable_text(key)
            if problem:
                raise ParseError(f"JSON parse error - a key in {path or 'the top object'} {problem}")
            _check(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]", depth + 1)


class SafeJSONParser(JSONParser):
    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
        _check(data, "", 0)
        return data
