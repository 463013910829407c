"""What a stage hands on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.records import DeadLetter


@dataclass
class StageOutput:
    events: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # events for the overflow plugins stage (a slow team's), not yet through the plugins
    overflow: list[dict[str, Any]] = field(default_factory=list)
