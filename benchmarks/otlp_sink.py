"""An OTLP/HTTP endpoint that takes everything and keeps nothing, for measuring what
exporting traces and metrics costs the worker.

    .venv/bin/python benchmarks/otlp_sink.py [--port 4318] &
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_TRACES_SAMPLER=traceidratio \\
        OTEL_TRACES_SAMPLER_ARG=0.01 .venv/bin/python benchmarks/chain.py --runs 3
"""

from __future__ import annotations

import argparse

from aiohttp import web


async def take(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(content_type="application/x-protobuf", body=b"")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes([web.post("/v1/traces", take), web.post("/v1/metrics", take)])
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
