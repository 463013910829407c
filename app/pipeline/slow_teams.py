"""Teams whose plugins are too slow for the main plugins stage, for a while.

A partition's batch holds many teams' events, and the plugins stage hands a batch on
only when every team's events are done: one team whose plugin takes seconds per event
would hold up every other team of those partitions. So the stage tries each team on
one event first; a team slower than `seconds_per_event` on two tries in a row is marked
slow for `hold_seconds`, and its events go to the overflow topic, where a stage of their
own runs them (`topologies/chain.py`): all of them, at their plugins' pace, while the
main stage goes on. One worker's view; each worker finds out for itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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
        self._lock = threading.Lock()

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
