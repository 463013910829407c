"""The embedded mode's capture endpoint on localhost: POST /capture, /e, /batch."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from app.capture import CaptureError, capture_messages
from app.embedded import run_chain
from app.pipeline.context import PipelineContext

DEV_TEAM_ID = 1


def make_app(ctx: PipelineContext, *, team_id: int = DEV_TEAM_ID) -> web.Application:
    async def capture(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            messages = capture_messages(
                body, team_id=team_id, ip=request.remote, site_url=f"http://{request.host}"
            )
        except CaptureError as exc:
            return web.json_response({"status": 0, "error": str(exc)}, status=400)
        result = await run_chain(ctx, [orjson.dumps(m) for m in messages])
        return web.json_response(
            {
                "status": 1,
                "stored": len(result.stored),
                "dropped": result.dropped,
                "dead_letters": [letter.error for letter in result.dead_letters],
            }
        )

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=20 * 1024 * 1024)
    for path in ("/capture", "/capture/", "/e", "/e/", "/batch", "/batch/", "/track"):
        app.router.add_post(path, capture)
    app.router.add_get("/_health", health)
    return app


async def serve(ctx: PipelineContext, *, host: str, port: int) -> None:
    """Serve until interrupted."""
    runner = web.AppRunner(make_app(ctx))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(f"\ncapture endpoint: POST http://{host}:{port}/capture (Ctrl-C to stop)")
    try:
        await asyncio.Event().wait()
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        await runner.cleanup()
