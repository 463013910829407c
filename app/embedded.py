"""The embedded driver: the pipeline's stages chained in one process, no Kafka.

It calls the same stage functions as the Faust agents, in the same order, with the same
retry rule, so `plugin-server dev`, `plugin-server ingest` and the cluster agree on
every rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.pipeline.context import PipelineContext
from app.pipeline.exports import export_events
from app.pipeline.parse import parse_messages
from app.pipeline.persons import resolve_persons
from app.pipeline.plugins import run_plugins
from app.pipeline.retries import run_with_retries
from app.pipeline.write import write_events
from schemas.records import DeadLetter


@dataclass
class ChainResult:
    stored: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    received: int = 0

    @property
    def dropped(self) -> int:
        """Events a plugin dropped (neither stored nor dead-lettered)."""
        return self.received - len(self.stored) - len(self.dead_letters)


async def run_chain(ctx: PipelineContext, raw_messages: Sequence[bytes | str]) -> ChainResult:
    """Run capture messages through parse -> plugins -> persons -> write -> exports."""
    result = ChainResult(received=len(raw_messages))
    out = parse_messages(raw_messages)
    result.dead_letters.extend(out.dead_letters)
    stages = (
        ("plugins", run_plugins),
        ("persons", resolve_persons),
        ("write", write_events),
        ("exports", export_events),
    )
    events = out.events
    for name, stage in stages:
        if not events:
            break
        out = await run_with_retries(name, lambda evs, s=stage: s(ctx, evs), events)  # type: ignore[misc]
        result.dead_letters.extend(out.dead_letters)
        events = out.events
    result.stored = events
    return result
