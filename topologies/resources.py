"""The worker's stores and plugin runtime: built once per process, closed with the worker."""

from __future__ import annotations

import asyncio

from mode import Service

from app.pipeline.context import PipelineContext
from app.pipeline.output import StageOutput
from app.reloads import Reloader
from app.resources import Resources, open_cluster_resources
from schemas.records import DeadLetter
from topologies.forwarding import send_output
from topologies.topics import app, settings

_ready = asyncio.Event()
_resources: Resources | None = None
_reloader: Reloader | None = None


def context_resources() -> Resources | None:
    """The worker's resources once built, else None."""
    return _resources if _ready.is_set() else None


def context_reloader() -> Reloader | None:
    """The worker's live-reload driver once the resources are built, else None."""
    return _reloader if _ready.is_set() else None


async def resources_ready() -> Resources:
    """The worker's resources; waits until they are built."""
    await _ready.wait()
    assert _resources is not None
    return _resources


async def context() -> PipelineContext:
    """The pipeline context; agents wait here until the worker has built it."""
    return (await resources_ready()).context


async def send_dead_letter(letter: DeadLetter) -> None:
    await send_output(None, StageOutput(dead_letters=[letter]), partition=0)


@app.boot_service
class PipelineResources(Service):
    async def on_start(self) -> None:
        global _resources, _reloader
        _resources = await open_cluster_resources(settings, on_dead_letter=send_dead_letter)
        _reloader = Reloader(_resources.engine, _resources.reload_plugins)
        self.add_future(_reloader.run())
        self.add_future(_reloader.listen(settings))
        _ready.set()

    async def on_stop(self) -> None:
        if _resources is not None:
            await _resources.close()
