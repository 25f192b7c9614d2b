"""Helpers for the webhook tests: X-shaped payloads, signing, polling, and small
types shared with the fixtures in conftest.py."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row
from starlette.applications import Starlette

from mktx_grpc.webhooks.metrics import WebhookMetrics
from mktx_grpc.webhooks.options import IngestOptions
from mktx_grpc.webhooks.processor import InboxProcessor
from mktx_grpc.x.signatures import webhook_signature

#: Options for tests: quick retries, the rest as in production.
FAST = IngestOptions(
    retry_base=0.05,
    retry_max=0.2,
    echo_grace=0.0,
    echo_retry_delay=0.05,
    retry_poll=0.05,
    max_attempts=5,
)

_ids = itertools.count(1)


def new_x_id() -> str:
    """A fresh snowflake-shaped X id (19 digits, increasing)."""
    return str(1_800_000_000_000_000_000 + (time.time_ns() // 1000) % 10**12 * 1000 + next(_ids))


def now_ms() -> str:
    return str(int(time.time() * 1000))


def user_obj(uid: str, username: str | None = None, name: str | None = None) -> dict[str, Any]:
    username = username or f"user{uid[-6:]}"
    return {
        "id": uid,
        "id_str": uid,
        "name": name or username.title(),
        "screen_name": username,
        "profile_image_url_https": f"https://pbs.twimg.com/profile_images/{uid}/normal.jpg",
        "followers_count": 3,
        "friends_count": 4,
        "verified": False,
        "protected": False,
    }


def dm_event(
    sender: str,
    recipient: str,
    text: str = "hello",
    *,
    event_id: str | None = None,
    ts_ms: str | None = None,
    media: dict[str, Any] | None = None,
    quick_reply: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "text": text,
        "entities": {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []},
    }
    if media is not None:
        data["attachment"] = {"type": "media", "media": media}
    if quick_reply is not None:
        data["quick_reply_response"] = quick_reply
    return {
        "type": "message_create",
        "id": event_id or new_x_id(),
        "created_timestamp": ts_ms or now_ms(),
        "message_create": {
            "target": {"recipient_id": recipient},
            "sender_id": sender,
            "source_app_id": "29000001",
            "message_data": data,
        },
    }


def dm_delivery(for_user_id: str, *events: dict[str, Any]) -> dict[str, Any]:
    ids = set()
    for e in events:
        ids.add(e["message_create"]["sender_id"])
        ids.add(e["message_create"]["target"]["recipient_id"])
    return {
        "for_user_id": for_user_id,
        "direct_message_events": list(events),
        "apps": {"29000001": {"id": "29000001", "name": "app", "url": "https://example.invalid"}},
        "users": {uid: user_obj(uid) for uid in ids},
    }


def sign(secret: str, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-twitter-webhooks-signature": webhook_signature(secret, body),
    }


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def wait_for(
    probe: Callable[[], Awaitable[Any]], *, within: float = 10.0, what: str = "condition"
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail after ``within`` s."""
    give_up = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Sidecar:
    """A running sidecar and a client for it."""

    url: str
    app: Starlette
    secret: str
    http: httpx.AsyncClient

    @property
    def processor(self) -> InboxProcessor:
        p: InboxProcessor = self.app.state.processor
        return p

    @property
    def metrics(self) -> WebhookMetrics:
        m: WebhookMetrics = self.app.state.metrics
        return m

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/twitter"

    async def post(self, payload: Any, *, secret: str | None = None) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else encode(payload)
        return await self.http.post(
            self.webhook_url, content=body, headers=sign(secret or self.secret, body)
        )


class Db:
    """Small query helpers over the test's direct connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def all(self, query: str, *params: Any) -> list[dict[str, Any]]:
        async with self.conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            return await cur.fetchall()

    async def one(self, query: str, *params: Any) -> dict[str, Any] | None:
        rows = await self.all(query, *params)
        return rows[0] if rows else None

    async def value(self, query: str, *params: Any) -> Any:
        row = await self.one(query, *params)
        return None if row is None else next(iter(row.values()))


StartSidecar = Callable[..., Awaitable[Sidecar]]


@dataclass
class Account:
    id: uuid.UUID
    merchant_id: uuid.UUID
    x_user_id: str


ConnectAccount = Callable[..., Awaitable[Account]]
