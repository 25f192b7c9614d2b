"""The domain event outbox (sql/queries/events.sql).

Call :func:`append_event` inside the transaction that makes the change; the event
and a ``NOTIFY mktx_events, '<merchant_id>:<event_id>'`` commit with it, so live
streams (WatchConversations), automation, AI and analytics see exactly the
committed changes, across server processes.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from . import Jsonb, Queries, Row, fetch_all, fetch_one

Q = Queries("events")

CHANNEL = "mktx_events"


async def append_event(
    merchant_id: UUID, type_: str, aggregate_id: UUID | None, payload: dict[str, Any]
) -> int:
    """Record one domain event; returns its id (monotonic per database)."""
    row = await fetch_one(
        Q.append_event,
        {
            "merchant_id": merchant_id,
            "type": type_,
            "aggregate_id": aggregate_id,
            "payload": Jsonb(payload),
        },
    )
    assert row is not None
    return int(row["id"])


async def events_after(merchant_id: UUID, after_id: int, limit: int = 500) -> list[Row]:
    return await fetch_all(
        Q.events_after, {"merchant_id": merchant_id, "after_id": after_id, "limit": limit}
    )
