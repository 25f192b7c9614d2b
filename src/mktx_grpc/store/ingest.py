"""Writes made by webhook ingestion (sql/queries/ingest.sql): contacts from X
events, conversations found or opened, messages appended, interactions, follow
state, delivery and read receipts, and account revocation.

Every function takes ``merchant_id`` and runs on the current connection; the
caller holds the event's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from . import Jsonb, Queries, Row, execute, fetch_all, fetch_one

Q = Queries("ingest")


async def upsert_contact(
    merchant_id: UUID,
    account_id: UUID,
    x_user_id: str,
    *,
    source: str,
    at: datetime,
    username: str = "",
    display_name: str = "",
    profile_image_url: str = "",
) -> tuple[UUID, bool]:
    """Insert or refresh a contact; returns ``(id, created)``. A contact's first
    source is kept; empty profile fields never blank stored ones."""
    row = await fetch_one(
        Q.upsert_contact,
        {
            "merchant_id": merchant_id,
            "account_id": account_id,
            "x_user_id": x_user_id,
            "username": username,
            "display_name": display_name,
            "profile_image_url": profile_image_url,
            "source": source,
            "at": at,
        },
    )
    assert row is not None
    return row["id"], bool(row["created"])


async def get_contact_id(merchant_id: UUID, account_id: UUID, x_user_id: str) -> UUID | None:
    row = await fetch_one(
        Q.get_contact_id,
        {"merchant_id": merchant_id, "account_id": account_id, "x_user_id": x_user_id},
    )
    return None if row is None else row["id"]


async def set_follow_state(
    merchant_id: UUID, contact_id: UUID, *, follows: bool, at: datetime
) -> bool:
    """Record follow/unfollow at ``at``; False when a newer change is already stored."""
    row = await fetch_one(
        Q.set_follow_state,
        {"merchant_id": merchant_id, "id": contact_id, "follows": follows, "at": at},
    )
    return row is not None


async def insert_interaction(
    merchant_id: UUID, contact_id: UUID, kind: str, at: datetime, ref: str = ""
) -> None:
    await execute(
        Q.insert_interaction,
        {"merchant_id": merchant_id, "contact_id": contact_id, "kind": kind, "at": at, "ref": ref},
    )


def _conv_params(merchant_id: UUID, account_id: UUID, contact_id: UUID) -> dict[str, Any]:
    return {"merchant_id": merchant_id, "account_id": account_id, "contact_id": contact_id}


async def live_conversation_for_update(
    merchant_id: UUID, account_id: UUID, contact_id: UUID
) -> Row | None:
    """The contact's conversation that is not CLOSED (``id, status``), locked."""
    return await fetch_one(
        Q.live_conversation_for_update, _conv_params(merchant_id, account_id, contact_id)
    )


async def latest_closed_conversation_for_update(
    merchant_id: UUID, account_id: UUID, contact_id: UUID
) -> Row | None:
    """The most recently closed conversation (``id, closed_at``), locked."""
    return await fetch_one(
        Q.latest_closed_conversation_for_update, _conv_params(merchant_id, account_id, contact_id)
    )


async def latest_conversation(merchant_id: UUID, account_id: UUID, contact_id: UUID) -> Row | None:
    """The live conversation if any, else the most recently active one."""
    return await fetch_one(Q.latest_conversation, _conv_params(merchant_id, account_id, contact_id))


async def open_conversation(
    merchant_id: UUID, account_id: UUID, contact_id: UUID, x_conversation_id: str
) -> UUID | None:
    """Open a conversation; None when a live one exists already (conversations_one_live)."""
    row = await fetch_one(
        Q.open_conversation,
        {
            **_conv_params(merchant_id, account_id, contact_id),
            "x_conversation_id": x_conversation_id,
        },
    )
    return None if row is None else row["id"]


async def reopen_conversation(merchant_id: UUID, conversation_id: UUID) -> bool:
    """CLOSED → OPEN. Raises psycopg UniqueViolation if another live one exists."""
    n = await execute(Q.reopen_conversation, {"merchant_id": merchant_id, "id": conversation_id})
    return n == 1


async def record_message_on_conversation(
    merchant_id: UUID,
    conversation_id: UUID,
    *,
    inbound: bool,
    at: datetime,
    preview: str,
    x_conversation_id: str,
) -> None:
    """Update preview, last_message_at and counters; an inbound message also wakes
    the conversation (OPEN, snooze cleared) and counts as unread."""
    await execute(
        Q.record_inbound_message if inbound else Q.record_outbound_message,
        {
            "merchant_id": merchant_id,
            "id": conversation_id,
            "at": at,
            "preview": preview,
            "x_conversation_id": x_conversation_id,
        },
    )


async def clear_unread(merchant_id: UUID, account_id: UUID, contact_id: UUID) -> list[UUID]:
    rows = await fetch_all(Q.clear_unread, _conv_params(merchant_id, account_id, contact_id))
    return [r["id"] for r in rows]


async def insert_message(
    merchant_id: UUID,
    conversation_id: UUID,
    *,
    direction: str,
    type_: str,
    text: str,
    attachments: list[dict[str, Any]],
    sender_user_id: str,
    x_event_id: str,
    origin: str,
    quick_reply_metadata: str,
    at: datetime,
) -> UUID | None:
    """Append a DELIVERED message; None when its X event id is already stored."""
    row = await fetch_one(
        Q.insert_message,
        {
            "merchant_id": merchant_id,
            "conversation_id": conversation_id,
            "direction": direction,
            "type": type_,
            "text": text,
            "attachments": Jsonb(attachments),
            "sender_user_id": sender_user_id,
            "x_event_id": x_event_id,
            "origin": origin,
            "quick_reply_metadata": quick_reply_metadata,
            "at": at,
        },
    )
    return None if row is None else row["id"]


async def mark_delivered(merchant_id: UUID, x_event_id: str) -> Row | None:
    """Mark our outbound message with this X event id DELIVERED (READ/FAILED kept).
    Returns ``id, conversation_id, delivery_state, changed`` or None if unknown."""
    return await fetch_one(Q.mark_delivered, {"merchant_id": merchant_id, "x_event_id": x_event_id})


async def mark_read_up_to(
    merchant_id: UUID, account_id: UUID, contact_id: UUID, last_read_event_id: str
) -> list[Row]:
    """Mark the contact's unread outbound messages up to the X event id READ;
    returns ``id, conversation_id`` of each."""
    return await fetch_all(
        Q.mark_read_up_to,
        {
            **_conv_params(merchant_id, account_id, contact_id),
            "last_read_event_id": last_read_event_id,
        },
    )


async def revoke_account(merchant_id: UUID, account_id: UUID, reason: str) -> bool:
    row = await fetch_one(
        Q.revoke_account, {"merchant_id": merchant_id, "id": account_id, "reason": reason}
    )
    return row is not None


# ------------------------------------------------------------------ batched inbound DMs
# Parallel-array statements for a run of plain inbound DMs; each takes the columns
# named in sql/queries/ingest.sql as keyword lists.


async def upsert_contacts_batch(**columns: list[Any]) -> list[Row]:
    """Upsert distinct contacts (source INBOUND_MESSAGE); returns ``id, account_id,
    x_user_id, created`` per contact."""
    return await fetch_all(Q.upsert_contacts_batch, columns)


async def live_conversations_for_update_batch(**columns: list[Any]) -> list[Row]:
    return await fetch_all(Q.live_conversations_for_update_batch, columns)


async def latest_closed_conversations_batch(**columns: list[Any]) -> list[Row]:
    return await fetch_all(Q.latest_closed_conversations_batch, columns)


async def reopen_conversations_batch(**columns: list[Any]) -> list[Row]:
    return await fetch_all(Q.reopen_conversations_batch, columns)


async def open_conversations_batch(**columns: list[Any]) -> list[Row]:
    return await fetch_all(Q.open_conversations_batch, columns)


async def insert_inbound_messages_batch(**columns: list[Any]) -> list[Row]:
    """Insert inbound messages; returns the ids inserted (known X event ids insert
    nothing)."""
    return await fetch_all(Q.insert_inbound_messages_batch, columns)


async def record_inbound_messages_batch(**columns: list[Any]) -> None:
    await execute(Q.record_inbound_messages_batch, columns)


async def insert_interactions_batch(**columns: list[Any]) -> None:
    await execute(Q.insert_interactions_batch, columns)
