"""The embedded mode's capture endpoint on localhost: POST /capture, /e, /batch."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from app.capture import CaptureError, UnknownToken, capture_messages, parse_body, team_for_request
from app.embedded import run_chain
from app.pipeline.context import PipelineContext


def make_app(ctx: PipelineContext) -> web.Application:
    async def capture(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            parsed = parse_body(body)
            team_id = await team_for_request(parsed, ctx.teams)
            messages = capture_messages(
                parsed, team_id=team_id, ip=request.remote, site_url=f"http://{request.host}"
            )
        except CaptureError as exc:
            status = 401 if isinstance(exc, UnknownToken) else 400
            return web.json_response({"status": 0, "error": str(exc)}, status=status)
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
