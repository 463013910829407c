"""Where `posthog.capture` sends events in cluster mode: the input topic, like any capture.

Plugin code runs on plugin threads, so this uses kafka-python's thread-safe blocking
producer rather than the worker's asyncio one.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import orjson
from kafka import KafkaProducer

from app.connections import kafka_producer
from app.settings import Settings


class KafkaCaptureSink:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _client(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = kafka_producer(
                    self._settings, linger_ms=self._settings.KAFKA_FLUSH_FREQUENCY_MS
                )
            return self._producer

    def capture(self, message: Mapping[str, Any]) -> None:
        key = f"{message['team_id']}:{message['distinct_id']}".encode()
        self._client().send(
            self._settings.KAFKA_CONSUMPTION_TOPIC, value=orjson.dumps(dict(message)), key=key
        )

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush()
                self._producer.close()
                self._producer = None
