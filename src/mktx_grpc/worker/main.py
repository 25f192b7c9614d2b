"""The ``mktx-grpc worker`` process: background loops only, no gRPC."""

from __future__ import annotations

import asyncio
import signal

from ..core.config import Settings
from ..core.db import make_pool
from ..deps import close_deps, make_deps
from . import run_loops


async def worker_process(settings: Settings) -> None:
    """Run the loops until SIGTERM/SIGINT, then let the current iterations finish."""
    pool = make_pool(settings.database_url, min_size=1, max_size=max(2, settings.pool_max_size))
    await pool.open(wait=True, timeout=30)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    deps = make_deps(settings, pool)
    try:
        await run_loops(deps, stop)
    finally:
        await close_deps(deps)
        await pool.close()
