"""The device plugin config's text: where its resourceList elements are, and splicing.

Only about text (deviceplugin.py decides what the entries say): nothing it is
not given is re-serialised, so every byte outside the elements replaced stays,
including the whitespace between elements that stay neighbours.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any, Final

_WHITESPACE: Final = " \t\n\r"


class NotTheShape(ValueError):
    """The text is not JSON, or not an object with at most one resourceList of objects."""


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    value: Any


@dataclass(frozen=True, kw_only=True)
class Document:
    text: str
    object_open: int
    last_member_end: int | None  # None: the top-level object is empty
    list_open: int | None  # None: no resourceList member
    list_close: int
    elements: tuple[Span, ...]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse(text: str) -> Document:
    """Where the top-level object, the resourceList array and each of its elements are."""
    try:
        top = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}"
        raise NotTheShape(f"not JSON: {where}: {err.msg}") from None
    except ValueError as err:
        raise NotTheShape(f"not JSON: {err}") from None
    if not isinstance(top, dict):
        raise NotTheShape("not a JSON object")
    # Valid JSON from here on: walk the top-level object to find the spans.
    decoder = json.JSONDecoder()
    object_open = _skip(text, 0)
    at = _skip(text, object_open + 1)
    last_member_end: int | None = None
    list_open: int | None = None
    list_close = -1
    elements: tuple[Span, ...] = ()
    while text[at] != "}":
        key, at = decoder.raw_decode(text, at)
        at = _skip(text, _skip(text, at) + 1)  # past the colon
        if key == "resourceList":
            if list_open is not None:
                raise NotTheShape("resourceList appears twice")
            if text[at] != "[":
                raise NotTheShape("resourceList is not a list")
            list_open = at
            list_close, elements = _elements(text, at, decoder)
            at = list_close + 1
        else:
            _, at = decoder.raw_decode(text, at)
        last_member_end = at
        at = _skip(text, at)
        if text[at] == ",":
            at = _skip(text, at + 1)
    for index, span in enumerate(elements):
        if not isinstance(span.value, dict):
            raise NotTheShape(f"resourceList[{index}] is not an object")
    return Document(
        text=text,
        object_open=object_open,
        last_member_end=last_member_end,
        list_open=list_open,
        list_close=list_close,
        elements=elements,
    )


def _elements(text: str, open_at: int, decoder: json.JSONDecoder) -> tuple[int, tuple[Span, ...]]:
    spans: list[Span] = []
    at = _skip(text, open_at + 1)
    while text[at] != "]":
        value, end = decoder.raw_decode(text, at)
        spans.append(Span(at, end, value))
        at = _skip(text, end)
        if text[at] == ",":
            at = _skip(text, at + 1)
    return at, tuple(spans)


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at


def _indent_of_line(text: str, at: int) -> str:
    line = text[text.rfind("\n", 0, at) + 1 : at]
    return line[: len(line) - len(line.lstrip(" \t"))]


def new_file(elements: list[str]) -> str:
    """A file of just a resourceList of `elements`."""
    return '{\n  "resourceList": [\n    ' + ",\n    ".join(elements) + "\n  ]\n}\n"


def with_list_member(document: Document, elements: list[str]) -> str:
    """The text with a resourceList member of `elements` added (it has none)."""
    text = document.text
    member = '"resourceList": [' + ", ".join(elements) + "]"
    if document.last_member_end is None:
        at = document.object_open + 1
        return text[:at] + member + text[at:]
    at = document.last_member_end
    return text[:at] + ", " + member + text[at:]


def with_items(document: Document, items: list[tuple[int | None, str]]) -> str:
    """The text with the resourceList's elements replaced by `items`, keeping the
    old whitespace: before the first, after the last, and between neighbours
    that were neighbours before."""
    text, spans = document.text, document.elements
    assert document.list_open is not None
    head, tail = text[: document.list_open + 1], text[document.list_close :]
    if not items:
        return head + tail
    if spans:
        lead = text[document.list_open + 1 : spans[0].start]
        trail = text[spans[-1].end : document.list_close]
        separators = [text[a.end : b.start] for a, b in itertools.pairwise(spans)]
        default = separators[0] if separators else ("," + lead if "\n" in lead else ", ")
    else:
        indent = _indent_of_line(text, document.list_open)
        lead, trail = "\n" + indent + "  ", "\n" + indent
        separators, default = [], ",\n" + indent + "  "
    body = items[0][1]
    for (before, _), (index, item) in itertools.pairwise(items):
        if before is not None and index == before + 1:
            body += separators[before] + item
        else:
            body += default + item
    return head + lead + body + trail + tail
