"""The worker's capture endpoint: POST /capture, /e, /batch, /track onto the input topic.

Each event becomes one capture message keyed `team_id:distinct_id`, exactly as an
external capture service would write it, so HTTP and Kafka input take one path. The
handling is `app.capture.handle_capture`, shared with the embedded server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from faust.web import Request, Response, View

from app import tracing
from app.capture import CAPTURE_PATHS, handle_capture
from topologies.resources import context
from topologies.topics import app, settings


class CaptureView(View):
    async def post(self, request: Request) -> Response:
        web_request: Any = request  # aiohttp's request; Faust's type hides its fields
        ctx = await context()
        answer = await handle_capture(
            await web_request.read(),
            ip=web_request.remote,
            host=web_request.host,
            teams=ctx.teams,
            deliver=_deliver,
        )
        return self.json(answer.body, status=answer.status)


async def _deliver(messages: list[dict[str, Any]]) -> dict[str, Any]:
    sent = [
        await app.producer.send(
            topic=settings.KAFKA_CONSUMPTION_TOPIC,
            key=f"{message['team_id']}:{message['distinct_id']}".encode(),
            value=orjson.dumps(message),
            partition=None,
            timestamp=None,
            headers=tracing.message_headers(message["uuid"], settings.KAFKA_CONSUMPTION_TOPIC),
        )
        for message in messages
    ]
    await asyncio.gather(*sent)  # acknowledged by the broker before the answer
    return {}


for _index, _path in enumerate(CAPTURE_PATHS):
    # a view class serves one path, so each path gets its own subclass
    app.page(_path, name=f"capture_{_index}")(type(f"Capture{_index}", (CaptureView,), {}))
