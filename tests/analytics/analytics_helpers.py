"""Raw data for the analytics tests, written straight into the test's database with
the timestamps a test needs, with the outbox events the service would write beside
each change (the rollup consumer reads those as it does in production)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from mktx_grpc.core.db import use_connection
from mktx_grpc.store import analytics as store
from mktx_grpc.worker.consumer import drain
from mktx_grpc.worker.rollups import ANALYTICS_ROLLUPS

WEEKDAYS_9_TO_5 = [
    {"day": day, "ranges": [{"start": "09:00", "end": "17:00"}]}
    for day in (
        "DAY_OF_WEEK_MONDAY",
        "DAY_OF_WEEK_TUESDAY",
        "DAY_OF_WEEK_WEDNESDAY",
        "DAY_OF_WEEK_THURSDAY",
        "DAY_OF_WEEK_FRIDAY",
    )
]


def business_hours(tz: str, days: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "business_hours": {
            "enabled": True,
            "schedule": {"time_zone": tz, "days": WEEKDAYS_9_TO_5 if days is None else days},
        }
    }


class World:
    """One merchant's raw data."""

    def __init__(self, db: psycopg.AsyncConnection[Any], merchant: uuid.UUID) -> None:
        self.db = db
        self.merchant = merchant

    async def _one(self, sql: str, *args: Any) -> Any:
        cur = await self.db.execute(sql, args)
        row = await cur.fetchone()
        return None if row is None else row[0]

    async def event(
        self, type_: str, aggregate: uuid.UUID | None, at: datetime, **payload: Any
    ) -> None:
        await self.db.execute(
            "INSERT INTO domain_events (merchant_id, type, aggregate_id, payload, created_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (
                self.merchant,
                type_,
                aggregate,
                json.dumps({k: str(v) for k, v in payload.items()}),
                at,
            ),
        )

    async def set_time_zone(self, tz: str) -> None:
        await self.db.execute(
            "INSERT INTO merchant_settings (merchant_id, time_zone, version) VALUES (%s, %s, 1)"
            " ON CONFLICT (merchant_id) DO UPDATE SET time_zone = excluded.time_zone",
            (self.merchant, tz),
        )

    async def account(self, settings: dict[str, Any] | None = None) -> uuid.UUID:
        return await self._one(  # type: ignore[no-any-return]
            "INSERT INTO accounts (merchant_id, x_user_id, username, auth_method, settings)"
            " VALUES (%s, %s, 'shop', 'OAUTH2', %s) RETURNING id",
            self.merchant,
            str(uuid.uuid4().int)[:18],
            json.dumps(settings or {}),
        )

    async def contact(
        self,
        account: uuid.UUID,
        at: datetime,
        *,
        source: str = "INBOUND_MESSAGE",
        tags: list[str] | None = None,
    ) -> uuid.UUID:
        cid = await self._one(
            "INSERT INTO contacts (merchant_id, account_id, x_user_id, source, tags, created_at,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            self.merchant,
            account,
            str(uuid.uuid4().int)[:18],
            source,
            tags or [],
            at,
            at,
        )
        await self.event("contact.created", cid, at, contact_id=cid, source=source)
        return cid  # type: ignore[no-any-return]

    async def opt_out(self, contact: uuid.UUID, at: datetime) -> None:
        await self.db.execute(
            "UPDATE contacts SET opted_out = true, opted_out_at = %s, updated_at = %s"
            " WHERE id = %s",
            (at, at, contact),
        )
        await self.event("contact.updated", contact, at, contact_id=contact)

    async def conversation(self, account: uuid.UUID, contact: uuid.UUID, at: datetime) -> uuid.UUID:
        conv = await self._one(
            "INSERT INTO conversations (merchant_id, account_id, contact_id, created_at,"
            " updated_at) VALUES (%s, %s, %s, %s, %s) RETURNING id",
            self.merchant,
            account,
            contact,
            at,
            at,
        )
        await self.event("conversation.opened", conv, at, conversation_id=conv, contact_id=contact)
        return conv  # type: ignore[no-any-return]

    async def message(
        self,
        conv: uuid.UUID,
        at: datetime,
        origin: str = "CONTACT",
        *,
        is_from_bot: bool = False,
    ) -> uuid.UUID:
        """A message, with the event ingestion or the send path writes beside it."""
        inbound = origin == "CONTACT"
        contact = await self._one(
            "UPDATE conversations SET last_message_at = %s, updated_at = %s WHERE id = %s"
            " RETURNING contact_id",
            at,
            at,
            conv,
        )
        message = await self._one(
            "INSERT INTO messages (merchant_id, conversation_id, direction, origin, is_from_bot,"
            " text, created_at) VALUES (%s, %s, %s, %s, %s, 'hi', %s) RETURNING id",
            self.merchant,
            conv,
            "INBOUND" if inbound else "OUTBOUND",
            origin,
            is_from_bot,
            at,
        )
        if inbound:
            await self.db.execute(
                "INSERT INTO contact_interactions (merchant_id, contact_id, kind, occurred_at)"
                " VALUES (%s, %s, 'MESSAGE_IN', %s)",
                (self.merchant, contact, at),
            )
            await self.db.execute(
                "UPDATE contacts SET last_interaction_at = %s WHERE id = %s", (at, contact)
            )
        await self.event(
            "message.received" if inbound else "message.created",
            conv,
            at,
            conversation_id=conv,
            contact_id=contact,
            message_id=message,
        )
        return message  # type: ignore[no-any-return]

    async def close(self, conv: uuid.UUID, at: datetime) -> None:
        await self.db.execute(
            "UPDATE conversations SET status = 'CLOSED', closed_at = %s, updated_at = %s"
            " WHERE id = %s",
            (at, at, conv),
        )
        await self.event("conversation.closed", conv, at, conversation_id=conv)

    async def reopen(self, conv: uuid.UUID, at: datetime) -> None:
        await self.db.execute(
            "UPDATE conversations SET status = 'OPEN', closed_at = NULL, updated_at = %s"
            " WHERE id = %s",
            (at, conv),
        )
        await self.event("conversation.reopened", conv, at, conversation_id=conv)

    async def set_pending(self, conv: uuid.UUID, at: datetime) -> None:
        await self.db.execute(
            "UPDATE conversations SET status = 'PENDING', updated_at = %s WHERE id = %s",
            (at, conv),
        )
        await self.event("conversation.pending", conv, at, conversation_id=conv)

    async def assign(self, conv: uuid.UUID, at: datetime, who: str) -> None:
        await self.db.execute(
            "UPDATE conversations SET assignee_user_id = %s, updated_at = %s WHERE id = %s",
            (who, at, conv),
        )
        await self.event(
            "conversation.assigned", conv, at, conversation_id=conv, assignee_user_id=who
        )

    async def escalate(self, conv: uuid.UUID, at: datetime) -> None:
        await self.db.execute(
            "UPDATE conversations SET escalated = true, updated_at = %s WHERE id = %s", (at, conv)
        )
        await self.event("conversation.escalated", conv, at, conversation_id=conv)


async def settle(pool: AsyncConnectionPool) -> None:
    """Let the rollup consumer deliver everything in the outbox."""
    r = await drain(pool, ANALYTICS_ROLLUPS)
    assert r.claimed and r.held_event_id is None and r.backoff_seconds is None, r


async def dump(pool: AsyncConnectionPool, merchant: uuid.UUID) -> dict[str, list[Any]]:
    async with use_connection(pool):
        return await store.dump(merchant)
