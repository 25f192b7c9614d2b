"""Account persistence (sql/queries/accounts.sql)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg

from ..core.errors import AlreadyExists
from . import Jsonb, Queries, Row, execute, fetch_all, fetch_one

Q = Queries("accounts")


async def insert(merchant_id: UUID, **fields: Any) -> Row:
    """Insert an account. Raises AlreadyExists when the X user is already connected
    (to any merchant) on an account that is not DISCONNECTED."""
    params: dict[str, Any] = {
        "id": uuid4(),
        "merchant_id": merchant_id,
        "username": "",
        "display_name": "",
        "profile_image_url": "",
        "followers_count": 0,
        "status": "ACTIVE",
        "scopes": [],
        "access_token_enc": None,
        "token_secret_enc": None,
        "refresh_token_enc": None,
        "token_expires_at": None,
        "settings": {},
    }
    params.update(fields)
    params["settings"] = Jsonb(params["settings"])
    try:
        row = await fetch_one(Q.insert_account, params)
    except psycopg.errors.UniqueViolation:
        raise AlreadyExists("this X account is already connected") from None
    assert row is not None
    return row


async def get(merchant_id: UUID, account_id: UUID, *, for_update: bool = False) -> Row | None:
    query = Q.get_account_for_update if for_update else Q.get_account
    return await fetch_one(query, {"merchant_id": merchant_id, "id": account_id})


async def list_page(
    merchant_id: UUID, *, status: str | None, after: tuple[datetime, UUID] | None, limit: int
) -> list[Row]:
    return await fetch_all(
        Q.list_accounts,
        {
            "merchant_id": merchant_id,
            "status": status,
            "after_created": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )


async def update_settings(merchant_id: UUID, account_id: UUID, settings: dict[str, Any]) -> Row:
    row = await fetch_one(
        Q.update_account_settings,
        {"merchant_id": merchant_id, "id": account_id, "settings": Jsonb(settings)},
    )
    assert row is not None
    return row


async def disconnect(merchant_id: UUID, account_id: UUID) -> Row:
    row = await fetch_one(Q.disconnect_account, {"merchant_id": merchant_id, "id": account_id})
    assert row is not None
    return row


async def statistics(merchant_id: UUID, account_id: UUID, month_start: datetime) -> Row:
    row = await fetch_one(
        Q.account_statistics,
        {"merchant_id": merchant_id, "id": account_id, "month_start": month_start},
    )
    assert row is not None
    return row


async def find_live_by_x_user(x_user_id: str) -> Row | None:
    """The account (any merchant) holding this X user, locked; None if none is live."""
    return await fetch_one(Q.find_live_by_x_user, {"x_user_id": x_user_id})


async def reconnect(merchant_id: UUID, account_id: UUID, **fields: Any) -> Row:
    row = await fetch_one(
        Q.reconnect_account, {"merchant_id": merchant_id, "id": account_id, **fields}
    )
    assert row is not None
    return row


async def store_refreshed_tokens(merchant_id: UUID, account_id: UUID, **fields: Any) -> Row:
    row = await fetch_one(
        Q.store_refreshed_tokens, {"merchant_id": merchant_id, "id": account_id, **fields}
    )
    assert row is not None
    return row


async def mark_error(merchant_id: UUID, account_id: UUID, reason: str) -> Row | None:
    """Move a live account to ERROR; None when it was not live (already ERROR or gone)."""
    return await fetch_one(
        Q.mark_account_error, {"merchant_id": merchant_id, "id": account_id, "reason": reason}
    )


async def set_webhook(merchant_id: UUID, account_id: UUID, **fields: Any) -> Row:
    row = await fetch_one(
        Q.set_account_webhook, {"merchant_id": merchant_id, "id": account_id, **fields}
    )
    assert row is not None
    return row


async def due_for_refresh(within_seconds: float, limit: int = 100) -> list[Row]:
    return await fetch_all(
        Q.accounts_due_for_refresh, {"within_seconds": within_seconds, "limit": limit}
    )


async def insert_pending_connection(**fields: Any) -> None:
    await execute(Q.insert_pending_connection, fields)


async def claim_pending_connection(merchant_id: UUID, state: str) -> Row | None:
    return await fetch_one(Q.claim_pending_connection, {"merchant_id": merchant_id, "state": state})


async def restore_pending_connection(row: Row) -> None:
    await execute(Q.restore_pending_connection, row)


async def subscribed_page(after_id: UUID, limit: int) -> list[Row]:
    """ACTIVE accounts that claim a webhook subscription, every merchant's, by id
    after ``after_id`` (the webhook verification loop walks them in pages)."""
    return await fetch_all(Q.subscribed_accounts_page, {"after_id": after_id, "limit": limit})


async def mark_webhook_unsubscribed(merchant_id: UUID, account_id: UUID) -> Row | None:
    """Record that X no longer delivers the account's events (webhook or subscription
    gone). None when the account did not claim a subscription."""
    return await fetch_one(
        Q.mark_webhook_unsubscribed, {"merchant_id": merchant_id, "id": account_id}
    )
