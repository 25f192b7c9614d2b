"""What the operator metrics read from the database (sql/queries/metrics.sql):
queue depths, the outbox consumers' positions, DM budget totals. Every merchant's
rows; read at scrape time on the current connection."""

from __future__ import annotations

from . import Queries, Row, fetch_all, fetch_one
from .budget import DEFAULT_PER_15_MINUTES, DEFAULT_PER_24_HOURS

Q = Queries("metrics")


async def queue_depths() -> Row:
    """Campaign recipients due and sending, one-off DMs queued and due, the webhook
    inbox backlog (pending, age of
    the oldest, dead rows), the newest outbox event id, and automation's timers due
    and waiting executions."""
    row = await fetch_one(Q.queue_depths, {})
    assert row is not None
    return row


async def consumer_positions() -> list[Row]:
    """Per outbox consumer: its cursor, the age of the oldest event past it, and its
    parked and retrying failures."""
    return await fetch_all(Q.consumer_positions, {})


async def dm_budget_totals() -> Row:
    """Over ACTIVE accounts: how many, the DMs their budgets allow now in total, and
    how many have none left."""
    row = await fetch_one(
        Q.dm_budget_totals,
        {"default_15": DEFAULT_PER_15_MINUTES, "default_24": DEFAULT_PER_24_HOURS},
    )
    assert row is not None
    return row
