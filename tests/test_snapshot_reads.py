"""core.db.read_snapshot / gather_reads: a report's independent queries run side by
side on several connections, all in one snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from mktx_grpc.core.context import current_connection, snapshot_var
from mktx_grpc.core.db import gather_reads, read_snapshot, use_connection


@pytest.fixture
async def table(database_url: str) -> AsyncIterator[str]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
        await c.execute("CREATE TABLE snap_probe (n integer)")
        await c.execute("INSERT INTO snap_probe VALUES (1)")
    yield database_url


@asynccontextmanager
async def _pool(url: str, size: int) -> AsyncIterator[AsyncConnectionPool]:
    """A pool of exactly ``size`` connections, all open, closed afterwards."""
    pool = AsyncConnectionPool(url, min_size=size, max_size=size, open=False)
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


async def _count() -> tuple[int, int]:
    """The probe table's rows and this connection's backend pid."""
    conn = current_connection()
    row = await (await conn.execute("SELECT count(*), pg_backend_pid() FROM snap_probe")).fetchone()
    assert row is not None
    await asyncio.sleep(0.05)  # keep the connection busy, so the reads overlap
    return int(row[0]), int(row[1])


async def test_reads_beside_see_the_snapshot_not_later_commits(table: str) -> None:
    async with _pool(table, 3) as pool:
        async with read_snapshot(pool) as snap:
            # The transaction's first statement takes its snapshot (REPEATABLE READ), as
            # a report's first lookup does; the reads gathered later all see that one.
            first, _ = await _count()
            async with await psycopg.AsyncConnection.connect(table, autocommit=True) as other:
                await other.execute("INSERT INTO snap_probe VALUES (2)")  # after the snapshot
            out = await snap.gather(_count, _count, _count)
        assert first == 1 and [n for n, _ in out] == [1, 1, 1]
        assert len({pid for _, pid in out}) == 3  # three connections, side by side

        async def workers() -> Any:
            cur = await current_connection().execute("SHOW max_parallel_workers_per_gather")
            return await cur.fetchone()

        async with read_snapshot(pool) as snap:
            # Until reads are gathered the transaction is an ordinary one; then the reads
            # themselves are the parallelism: no PostgreSQL workers on top.
            assert await workers() != ("0",)
            assert await snap.gather(workers) != [("0",)]  # one read: nothing to gather
            assert await snap.gather(workers, workers) == [("0",), ("0",)]
        async with use_connection(pool) as conn:
            row = await (await conn.execute("SELECT count(*) FROM snap_probe")).fetchone()
            assert row is not None and row[0] == 2


async def test_with_no_free_connection_the_reads_run_on_the_snapshots_own(table: str) -> None:
    async with _pool(table, 1) as pool:
        async with read_snapshot(pool) as snap:
            out = await snap.gather(_count, _count)
        assert [n for n, _ in out] == [1, 1]
        assert out[0][1] == out[1][1]  # one connection for both: none was waited for
        assert pool.get_stats()["pool_available"] == 1


async def test_the_first_error_is_raised_as_it_is_and_every_connection_comes_back(
    table: str,
) -> None:
    cancelled = asyncio.Event()

    async def slow() -> Any:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def bad() -> Any:
        await current_connection().execute("SELECT 1 / 0")

    async with _pool(table, 3) as pool:
        with pytest.raises(psycopg.errors.DivisionByZero):
            async with read_snapshot(pool) as snap:
                await snap.gather(slow, bad)
        assert cancelled.is_set()
        await asyncio.sleep(0)
        assert pool.get_stats()["pool_available"] == 3
        async with use_connection(pool) as conn:  # and each is usable: no transaction left
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            assert (await (await conn.execute("SHOW transaction_read_only")).fetchone()) == ("off",)


async def test_outside_a_snapshot_read_the_reads_run_in_turn_on_the_current_connection(
    table: str,
) -> None:
    async with _pool(table, 2) as pool:
        assert snapshot_var.get() is None
        async with use_connection(pool):
            out = await gather_reads(_count, _count)
        assert [n for n, _ in out] == [1, 1] and out[0][1] == out[1][1]
