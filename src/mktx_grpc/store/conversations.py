"""Conversation and message persistence (sql/queries/conversations.sql)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from ..core.context import current_connection
from ..domain.conversations import InvalidTransition
from . import Jsonb, Queries, Row, execute, fetch_all, fetch_one, ingest
from .coalesce import PointReads

Q = Queries("conversations")


async def get(merchant_id: UUID, conversation_id: UUID) -> Row | None:
    """The conversation with its contact's display facts (``contact_*`` columns)."""
    return await fetch_one(Q.get_conversation, {"merchant_id": merchant_id, "id": conversation_id})


async def lock(merchant_id: UUID, conversation_id: UUID) -> Row | None:
    return await fetch_one(
        Q.get_conversation_for_update, {"merchant_id": merchant_id, "id": conversation_id}
    )


async def other_live(merchant_id: UUID, row: Row) -> Row | None:
    """Another non-CLOSED conversation of the same contact and account, if any."""
    return await fetch_one(
        Q.live_conversation_of_contact,
        {
            "merchant_id": merchant_id,
            "account_id": row["account_id"],
            "contact_id": row["contact_id"],
            "except_id": row["id"],
        },
    )


async def live_or_open(
    merchant_id: UUID, account_id: UUID, contact_id: UUID, x_conversation_id: str
) -> tuple[Row, bool]:
    """The contact's non-CLOSED conversation on the account, opening one if there is
    none. Returns (conversation row, whether it was opened now)."""
    params = {
        "merchant_id": merchant_id,
        "account_id": account_id,
        "contact_id": contact_id,
        "except_id": None,
    }
    for _ in range(3):
        row = await fetch_one(Q.live_conversation_of_contact, params)
        if row is not None:
            return row, False
        row = await fetch_one(
            Q.open_conversation, {**params, "x_conversation_id": x_conversation_id}
        )
        if row is not None:
            return row, True
    raise RuntimeError("could not find or open a conversation")


async def live_or_open_many(
    merchant_id: UUID, account_id: UUID, wanted: Mapping[UUID, str]
) -> dict[UUID, tuple[UUID, bool]]:
    """:func:`live_or_open` for many contacts of one account (``wanted``: contact id ->
    the X conversation id a new conversation gets), in a few statements: the live
    conversations locked in id order, the missing ones opened together. Returns per
    contact (conversation id, whether it was opened now)."""
    out: dict[UUID, tuple[UUID, bool]] = {}
    left = dict(wanted)
    for _ in range(3):
        if not left:
            return out
        keys = list(left)
        cols = {
            "merchant_ids": [merchant_id] * len(keys),
            "account_ids": [account_id] * len(keys),
            "contact_ids": keys,
        }
        for r in await ingest.live_conversations_for_update_batch(**cols):
            out[r["contact_id"]] = (r["id"], False)
            left.pop(r["contact_id"], None)
        if not left:
            return out
        keys = list(left)
        opened = await ingest.open_conversations_batch(
            merchant_ids=[merchant_id] * len(keys),
            account_ids=[account_id] * len(keys),
            contact_ids=keys,
            x_conversation_ids=[left[k] for k in keys],
        )
        for r in opened:
            out[r["contact_id"]] = (r["id"], True)
            left.pop(r["contact_id"], None)
    if left:
        raise RuntimeError("could not find or open a conversation")
    return out


async def list_page(
    merchant_id: UUID,
    *,
    account_id: UUID | None,
    status: str | None,
    assignee: str | None,
    contact_id: UUID | None,
    updated_after: datetime | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Row]:
    async with current_connection().cursor(row_factory=dict_row) as cur:
        await cur.execute(
            Q.list_conversations,
            {
                "merchant_id": merchant_id,
                "account_id": account_id,
                "status": status,
                "assignee": assignee,
                "contact_id": contact_id,
                "updated_after": updated_after,
                "after_time": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit,
            },
            prepare=False,
        )
        return await cur.fetchall()


async def list_messages(
    merchant_id: UUID, conversation_id: UUID, *, after: tuple[datetime, UUID] | None, limit: int
) -> list[Row]:
    return await fetch_all(
        Q.list_messages,
        {
            "merchant_id": merchant_id,
            "conversation_id": conversation_id,
            "after_time": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )


async def get_message(merchant_id: UUID, message_id: UUID) -> Row | None:
    return await fetch_one(Q.get_message, {"merchant_id": merchant_id, "id": message_id})


async def messages_by_request(merchant_id: UUID, request_id: str) -> list[Row]:
    return await fetch_all(
        Q.messages_by_request, {"merchant_id": merchant_id, "request_id": request_id}
    )


async def set_status(
    merchant_id: UUID,
    conversation_id: UUID,
    status: str,
    *,
    snooze_until: datetime | None = None,
    close_reason: str = "",
) -> None:
    """Write a status. A second live conversation for the contact (the one-live index)
    is InvalidTransition."""
    try:
        await execute(
            Q.set_status,
            {
                "merchant_id": merchant_id,
                "id": conversation_id,
                "status": status,
                "snooze_until": snooze_until,
                "close_reason": close_reason,
            },
        )
    except psycopg.errors.UniqueViolation:
        raise InvalidTransition(
            "the contact already has another conversation that is not CLOSED on this account"
        ) from None


async def set_assignee(merchant_id: UUID, conversation_id: UUID, assignee: str) -> None:
    await execute(
        Q.set_assignee, {"merchant_id": merchant_id, "id": conversation_id, "assignee": assignee}
    )


async def mark_read(merchant_id: UUID, conversation: Row) -> int:
    """Mark inbound messages read and reset unread_count (only when something was
    unread, so a repeated call changes nothing); returns messages changed."""
    params = {"merchant_id": merchant_id, "id": conversation["id"]}
    changed = await execute(Q.mark_messages_read, params)
    if changed or conversation["unread_count"]:
        await execute(Q.reset_unread, params)
    return changed


async def insert_outbound(
    merchant_id: UUID,
    conversation_id: UUID,
    *,
    type_: str,
    text: str,
    attachments: list[dict[str, Any]],
    quick_replies: list[dict[str, Any]],
    card_buttons: list[dict[str, Any]],
    sender_user_id: str,
    request_id: str | None,
    origin: str = "AGENT",
    is_from_bot: bool = False,
    flow_id: UUID | None = None,
) -> Row:
    """A PENDING outbound message (``origin`` AGENT unless a ledger sends it for the
    AI or a flow), before X is called; :func:`mark_sent` records X's answer."""
    row = await fetch_one(
        Q.insert_outbound_message,
        {
            "merchant_id": merchant_id,
            "conversation_id": conversation_id,
            "type": type_,
            "text": text,
            "attachments": Jsonb(attachments),
            "quick_replies": Jsonb(quick_replies),
            "card_buttons": Jsonb(card_buttons),
            "sender_user_id": sender_user_id,
            "request_id": request_id,
            "origin": origin,
            "is_from_bot": is_from_bot,
            "flow_id": flow_id,
        },
    )
    assert row is not None
    return row


async def note_outbound(merchant_id: UUID, conversation_id: UUID, preview: str, count: int) -> None:
    await execute(
        Q.note_outbound_in_conversation,
        {"merchant_id": merchant_id, "id": conversation_id, "preview": preview, "count": count},
    )


async def mark_sent(merchant_id: UUID, message_id: UUID, x_event_id: str) -> Row | None:
    return await fetch_one(
        Q.mark_message_sent,
        {"merchant_id": merchant_id, "id": message_id, "x_event_id": x_event_id},
    )


async def mark_failed(merchant_id: UUID, message_id: UUID, reason: str) -> Row | None:
    return await fetch_one(
        Q.mark_message_failed, {"merchant_id": merchant_id, "id": message_id, "reason": reason}
    )


async def set_x_conversation_id(merchant_id: UUID, conversation_id: UUID, value: str) -> None:
    await execute(
        Q.set_x_conversation_id,
        {"merchant_id": merchant_id, "id": conversation_id, "x_conversation_id": value},
    )


async def record_outbound_interaction(merchant_id: UUID, contact_id: UUID, ref: str) -> None:
    await execute(
        Q.record_outbound_interaction,
        {"merchant_id": merchant_id, "contact_id": contact_id, "ref": ref},
    )


async def contact(merchant_id: UUID, contact_id: UUID) -> Row | None:
    return await fetch_one(Q.get_contact, {"merchant_id": merchant_id, "id": contact_id})


async def wake_due_snoozed(limit: int = 200) -> list[Row]:
    return await fetch_all(Q.wake_due_snoozed, {"limit": limit})


async def next_snooze_due() -> datetime | None:
    row = await fetch_one(Q.next_snooze_due, {})
    return None if row is None else row["due"]


async def watch_events_after(
    merchant_id: UUID, after_id: int, limit: int, *, settled_only: bool = True
) -> tuple[list[Row], bool]:
    """Outbox events after ``after_id`` up to the first unsettled one (see
    watch_events_after in the SQL), and whether an unsettled one stopped the batch."""
    rows = await fetch_all(
        Q.watch_events_after, {"merchant_id": merchant_id, "after_id": after_id, "limit": limit}
    )
    if settled_only:
        for i, r in enumerate(rows):
            if not r["settled"]:
                return rows[:i], True
    return rows, False


async def max_event_id(merchant_id: UUID) -> int:
    row = await fetch_one(Q.max_event_id, {"merchant_id": merchant_id})
    return int(row["id"]) if row else 0


async def _get_batch(merchant_id: UUID, ids: Sequence[UUID]) -> list[Row]:
    return await fetch_all(Q.get_conversations, {"merchant_id": merchant_id, "ids": list(ids)})


async def _get_one(merchant_id: UUID, conversation_id: UUID) -> Row | None:
    return await get(merchant_id, conversation_id)


#: Concurrent GetConversation reads, coalesced (store/coalesce.py).
point_reads = PointReads(_get_batch, _get_one)


async def read_one(merchant_id: UUID, conversation_id: UUID) -> Row | None:
    """The conversation as :func:`get` returns it, read in a batch with the concurrent
    reads of the same merchant (autocommit only; inside a transaction, alone)."""
    return await point_reads.get(merchant_id, conversation_id)
