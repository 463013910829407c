"""The ingestion chain: parse -> plugins (-> plugins_overflow) -> persons -> write -> exports.

Every stage has its topic and an agent reading it, which runs that stage and the ones
after it up to the next of `PIPELINE_BREAKS` (`app.pipeline.stages`), then sends the
batch to that stage's topic on the same partition. By default the chain breaks only
before exports: parse's agent runs parse, plugins, persons and write, and the topics of
plugins, persons and write carry only what is sent there on purpose (a replayed dead
letter, a batch from a worker with other breaks). A slow team's events go to the
overflow topic, whose agent runs their plugins and then the same stages as the plugins
stage's agent would.
"""

from __future__ import annotations

import time
from typing import Any

from faust.types import AgentT, TopicT

from app import tracing
from app.pipeline.output import StageOutput
from app.pipeline.plugins import run_overflow_plugins
from app.pipeline.retries import run_with_retries
from app.pipeline.stages import run_after, run_between, run_parse, run_stages
from app.pipeline.telemetry import consumer_lag, record_stage
from topologies.forwarding import send_output
from topologies.resources import context
from topologies.topics import (
    app,
    parse_topic,
    persons_topic,
    plugins_overflow_topic,
    plugins_topic,
    settings,
    write_topic,
    written_topic,
)

TOPICS: dict[str, TopicT] = {
    "plugins": plugins_topic,
    "persons": persons_topic,
    "write": write_topic,
    "exports": written_topic,
}
BREAKS = settings.pipeline_breaks


def _merge(first: StageOutput, then: StageOutput) -> StageOutput:
    return StageOutput(
        events=then.events,
        dead_letters=[*first.dead_letters, *then.dead_letters],
        overflow=[*first.overflow, *then.overflow],
    )


@app.agent(parse_topic, isolated_partitions=True)
async def parse(stream: Any) -> None:
    ctx = await context()
    names, target = run_between(None, BREAKS)
    async for message in stream.events():
        carried = tracing.from_batch(message.headers) if tracing.enabled else None
        parsed, traces = run_parse(message.value.messages, message.value.positions, carried)
        out = _merge(parsed, await run_stages(ctx, names, parsed.events, traces))
        await send_output(
            _topic(target), out, message.message.partition, plugins_overflow_topic, traces
        )
        _note_lag(message)


def _note_lag(message: Any) -> None:
    """The lag of the message's partition, after it was processed (`/metrics`)."""
    tp = message.message.tp
    highwater = app.consumer.highwater(tp)
    if highwater is not None:
        consumer_lag[(tp.topic, tp.partition)] = max(0, highwater - message.message.offset - 1)


def _topic(stage: str | None) -> TopicT | None:
    return None if stage is None else TOPICS[stage]


def stage_agent(stage: str) -> AgentT[Any]:
    """The agent of `stage`'s topic: that stage and the ones after it to the next break."""
    names, target = run_between(stage, BREAKS)

    async def run(stream: Any) -> None:
        ctx = await context()
        async for message in stream.events():
            traces = tracing.from_batch(message.headers) if tracing.enabled else None
            out = await run_stages(ctx, names, message.value.events, traces)
            await send_output(
                _topic(target), out, message.message.partition, plugins_overflow_topic, traces
            )
            _note_lag(message)

    return app.agent(TOPICS[stage], name=f"topologies.chain.{stage}", isolated_partitions=True)(run)


@app.agent(
    plugins_overflow_topic, name="topologies.chain.plugins_overflow", isolated_partitions=True
)
async def plugins_overflow(stream: Any) -> None:
    """A slow team's events, at their plugins' pace, beside the main chain."""
    ctx = await context()
    names, target = run_after("plugins", BREAKS)
    async for message in stream.events():
        started, events = time.perf_counter(), message.value.events
        ran = await run_with_retries(
            "plugins_overflow", lambda batch: run_overflow_plugins(ctx, batch), events
        )
        record_stage("plugins_overflow", len(events), ran, time.perf_counter() - started)
        traces = tracing.from_batch(message.headers) if tracing.enabled else None
        out = _merge(ran, await run_stages(ctx, names, ran.events, traces))
        await send_output(_topic(target), out, message.message.partition, traces=traces)
        _note_lag(message)


plugins = stage_agent("plugins")
persons = stage_agent("persons")
write = stage_agent("write")
exports = stage_agent("exports")
