"""Reading raw API objects field by field, with every problem in an operator's words.

The NodeENI spec (spec.py) and the ENINode spec (eninode.py) both read through
``FieldReader``, so problems are phrased alike: ``<path>: <reason>``, the value
quoted as JSON and shortened (``preview``). Nothing here raises, whatever the
JSON types.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

Check = Callable[[str], str | None]
"""Says why a string value is invalid (a phrase that follows the field path), or None."""

_PREVIEW_MAX_LENGTH: Final = 60


class FieldReader:
    """Reads the fields of one raw object at ``path``, recording every problem found.
    A field absent or null reads as None, a problem only when required."""

    def __init__(
        self, raw: Mapping[Any, Any], *, path: str, problems: list[str] | None = None
    ) -> None:
        self._raw = raw
        self.path = path
        self.problems: list[str] = [] if problems is None else problems

    def get(self, key: str) -> object:
        return self._raw.get(key)

    def report(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def _given(self, key: str, *, required: bool) -> object:
        value = self._raw.get(key)
        if value is None and required:
            self.report(f"{self.path}.{key}", "is required")
        return value

    def string(self, key: str, check: Check, *, required: bool = False) -> str | None:
        value = self._given(key, required=required)
        if value is None:
            return None
        return self.checked_string(f"{self.path}.{key}", value, check)

    def checked_string(self, path: str, value: object, check: Check) -> str | None:
        if not isinstance(value, str):
            self.report(path, wrong_type("a string", value))
            return None
        reason = check(value)
        if reason is not None:
            self.report(path, reason)
            return None
        return value

    def string_list(self, key: str, check: Check, *, max_items: int) -> list[tuple[str, str]]:
        """The valid items of a string array, each with its path."""
        value = self.get(key)
        if value is None:
            return []
        path = f"{self.path}.{key}"
        if not isinstance(value, list | tuple):
            self.report(path, wrong_type("an array of strings", value))
            return []
        if len(value) > max_items:
            self.report(path, f"has {len(value)} items (at most {max_items} allowed)")
        items: list[tuple[str, str]] = []
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            checked = self.checked_string(item_path, item, check)
            if checked is not None:
                items.append((item_path, checked))
        return items

    def integer(
        self, key: str, minimum: int, maximum: int, *, note: str = "", required: bool = False
    ) -> int | None:
        value = self._given(key, required=required)
        if value is None:
            return None
        path = f"{self.path}.{key}"
        if isinstance(value, bool) or not isinstance(value, int):
            self.report(path, wrong_type("an integer", value))
            return None
        if not minimum <= value <= maximum:
            bounds = f"{minimum}..{maximum}" + (f"; {note}" if note else "")
            self.report(path, f"{value} is out of range ({bounds})")
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.report(f"{self.path}.{key}", wrong_type("true or false", value))
        return None


def pattern_check(pattern: re.Pattern[str], expected: str) -> Check:
    """A check that the whole value matches ``pattern``, else "<value> is not <expected>"."""

    def check(value: str) -> str | None:
        return None if pattern.fullmatch(value) else f"{preview(value)} is not {expected}"

    return check


def length_check(minimum: int, maximum: int) -> Check:
    def check(value: str) -> str | None:
        if len(value) < minimum:
            return "must not be empty"
        if len(value) > maximum:
            return f"is {len(value)} characters long (at most {maximum} allowed)"
        return None

    return check


def wrong_type(expected: str, value: object) -> str:
    got = "null" if value is None else f"{_json_type(value)} {preview(value)}"
    return f"must be {expected}, got {got}"


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def preview(value: object) -> str:
    """``value`` as JSON, shortened so that one bad value cannot flood a condition message."""
    if isinstance(value, str):
        if len(value) > _PREVIEW_MAX_LENGTH:
            value = value[: _PREVIEW_MAX_LENGTH - 3] + "..."
        return json.dumps(value, ensure_ascii=False)
    text = json.dumps(value, ensure_ascii=False, default=repr)
    if len(text) > _PREVIEW_MAX_LENGTH:
        return text[: _PREVIEW_MAX_LENGTH - 3] + "..."
    return text
