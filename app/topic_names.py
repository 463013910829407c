"""The names of the worker's topics: what each stage reads, and the dead letters'.

Apart from `app.kafka_topics` (which creates them) so that the command line can offer
the stages as choices without importing a Kafka client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.settings import Settings

DEAD_LETTER_TOPIC = "events_dead_letter_queue"  # the original's name
# the topic each stage reads, after KAFKA_TOPIC_PREFIX (parse reads the capture batches
# ingress makes of the input topic; a replayed capture message goes to the input topic)
STAGE_TOPICS = {
    "parse": "parse",
    "plugins": "plugins",
    "plugins_overflow": "plugins_overflow",
    "persons": "persons",
    "write": "write",
    "exports": "events_written",
}


def stage_topic(settings: Settings, stage: str) -> str:
    """The name of the topic `stage` reads its batches from."""
    return f"{settings.KAFKA_TOPIC_PREFIX}{STAGE_TOPICS[stage]}"
