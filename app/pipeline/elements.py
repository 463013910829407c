"""Autocapture elements (ingestion spec 3.4): `properties.$elements` becomes the event's
elements and its `elements_chain` text, and leaves the properties.

An element is the clicked DOM node (order 0) or one of its ancestors, outward. The chain
is what the events table stores: elements joined by `;`, each its tag, its classes
(sorted, `.`-prefixed, quotes removed), `:` and its attributes as `key="value"` with keys
in the original's `localeCompare` order and quotes escaped.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

MAX_TEXT_CHARS = 400  # of an element's text, as the original cut it
MAX_HREF_CHARS = 2048  # of an element's href

# ICU root collation, as JavaScript's localeCompare sorts: punctuation and symbols before
# digits before letters; letters compared without case first, lowercase first on ties
_PUNCTUATION = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$"


def _collation_key(text: str) -> tuple[tuple[tuple[int, int | str], ...], tuple[bool, ...]]:
    primary: list[tuple[int, int | str]] = []
    for char in text:
        if char.isdigit():
            primary.append((2, char))
        elif char.isalpha():
            primary.append((3, char.lower()))
        elif char in _PUNCTUATION:
            primary.append((1, _PUNCTUATION.index(char)))
        else:
            primary.append((0 if char.isspace() else 1, ord(char) + len(_PUNCTUATION)))
    return tuple(primary), tuple(char.isupper() for char in text)


def elements_of(raw: Any) -> list[dict[str, Any]]:
    """The elements of a `$elements` value (each dict of it, in order)."""
    elements = []
    for order, item in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(item, dict):
            continue
        classes = item.get("attr__class")
        text, href = item.get("$el_text"), item.get("attr__href")
        elements.append(
            {
                "text": text[:MAX_TEXT_CHARS] if isinstance(text, str) else text,
                "tag_name": item.get("tag_name"),
                "href": href[:MAX_HREF_CHARS] if isinstance(href, str) else href,
                "attr_class": classes.split(" ") if isinstance(classes, str) else classes,
                "attr_id": item.get("attr__id"),
                "nth_child": item.get("nth_child"),
                "nth_of_type": item.get("nth_of_type"),
                "attributes": {k: v for k, v in item.items() if k.startswith("attr__")},
                "order": order,
            }
        )
    return elements


def _escape(value: Any) -> str:
    return str(value).replace('"', '\\"')


def _element_text(element: dict[str, Any]) -> str:
    classes = element.get("attr_class") or []
    head = str(element.get("tag_name") or "")
    if isinstance(classes, list) and classes:
        head += "".join("." + str(c).replace('"', "") for c in sorted(map(str, classes)))
    attributes: dict[str, Any] = {}
    if element.get("text"):
        attributes["text"] = element["text"]
    attributes["nth-child"] = element.get("nth_child") or 0
    attributes["nth-of-type"] = element.get("nth_of_type") or 0
    if element.get("href"):
        attributes["href"] = element["href"]
    if element.get("attr_id"):
        attributes["attr_id"] = element["attr_id"]
    attributes.update(element.get("attributes") or {})
    pairs = "".join(
        f'{_escape(key)}="{_escape(attributes[key])}"'
        for key in sorted(attributes, key=_collation_key)
    )
    return f"{head}:{pairs}"


def elements_chain(elements: list[dict[str, Any]]) -> str:
    """The stored `elements_chain` of the elements ('' for none)."""
    return ";".join(_element_text(e) for e in elements)


_HASHED_KEYS = (
    "attributes",
    "text",
    "tag_name",
    "href",
    "attr_id",
    "attr_class",
    "nth_child",
    "nth_of_type",
    "order",
)


def elements_hash(elements: list[dict[str, Any]]) -> str:
    """The element group's hash in the Postgres pipeline: MD5 of the elements as Python's
    `json.dumps(..., sort_keys=True)` writes them (the original's serialisation)."""
    shaped = [{key: element.get(key) for key in _HASHED_KEYS} for element in elements]
    return hashlib.md5(json.dumps(shaped, sort_keys=True).encode()).hexdigest()


def take_elements(properties: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """(elements, elements_chain) of an event; `$elements` leaves the properties when it is
    a non-empty list (an empty one stays, as in the original)."""
    raw = properties.get("$elements")
    if not isinstance(raw, list) or not raw:
        return [], ""
    del properties["$elements"]
    elements = elements_of(raw)
    return elements, elements_chain(elements)
