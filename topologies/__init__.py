"""The streaming graph: topics, agents, tables and timers; the logic lives in `app/`."""

from __future__ import annotations

import faust


def worker_app() -> faust.App:
    """The Faust app with every topology registered on it."""
    from topologies import chain, health, ingress  # noqa: F401  (registers agents and timers)
    from topologies.topics import app

    return app
