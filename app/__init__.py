"""The Faust app, settings, CLI, connections and the pipeline stages.

`faust -A app worker` asks this package for `app`: the attribute is built on first use,
with the topologies registered on it, so importing `app.settings` stays cheap.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from topologies import worker_app

        return worker_app()
    raise AttributeError(name)
