"""Teams whose plugins are too slow for the main plugins stage, for a while.

A partition's batch holds many teams' events, and the plugins stage hands a batch on
only when every team's events are done: one team whose plugin takes seconds per event
would hold up every other team of those partitions. So the stage tries a team on one
event first unless its recent batches were under `seconds_per_event` (a known fast team
costs no extra round trip; one that turns slow costs one batch). A team slower than
that on two tries in a row is marked slow for `hold_seconds`, and its events go to the
overflow topic, where a stage of their own runs them (`topologies/chain.py`): all of
them, at their plugins' pace, while the main stage goes on. One worker's view; each
worker finds out for itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

SLOW_CALLS = 2  # slow calls in a row that send a team to the overflow


class SlowTeams:
    def __init__(
        self,
        *,
        seconds_per_event: float,
        hold_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds_per_event = seconds_per_event
        self.hold_seconds = hold_seconds
        self._clock = clock
        self._until: dict[int, float] = {}
        self._pace: dict[int, float] = {}  # seconds per event, smoothed over batches
        self._strikes: dict[int, int] = {}  # slow calls in a row
        self._lock = threading.Lock()

    def measured(self, team_id: int, seconds: float, events: int) -> bool:
        """How long the team's plugins took for `events` events; True when that makes
        it slow (the second slow call in a row): it is marked, for `hold_seconds`."""
        if events <= 0:
            return False
        pace = seconds / events
        with self._lock:
            before = self._pace.get(team_id)
            self._pace[team_id] = pace if before is None else 0.7 * before + 0.3 * pace
            if pace <= self.seconds_per_event:
                self._strikes.pop(team_id, None)
                return False
            strikes = self._strikes[team_id] = self._strikes.get(team_id, 0) + 1
            if strikes < SLOW_CALLS:
                return False
            del self._strikes[team_id]
            self._until[team_id] = self._clock() + self.hold_seconds
            return True

    def needs_probe(self, team_id: int) -> bool:
        """Whether to try the team on one event first (unknown, or not clearly fast)."""
        with self._lock:
            pace = self._pace.get(team_id)
        return pace is None or pace > self.seconds_per_event

    def is_slow(self, team_id: int) -> bool:
        with self._lock:
            until = self._until.get(team_id)
            if until is None:
                return False
            if self._clock() >= until:
                del self._until[team_id]  # try it on the main stage again
                return False
            return True

    def mark(self, team_id: int) -> None:
        with self._lock:
            self._until[team_id] = self._clock() + self.hold_seconds

    def slow_teams(self) -> list[int]:
        with self._lock:
            now = self._clock()
            return sorted(t for t, until in self._until.items() if until > now)
