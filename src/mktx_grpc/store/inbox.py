"""The webhook inbox (sql/queries/inbox.sql): raw X events, durable before the
sidecar answers 200, processed and retried from here.

The inbox is routed by X user id, not merchant: the merchant is known only once
``for_user_id`` resolves to an account (:func:`accounts_by_x_user`).
"""

from __future__ import annotations

from collections.abc import Sequence

from . import Queries, Row, execute, fetch_all, fetch_one

Q = Queries("inbox")

__all__ = [
    "accounts_by_x_user",
    "claim_by_ids",
    "claim_due",
    "insert_dead_delivery",
    "insert_events",
    "mark_failed",
    "mark_finished",
    "pending_stats",
]


async def insert_events(
    keys: Sequence[str],
    for_user_ids: Sequence[str],
    types: Sequence[str],
    payloads: Sequence[str],
    *,
    claim_delay: float,
) -> list[Row]:
    """Record events in one statement; returns ``id, event_key, received_at`` of the
    rows that were new (known keys insert nothing). ``payloads`` are JSON texts.
    New rows become due for the retry loop after ``claim_delay`` seconds."""
    return await fetch_all(
        Q.insert_events,
        {
            "keys": list(keys),
            "for_user_ids": list(for_user_ids),
            "types": list(types),
            "payloads": list(payloads),
            "claim_delay": float(claim_delay),
        },
    )


async def insert_dead_delivery(
    key: str, for_user_id: str, event_type: str, raw_body: bytes, reason: str
) -> int | None:
    """Record a signed delivery that cannot be stored as jsonb: ``raw_body`` as
    received, finished at once as DEAD with ``reason``. Returns the new row's id,
    or None when ``key`` is already recorded (a redelivery)."""
    row = await fetch_one(
        Q.insert_dead_delivery,
        {
            "key": key,
            "for_user_id": for_user_id,
            "event_type": event_type,
            "raw_body": raw_body,
            "reason": reason,
        },
    )
    return None if row is None else int(row["id"])


async def claim_by_ids(ids: Sequence[int], *, with_payload: bool) -> list[Row]:
    """Lock the given pending rows (FOR UPDATE SKIP LOCKED) for this transaction.
    Finished rows and rows another transaction holds are left out."""
    query = Q.claim_by_ids_with_payload if with_payload else Q.claim_by_ids
    return await fetch_all(query, {"ids": list(ids)})


async def claim_due(limit: int) -> list[Row]:
    """Lock up to ``limit`` due pending rows, oldest first, skipping locked ones."""
    return await fetch_all(Q.claim_due, {"limit": limit})


async def mark_finished(
    ids: Sequence[int], outcomes: Sequence[str], errors: Sequence[str]
) -> list[Row]:
    """Finish rows with their outcomes; returns ``id, lag_seconds`` per row."""
    if not ids:
        return []
    return await fetch_all(
        Q.mark_finished, {"ids": list(ids), "outcomes": list(outcomes), "errors": list(errors)}
    )


async def mark_failed(ids: Sequence[int], errors: Sequence[str], delays: Sequence[float]) -> None:
    """Count a failed attempt and make each row due again after its delay."""
    if not ids:
        return
    await execute(Q.mark_failed, {"ids": list(ids), "errors": list(errors), "delays": list(delays)})


async def pending_stats() -> Row:
    """``pending`` rows and the ``oldest_age_seconds`` of the oldest one."""
    row = await fetch_one(Q.pending_stats, {})
    assert row is not None
    return row


async def accounts_by_x_user(x_user_ids: Sequence[str]) -> list[Row]:
    """Connected (not DISCONNECTED) accounts for these X user ids, any merchant."""
    return await fetch_all(Q.accounts_by_x_user, {"x_user_ids": list(x_user_ids)})
