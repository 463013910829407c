"""The embedded mode's capture endpoint on localhost: the paths and handling of
`app.capture.handle_capture`, each request run through the chain at once."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from app.capture import CAPTURE_PATHS, MAX_BODY_BYTES, handle_capture
from app.embedded import run_chain
from app.pipeline.context import PipelineContext


def make_app(ctx: PipelineContext) -> web.Application:
    async def deliver(messages: list[dict[str, Any]]) -> dict[str, Any]:
        result = await run_chain(ctx, [orjson.dumps(m) for m in messages])
        return {
            "stored": len(result.stored),
            "dropped": result.dropped,
            "dead_letters": [letter.error for letter in result.dead_letters],
        }

    async def capture(request: web.Request) -> web.Response:
        answer = await handle_capture(
            await request.read(),
            ip=request.remote,
            host=request.host,
            teams=ctx.teams,
            deliver=deliver,
        )
        return web.json_response(answer.body, status=answer.status)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    for path in CAPTURE_PATHS:
        app.router.add_post(path, capture)
    app.router.add_get("/_health", health)
    return app


async def serve(ctx: PipelineContext, *, host: str, port: int, token: str) -> None:
    """Serve until interrupted."""
    runner = web.AppRunner(make_app(ctx))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(f"\ncapture endpoint: POST http://{host}:{port}/capture with api_key {token!r}")
    print("(Ctrl-C to stop)")
    try:
        await asyncio.Event().wait()
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        await runner.cleanup()
