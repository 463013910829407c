"""Stages that are waiting for a server, and why: what `/_health` reports."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Stall:
    reason: str
    since: float  # time.time()
    attempts: int


_stalls: dict[str, Stall] = {}


def stalled(stage: str, reason: str) -> None:
    previous = _stalls.get(stage)
    since = previous.since if previous is not None else time.time()
    attempts = previous.attempts + 1 if previous is not None else 1
    _stalls[stage] = Stall(reason, since, attempts)


def resumed(stage: str) -> None:
    _stalls.pop(stage, None)


def current() -> dict[str, Stall]:
    """Stage name -> its stall, for the stages waiting right now."""
    return dict(_stalls)
