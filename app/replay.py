"""`plugin-server replay`: dead letters back to the stage that failed on them.

Reads the dead-letter topic from its start up to where it ends when the command starts
(records that arrive meanwhile are left for the next run), keeps those that match every
filter given, and publishes each one's payload to the input of the stage named in it:
a capture message to the input topic, an event to that stage's topic as a one-event
batch. Nothing is removed from the dead-letter topic. The event carries its attempts
(`dead_letters.REPLAY_KEY`), so one that fails again is a dead letter with the next
attempt number and the same first-failure time. Running it twice publishes twice; the
event uuid makes the second write a no-op.

Filters read the Kafka headers (stage, team_id, reason, first_failure, attempt), and the
body for records written before the headers were.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import orjson
from kafka import TopicPartition

from app.connections import kafka_consumer, kafka_producer
from app.pipeline.dead_letters import REPLAY_KEY
from app.pipeline.positions import POSITION_KEY
from app.settings import Settings
from app.topic_names import DEAD_LETTER_TOPIC, stage_topic

POLL_MS = 1_000  # one read of the dead-letter topic waits at most this long
# stages whose dead letters hold no replayable payload: the message was too large to
# send on, only its first characters were kept
NOT_REPLAYABLE = frozenset({"ingress", "forwarding"})


@dataclass(frozen=True)
class Selection:
    """Which dead letters to replay; None matches everything."""

    stage: str | None = None
    team_id: int | None = None
    reason: str | None = None  # a piece of the error text, case-insensitive
    since: datetime | None = None  # first failure at or after
    until: datetime | None = None  # first failure before
    limit: int | None = None

    def matches(self, letter: dict[str, Any]) -> bool:
        if self.stage is not None and letter.get("stage") != self.stage:
            return False
        if self.team_id is not None and letter.get("team_id") != self.team_id:
            return False
        if self.reason is not None and self.reason.lower() not in str(letter.get("error")).lower():
            return False
        if self.since is not None or self.until is not None:
            failed = _time(letter.get("first_failure") or letter.get("error_timestamp"))
            if failed is None:
                return False
            if self.since is not None and failed < self.since:
                return False
            if self.until is not None and failed >= self.until:
                return False
        return True


@dataclass
class Outcome:
    replayed: int = 0
    skipped: int = 0  # matched but not replayable
    read: int = 0


def _time(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.astimezone()


def dead_letters(settings: Settings) -> Iterator[dict[str, Any]]:
    """Every record on the dead-letter topic, up to its end when this starts."""
    consumer = kafka_consumer(
        settings,
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=POLL_MS,
    )
    try:
        partitions = consumer.partitions_for_topic(DEAD_LETTER_TOPIC) or set()
        assigned = [TopicPartition(DEAD_LETTER_TOPIC, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        left = {tp: end for tp, end in ends.items() if end > consumer.position(tp)}
        while left:
            for tp, records in consumer.poll(timeout_ms=POLL_MS).items():
                for record in records:
                    if tp in left and record.offset < left[tp]:
                        yield orjson.loads(record.value)
                    if tp in left and record.offset + 1 >= left[tp]:
                        del left[tp]
    finally:
        consumer.close()


def _target(settings: Settings, letter: dict[str, Any]) -> tuple[str, bytes] | None:
    """(topic, value) that puts the letter's event back before the stage that failed."""
    stage, payload = letter.get("stage"), letter.get("payload")
    if stage in NOT_REPLAYABLE or not isinstance(payload, dict):
        return None
    # a replayed event is delivered to the exports stage whatever it delivered before
    marked = {
        **{k: v for k, v in payload.items() if k != POSITION_KEY},
        REPLAY_KEY: {
            "attempt": letter.get("attempt") or 1,
            "first_failure": letter.get("first_failure") or letter.get("error_timestamp"),
        },
    }
    if stage == "parse":
        return settings.KAFKA_CONSUMPTION_TOPIC, orjson.dumps(marked)
    try:
        topic = stage_topic(settings, str(stage))
    except KeyError:
        return None
    return topic, orjson.dumps({"events": [marked]})


def replay(
    settings: Settings,
    selection: Selection,
    *,
    dry_run: bool = False,
    progress: TextIO = sys.stderr,
    source: Callable[[Settings], Iterator[dict[str, Any]]] = dead_letters,
) -> Outcome:
    """Publish the selected dead letters to their stages (only count them with `dry_run`)."""
    outcome = Outcome()
    producer = None if dry_run else kafka_producer(settings)
    try:
        for letter in source(settings):
            outcome.read += 1
            if not selection.matches(letter):
                continue
            if selection.limit is not None and outcome.replayed >= selection.limit:
                break
            target = _target(settings, letter)
            if target is None:
                outcome.skipped += 1
                continue
            if producer is not None:
                key = f"{letter.get('team_id')}:{(letter.get('payload') or {}).get('distinct_id')}"
                producer.send(target[0], value=target[1], key=key.encode())
            outcome.replayed += 1
            if outcome.replayed % 100 == 0:
                _show(progress, outcome, dry_run)
        if producer is not None:
            producer.flush()
    finally:
        if producer is not None:
            producer.close()
    _show(progress, outcome, dry_run, done=True)
    return outcome


def _show(out: TextIO, outcome: Outcome, dry_run: bool, *, done: bool = False) -> None:
    verb = "would replay" if dry_run else "replayed"
    line = f"\r{verb} {outcome.replayed:,} of {outcome.read:,} dead letters read" + (
        f", {outcome.skipped:,} not replayable (too large when they failed)"
        if outcome.skipped
        else ""
    )
    out.write(line + ("\n" if done else ""))
    out.flush()
