"""The campaign engine's statements on its send ledger (sql/queries/dispatch.sql).

``campaign_recipients`` is the campaigns' send ledger: one row per (campaign,
contact, step), QUEUED -> SENDING (armed, with a lease) -> SENT / FAILED / SKIPPED,
then DELIVERED / READ / REPLIED as the inbox reports back. ``worker/dispatch.py``
runs the algorithm; these functions are its SQL, one per statement, on the current
connection (the caller's ``use_connection`` block). Functions marked cross-merchant
discover work for every merchant and return ``merchant_id`` with each row; every
other one takes ``merchant_id`` and filters on it.

Lock order (see dispatch.sql): ledger rows first, the campaign row (counters) last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from ..domain import conversations
from . import Queries, Row, execute, fetch_all

Q = Queries("dispatch")


@dataclass(frozen=True, slots=True)
class SentRow:
    """A ledger row X accepted: its DM's ids, when X took it, and the text sent (the
    conversation's preview is made from it by ``domain.conversations.preview``, the one
    rule every path uses)."""

    id: int
    contact_id: UUID
    x_event_id: str
    x_conversation_id: str
    sent_at: datetime
    text: str


# ------------------------------------------------------------------ dispatcher


async def campaigns_to_dispatch(limit: int) -> list[Row]:
    """Cross-merchant: RUNNING campaigns not waiting that have claimable rows, with
    ``sent_this_hour`` and ``in_flight`` (SENDING rows) for the hourly cap."""
    return await fetch_all(Q.campaigns_to_dispatch, {"limit": limit})


async def set_waiting(merchant_id: UUID, campaign_id: UUID, until: datetime, reason: str) -> None:
    """A RUNNING campaign waits until ``until``; ``reason`` becomes its status reason."""
    await execute(
        Q.set_waiting,
        {"merchant_id": merchant_id, "id": campaign_id, "until": until, "reason": reason},
    )


async def clear_waiting(merchant_id: UUID, campaign_id: UUID) -> None:
    await execute(Q.clear_waiting, {"merchant_id": merchant_id, "id": campaign_id})


async def claim_candidates(merchant_id: UUID, campaign_id: UUID, limit: int) -> list[Row]:
    """Up to ``limit`` due QUEUED rows of the campaign with their contacts' fields,
    locked for this transaction (rows other dispatchers hold are skipped)."""
    return await fetch_all(
        Q.claim_candidates, {"merchant_id": merchant_id, "campaign_id": campaign_id, "limit": limit}
    )


async def contact_facts(
    merchant_id: UUID,
    account_id: UUID,
    campaign_id: UUID,
    *,
    within: timedelta,
    contact_ids: Sequence[UUID],
) -> dict[UUID, Row]:
    """Per contact: ``recently_messaged`` (a DM from the account within ``within``,
    other than this campaign's) and ``open_conversation`` (one not CLOSED)."""
    rows = await fetch_all(
        Q.contact_facts,
        {
            "merchant_id": merchant_id,
            "account_id": account_id,
            "campaign_id": campaign_id,
            "within": within,
            "contact_ids": list(contact_ids),
        },
    )
    return {r["contact_id"]: r for r in rows}


async def mark_sending(
    merchant_id: UUID, ids: Sequence[int], texts: Sequence[str], lease: timedelta
) -> None:
    """Arm rows: SENDING with their rendered texts, one more attempt, and a lease."""
    await execute(
        Q.mark_sending,
        {"merchant_id": merchant_id, "ids": list(ids), "texts": list(texts), "lease": lease},
    )


async def defer(merchant_id: UUID, ids: Sequence[int], ats: Sequence[datetime]) -> None:
    """QUEUED rows become ready only at their ``ats`` (the contact's window opens)."""
    await execute(Q.defer_rows, {"merchant_id": merchant_id, "ids": list(ids), "ats": list(ats)})


async def settle(merchant_id: UUID, state: str, ids: Sequence[int], reasons: Sequence[str]) -> int:
    """QUEUED or SENDING rows become ``state`` (FAILED or SKIPPED) with their reasons.
    Returns how many did (rows already settled are left alone)."""
    done = await fetch_all(
        Q.settle_rows,
        {"merchant_id": merchant_id, "state": state, "ids": list(ids), "reasons": list(reasons)},
    )
    return len(done)


async def requeue(
    merchant_id: UUID,
    ids: Sequence[int],
    ready_at: datetime,
    reason: str = "",
    *,
    refund: bool = False,
) -> None:
    """SENDING rows known not to have reached X go back to QUEUED, ready at
    ``ready_at``; ``reason`` (shown by ListCampaignRecipients) says what they wait for.
    ``refund``: they were refused before they left, so their attempt is undone."""
    await execute(
        Q.requeue_rows,
        {
            "merchant_id": merchant_id,
            "ids": list(ids),
            "ready_at": ready_at,
            "reason": reason,
            "refund": refund,
        },
    )


async def extend_lease(
    merchant_id: UUID, ids: Sequence[int], until: datetime, reason: str = ""
) -> None:
    """SENDING rows stay their holder's (recovery leaves them alone) until ``until``;
    ``reason`` says what is pending."""
    await execute(
        Q.extend_lease,
        {"merchant_id": merchant_id, "ids": list(ids), "until": until, "reason": reason},
    )


async def lock_in_order(
    merchant_id: UUID, recipient_ids: Sequence[int], contact_ids: Sequence[UUID]
) -> None:
    """Take a recording transaction's row locks first, in one order (ledger rows, then
    contacts, ids ascending), so that two workers recording at once wait for each
    other instead of deadlocking (see the lock order in dispatch.sql)."""
    if recipient_ids:
        await execute(
            Q.lock_recipients, {"merchant_id": merchant_id, "ids": sorted(set(recipient_ids))}
        )
    if contact_ids:
        await execute(
            Q.lock_contacts, {"merchant_id": merchant_id, "ids": sorted(set(contact_ids))}
        )


async def finish_sent(
    merchant_id: UUID, account_id: UUID, campaign_id: UUID, sent: Sequence[SentRow]
) -> list[Row]:
    """Rows X accepted become SENT, each DM an outbound message in the contact's
    conversation (see finish_sent in dispatch.sql). Returns the rows that did
    (``id``, ``contact_id``, ``step``, and their ``message_id``, ``conversation_id``,
    ``x_event_id`` and whether the message was ``inserted`` rather than an echo taken
    over); rows no longer SENDING are left alone."""
    return await fetch_all(
        Q.finish_sent,
        {
            "merchant_id": merchant_id,
            "account_id": account_id,
            "campaign_id": campaign_id,
            "ids": [s.id for s in sent],
            "contact_ids": [s.contact_id for s in sent],
            "x_event_ids": [s.x_event_id for s in sent],
            "x_conversation_ids": [s.x_conversation_id for s in sent],
            "sent_ats": [s.sent_at for s in sent],
            "previews": [conversations.preview(s.text, ()) for s in sent],
        },
    )


async def insert_steps(
    merchant_id: UUID,
    campaign_id: UUID,
    *,
    contact_ids: Sequence[UUID],
    steps: Sequence[int],
    due_ats: Sequence[datetime],
) -> int:
    """Enrol contacts in the next step of a sequence; returns the rows created (a
    step already enrolled is not enrolled again)."""
    added = await fetch_all(
        Q.insert_steps,
        {
            "merchant_id": merchant_id,
            "campaign_id": campaign_id,
            "contact_ids": list(contact_ids),
            "steps": list(steps),
            "due_ats": list(due_ats),
        },
    )
    return len(added)


# ------------------------------------------------------------------ recovery


async def stale_sending(limit: int) -> list[Row]:
    """Cross-merchant: SENDING rows whose lease ran out, locked for this transaction,
    with the contact's X user id, the campaign's account and status."""
    return await fetch_all(Q.stale_sending, {"limit": limit})


async def contact_sent_event_ids(merchant_id: UUID, contact_id: UUID) -> set[str]:
    """X event ids already recorded for the contact in any campaign."""
    rows = await fetch_all(
        Q.contact_sent_event_ids, {"merchant_id": merchant_id, "contact_id": contact_id}
    )
    return {r["x_event_id"] for r in rows}


async def sweep_leftovers() -> list[tuple[UUID, UUID]]:
    """Cross-merchant: QUEUED rows of campaigns that ended while a dispatcher held
    them become SKIPPED; returns ``(merchant_id, campaign_id)`` per row."""
    rows = await fetch_all(Q.sweep_leftovers, {})
    return [(r["merchant_id"], r["campaign_id"]) for r in rows]


# ------------------------------------------------------------------ scheduler


async def due_scheduled(limit: int) -> list[Row]:
    """Cross-merchant: SCHEDULED campaigns whose start time came, locked."""
    return await fetch_all(Q.due_scheduled, {"limit": limit})


async def due_to_end(limit: int) -> list[Row]:
    """Cross-merchant: live campaigns past end_time (``ended``) or RUNNING ones with
    nothing left to send, locked."""
    return await fetch_all(Q.due_to_end, {"limit": limit})


# ------------------------------------------------------------------ inbox events


async def mark_delivered(merchant_id: UUID, message_id: UUID, at: datetime) -> list[UUID]:
    """The SENT row of that message becomes DELIVERED; returns its campaign ids."""
    rows = await fetch_all(
        Q.mark_delivered, {"merchant_id": merchant_id, "at": at, "message_id": message_id}
    )
    return [r["campaign_id"] for r in rows]


async def mark_read(merchant_id: UUID, message_id: UUID, at: datetime) -> list[tuple[UUID, bool]]:
    """SENT/DELIVERED rows of that message become READ; returns per row its campaign
    id and whether it became delivered now too."""
    rows = await fetch_all(
        Q.mark_read, {"merchant_id": merchant_id, "at": at, "message_id": message_id}
    )
    return [(r["campaign_id"], bool(r["newly_delivered"])) for r in rows]


async def mark_replied(merchant_id: UUID, contact_id: UUID, at: datetime) -> list[UUID]:
    """Per campaign, the contact's latest row sent within the attribution window
    becomes REPLIED (once); returns their campaign ids."""
    rows = await fetch_all(
        Q.mark_replied, {"merchant_id": merchant_id, "contact_id": contact_id, "at": at}
    )
    return [r["campaign_id"] for r in rows]


async def stop_on_reply(merchant_id: UUID, contact_id: UUID, at: datetime) -> list[UUID]:
    """Later QUEUED steps of sequences that stop on reply become SKIPPED ("replied");
    returns their campaign ids, one per row."""
    rows = await fetch_all(
        Q.stop_on_reply, {"merchant_id": merchant_id, "contact_id": contact_id, "at": at}
    )
    return [r["campaign_id"] for r in rows]


async def welcome_campaigns(merchant_id: UUID, account_id: UUID) -> list[UUID]:
    """The account's RUNNING welcome campaigns not past their end time."""
    rows = await fetch_all(
        Q.welcome_campaigns, {"merchant_id": merchant_id, "account_id": account_id}
    )
    return [r["id"] for r in rows]
