"""Issue 13 §6, the worker side: a recording transaction (dispatcher or recovery)
takes its contacts' locks first and in id order, whatever order its batch names them
in, so two workers recording sends to the same contacts (two campaigns to one
segment) wait for each other instead of deadlocking."""

from __future__ import annotations

import asyncio

import psycopg
from campaign_helpers import add_contacts, connect_account

from mktx_grpc.core.db import make_pool, use_connection
from mktx_grpc.store import dispatch as store


async def test_recording_transactions_lock_contacts_in_id_order(
    api, merchant, sandbox, db, database_url
):
    row, _ = await connect_account(api, merchant, sandbox, db)
    low, high = sorted(cid for cid, _ in await add_contacts(db, sandbox, merchant, row["id"], 2))
    pool = make_pool(database_url, min_size=1, max_size=1, metrics=False)
    await pool.open(wait=True)
    other = await psycopg.AsyncConnection.connect(database_url)  # another worker
    probe = await psycopg.AsyncConnection.connect(database_url)
    try:
        await other.execute("SELECT 1 FROM contacts WHERE id = %s FOR UPDATE", (low,))

        async def record() -> None:
            async with use_connection(pool, transaction=True):
                # The batch names the higher contact first.
                await store.lock_in_order(merchant, [], [high, low])

        task = asyncio.create_task(record())
        waiting = 0
        for _ in range(500):
            got = await (
                await db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            ).fetchone()
            waiting = got[0] if got else 0
            if waiting:
                break
            await asyncio.sleep(0.01)
        assert waiting == 1, "the recording transaction never waited"
        # It waits on the lower contact holding nothing: had it locked in the batch's
        # order it would hold the higher one, which the other worker may need next
        # (a deadlock).
        async with probe.transaction():
            await probe.execute("SELECT 1 FROM contacts WHERE id = %s FOR UPDATE NOWAIT", (high,))
        await other.commit()
        await asyncio.wait_for(task, 30)
    finally:
        await other.close()
        await probe.close()
        await pool.close()


async def test_lock_in_order_with_nothing_to_lock_is_a_no_op(api, merchant):
    async with use_connection(api.app.deps.pool, transaction=True):
        await store.lock_in_order(merchant, [], [])
