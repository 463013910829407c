"""The ingestion chain: parse -> plugins (-> plugins_overflow) -> persons -> write -> exports.

Each agent reads batches from its own topic, runs its stage from `app.pipeline`, and
sends the result to the next topic on the same partition.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from faust.types import AgentT, TopicT

from app.pipeline.context import PipelineContext
from app.pipeline.exports import export_events
from app.pipeline.output import StageOutput
from app.pipeline.parse import parse_messages
from app.pipeline.persons import resolve_persons
from app.pipeline.plugins import run_overflow_plugins, run_plugins
from app.pipeline.retries import run_with_retries
from app.pipeline.write import write_events
from topologies.forwarding import send_output
from topologies.resources import context
from topologies.topics import (
    app,
    parse_topic,
    persons_topic,
    plugins_overflow_topic,
    plugins_topic,
    write_topic,
    written_topic,
)

Stage = Callable[[PipelineContext, list[dict[str, Any]]], Awaitable[StageOutput]]


@app.agent(parse_topic)
async def parse(stream: Any) -> None:
    async for message in stream.events():
        out = parse_messages(message.value.messages, message.value.positions)
        await send_output(plugins_topic, out, message.message.partition)


def stage_agent(
    name: str,
    source: TopicT,
    stage: Stage,
    target: TopicT | None,
    overflow: TopicT | None = None,
) -> AgentT[Any]:
    """An agent running `stage` on every batch of `source` and sending it to `target` (and
    what the stage hands to the overflow, to `overflow`)."""

    async def run(stream: Any) -> None:
        ctx = await context()
        async for message in stream.events():
            out = await run_with_retries(
                name, lambda events: stage(ctx, events), message.value.events
            )
            await send_output(target, out, message.message.partition, overflow)

    return app.agent(source, name=f"topologies.chain.{name}")(run)


plugins = stage_agent(
    "plugins", plugins_topic, run_plugins, persons_topic, overflow=plugins_overflow_topic
)
# a slow team's events, at their plugins' pace, beside the main plugins stage
plugins_overflow = stage_agent(
    "plugins_overflow", plugins_overflow_topic, run_overflow_plugins, persons_topic
)
persons = stage_agent("persons", persons_topic, resolve_persons, write_topic)
write = stage_agent("write", write_topic, write_events, written_topic)
exports = stage_agent("exports", written_topic, export_events, None)
