"""The worker's capture endpoint: POST /capture, /e, /batch onto the input topic.

Each event becomes one capture message keyed `team_id:distinct_id`, exactly as an
external capture service would write it, so HTTP and Kafka input take one path.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from faust.web import Request, Response, View

from app.capture import CaptureError, UnknownToken, capture_messages, parse_body, team_for_request
from topologies.resources import context
from topologies.topics import app, settings

CAPTURE_PATHS = ("/capture", "/capture/", "/e", "/e/", "/batch", "/batch/", "/track", "/track/")


class CaptureView(View):
    async def post(self, request: Request) -> Response:
        body = await request.read()  # type: ignore[attr-defined]
        ctx = await context()
        try:
            parsed = parse_body(body)
            team_id = await team_for_request(parsed, ctx.teams)
            messages = capture_messages(
                parsed,
                team_id=team_id,
                ip=request.remote,  # type: ignore[attr-defined]
                site_url=f"http://{request.host}",  # type: ignore[attr-defined]
            )
        except CaptureError as exc:
            status = 401 if isinstance(exc, UnknownToken) else 400
            return self.json({"status": 0, "error": str(exc)}, status=status)
        await asyncio.gather(*[await _send(message) for message in messages])
        return self.json({"status": 1})


async def _send(message: dict[str, Any]) -> Any:
    return await app.producer.send(
        topic=settings.KAFKA_CONSUMPTION_TOPIC,
        key=f"{message['team_id']}:{message['distinct_id']}".encode(),
        value=orjson.dumps(message),
        partition=None,
        timestamp=None,
        headers=None,
    )


for _index, _path in enumerate(CAPTURE_PATHS):
    # a view class serves one path, so each path gets its own subclass
    app.page(_path, name=f"capture_{_index}")(type(f"Capture{_index}", (CaptureView,), {}))
