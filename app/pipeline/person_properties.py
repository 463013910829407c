"""How an event changes its person's properties: $set, $set_once and the derived
initial/UTM values, by the original's rules."""

from __future__ import annotations

from typing import Any

_CAMPAIGN_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "gclid")
_INITIAL_KEYS = (
    *_CAMPAIGN_KEYS,
    "$browser", "$browser_version", "$device_type", "$current_url", "$os",
    "$referring_domain", "$referrer",
)  # fmt: skip


_DERIVED_FROM = frozenset(_INITIAL_KEYS)
_INITIAL_NAMES = {key: f"$initial_{key.removeprefix('$')}" for key in _INITIAL_KEYS}


def with_derived_updates(properties: dict[str, Any]) -> dict[str, Any]:
    """A copy of `properties` whose $set/$set_once also carry campaign and initial values
    (`properties` itself when there is nothing to derive)."""
    if _DERIVED_FROM.isdisjoint(properties):
        return properties
    derived = dict(properties)
    set_ = dict(properties.get("$set") or {})
    set_once = dict(properties.get("$set_once") or {})
    for key in _CAMPAIGN_KEYS:
        if key in properties:
            set_[key] = properties[key]
    for key, initial in _INITIAL_NAMES.items():
        if key in properties:
            set_once[initial] = properties[key]
    if set_:
        derived["$set"] = set_
    if set_once:
        derived["$set_once"] = set_once
    return derived


def apply_updates(person: dict[str, Any], properties: dict[str, Any]) -> bool:
    """Apply the event's $set_once then $set to `person` in place; True when it changed.

    $set_once writes only absent keys (a stored null counts as present); $set writes a
    value that differs from the stored one.
    """
    changed = False
    set_once = properties.get("$set_once")
    if isinstance(set_once, dict):
        for key, value in set_once.items():
            if key not in person:
                person[key] = value
                changed = True
    set_ = properties.get("$set")
    if isinstance(set_, dict):
        for key, value in set_.items():
            if key not in person or person[key] != value or isinstance(value, dict | list):
                person[key] = value
                changed = True
    return changed
