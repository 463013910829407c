"""The ingestion chain: parse -> plugins (-> plugins_overflow) -> persons -> write -> exports.

Every stage has its topic and an agent reading it, which runs that stage and the ones
after it up to the next of `PIPELINE_BREAKS` (`app.pipeline.stages`), then sends the
batch to that stage's topic on the same partition. By default the chain breaks only
before exports: parse's agent runs parse, plugins, persons and write, and the topics of
plugins, persons and write carry only what is sent there on purpose (a replayed dead
letter, a batch from a worker with other breaks). A slow team's events go to the
overflow topic, whose agent runs their plugins and then the same stages as the plugins
stage's agent would. Each agent works on up to `PIPELINE_IN_FLIGHT` batches of a
partition at once, every stage taking them in order (`app.pipeline.turns`), and
acknowledges each message after its own output is sent on. Messages that queued up while
those were in flight go through together as one batch (`Backlog`), up to the size of one
full message.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from faust.types import AgentT, TopicT

from app import tracing
from app.pipeline.output import StageOutput
from app.pipeline.plugins import run_overflow_plugins
from app.pipeline.retries import run_with_retries
from app.pipeline.stages import run_after, run_between, run_parse, run_stages
from app.pipeline.telemetry import consumer_lag, record_stage
from app.pipeline.turns import Backlog, InFlight, Turn
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
SEND = "send"  # a batch's last step: its output sent on, its messages acknowledged
OVERFLOW = "plugins_overflow"


Messages = list[Any]  # Faust events of one partition, handled as one batch


def _merge(first: StageOutput, then: StageOutput) -> StageOutput:
    return StageOutput(
        events=then.events,
        dead_letters=[*first.dead_letters, *then.dead_letters],
        overflow=[*first.overflow, *then.overflow],
    )


def _events(messages: Messages) -> list[dict[str, Any]]:
    if len(messages) == 1:
        return messages[0].value.events  # type: ignore[no-any-return]
    return [event for message in messages for event in message.value.events]


def _traces(messages: Messages) -> tracing.Traces | None:
    """The traced events' contexts the messages carry (None: tracing is off)."""
    if not tracing.enabled:
        return None
    traces: tracing.Traces = {}
    for message in messages:
        traces.update(tracing.from_batch(message.headers))
    return traces


@app.agent(parse_topic, isolated_partitions=True)
async def parse(stream: Any) -> None:
    ctx = await context()
    names, target = run_between(None, BREAKS)

    async def handle(messages: Messages, turn: Turn) -> None:
        parsed, traces = StageOutput(), {}
        for message in messages:  # one at a time: each says where its own events were
            carried = tracing.from_batch(message.headers) if tracing.enabled else None
            out, traced = run_parse(message.value.messages, message.value.positions, carried)
            parsed.events.extend(out.events)
            parsed.dead_letters.extend(out.dead_letters)
            traces.update(traced)
        out = _merge(parsed, await run_stages(ctx, names, parsed.events, traces, turn))
        await _send_on(messages, turn, target, out, traces)

    await _each_batch(stream, [*names, SEND], handle, lambda value: len(value.messages))


async def _each_batch(
    stream: Any,
    steps: list[str],
    handle: Callable[[Messages, Turn], Awaitable[None]],
    count: Callable[[Any], int],
) -> None:
    """`handle` the agent's partition in batches, up to `PIPELINE_IN_FLIGHT` at once, in
    order through `steps` (`app.pipeline.turns`); each acknowledges its messages once it
    is sent on, so the partition's committed offset never passes a batch not done. A batch
    is one message, or all that queued up meanwhile up to what one full message holds
    (`count` of a message's value: its events)."""
    in_flight = InFlight(steps, handle, settings.PIPELINE_IN_FLIGHT)
    backlog = Backlog(
        aiter(stream.noack().events()),
        waiting=lambda: not stream.channel.empty(),
        sizes=lambda message: (count(message.value), message.message.serialized_value_size or 0),
        limits=(settings.KAFKA_PRODUCER_MAX_QUEUE_SIZE, settings.KAFKA_MAX_MESSAGE_BATCH_SIZE),
    )
    try:
        while True:
            await in_flight.ready()  # the batch is taken only once it can start
            try:
                messages = await backlog.next()
            except StopAsyncIteration:
                break
            await in_flight.add(messages)
        await in_flight.drain()
    finally:
        in_flight.cancel()


async def _send_on(
    messages: Messages,
    turn: Turn,
    target: str | None,
    out: StageOutput,
    traces: tracing.Traces | None,
    overflow: TopicT | None = plugins_overflow_topic,
) -> None:
    """The batch's output to the next topic in its turn, then its messages acknowledged."""
    await turn.enter(SEND)
    partition = messages[0].message.partition
    await send_output(_topic(target), out, partition, overflow, traces)
    for message in messages:
        message.ack()
    _note_lag(messages[-1])


def _note_lag(message: Any) -> None:
    """The lag of the message's partition, after it was processed (`/metrics`)."""
    tp = message.message.tp
    highwater = app.consumer.highwater(tp)
    if highwater is not None:
        consumer_lag[(tp.topic, tp.partition)] = max(0, highwater - message.message.offset - 1)


def _count_events(value: Any) -> int:
    return len(value.events)


def _topic(stage: str | None) -> TopicT | None:
    return None if stage is None else TOPICS[stage]


def stage_agent(stage: str) -> AgentT[Any]:
    """The agent of `stage`'s topic: that stage and the ones after it to the next break."""
    names, target = run_between(stage, BREAKS)

    async def run(stream: Any) -> None:
        ctx = await context()

        async def handle(messages: Messages, turn: Turn) -> None:
            traces = _traces(messages)
            out = await run_stages(ctx, names, _events(messages), traces, turn)
            await _send_on(messages, turn, target, out, traces)

        await _each_batch(stream, [*names, SEND], handle, _count_events)

    return app.agent(TOPICS[stage], name=f"topologies.chain.{stage}", isolated_partitions=True)(run)


@app.agent(
    plugins_overflow_topic, name="topologies.chain.plugins_overflow", isolated_partitions=True
)
async def plugins_overflow(stream: Any) -> None:
    """A slow team's events, at their plugins' pace, beside the main chain."""
    ctx = await context()
    names, target = run_after("plugins", BREAKS)

    async def handle(messages: Messages, turn: Turn) -> None:
        events = _events(messages)
        await turn.enter(OVERFLOW)
        started = time.perf_counter()  # the stage's time, not the wait for its turn
        ran = await run_with_retries(
            OVERFLOW, lambda batch: run_overflow_plugins(ctx, batch), events
        )
        turn.leave(OVERFLOW)
        record_stage(OVERFLOW, len(events), ran, time.perf_counter() - started)
        traces = _traces(messages)
        out = _merge(ran, await run_stages(ctx, names, ran.events, traces, turn))
        await _send_on(messages, turn, target, out, traces, overflow=None)

    await _each_batch(stream, [OVERFLOW, *names, SEND], handle, _count_events)


plugins = stage_agent("plugins")
persons = stage_agent("persons")
write = stage_agent("write")
exports = stage_agent("exports")
