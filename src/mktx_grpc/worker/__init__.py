"""Background loops: run by ``mktx-grpc worker`` and in-process by ``serve``.

Each loop claims its work with ``FOR UPDATE SKIP LOCKED`` (or is idempotent), so
any number of worker processes can run against one database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..deps import Deps

log = logging.getLogger(__name__)

Loop = Callable[[Deps], Awaitable[float]]


async def purge_expired_connections(deps: Deps) -> float:
    """Delete pending OAuth connections past their expiry. Returns seconds to sleep."""
    async with deps.pool.connection() as conn:
        await conn.execute(
            "DELETE FROM oauth_connections WHERE expires_at < now() - interval '1 hour'"
        )
    return 300.0


LOOPS: list[Loop] = [purge_expired_connections]


async def run_loops(deps: Deps, stop: asyncio.Event, loops: list[Loop] | None = None) -> None:
    """Run every loop until ``stop`` is set. A failing iteration is logged and retried
    after a back-off; it never stops the other loops."""

    async def runner(loop: Loop) -> None:
        while not stop.is_set():
            try:
                delay = await loop(deps)
            except Exception:
                log.exception("background loop %s failed", loop.__name__)
                delay = 5.0
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass

    await asyncio.gather(*(runner(loop) for loop in (loops or LOOPS)))
