"""What the stages work with: the stores and the plugin runtime of this process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.pipeline.slow_teams import SlowTeams
from app.stores.definitions import DefinitionStore
from app.stores.delivery_marks import DeliveryMarks
from app.stores.events import EventStore
from app.stores.groups import GroupStore
from app.stores.persons import PersonStore
from app.stores.teams import TeamStore

if TYPE_CHECKING:
    from plugin_runtime.runtime import PluginRuntime


@dataclass
class PipelineContext:
    teams: TeamStore
    persons: PersonStore
    events: EventStore
    plugins: PluginRuntime
    definitions: DefinitionStore
    groups: GroupStore
    delivered: DeliveryMarks
    # teams whose events go to the overflow plugins stage; None: no overflow (embedded)
    slow_teams: SlowTeams | None = None
