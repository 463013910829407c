"""The chain's stages in their order, and running a run of them over a batch.

After parse come plugins -> persons -> write -> exports. Both run modes run them with
`run_stages`: the embedded driver all of them, the cluster's agents each the run from its
topic's stage up to the next break (`PIPELINE_BREAKS`), so adjacent stages share one
agent and no event is encoded, sent, fetched and decoded between them
(`docs/decisions/stage-fusion.md`). Each stage keeps its own retries: a server that is
down stalls the stage that needs it, and the stages before it are not run again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from app import tracing
from app.pipeline.context import PipelineContext
from app.pipeline.exports import export_events
from app.pipeline.output import StageOutput
from app.pipeline.parse import parse_messages
from app.pipeline.persons import resolve_persons
from app.pipeline.plugins import run_plugins
from app.pipeline.positions import position_of
from app.pipeline.retries import run_with_retries
from app.pipeline.telemetry import record_stage
from app.pipeline.turns import Turn
from app.pipeline.write import write_events

Stage = Callable[[PipelineContext, list[dict[str, Any]]], Awaitable[StageOutput]]

STAGES: tuple[tuple[str, Stage], ...] = (
    ("plugins", run_plugins),
    ("persons", resolve_persons),
    ("write", write_events),
    ("exports", export_events),
)
STAGE_NAMES = tuple(name for name, _ in STAGES)
_BY_NAME = dict(STAGES)


def run_between(first: str | None, breaks: Collection[str]) -> tuple[list[str], str | None]:
    """The stages one agent runs from stage `first` on (None: from the start of the
    chain), and the stage after them (None: the end of the chain)."""
    start = 0 if first is None else STAGE_NAMES.index(first)
    names: list[str] = []
    for name in STAGE_NAMES[start:]:
        if name in breaks and (names or first is None):
            return names, name
        names.append(name)
    return names, None


def run_after(stage: str, breaks: Collection[str]) -> tuple[list[str], str | None]:
    """The stages one agent runs after stage `stage` (up to the next break), and the stage
    after them."""
    following = STAGE_NAMES.index(stage) + 1
    if following == len(STAGE_NAMES):
        return [], None
    if STAGE_NAMES[following] in breaks:
        return [], STAGE_NAMES[following]
    return run_between(STAGE_NAMES[following], breaks)


def run_parse(
    raw_messages: Sequence[bytes | str],
    positions: Sequence[list[int]] | None = None,
    carried: tracing.Traces | None = None,
) -> tuple[StageOutput, tracing.Traces]:
    """The parse stage over capture messages, recorded as the other stages are; with the
    traced events' contexts by uuid (from `carried`, by input offset, or sampled here)."""
    started, started_ns = time.perf_counter(), time.time_ns()
    out = parse_messages(raw_messages, positions)
    record_stage("parse", len(raw_messages), out, time.perf_counter() - started)
    traces: tracing.Traces = {}
    if tracing.enabled:
        traces = tracing.by_uuid(carried or {}, out.events, _offset)
        tracing.record_stage("parse", len(raw_messages), traces, started_ns, time.time_ns())
    return out, traces


def _offset(event: dict[str, Any]) -> int | None:
    position = position_of(event)
    return None if position is None else position.offset


async def run_stages(
    ctx: PipelineContext,
    names: list[str],
    events: list[dict[str, Any]],
    traces: tracing.Traces | None = None,
    turn: Turn | None = None,
) -> StageOutput:
    """`events` through the stages `names` in order, each with its retries: what the last
    one handed on, the dead letters of all, and what the plugins stage overflowed.
    `traces`: the traced events' contexts, for their spans; `turn`: the batch's place in
    each stage among its partition's batches in flight (`app.pipeline.turns`)."""
    total = StageOutput(events=events)
    for name in names:
        if not total.events:
            if turn is not None:
                turn.leave(name)
            continue
        if turn is not None:
            await turn.enter(name)
        stage = _BY_NAME[name]
        started, received = time.perf_counter(), len(total.events)
        started_ns = time.time_ns()
        out = await run_with_retries(name, lambda evs, s=stage: s(ctx, evs), total.events)  # type: ignore[misc]
        record_stage(name, received, out, time.perf_counter() - started)
        if traces:
            tracing.record_stage(name, received, traces, started_ns, time.time_ns())
            if len(out.events) != received:  # the next stage's spans are for what it gets
                tracing.keep_only(traces, [*out.events, *out.overflow])
        if turn is not None:
            turn.leave(name)
        total.events = out.events
        total.dead_letters.extend(out.dead_letters)
        total.overflow.extend(out.overflow)
    return total
