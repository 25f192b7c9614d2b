"""The ``mktx-grpc worker`` process: background loops only, no gRPC, and its
``/metrics`` (and ``/healthz``) on ``MKTX_WORKER_METRICS_PORT``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core.config import Settings
from ..core.db import database_ok, make_pool
from ..deps import Deps, close_deps, make_deps
from . import run_loops

log = logging.getLogger(__name__)


def metrics_app(deps: Deps) -> Starlette:
    """``GET /metrics`` (this process's metrics and the database gauges, with the
    inbox retry loop's webhook counters) and ``GET /healthz``."""
    from ..metrics import CONTENT_TYPE, scrape
    from ..webhooks.metrics import DEFAULT_METRICS

    async def metrics_endpoint(request: Request) -> Response:
        return Response(await scrape(deps, DEFAULT_METRICS), media_type=CONTENT_TYPE)

    async def healthz(request: Request) -> Response:
        ok = await database_ok(deps.pool)
        return JSONResponse(
            {"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503
        )

    return Starlette(
        routes=[
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside the worker's loop: the worker owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def worker_process(settings: Settings) -> None:
    """Run the loops until SIGTERM/SIGINT, then let the current iterations finish."""
    pool = make_pool(
        settings.database_url,
        min_size=1,
        max_size=max(2, settings.pool_max_size),
        wait_max=settings.db_wait_max,
    )
    await pool.open(wait=True, timeout=30)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    deps = make_deps(settings, pool)
    server: uvicorn.Server | None = None
    serving: asyncio.Task[None] | None = None
    if settings.worker_metrics_port:
        server = _EmbeddedUvicorn(
            uvicorn.Config(
                metrics_app(deps),
                host=settings.webhook_host,
                port=settings.worker_metrics_port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        serving = asyncio.create_task(server.serve(), name="worker-metrics")
    try:
        await run_loops(deps, stop)
    finally:
        if server is not None and serving is not None:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(serving, timeout=5)
        await close_deps(deps)
        await pool.close()
