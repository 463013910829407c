"""Dead letters: what a stage could not process, with the reason, ready to be replayed.

A replayed event carries `REPLAY_KEY` (`{"attempt", "first_failure"}`, set by
`plugin-server replay`), so failing again makes a dead letter that counts on from it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.records import DeadLetter

REPLAY_KEY = "$$dead_letter"  # on a replayed event: its earlier attempts


def dead_letter(
    stage: str,
    error: str,
    *,
    event: dict[str, Any] | None = None,
    raw: bytes | str | None = None,
) -> DeadLetter:
    """A dead-letter record for `event` (or an undecodable `raw` message) failing in `stage`."""
    raw_text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    team_id = event.get("team_id") if event else None
    event_uuid = event.get("uuid") if event else None
    now = datetime.now(UTC).isoformat(timespec="seconds")
    earlier = event.get(REPLAY_KEY) if event else None
    attempt, first_failure = 1, now
    if isinstance(earlier, dict):
        attempt = int(earlier.get("attempt") or 1) + 1
        first_failure = str(earlier.get("first_failure") or now)
    return DeadLetter(
        id=str(uuid.uuid4()),
        stage=stage,
        error=error,
        error_timestamp=now,
        team_id=team_id if isinstance(team_id, int) else None,
        event_uuid=event_uuid if isinstance(event_uuid, str) else None,
        payload=event,
        raw_payload=raw_text,
        attempt=attempt,
        first_failure=first_failure,
    )
