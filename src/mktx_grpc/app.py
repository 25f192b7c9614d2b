"""Runs one server process: gRPC, the webhook sidecar and (optionally) worker loops.

Shutdown on SIGTERM/SIGINT: health goes NOT_SERVING at once, the listener stays open
for the drain delay, then open streams end with UNAVAILABLE and in-flight RPCs get
the grace period (``GrpcApp.stop``); the sidecar and loops stop, then the pool closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator

import uvicorn

from .core.config import Settings
from .core.db import make_pool
from .deps import close_deps, make_deps
from .server import GrpcApp
from .webhooks.app import create_webhook_app
from .webhooks.server import sidecar_config
from .worker import run_loops

log = logging.getLogger(__name__)


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside our event loop: this process owns SIGTERM/SIGINT (it drains gRPC
    first), so uvicorn must not capture and re-raise them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_process(
    settings: Settings,
    *,
    primary: bool = True,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT. ``primary`` processes also run the sidecar and the
    worker loops; extra SO_REUSEPORT processes serve gRPC only. ``on_ready(grpc_port)``
    is called once gRPC and the sidecar listen (the CLI prints its banner then)."""
    pool = make_pool(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        metrics=settings.metrics,
        wait_max=settings.db_wait_max,
    )
    await pool.open(wait=True, timeout=30)
    deps = make_deps(settings, pool)
    grpc_app = GrpcApp(deps, host=settings.grpc_host, port=settings.grpc_port)
    await grpc_app.start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tasks: list[asyncio.Task[None]] = []
    sidecar: uvicorn.Server | None = None
    if primary:
        webhook_app = create_webhook_app(deps, settings.x_consumer_secret)
        sidecar = _EmbeddedUvicorn(
            sidecar_config(
                webhook_app,
                webhook_app.state.options,
                host=settings.webhook_host,
                port=settings.webhook_port,
                # The sidecar's lifespan starts and drains its event processors.
                lifespan="on",
            )
        )
        tasks.append(asyncio.create_task(sidecar.serve(), name="webhook-sidecar"))
        if settings.run_worker:
            tasks.append(asyncio.create_task(run_loops(deps, stop), name="worker-loops"))

    if on_ready is not None:
        if sidecar is not None:
            # uvicorn offers a flag, not an event, for "listening".
            while not sidecar.started and not tasks[0].done():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        on_ready(grpc_app.port)
    log.info(
        "serving",
        extra={
            "grpc_port": grpc_app.port,
            "webhook_port": settings.webhook_port if primary else None,
        },
    )
    await stop.wait()
    log.info(
        "shutting down; drain %.1fs, grace %.1fs", settings.drain_delay, settings.shutdown_grace
    )
    await grpc_app.stop(settings.shutdown_grace, drain_delay=settings.drain_delay)
    if sidecar is not None:
        sidecar.should_exit = True
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=settings.shutdown_grace)
    await close_deps(deps)
    await pool.close()
    log.info("stopped")
