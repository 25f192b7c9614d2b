"""The domain event outbox and its consumers' bookkeeping (sql/queries/events.sql).

Call :func:`append_event` inside the transaction that makes the change; the event
and a ``NOTIFY mktx_events, '<merchant_id>:<event_id>:<type>'`` commit with it, so live
streams (WatchConversations), automation, AI and analytics see exactly the
committed changes, across server processes.

The rest serves ``worker/consumer.py``: each named consumer's durable cursor
(``event_consumer_cursors``), the settling horizon, and the events its handler
failed on (``event_consumer_failures``: retried, then parked as dead letters). These
functions read across merchants by design.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from . import Jsonb, Queries, Row, execute, fetch_all, fetch_one

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


async def append_events(events: Sequence[Mapping[str, Any]]) -> None:
    """:func:`append_event` for many events in one statement, in order: each a mapping
    with ``merchant_id``, ``type``, ``aggregate_id`` (or None) and ``payload`` (JSON
    values). The same rows and the same NOTIFY per event."""
    if not events:
        return
    rows = [
        {
            "merchant_id": str(e["merchant_id"]),
            "type": e["type"],
            "aggregate_id": None if e["aggregate_id"] is None else str(e["aggregate_id"]),
            "payload": e["payload"],
        }
        for e in events
    ]
    await fetch_one(Q.append_events, {"rows": json.dumps(rows)})


async def events_after(merchant_id: UUID, after_id: int, limit: int = 500) -> list[Row]:
    return await fetch_all(
        Q.events_after, {"merchant_id": merchant_id, "after_id": after_id, "limit": limit}
    )


# ------------------------------------------------------------------ consumers


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One domain event as a consumer sees it."""

    id: int
    merchant_id: UUID
    type: str
    aggregate_id: UUID | None
    payload: dict[str, Any]
    created_at: datetime
    #: False when a lower id may still commit: the consumer must not pass it yet.
    settled: bool
    #: Seconds since the event's transaction started (database clock).
    age_seconds: float


@dataclass(frozen=True, slots=True)
class Horizon:
    """``allocated``: the highest event id handed out (committed or not) when a pass
    began; ``xmin``: the oldest transaction then running on the server."""

    allocated: int
    xmin: int


@dataclass(frozen=True, slots=True)
class Failure:
    """The event a consumer is retrying."""

    event_id: int
    attempts: int
    #: True while the back-off has not run out; ``wait_seconds`` is what is left.
    waiting: bool
    wait_seconds: float


async def ensure_cursor(consumer: str) -> None:
    """Create the consumer's cursor (at 0: from the first event) if it has none."""
    await execute(Q.ensure_cursor, {"consumer": consumer})


async def horizon() -> Horizon:
    """Read the settling horizon. Must be the pass's first statement, before its
    transaction has an id (see consumer_horizon in events.sql)."""
    row = await fetch_one(Q.consumer_horizon, {})
    assert row is not None
    return Horizon(int(row["allocated"]), int(row["xmin"]))


async def claim_cursor(consumer: str) -> tuple[int, int] | None:
    """Lock the consumer's cursor for this transaction: ``(last_event_id, xid)``, or
    None when another pass holds it (or it does not exist)."""
    row = await fetch_one(Q.claim_cursor, {"consumer": consumer})
    if row is None:
        return None
    return int(row["last_event_id"]), int(row["xid"])


async def commit_without_flush() -> None:
    """This transaction's commit returns before its WAL is flushed to disk
    (``synchronous_commit`` off): a crash may lose it, never half of it. Only for
    writes that are recomputed when lost (a derived consumer's pass: its cursor
    moves back with its effects, and the events are delivered again)."""
    await execute(Q.commit_without_flush, {})


async def advance_cursor(consumer: str, last_event_id: int) -> None:
    await execute(Q.advance_cursor, {"consumer": consumer, "last_event_id": last_event_id})


async def cursor_position(consumer: str) -> int | None:
    """The consumer's committed position, without locking; None if it has no cursor."""
    row = await fetch_one(Q.get_cursor, {"consumer": consumer})
    return None if row is None else int(row["last_event_id"])


async def events_for_consumer(
    after_id: int, *, settled_through: int, types: Sequence[str] | None, limit: int
) -> list[OutboxEvent]:
    """Events after ``after_id`` in id order (only ``types`` when given), each marked
    settled when its id is at most ``settled_through``."""
    rows = await fetch_all(
        Q.events_for_consumer,
        {
            "after_id": after_id,
            "settled_through": settled_through,
            "types": list(types) if types is not None else None,
            "limit": limit,
        },
    )
    return [
        OutboxEvent(
            id=int(r["id"]),
            merchant_id=r["merchant_id"],
            type=r["type"],
            aggregate_id=r["aggregate_id"],
            payload=r["payload"] if isinstance(r["payload"], dict) else {},
            created_at=r["created_at"],
            settled=bool(r["settled"]),
            age_seconds=max(0.0, float(r["age_s"])),
        )
        for r in rows
    ]


async def retrying_failure(consumer: str, after_id: int) -> Failure | None:
    """The event past ``after_id`` the consumer is retrying, if any."""
    row = await fetch_one(Q.retrying_failure, {"consumer": consumer, "after_id": after_id})
    if row is None:
        return None
    return Failure(
        int(row["event_id"]),
        int(row["attempts"]),
        bool(row["waiting"]),
        max(0.0, float(row["wait_s"] or 0.0)),
    )


async def record_failure(
    consumer: str,
    event: OutboxEvent,
    *,
    attempts: int,
    reason: str,
    park: bool,
    backoff: timedelta,
) -> None:
    """Record a failed attempt: retry after ``backoff``, or park the event."""
    await execute(
        Q.record_failure,
        {
            "consumer": consumer,
            "event_id": event.id,
            "merchant_id": event.merchant_id,
            "event_type": event.type,
            "attempts": attempts,
            "reason": reason,
            "park": park,
            "backoff": backoff,
        },
    )


async def clear_failure(consumer: str, event_id: int) -> None:
    await execute(Q.clear_failure, {"consumer": consumer, "event_id": event_id})


async def parked_events(consumer: str, *, after_id: int = 0, limit: int = 100) -> list[Row]:
    """The consumer's dead letters (event id, merchant, type, attempts, last error,
    when it first and last failed, when it was parked), oldest event first."""
    return await fetch_all(
        Q.parked_events, {"consumer": consumer, "after_id": after_id, "limit": limit}
    )
