"""Dead letters: what a stage could not process, with the reason, ready to be replayed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.records import DeadLetter


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
    return DeadLetter(
        id=str(uuid.uuid4()),
        stage=stage,
        error=error,
        error_timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
        team_id=team_id if isinstance(team_id, int) else None,
        event_uuid=event_uuid if isinstance(event_uuid, str) else None,
        payload=event,
        raw_payload=raw_text,
    )
