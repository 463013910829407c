"""The ingestion chain: parse -> persons -> plugins -> write -> exports.

Each agent reads batches from its own topic, runs its stage from `app.pipeline`, and
sends the result to the next topic on the same partition.
"""

from __future__ import annotations

from typing import Any

from app.pipeline.exports import export_events
from app.pipeline.parse import parse_messages
from app.pipeline.persons import resolve_persons
from app.pipeline.plugins import run_plugins
from app.pipeline.retries import run_with_retries
from app.pipeline.write import write_events
from topologies.forwarding import send_output
from topologies.resources import context
from topologies.topics import (
    app,
    parse_topic,
    persons_topic,
    plugins_topic,
    write_topic,
    written_topic,
)


@app.agent(parse_topic)
async def parse(stream: Any) -> None:
    async for message in stream.events():
        out = parse_messages(message.value.messages)
        await send_output(persons_topic, out, message.message.partition)


@app.agent(persons_topic)
async def persons(stream: Any) -> None:
    ctx = await context()
    async for message in stream.events():
        out = await run_with_retries(
            "persons", lambda evs: resolve_persons(ctx, evs), message.value.events
        )
        await send_output(plugins_topic, out, message.message.partition)


@app.agent(plugins_topic)
async def plugins(stream: Any) -> None:
    ctx = await context()
    async for message in stream.events():
        out = await run_with_retries(
            "plugins", lambda evs: run_plugins(ctx, evs), message.value.events
        )
        await send_output(write_topic, out, message.message.partition)


@app.agent(write_topic)
async def write(stream: Any) -> None:
    ctx = await context()
    async for message in stream.events():
        out = await run_with_retries(
            "write", lambda evs: write_events(ctx, evs), message.value.events
        )
        await send_output(written_topic, out, message.message.partition)


@app.agent(written_topic)
async def exports(stream: Any) -> None:
    ctx = await context()
    async for message in stream.events():
        out = await run_with_retries(
            "exports", lambda evs: export_events(ctx, evs), message.value.events
        )
        await send_output(None, out, message.message.partition)
