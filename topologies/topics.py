"""The app and its topics. Stage topics carry `EventBatch`es that keep their input partition."""

from __future__ import annotations

from faust.types import TopicT

from app.faust_app import create_app
from app.settings import get_settings
from app.topic_names import DEAD_LETTER_TOPIC, stage_topic
from schemas.records import CaptureBatch, DeadLetter, EventBatch

settings = get_settings()
app = create_app(settings)


def _stage_topic(stage: str, value_type: type) -> TopicT:
    return app.topic(
        stage_topic(settings, stage),
        value_type=value_type,
        partitions=settings.KAFKA_PARTITIONS,
        internal=True,
    )


parse_topic = _stage_topic("parse", CaptureBatch)
plugins_topic = _stage_topic("plugins", EventBatch)
plugins_overflow_topic = _stage_topic("plugins_overflow", EventBatch)
persons_topic = _stage_topic("persons", EventBatch)
write_topic = _stage_topic("write", EventBatch)
written_topic = _stage_topic("exports", EventBatch)
dead_letter_topic = app.topic(DEAD_LETTER_TOPIC, value_type=DeadLetter, internal=True)


def all_topic_names() -> list[str]:
    """Every topic the worker reads or writes, the input topic included."""
    stages = (
        parse_topic,
        plugins_topic,
        plugins_overflow_topic,
        persons_topic,
        write_topic,
        written_topic,
    )
    return [
        settings.KAFKA_CONSUMPTION_TOPIC,
        dead_letter_topic.get_topic_name(),
        *(topic.get_topic_name() for topic in stages),
    ]
