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
from app.pipeline.stages import STAGE_NAMES, run_parse, run_stages
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
    parsed, traces = run_parse(raw_messages)
    out = await run_stages(ctx, list(STAGE_NAMES), parsed.events, traces)
    result.dead_letters.extend([*parsed.dead_letters, *out.dead_letters])
    result.stored = out.events
    return result
