"""Coalescing of concurrent point reads of one kind into one query per batch.

``GetTemplate``, ``GetContact`` and ``GetConversation`` read one row by
``(merchant_id, id)``. Under load many such reads of the same merchant are in flight
at once; :class:`PointReads` answers them with one ``WHERE merchant_id = … AND id =
ANY(…)`` query per batch instead of one query each.

How a batch forms (no timer, so no added latency when idle): the first read of a
merchant runs its query at once, on its own unit of work's connection. Reads that
arrive while that query is in flight queue up; when it returns, the first queued
read leads the next batch (on its connection) with every read queued so far. So a
batch is "everything that arrived during the previous query", which grows with load
and is one read when the service is idle.

Only autocommit reads coalesce: on a connection inside a transaction (a write RPC
reading its own uncommitted rows) the read runs alone, as before. A read always
joins a batch whose query starts after it arrived, so it sees every write committed
before the call. A failed batch query fails each read of the batch with the same
error; a read whose caller is cancelled leaves the others unaffected (a queued
leader hands the lead on).

A read whose unit of work borrowed no connection (``coalesced`` in the method table:
GetTemplate) holds none while it waits: the leader borrows one from the pool for the
batch query alone (``core.context.DeferredConnection``), so a batch is not bounded by
the pool's size and the reads it answers cost no pool checkout. GetContact and
GetConversation run a second query afterwards, so they keep their connection.

Opt-in (``MKTX_COALESCE_READS``, off by default). Measured in
``bench/results/grpc.md``: it did not reach the 1.3× that would justify it by
default. Each read still holds its unit of work's pooled connection while it waits
for its batch, so for the RPCs that run a second query afterwards (GetContact's
engagement, GetConversation's messages) the connection is held longer and throughput
went down; for GetTemplate (one query) it varied between no gain and ~1.5× with the
load on the shared box.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

from psycopg import pq

from ..core.context import connection_var, current_connection, deferred_connection_var
from ..core.db import use_connection
from . import Row

#: A queued read's future is resolved with this to make it the next batch's leader.
_LEAD: Any = object()

Fetch = Callable[[UUID, Sequence[UUID]], Awaitable[list[Row]]]


class PointReads:
    """Coalesced reads of one kind. ``fetch(merchant_id, ids)`` returns the rows
    found (any order, each with an ``id``); ``single(merchant_id, id)`` is the plain
    one-row read used inside transactions."""

    def __init__(self, fetch: Fetch, single: Callable[[UUID, UUID], Awaitable[Row | None]]):
        self._fetch = fetch
        self._single = single
        #: merchant -> reads waiting for the next batch, as (id, future).
        self._queued: dict[UUID, list[tuple[UUID, asyncio.Future[Any]]]] = {}
        #: merchants with a batch query in flight.
        self._busy: set[UUID] = set()
        #: Batches run and reads answered (for the benchmark and tests).
        self.batches = 0
        self.reads = 0

    async def get(self, merchant_id: UUID, row_id: UUID) -> Row | None:
        """The row, or None. Raises what the query raises."""
        if connection_var.get() is None and deferred_connection_var.get() is not None:
            pass  # a read without a connection of its own: it joins or leads a batch
        elif current_connection().info.transaction_status != pq.TransactionStatus.IDLE:
            return await self._single(merchant_id, row_id)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.setdefault(merchant_id, []).append((row_id, fut))
        if merchant_id in self._busy:
            try:
                result = await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled() and fut.result() is _LEAD:
                    # Made leader, then cancelled before leading: pass it on.
                    self._hand_on(merchant_id)
                raise
            if result is not _LEAD:
                return result  # type: ignore[no-any-return]
        else:
            self._busy.add(merchant_id)
        return await self._lead(merchant_id, row_id, fut)

    async def _lead(self, merchant_id: UUID, row_id: UUID, own: asyncio.Future[Any]) -> Row | None:
        batch = [(i, f) for i, f in self._queued.pop(merchant_id, []) if f is not own]
        try:
            ids = list({row_id, *(i for i, _ in batch)})
            deferred = deferred_connection_var.get() if connection_var.get() is None else None
            if deferred is None:
                rows = await self._fetch(merchant_id, ids)
            else:
                # The leader borrows a connection for the batch query only.
                async with use_connection(deferred.pool, wait=deferred.wait):
                    rows = await self._fetch(merchant_id, ids)
        except BaseException as exc:
            live = [(i, f) for i, f in batch if not f.done()]
            if isinstance(exc, asyncio.CancelledError):
                # Our caller went away; the others' reads still stand: requeue them.
                if live:
                    self._queued.setdefault(merchant_id, [])[:0] = live
            else:
                for _, f in live:
                    f.set_exception(exc)
            self._hand_on(merchant_id)
            raise
        found = {row["id"]: row for row in rows}
        self.batches += 1
        self.reads += len(batch) + 1
        for i, f in batch:
            if not f.done():
                f.set_result(found.get(i))
        self._hand_on(merchant_id)
        return found.get(row_id)

    def _hand_on(self, merchant_id: UUID) -> None:
        """Make the first live queued read the next leader, or mark the merchant idle."""
        queue = self._queued.get(merchant_id)
        while queue:
            _, fut = queue[0]
            if fut.done():  # cancelled while queued
                queue.pop(0)
                continue
            fut.set_result(_LEAD)
            return
        self._queued.pop(merchant_id, None)
        self._busy.discard(merchant_id)
