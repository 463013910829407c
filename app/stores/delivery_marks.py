"""How far the exports stage has delivered each input partition (`app.pipeline.positions`).

Cluster: one Redis hash per input topic, so the worker that takes a partition over after
another died knows where that one got to. Embedded: this process's memory only (nothing
is ever delivered twice there). The marks only ever save repeats: when Redis cannot be
read, every event is delivered; when it cannot be written, the mark stays in memory and
is written with the next batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import redis.asyncio as aioredis

from app.pipeline.positions import Mark

log = logging.getLogger(__name__)


class DeliveryMarks:
    def __init__(self, client: aioredis.Redis | None = None, *, key: str = "") -> None:
        self._client = client
        self._key = key
        self._local: dict[int, Mark] = {}  # what this process recorded, written or not
        self._unwritten: dict[int, Mark] = {}

    async def get(self, partitions: Iterable[int]) -> dict[int, Mark]:
        wanted = sorted(set(partitions))
        marks = {p: self._local[p] for p in wanted if p in self._local}
        if self._client is None or not wanted:
            return marks
        try:
            stored = await self._client.hmget(self._key, [str(p) for p in wanted])
        except Exception as exc:
            log.warning("delivery marks unreadable, delivering without them: %s", exc)
            return marks
        for partition, value in zip(wanted, stored, strict=True):
            if value is not None and partition not in self._unwritten:
                text = value.decode() if isinstance(value, bytes) else str(value)
                offset, _, recorded = text.partition(":")
                marks[partition] = Mark(int(offset), int(recorded))
        return marks

    async def advance(self, offsets: dict[int, int]) -> None:
        """Record that each partition was delivered up to its offset, as of now."""
        now = int(time.time() * 1000)
        for partition, offset in offsets.items():
            self._local[partition] = self._unwritten[partition] = Mark(offset, now)
        if self._client is None:
            self._unwritten.clear()
            return
        if not self._unwritten:
            return
        mapping = {str(p): f"{m.offset}:{m.recorded_ms}" for p, m in self._unwritten.items()}
        try:
            await self._client.hset(self._key, mapping=mapping)  # type: ignore[arg-type]
        except Exception as exc:
            log.warning("delivery marks not written, kept for the next batch: %s", exc)
            return
        self._unwritten.clear()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
