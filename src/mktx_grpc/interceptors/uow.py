"""Unit of work: one pooled connection per RPC, one transaction for mutations.

A coalesced point read (``coalesced`` in the method table, with
``MKTX_COALESCE_READS`` on) borrows none: it runs under a
``core.context.DeferredConnection`` and its batch borrows one (``store/coalesce.py``).

Reads run on the autocommit connection (a single statement needs no BEGIN/COMMIT),
or, declared ``snapshot``, in one REPEATABLE READ read-only transaction whose reads
can run side by side on other connections (``core.db.read_snapshot``); writes run
inside ``conn.transaction()``, committed when the servicer returns and rolled back
when it raises. The connection is published in a contextvar for the
store layer. A destructive method (``audit`` in the method table) gets its audit row
written in its transaction, after the servicer succeeded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor
from psycopg_pool import AsyncConnectionPool

from ..core.context import DeferredConnection, deferred_connection_var, snapshot_var
from ..core.db import DatabaseState, read_snapshot, use_connection
from ..methods import spec_for
from ..store import audit
from ._stream import call_next, is_stream


class UnitOfWorkInterceptor(AsyncServerInterceptor):
    """``wait_max``: the longest a call waits for a pooled connection; a call with a
    nearer deadline waits only until its deadline. ``PoolTimeout`` then (the error
    interceptor answers UNAVAILABLE), never a wait the client has given up on. While
    ``database`` (the health probe's finding) says the database is unreachable, the
    wait is short (``DatabaseState.wait_for``)."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        wait_max: float | None = None,
        database: DatabaseState | None = None,
        coalesce_reads: bool = False,
    ) -> None:
        self._pool = pool
        self._wait_max = wait_max
        self._database = database
        self._coalesce = coalesce_reads

    async def intercept(
        self,
        method: Callable[..., Any],
        request: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        spec = spec_for(method_name)
        if not spec.db:
            return await call_next(method, request, context)
        wait = self._wait_max
        remaining = context.time_remaining()
        if remaining is not None:
            # A pool wait of 0 is "none left": PoolTimeout at once.
            wait = max(0.0, remaining) if wait is None else max(0.0, min(wait, remaining))
        if self._database is not None:
            wait = self._database.wait_for(wait)
        if spec.coalesced and self._coalesce:
            # A coalesced point read: its batch borrows the connection, not the call.
            token = deferred_connection_var.set(DeferredConnection(self._pool, wait))
            try:
                return await call_next(method, request, context)
            finally:
                deferred_connection_var.reset(token)
        unit = (
            _snapshot_unit(self._pool, wait)
            if spec.snapshot
            else use_connection(self._pool, transaction=spec.write, wait=wait)
        )
        async with unit:
            result = await call_next(method, request, context)
            if is_stream(result):
                raise RuntimeError(f"{method_name}: streaming RPCs must be declared db=False")
            if spec.audit:
                # In the same transaction: no audit row without the change, nor the
                # change without its row.
                await audit.record(method_name, str(getattr(request, "id", "")))
            return result


@asynccontextmanager
async def _snapshot_unit(pool: AsyncConnectionPool, wait: float | None) -> AsyncIterator[None]:
    """A ``snapshot`` read's unit of work: one REPEATABLE READ, read-only transaction,
    published for ``core.db.gather_reads`` to run the store's reads side by side in."""
    async with read_snapshot(pool, wait=wait) as snap:
        token = snapshot_var.set(snap)
        try:
            yield
        finally:
            snapshot_var.reset(token)
