"""Creating the worker's topics before it joins its consumer group.

Faust declares a topic just before subscribing, and a group leader whose metadata does
not show the new topic yet leaves it out of the assignment for good ("Ignoring missing
topic"): the stage would never consume. So every topic is created, and seen in the
broker's metadata, before the worker starts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from app.connections import kafka_admin
from app.settings import Settings

TOPICS_VISIBLE_SECONDS = 30.0  # how long to wait for new topics to show in metadata


class TopicSetupError(RuntimeError):
    """The worker's topics could not be created or did not appear."""


def ensure_topics(settings: Settings, names: Iterable[str]) -> None:
    wanted = sorted(set(names))
    try:
        admin = kafka_admin(settings, client_id="plugin-server-setup")
    except Exception as exc:
        raise TopicSetupError(f"cannot reach Kafka at {settings.KAFKA_HOSTS}: {exc}") from exc
    try:
        missing = [name for name in wanted if name not in set(admin.list_topics())]
        for name in missing:
            # another worker may create it meanwhile
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    [NewTopic(name, settings.KAFKA_PARTITIONS, 1)], validate_only=False
                )
        deadline = time.monotonic() + TOPICS_VISIBLE_SECONDS
        while missing := [n for n in wanted if n not in set(admin.list_topics())]:
            if time.monotonic() > deadline:
                raise TopicSetupError(f"topics not visible after creation: {missing}")
            time.sleep(0.2)
    finally:
        admin.close()
