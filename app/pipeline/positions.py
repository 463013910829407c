"""Where an event entered the chain: its input partition and offset.

Parse stamps every event with the position of its capture message (`POSITION_KEY`), the
stages keep it, and the exports stage uses it to recognise events it has delivered
already: a stage that dies before its offsets are committed sends its last batches
again, and every later stage sees them a second time. Within an input partition events
reach the exports stage in offset order, so one high-water mark per input partition is
enough to know them: an event at or below its partition's mark was delivered, unless
its message was written after the mark was (the input topic was made anew and its
offsets started again; a producer clock running ahead only costs a repeat). Plugins
never see the position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POSITION_KEY = "$$input"  # [input partition, offset, message timestamp in ms]


@dataclass(frozen=True, slots=True)
class Position:
    partition: int
    offset: int
    written_ms: int  # the input message's timestamp


@dataclass(frozen=True, slots=True)
class Mark:
    """The highest offset of an input partition delivered, and when it was recorded."""

    offset: int
    recorded_ms: int

    def covers(self, position: Position) -> bool:
        return position.offset <= self.offset and position.written_ms <= self.recorded_ms


def position_of(event: dict[str, Any]) -> Position | None:
    value = event.get(POSITION_KEY)
    if isinstance(value, list) and len(value) == 3 and all(type(v) is int for v in value):
        return Position(*value)
    return None


def carried(event: dict[str, Any]) -> dict[str, Any]:
    """The event's position as a field to put on a new dict made from the event."""
    position = event.get(POSITION_KEY)
    return {} if position is None else {POSITION_KEY: position}


def detach(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Take the positions off the events, by event uuid, to give back with `reattach`."""
    return {e["uuid"]: e.pop(POSITION_KEY) for e in events if POSITION_KEY in e}


def reattach(events: list[dict[str, Any]], positions: dict[str, Any]) -> None:
    """Give the events their positions again (an event whose uuid a plugin changed has
    none afterwards, and is then never taken for a repeat)."""
    if positions:
        for event in events:
            position = positions.get(event.get("uuid", ""))
            if position is not None:
                event[POSITION_KEY] = position
