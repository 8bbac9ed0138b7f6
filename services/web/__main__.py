"""``python -m services.web``: the board on ``PIPELINES_WEB_PORT`` (8100), in front of the three APIs."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop

from services.web.app import create_app
from shared.edge.service import serve, settle_heap
from shared.ops import tracing
from shared.ops.logs import configure_logging
from shared.ops.settings import Settings


async def _main() -> None:
    settings = Settings()
    configure_logging(settings, service="web", process="web")
    tracing.setup("web", "web")  # off unless OTEL_TRACES_EXPORTER names one (decision 0027)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per API call would drown the board's own
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(settings, stop=stop)
    settle_heap()
    bounds = {"max_header_bytes": settings.max_header_bytes, "max_headers": settings.max_headers}
    await serve(app, settings.api_host, settings.web_port, stop, **bounds)


uvloop.run(_main())
