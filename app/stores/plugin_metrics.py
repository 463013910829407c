"""The plugins' own `meta.metrics`, kept per plugin config in the SQL database.

Workers count in memory and, every few seconds, merge what they counted since their last
merge into one row per (config, metric): a `sum` adds, a `max` or `min` keeps the larger
or smaller. The row is then the value across every worker and restart since the config
first counted, which `plugin-server plugin metrics CONFIG` reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.tables import plugin_metrics


@dataclass(frozen=True)
class MetricDelta:
    """What one worker counted for one metric of a config since its last merge."""

    plugin_config_id: int
    name: str
    kind: str  # sum, max, min
    value: float


@dataclass(frozen=True)
class StoredMetric:
    plugin_config_id: int
    name: str
    kind: str
    value: float
    updated_at: datetime


class PluginMetricStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def merge(self, deltas: Sequence[MetricDelta]) -> dict[tuple[int, str], float]:
        """Fold the deltas into the stored values; returns the values now stored."""
        if not deltas:
            return {}
        sqlite = self._engine.dialect.name == "sqlite"
        insert = (sqlite_insert if sqlite else pg_insert)(plugin_metrics)
        now = datetime.now(UTC)
        rows = [
            {"plugin_config_id": d.plugin_config_id, "name": d.name, "kind": d.kind,
             "value": d.value, "updated_at": now}
            for d in deltas
        ]  # fmt: skip
        stored, new = plugin_metrics.c.value, insert.excluded.value
        larger, smaller = (func.max, func.min) if sqlite else (func.greatest, func.least)
        merged: ColumnElement[float] = case(
            (insert.excluded.kind == "max", larger(stored, new)),
            (insert.excluded.kind == "min", smaller(stored, new)),
            else_=stored + new,
        )
        statement = insert.on_conflict_do_update(
            index_elements=[plugin_metrics.c.plugin_config_id, plugin_metrics.c.name],
            set_={"value": merged, "kind": insert.excluded.kind, "updated_at": now},
        ).returning(plugin_metrics.c.plugin_config_id, plugin_metrics.c.name, stored)
        totals: dict[tuple[int, str], float] = {}
        async with self._engine.begin() as conn:
            for row in rows:  # one statement per row: RETURNING with executemany varies
                result = (await conn.execute(statement, row)).one()
                totals[(int(result[0]), str(result[1]))] = float(result[2])
        return totals

    async def read(self, plugin_config_id: int) -> list[StoredMetric]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(plugin_metrics)
                .where(plugin_metrics.c.plugin_config_id == plugin_config_id)
                .order_by(plugin_metrics.c.name)
            )
            return [
                StoredMetric(r.plugin_config_id, r.name, r.kind, r.value, r.updated_at)
                for r in rows
            ]
