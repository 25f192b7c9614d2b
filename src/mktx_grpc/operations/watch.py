"""WatchConversations: the merchant's conversation events, live, resumable.

Fed by the outbox (``domain_events``) through the process's LISTEN dispatcher
(``store.live``): a notification only wakes the stream, which then reads the
events from the table in id order, so nothing is skipped. Events are held back
until every older transaction has settled (a lower id may still commit), for at most
``MAX_HOLD_SECONDS``. Each event carries a cursor; a stream resumed from a cursor
continues without gaps (up to ``EVENT_RETENTION``). A HEARTBEAT is sent after
``HEARTBEAT_SECONDS`` of silence. A client that holds up our writes while lagging
more than the limit is cut off with SLOW_CONSUMER and resumes from its cursor.

The stream holds no database connection while it waits on its client: it borrows
one (``use_connection``) for each read.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import grpc
from google.rpc import code_pb2

from mktx.v1 import conversations_pb2

from ..core.context import current_principal
from ..core.db import use_connection
from ..core.errors import DomainError, InvalidArgument, NotFound, QuotaExceeded
from ..deps import Deps
from ..mapping.common import ts
from ..mapping.conversations import (
    KIND_ENUM,
    STATUS_FROM_DB,
    conversation_to_proto,
    message_to_proto,
)
from ..store import Row, live
from ..store import accounts as accounts_store
from ..store import conversations as store

C = conversations_pb2


class CursorExpired(DomainError):
    code = code_pb2.OUT_OF_RANGE
    reason = "CURSOR_EXPIRED"


#: Seconds of silence before WatchConversations sends a HEARTBEAT.
HEARTBEAT_SECONDS = 30.0
#: How long outbox events are kept, so how old a resume cursor may be.
EVENT_RETENTION = timedelta(days=7)
WATCH_BATCH = 500
#: How long an event may wait for older transactions to finish (see the SQL's
#: watch_events_after) before it is delivered regardless.
MAX_HOLD_SECONDS = 2.0
#: A write that waits this long on the client counts as the client being slow.
SLOW_WRITE_SECONDS = 1.0


async def watch_conversations(
    deps: Deps,
    request: C.WatchConversationsRequest,
    context: grpc.aio.ServicerContext,
) -> AsyncIterator[C.ConversationEvent]:
    """WatchConversations' stream (see the module docstring); ``context`` is used
    only to send the initial metadata once the stream is live."""
    merchant = current_principal().merchant_id
    pool = deps.pool
    tokens = deps.page_tokens
    cursor_filters = ["watch", str(merchant)]
    wanted = {t for t in request.event_types if t}
    account_filter = request.account_id or None
    conv_filter = request.conversation_id or None

    async with use_connection(pool):
        if account_filter and await accounts_store.get(merchant, UUID(account_filter)) is None:
            raise NotFound("account", account_filter)
        if conv_filter and await store.get(merchant, UUID(conv_filter)) is None:
            raise NotFound("conversation", conv_filter)

    last_id, last_time = 0, datetime.now(UTC)
    if request.cursor:
        keys = tokens.decode(request.cursor, cursor_filters)
        try:
            if keys is None:
                raise ValueError
            last_id, last_time = int(keys[0]), datetime.fromtimestamp(float(keys[1]), UTC)
        except (ValueError, IndexError, TypeError):
            raise InvalidArgument.single("cursor", "is not a valid cursor") from None
        if last_time < datetime.now(UTC) - EVENT_RETENTION:
            raise CursorExpired(
                "the cursor is older than the event retention; reload with"
                " ListConversations and watch from now"
            )

    def cursor() -> str:
        return tokens.encode([last_id, last_time.timestamp()], cursor_filters)

    sub = await live.dispatcher_for(pool).subscribe(merchant)
    try:
        if not request.cursor:
            async with use_connection(pool):
                last_id = await store.max_event_id(merchant)
        # Initial metadata tells the client the stream is live: every event
        # committed from here on will reach it.
        await context.send_initial_metadata(())
        quiet_since = time.monotonic()
        held_since: float | None = None
        while True:
            sub.clear()
            # Transaction ids are cluster-wide, so an unrelated long transaction
            # also holds events back; after MAX_HOLD_SECONDS they go out anyway.
            force = held_since is not None and (time.monotonic() - held_since >= MAX_HOLD_SECONDS)
            async with use_connection(pool):
                rows, held_back = await store.watch_events_after(
                    merchant, last_id, WATCH_BATCH, settled_only=not force
                )
                out: list[C.ConversationEvent] = []
                cache: dict[str, Row | None] = {}
                for ev in rows:
                    last_id, last_time = int(ev["id"]), ev["created_at"]
                    rendered = await _render_event(
                        merchant, ev, wanted, account_filter, conv_filter, cache
                    )
                    if rendered is not None:
                        rendered.cursor = cursor()
                        out.append(rendered)
            for item in out:
                started = time.monotonic()
                yield item
                quiet_since = time.monotonic()
                # Only a client that holds up our writes is too slow; a fast one
                # catching up on a large burst is not.
                slow = quiet_since - started >= SLOW_WRITE_SECONDS
                if sub.saturated or (slow and sub.lag > sub.limit):
                    raise QuotaExceeded(
                        f"the stream fell more than {sub.limit} events behind;"
                        " resume from the last cursor",
                        reason="SLOW_CONSUMER",
                        retry_after_seconds=1.0,
                    )
            sub.passed(last_id)
            if len(rows) == WATCH_BATCH:
                continue
            if held_back:
                held_since = held_since or time.monotonic()
                await sub.wait(0.05)
                continue
            held_since = None
            remaining = HEARTBEAT_SECONDS - (time.monotonic() - quiet_since)
            if remaining > 0 and await sub.wait(remaining):
                continue
            if time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
                yield C.ConversationEvent(
                    cursor=cursor(),
                    type=C.CONVERSATION_EVENT_TYPE_HEARTBEAT,
                    time=ts(datetime.now(UTC)),
                )
                quiet_since = time.monotonic()
    finally:
        sub.close()


async def _render_event(
    merchant: UUID,
    ev: Row,
    wanted: set[Any],
    account_filter: str | None,
    conv_filter: str | None,
    cache: dict[str, Row | None],
) -> C.ConversationEvent | None:
    kind = KIND_ENUM.get(ev["type"])
    payload = ev["payload"] or {}
    if ev["type"] == "message.sent" and payload.get("origin") == "EXTERNAL":
        kind = C.CONVERSATION_EVENT_TYPE_NEW_MESSAGE  # sent from another X client
    if kind is None or (wanted and kind not in wanted):
        return None
    conv_id = payload.get("conversation_id") or (
        str(ev["aggregate_id"]) if ev["aggregate_id"] else None
    )
    if not conv_id or (conv_filter and conv_id != conv_filter):
        return None
    out = C.ConversationEvent(
        type=kind, time=ts(ev["created_at"]), actor_user_id=payload.get("actor_user_id", "")
    )
    if kind == C.CONVERSATION_EVENT_TYPE_DELETED:
        if account_filter and payload.get("account_id") != account_filter:
            return None
        out.conversation.id = conv_id
        return out
    if conv_id not in cache:
        cache[conv_id] = await store.get(merchant, UUID(conv_id))
    row = cache[conv_id]
    if row is None:
        return None
    if account_filter and str(row["account_id"]) != account_filter:
        return None
    out.conversation.CopyFrom(conversation_to_proto(row))
    if payload.get("message_id"):
        msg = await store.get_message(merchant, UUID(payload["message_id"]))
        if msg is not None:
            out.message.CopyFrom(message_to_proto(msg))
    if kind == C.CONVERSATION_EVENT_TYPE_STATUS_CHANGED:
        out.previous_status = STATUS_FROM_DB.get(payload.get("previous_status", ""), 0)
    return out
