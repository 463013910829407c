"""The streaming graph: topics, agents, tables and timers; the logic lives in `app/`."""

from __future__ import annotations

import faust


def worker_app() -> faust.App:
    """The Faust app with every topology registered on it."""
    from app.kafka_topics import ensure_topics
    from topologies import capture, chain, control, health, ingress, jobs, timers  # noqa: F401
    from topologies.topics import all_topic_names, app, settings

    app.before_start = lambda: ensure_topics(settings, all_topic_names())
    return app
