"""Processing inbox events into contacts, conversations, messages and domain events.

Two paths process ``webhook_inbox`` rows, with the same code:

* the sidecar's :class:`InboxProcessor`, fed in memory right after a delivery is
  committed (so the 200 is not delayed by processing); and
* :func:`retry_webhook_inbox`, a worker loop (``mktx_grpc.worker.LOOPS``) that
  claims due rows with ``FOR UPDATE SKIP LOCKED``: failed attempts after their
  back-off, and rows the sidecar never got to (crash, queue overflow) once
  ``claim_delay`` has passed since receipt.

A batch runs in one transaction: the rows are locked, each event is applied inside
its own savepoint (so an event is applied entirely or not at all, and one bad
event does not spoil the others), and every row is finished or rescheduled in the
same transaction. Nothing is marked processed unless its changes commit with it.

Outcomes (``webhook_inbox.outcome``): PROCESSED; IGNORED (no connected account for
``for_user_id``, or nothing for us to do: the account's own follows and posts, a
post that does not mention it); DUPLICATE (the message was already stored); DEAD
(malformed, or still failing after ``max_attempts``). Anything else raised is a
failed attempt, retried with exponential back-off.

Conversation rule (issue 4 §3, "choose and document"): an inbound message goes to
the contact's live (not CLOSED) conversation, waking it if SNOOZED or PENDING. If
there is none, the most recently closed conversation is reopened when it was
closed less than ``reopen_window`` (default 24 h) before the message was sent;
otherwise a new conversation is opened. A reply within a day continues the same
thread for the agent; a customer coming back later starts a fresh one, so reports
per conversation stay meaningful.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from psycopg_pool import AsyncConnectionPool

from ..core.db import savepoint, use_connection
from ..deps import Deps
from ..store import Row
from ..store import inbox as inbox_store
from ..store import ingest as store
from ..store.events import append_event
from .events import DM, FOLLOW, READ, TWEET, USER_EVENT, InboxEvent
from .metrics import WebhookMetrics

__all__ = [
    "DEFAULT_METRICS",
    "InboxProcessor",
    "IngestOptions",
    "apply_event",
    "make_inbox_retry_loop",
    "process_due",
    "process_ids",
    "retry_webhook_inbox",
]

log = logging.getLogger(__name__)

PROCESSED, IGNORED, DUPLICATE, DEAD = "PROCESSED", "IGNORED", "DUPLICATE", "DEAD"

#: Counters shared by the sidecar and an in-process retry loop, so ``/metrics``
#: shows both.
DEFAULT_METRICS = WebhookMetrics()


@dataclass(frozen=True)
class IngestOptions:
    """Tunables of the sidecar and ingestion. :meth:`from_settings` reads them from
    ``Settings`` attributes named ``webhook_<field>`` when present (see the field
    comments for names); otherwise the defaults apply."""

    #: Largest accepted delivery body (``webhook_max_body_bytes``).
    max_body_bytes: int = 1_048_576
    #: A CLOSED conversation closed less than this many seconds before an inbound
    #: message is reopened; otherwise a new one opens (``webhook_reopen_window``).
    reopen_window: float = 86_400.0
    #: In-process processing workers; a contact's events always go to the same one
    #: (``webhook_workers``).
    workers: int = 2
    #: Most events applied in one transaction (``webhook_batch_size``).
    batch_size: int = 200
    #: Seconds after receipt before the retry loop may take a row the sidecar has
    #: not finished (``webhook_claim_delay``).
    claim_delay: float = 30.0
    #: Back-off: ``retry_base * 2**(attempt-1)`` seconds, capped at ``retry_max``,
    #: ±20 % jitter (``webhook_retry_base``, ``webhook_retry_max``).
    retry_base: float = 5.0
    retry_max: float = 3_600.0
    #: Attempts before a failing event is marked DEAD (``webhook_max_attempts``).
    max_attempts: int = 12
    #: How long an echo of an outbound DM may wait for the send path to store the
    #: message with its X event id before it is recorded as sent from another
    #: client (``webhook_echo_grace``), and how often it is retried meanwhile
    #: (``webhook_echo_retry_delay``).
    echo_grace: float = 30.0
    echo_retry_delay: float = 1.0
    #: Seconds the retry loop sleeps when it found less than a full batch
    #: (``webhook_retry_poll``).
    retry_poll: float = 1.0
    #: Events queued in memory before new ones are left to the retry loop
    #: (``webhook_queue_limit``).
    queue_limit: int = 50_000
    #: Retry failed events in the sidecar process too (after their back-off),
    #: besides the retry loop (``webhook_inline_retries``).
    inline_retries: bool = True
    #: Apply runs of plain inbound DMs with set-based statements (falling back to
    #: one event at a time on any surprise); off applies every event singly
    #: (``webhook_set_based_dms``).
    set_based_dms: bool = True

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> IngestOptions:
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            attr = f"webhook_{name}"
            if hasattr(settings, attr):
                values[name] = getattr(settings, attr)
        values.update(overrides)
        return cls(**values)

    def backoff(self, attempt: int) -> float:
        delay = min(self.retry_max, self.retry_base * 2.0 ** max(0, attempt - 1))
        return delay * random.uniform(0.8, 1.2)


# ------------------------------------------------------------------ outcomes


class MalformedEvent(Exception):
    """The event can never be applied (missing or invalid fields): DEAD at once."""


class DuplicateEvent(Exception):
    """The change is already recorded: the event's savepoint rolls back, DUPLICATE."""


class RetryLater(Exception):
    """A transient condition with its own retry delay."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass(frozen=True, slots=True)
class Account:
    id: UUID
    merchant_id: UUID
    x_user_id: str
    status: str


@dataclass(frozen=True, slots=True)
class _Ctx:
    account: Account
    event: dict[str, Any]
    users: Mapping[str, Any]
    received_at: datetime
    options: IngestOptions

    @property
    def merchant_id(self) -> UUID:
        return self.account.merchant_id


# ------------------------------------------------------------------ helpers


def _s(value: Any) -> str:
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    return str(value)


def _ms_time(value: Any, default: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(int(str(value)) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return default


def _profile(user: Any) -> dict[str, str]:
    """Contact profile fields from a v1 user object (users map, follow, tweet)."""
    if not isinstance(user, dict):
        return {}
    return {
        "username": _s(user.get("screen_name") or user.get("username")),
        "display_name": _s(user.get("name")),
        "profile_image_url": _s(
            user.get("profile_image_url_https") or user.get("profile_image_url")
        ),
    }


def _user_id(user: Any) -> str:
    if not isinstance(user, dict):
        return ""
    return _s(user.get("id_str")) or _s(user.get("id"))


def _x_conversation_id(a: str, b: str) -> str:
    try:
        lo, hi = sorted((a, b), key=int)
    except ValueError:
        lo, hi = sorted((a, b))
    return f"{lo}-{hi}"


def _ids(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, UUID) else v) for k, v in payload.items()}


async def _emit(ctx: _Ctx, type_: str, aggregate_id: UUID | None, **payload: Any) -> None:
    await append_event(
        ctx.merchant_id, type_, aggregate_id, _ids({"account_id": ctx.account.id, **payload})
    )


async def _upsert_contact(ctx: _Ctx, x_user_id: str, user: Any, source: str, at: datetime) -> UUID:
    contact_id, created = await store.upsert_contact(
        ctx.merchant_id, ctx.account.id, x_user_id, source=source, at=at, **_profile(user)
    )
    if created:
        await _emit(
            ctx,
            "contact.created",
            contact_id,
            contact_id=contact_id,
            x_user_id=x_user_id,
            source=source,
        )
    return contact_id


# ------------------------------------------------------------------ DMs


def _message_content(data: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]], str]:
    """(type, text, attachments, quick_reply_metadata) of a DM's ``message_data``."""
    text = _s(data.get("text"))
    attachments: list[dict[str, Any]] = []
    att = data.get("attachment")
    if isinstance(att, dict) and isinstance(att.get("media"), dict):
        media = att["media"]
        attachments.append(
            {
                "type": _s(att.get("type")) or "media",
                "media_id": _s(media.get("id_str")) or _s(media.get("id")),
                "media_type": _s(media.get("type")),
                "url": _s(media.get("media_url_https") or media.get("media_url")),
            }
        )
    qr = data.get("quick_reply_response")
    qr_metadata = _s(qr.get("metadata")) if isinstance(qr, dict) else ""
    type_ = "IMAGE" if attachments else "TEXT"
    return type_, text, attachments, qr_metadata


def _preview(text: str, attachments: Sequence[dict[str, Any]]) -> str:
    if text:
        return text if len(text) <= 200 else text[:199] + "…"
    return "[media]" if attachments else ""


async def _find_or_open_conversation(
    ctx: _Ctx, contact_id: UUID, at: datetime, x_conv: str
) -> UUID:
    """The conversation an inbound message joins, waking or reopening it as the
    module docstring describes; emits conversation.* events for status changes."""
    m, a = ctx.merchant_id, ctx.account.id
    live = await store.live_conversation_for_update(m, a, contact_id)
    if live is not None:
        if live["status"] in ("SNOOZED", "PENDING"):
            await _emit(
                ctx,
                "conversation.woken",
                live["id"],
                conversation_id=live["id"],
                contact_id=contact_id,
                previous_status=live["status"],
                status="OPEN",
            )
        return UUID(str(live["id"]))
    closed = await store.latest_closed_conversation_for_update(m, a, contact_id)
    window = timedelta(seconds=ctx.options.reopen_window)
    if closed is not None and closed["closed_at"] is not None and at - closed["closed_at"] < window:
        await store.reopen_conversation(m, closed["id"])
        await _emit(
            ctx,
            "conversation.reopened",
            closed["id"],
            conversation_id=closed["id"],
            contact_id=contact_id,
            previous_status="CLOSED",
            status="OPEN",
        )
        return UUID(str(closed["id"]))
    conv_id = await store.open_conversation(m, a, contact_id, x_conv)
    if conv_id is None:  # opened meanwhile by a concurrent transaction
        live = await store.live_conversation_for_update(m, a, contact_id)
        if live is None:
            raise RuntimeError("conversation vanished while opening it")
        return UUID(str(live["id"]))
    await _emit(
        ctx,
        "conversation.opened",
        conv_id,
        conversation_id=conv_id,
        contact_id=contact_id,
        status="OPEN",
    )
    return conv_id


async def _handle_dm(ctx: _Ctx) -> tuple[str, str]:
    ev = ctx.event
    mc = ev.get("message_create")
    event_id = _s(ev.get("id"))
    if not isinstance(mc, dict) or not event_id:
        raise MalformedEvent("direct message event without id or message_create")
    sender = _s(mc.get("sender_id"))
    target = mc.get("target")
    recipient = _s(target.get("recipient_id")) if isinstance(target, dict) else ""
    if not sender or not recipient:
        raise MalformedEvent("direct message event without sender_id or recipient_id")
    data = mc.get("message_data")
    data = data if isinstance(data, dict) else {}
    at = _ms_time(ev.get("created_timestamp"), ctx.received_at)
    me = ctx.account.x_user_id
    if sender == me:
        return await _handle_echo(ctx, event_id, recipient, data, at)
    if recipient != me:
        return IGNORED, "direct message neither from nor to the account"

    type_, text, attachments, qr_metadata = _message_content(data)
    contact_id = await _upsert_contact(ctx, sender, ctx.users.get(sender), "INBOUND_MESSAGE", at)
    x_conv = _x_conversation_id(sender, recipient)
    conv_id = await _find_or_open_conversation(ctx, contact_id, at, x_conv)
    message_id = await store.insert_message(
        ctx.merchant_id,
        conv_id,
        direction="INBOUND",
        type_=type_,
        text=text,
        attachments=attachments,
        sender_user_id=sender,
        x_event_id=event_id,
        origin="CONTACT",
        quick_reply_metadata=qr_metadata,
        at=at,
    )
    if message_id is None:
        raise DuplicateEvent(f"message {event_id} already stored")
    await store.record_message_on_conversation(
        ctx.merchant_id,
        conv_id,
        inbound=True,
        at=at,
        preview=_preview(text, attachments),
        x_conversation_id=x_conv,
    )
    await store.insert_interaction(ctx.merchant_id, contact_id, "MESSAGE_IN", at, event_id)
    await _emit(
        ctx,
        "message.received",
        conv_id,
        message_id=message_id,
        conversation_id=conv_id,
        contact_id=contact_id,
        direction="INBOUND",
        status="DELIVERED",
        x_event_id=event_id,
    )
    return PROCESSED, ""


async def _handle_echo(
    ctx: _Ctx, event_id: str, recipient: str, data: dict[str, Any], at: datetime
) -> tuple[str, str]:
    """Our account's own DM, delivered back: mark the stored message DELIVERED, or
    (once ``echo_grace`` has passed without the send path storing it) record it as
    sent from another client."""
    row = await store.mark_delivered(ctx.merchant_id, event_id)
    if row is not None:
        if not row["changed"]:
            return DUPLICATE, "already delivered"
        await _emit(
            ctx,
            "message.delivered",
            row["conversation_id"],
            message_id=row["id"],
            conversation_id=row["conversation_id"],
            status=row["delivery_state"],
            x_event_id=event_id,
        )
        return PROCESSED, ""
    age = (datetime.now(UTC) - ctx.received_at).total_seconds()
    if age < ctx.options.echo_grace:
        # The send path stores the X event id after X answers; the echo can overtake it.
        raise RetryLater("echo of an outbound DM not matched yet", ctx.options.echo_retry_delay)

    type_, text, attachments, qr_metadata = _message_content(data)
    contact_id = await _upsert_contact(ctx, recipient, ctx.users.get(recipient), "MANUAL", at)
    m, a = ctx.merchant_id, ctx.account.id
    x_conv = _x_conversation_id(ctx.account.x_user_id, recipient)
    conv = await store.latest_conversation(m, a, contact_id)
    if conv is not None:
        conv_id = UUID(str(conv["id"]))
    else:
        opened = await store.open_conversation(m, a, contact_id, x_conv)
        if opened is None:
            raise RuntimeError("conversation appeared while opening it")
        conv_id = opened
        await _emit(
            ctx,
            "conversation.opened",
            conv_id,
            conversation_id=conv_id,
            contact_id=contact_id,
            status="OPEN",
        )
    message_id = await store.insert_message(
        m,
        conv_id,
        direction="OUTBOUND",
        type_=type_,
        text=text,
        attachments=attachments,
        sender_user_id=ctx.account.x_user_id,
        x_event_id=event_id,
        origin="EXTERNAL",
        quick_reply_metadata=qr_metadata,
        at=at,
    )
    if message_id is None:
        raise DuplicateEvent(f"message {event_id} already stored")
    await store.record_message_on_conversation(
        m,
        conv_id,
        inbound=False,
        at=at,
        preview=_preview(text, attachments),
        x_conversation_id=x_conv,
    )
    await store.insert_interaction(m, contact_id, "MESSAGE_OUT", at, event_id)
    await _emit(
        ctx,
        "message.sent",
        conv_id,
        message_id=message_id,
        conversation_id=conv_id,
        contact_id=contact_id,
        direction="OUTBOUND",
        origin="EXTERNAL",
        status="DELIVERED",
        x_event_id=event_id,
    )
    return PROCESSED, "sent from another client"


# ------------------------------------------------------------------ other kinds


async def _handle_read(ctx: _Ctx) -> tuple[str, str]:
    ev = ctx.event
    reader = _s(ev.get("sender_id"))
    last = _s(ev.get("last_read_event_id"))
    target = ev.get("target")
    other = _s(target.get("recipient_id")) if isinstance(target, dict) else ""
    if not reader or not last.isdigit() or len(last) > 19:
        raise MalformedEvent("read event without sender_id or a numeric last_read_event_id")
    m, a = ctx.merchant_id, ctx.account.id
    if reader == ctx.account.x_user_id:
        # The account read the contact's messages, perhaps in another X client.
        contact_id = await store.get_contact_id(m, a, other) if other else None
        if contact_id is None:
            return IGNORED, "read by the account in an unknown conversation"
        for conv_id in await store.clear_unread(m, a, contact_id):
            await _emit(
                ctx,
                "conversation.read",
                conv_id,
                conversation_id=conv_id,
                contact_id=contact_id,
                unread_count=0,
            )
        return PROCESSED, ""
    contact_id = await store.get_contact_id(m, a, reader)
    if contact_id is None:
        return IGNORED, "read receipt from an unknown contact"
    for row in await store.mark_read_up_to(m, a, contact_id, last):
        await _emit(
            ctx,
            "message.read",
            row["conversation_id"],
            message_id=row["id"],
            conversation_id=row["conversation_id"],
            contact_id=contact_id,
            status="READ",
        )
    return PROCESSED, ""


async def _handle_follow(ctx: _Ctx) -> tuple[str, str]:
    ev = ctx.event
    kind = _s(ev.get("type"))
    source, target = ev.get("source"), ev.get("target")
    src, tgt = _user_id(source), _user_id(target)
    if kind not in ("follow", "unfollow") or not src or not tgt:
        raise MalformedEvent("follow event without type, source or target")
    if tgt != ctx.account.x_user_id:
        return IGNORED, "the account's own follow activity"
    at = _ms_time(ev.get("created_timestamp"), ctx.received_at)
    follows = kind == "follow"
    contact_id = await _upsert_contact(ctx, src, source, "NEW_FOLLOWER", at)
    applied = await store.set_follow_state(ctx.merchant_id, contact_id, follows=follows, at=at)
    await store.insert_interaction(
        ctx.merchant_id, contact_id, "FOLLOW" if follows else "UNFOLLOW", at
    )
    await _emit(
        ctx,
        "contact.followed" if follows else "contact.unfollowed",
        contact_id,
        contact_id=contact_id,
        follows_account=follows,
        applied=applied,
    )
    return PROCESSED, "" if applied else "older than the recorded follow state"


async def _handle_tweet(ctx: _Ctx) -> tuple[str, str]:
    tweet = ctx.event
    tweet_id = _s(tweet.get("id_str")) or _s(tweet.get("id"))
    author = tweet.get("user")
    author_id = _user_id(author)
    if not tweet_id or not author_id:
        raise MalformedEvent("tweet event without id or user")
    me = ctx.account.x_user_id
    if author_id == me:
        return IGNORED, "the account's own post"
    if isinstance(tweet.get("retweeted_status"), dict):
        return IGNORED, "a repost, not a mention"
    entities = tweet.get("entities")
    mentions = entities.get("user_mentions") if isinstance(entities, dict) else None
    mentioned = any(_user_id(u) == me for u in mentions or [] if isinstance(u, dict))
    if not mentioned and _s(tweet.get("in_reply_to_user_id_str")) != me:
        return IGNORED, "does not mention the account"
    at = _ms_time(tweet.get("timestamp_ms"), ctx.received_at)
    contact_id = await _upsert_contact(ctx, author_id, author, "MENTION", at)
    await store.insert_interaction(ctx.merchant_id, contact_id, "MENTION", at, tweet_id)
    await _emit(
        ctx,
        "contact.mentioned",
        contact_id,
        contact_id=contact_id,
        tweet_id=tweet_id,
        text=_s(tweet.get("text")),
    )
    return PROCESSED, ""


async def _handle_user_event(ctx: _Ctx) -> tuple[str, str]:
    revoke = ctx.event.get("revoke")
    if not isinstance(revoke, dict):
        return IGNORED, "user event other than revoke"
    when = _s(revoke.get("date_time")) or ctx.received_at.isoformat()
    reason = f"access revoked by the user on X at {when}"
    if not await store.revoke_account(ctx.merchant_id, ctx.account.id, reason):
        return IGNORED, "account already disconnected"
    await _emit(ctx, "account.revoked", ctx.account.id, status="ERROR", reason=reason)
    return PROCESSED, ""


_HANDLERS: dict[str, Callable[[_Ctx], Awaitable[tuple[str, str]]]] = {
    DM: _handle_dm,
    READ: _handle_read,
    FOLLOW: _handle_follow,
    TWEET: _handle_tweet,
    USER_EVENT: _handle_user_event,
}


async def apply_event(
    account: Account | None,
    payload: Mapping[str, Any],
    received_at: datetime,
    options: IngestOptions,
) -> tuple[str, str]:
    """Apply one inbox payload on the current connection (inside the caller's
    transaction); returns ``(outcome, note)``.

    Raises MalformedEvent, DuplicateEvent, RetryLater, or whatever the database
    raises; the caller rolls the event back and records the outcome."""
    if account is None:
        return IGNORED, "no connected account for for_user_id"
    handler = _HANDLERS.get(_s(payload.get("type")))
    event = payload.get("event")
    if handler is None or not isinstance(event, dict):
        raise MalformedEvent(f"unknown inbox event type {payload.get('type')!r}")
    users = payload.get("users")
    ctx = _Ctx(account, event, users if isinstance(users, dict) else {}, received_at, options)
    return await handler(ctx)


# ------------------------------------------------------------------ batched DMs


class _FastPathMiss(Exception):
    """The run met something the set-based path does not decide (a duplicate, a
    race on a conversation): roll it back and apply the events one by one."""


@dataclass(frozen=True, slots=True)
class _InboundDm:
    account: Account
    event_id: str
    sender: str
    x_conv: str
    at: datetime
    type_: str
    text: str
    attachments: list[dict[str, Any]]
    qr_metadata: str
    profile: dict[str, str]


def _plain_inbound_dm(
    account: Account | None, payload: Mapping[str, Any], received_at: datetime
) -> _InboundDm | None:
    """The event as an inbound DM the set-based path can take, or None (echoes,
    other kinds, unknown accounts and malformed events take the per-event path)."""
    if account is None or payload.get("type") != DM:
        return None
    ev = payload.get("event")
    if not isinstance(ev, dict):
        return None
    mc = ev.get("message_create")
    event_id = _s(ev.get("id"))
    if not isinstance(mc, dict) or not event_id:
        return None
    sender = _s(mc.get("sender_id"))
    target = mc.get("target")
    recipient = _s(target.get("recipient_id")) if isinstance(target, dict) else ""
    me = account.x_user_id
    if not sender or sender == me or recipient != me:
        return None
    data = mc.get("message_data")
    type_, text, attachments, qr = _message_content(data if isinstance(data, dict) else {})
    users = payload.get("users")
    user = users.get(sender) if isinstance(users, dict) else None
    return _InboundDm(
        account,
        event_id,
        sender,
        _x_conversation_id(sender, recipient),
        _ms_time(ev.get("created_timestamp"), received_at),
        type_,
        text,
        attachments,
        qr,
        _profile(user),
    )


async def _apply_dm_run(dms: Sequence[_InboundDm], options: IngestOptions) -> None:
    """Apply plain inbound DMs with a few set-based statements, with exactly the
    effects of applying them one by one (contacts, conversations found, woken,
    reopened or opened, messages, counters, interactions, domain events in event
    order). Raises _FastPathMiss when that cannot be guaranteed."""
    # Contacts: one row per (account, sender), widened over the run.
    contacts: dict[tuple[UUID, str], dict[str, Any]] = {}
    for d in dms:
        c = contacts.setdefault(
            (d.account.id, d.sender),
            {
                "account": d.account,
                "first": d.at,
                "last": d.at,
                "profile": d.profile,
                "x_conv": d.x_conv,
            },
        )
        c["first"], c["last"] = min(c["first"], d.at), max(c["last"], d.at)
        if d.at >= c["last"]:
            c["profile"] = d.profile or c["profile"]
    keys = sorted(contacts, key=lambda k: (str(k[0]), k[1]))  # a stable lock order
    accts = [contacts[k]["account"] for k in keys]
    rows = await store.upsert_contacts_batch(
        merchant_ids=[a.merchant_id for a in accts],
        account_ids=[a.id for a in accts],
        x_user_ids=[k[1] for k in keys],
        usernames=[contacts[k]["profile"].get("username", "") for k in keys],
        names=[contacts[k]["profile"].get("display_name", "") for k in keys],
        images=[contacts[k]["profile"].get("profile_image_url", "") for k in keys],
        first_ats=[contacts[k]["first"] for k in keys],
        last_ats=[contacts[k]["last"] for k in keys],
    )
    for r in rows:
        c = contacts[(r["account_id"], r["x_user_id"])]
        c["id"], c["created"] = r["id"], bool(r["created"])
    if len(rows) != len(keys):
        raise _FastPathMiss("contact upsert mismatch")

    # Conversations: the live one (woken if snoozed or pending), else reopened or new.
    by_contact = {contacts[k]["id"]: contacts[k] for k in keys}
    cols = {
        "merchant_ids": [a.merchant_id for a in accts],
        "account_ids": [a.id for a in accts],
        "contact_ids": [contacts[k]["id"] for k in keys],
    }
    for r in await store.live_conversations_for_update_batch(**cols):
        c = by_contact[r["contact_id"]]
        c["conv"], c["conv_event"] = r["id"], None
        if r["status"] in ("SNOOZED", "PENDING"):
            c["conv_event"] = ("conversation.woken", r["status"])
    missing = [c for c in by_contact.values() if "conv" not in c]
    known = [c for c in missing if not c["created"]]
    closed: dict[UUID, Row] = {}
    if known:
        for r in await store.latest_closed_conversations_batch(
            merchant_ids=[c["account"].merchant_id for c in known],
            account_ids=[c["account"].id for c in known],
            contact_ids=[c["id"] for c in known],
        ):
            closed[r["contact_id"]] = r
    window = timedelta(seconds=options.reopen_window)
    reopen, fresh = [], []
    for c in missing:
        old = closed.get(c["id"])
        if (
            old is not None
            and old["closed_at"] is not None
            and c["first"] - old["closed_at"] < window
        ):
            c["conv"], c["conv_event"] = old["id"], ("conversation.reopened", "CLOSED")
            reopen.append(c)
        else:
            fresh.append(c)
    if reopen:
        done = await store.reopen_conversations_batch(
            merchant_ids=[c["account"].merchant_id for c in reopen],
            ids=[c["conv"] for c in reopen],
        )
        if len(done) != len(reopen):
            raise _FastPathMiss("a conversation changed while reopening")
    if fresh:
        opened = await store.open_conversations_batch(
            merchant_ids=[c["account"].merchant_id for c in fresh],
            account_ids=[c["account"].id for c in fresh],
            contact_ids=[c["id"] for c in fresh],
            x_conversation_ids=[c["x_conv"] for c in fresh],
        )
        if len(opened) != len(fresh):
            raise _FastPathMiss("a conversation appeared while opening")
        for r in opened:
            by_contact[r["contact_id"]].update(
                conv=r["id"], conv_event=("conversation.opened", None)
            )

    # Messages, then per-conversation counters, interactions and domain events.
    message_ids = [uuid4() for _ in dms]
    dm_contacts = [contacts[(d.account.id, d.sender)] for d in dms]
    inserted = await store.insert_inbound_messages_batch(
        ids=message_ids,
        merchant_ids=[d.account.merchant_id for d in dms],
        conversation_ids=[c["conv"] for c in dm_contacts],
        types=[d.type_ for d in dms],
        texts=[d.text for d in dms],
        attachments=[json.dumps(d.attachments) for d in dms],
        senders=[d.sender for d in dms],
        x_event_ids=[d.event_id for d in dms],
        qr_metadata=[d.qr_metadata for d in dms],
        ats=[d.at for d in dms],
    )
    if len(inserted) != len(dms):
        raise _FastPathMiss("a message was already stored")
    per_conv: dict[UUID, dict[str, Any]] = {}
    for d, c in zip(dms, dm_contacts, strict=True):
        agg = per_conv.setdefault(
            c["conv"],
            {"m": d.account.merchant_id, "n": 0, "at": d.at, "preview": "", "xc": d.x_conv},
        )
        agg["n"] += 1
        if d.at >= agg["at"]:
            agg["at"], agg["preview"] = d.at, _preview(d.text, d.attachments)
    conv_ids = list(per_conv)
    await store.record_inbound_messages_batch(
        merchant_ids=[per_conv[i]["m"] for i in conv_ids],
        ids=conv_ids,
        ns=[per_conv[i]["n"] for i in conv_ids],
        ats=[per_conv[i]["at"] for i in conv_ids],
        previews=[per_conv[i]["preview"] for i in conv_ids],
        x_conversation_ids=[per_conv[i]["xc"] for i in conv_ids],
    )
    await store.insert_interactions_batch(
        merchant_ids=[d.account.merchant_id for d in dms],
        contact_ids=[c["id"] for c in dm_contacts],
        kinds=["MESSAGE_IN"] * len(dms),
        ats=[d.at for d in dms],
        refs=[d.event_id for d in dms],
    )
    ev_m: list[UUID] = []
    ev_types: list[str] = []
    ev_aggs: list[UUID | None] = []
    ev_payloads: list[str] = []

    def emit(d: _InboundDm, type_: str, agg: UUID, **payload: Any) -> None:
        ev_m.append(d.account.merchant_id)
        ev_types.append(type_)
        ev_aggs.append(agg)
        ev_payloads.append(json.dumps(_ids({"account_id": d.account.id, **payload})))

    for d, c, mid in zip(dms, dm_contacts, message_ids, strict=True):
        if c.pop("created", False):
            emit(
                d,
                "contact.created",
                c["id"],
                contact_id=c["id"],
                x_user_id=d.sender,
                source="INBOUND_MESSAGE",
            )
        conv_event = c.pop("conv_event", None)
        if conv_event is not None:
            kind, previous = conv_event
            extra = {"previous_status": previous} if previous else {}
            emit(
                d,
                kind,
                c["conv"],
                conversation_id=c["conv"],
                contact_id=c["id"],
                **extra,
                status="OPEN",
            )
        emit(
            d,
            "message.received",
            c["conv"],
            message_id=mid,
            conversation_id=c["conv"],
            contact_id=c["id"],
            direction="INBOUND",
            status="DELIVERED",
            x_event_id=d.event_id,
        )
    await store.append_events_batch(ev_m, ev_types, ev_aggs, ev_payloads)


# ------------------------------------------------------------------ batches


@dataclass
class BatchResult:
    """What one batch did: finished rows and rows rescheduled, with their delays."""

    finished: dict[str, int] = field(default_factory=dict)
    retry: list[tuple[int, float]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.finished.values()) + len(self.retry)


async def _run_batch(
    pool: AsyncConnectionPool,
    claim: Callable[[], Awaitable[list[Row]]],
    payloads: Mapping[int, Mapping[str, Any]],
    options: IngestOptions,
    metrics: WebhookMetrics,
) -> BatchResult:
    result = BatchResult()
    lags: list[float] = []
    done_ids: list[int] = []
    outcomes: list[str] = []
    notes: list[str] = []
    fail_ids: list[int] = []
    fail_errors: list[str] = []
    fail_delays: list[float] = []
    async with use_connection(pool, transaction=True):
        rows = await claim()
        if not rows:
            return result
        items = [(r, payloads.get(r["id"]) or r["payload"]) for r in rows]
        x_users = sorted({str(p.get("for_user_id", "")) for _, p in items})
        accounts = {
            a["x_user_id"]: Account(a["id"], a["merchant_id"], a["x_user_id"], a["status"])
            for a in await inbox_store.accounts_by_x_user(x_users)
        }

        def fail(row_id: int, attempt: int, error: str, delay: float) -> None:
            if attempt >= options.max_attempts:
                done_ids.append(row_id)
                outcomes.append(DEAD)
                notes.append(f"gave up after {attempt} attempts: {error}")
            else:
                fail_ids.append(row_id)
                fail_errors.append(error)
                fail_delays.append(delay)

        async def apply_one(row: Row, payload: Mapping[str, Any]) -> None:
            attempt = int(row["attempts"]) + 1
            account = accounts.get(str(payload.get("for_user_id", "")))
            try:
                async with savepoint():
                    outcome, note = await apply_event(account, payload, row["received_at"], options)
            except DuplicateEvent as exc:
                outcome, note = DUPLICATE, str(exc)
            except MalformedEvent as exc:
                outcome, note = DEAD, f"malformed: {exc}"
            except RetryLater as exc:
                fail(row["id"], attempt, str(exc), exc.delay)
                return
            except Exception as exc:  # any database or data error: retry later
                log.warning("webhook event %s failed (attempt %d): %s", row["id"], attempt, exc)
                fail(
                    row["id"],
                    attempt,
                    f"{type(exc).__name__}: {exc}"[:1000],
                    options.backoff(attempt),
                )
                return
            done_ids.append(row["id"])
            outcomes.append(outcome)
            notes.append(note)

        run: list[tuple[Row, Mapping[str, Any], _InboundDm]] = []

        async def flush_run() -> None:
            """Apply a run of plain inbound DMs set-based, in one savepoint; on any
            failure, apply them one by one instead."""
            if not run:
                return
            todo = list(run)
            run.clear()
            try:
                async with savepoint():
                    await _apply_dm_run([dm for _, _, dm in todo], options)
            except Exception as exc:
                metrics.dm_runs["fallback"] += 1
                if not isinstance(exc, _FastPathMiss):
                    log.info("batched DM run fell back to single events: %s", exc)
                for row, payload, _ in todo:
                    await apply_one(row, payload)
                return
            metrics.dm_runs["set_based"] += 1
            for row, _, _ in todo:
                done_ids.append(row["id"])
                outcomes.append(PROCESSED)
                notes.append("")

        for row, payload in items:
            account = accounts.get(str(payload.get("for_user_id", "")))
            dm = (
                _plain_inbound_dm(account, payload, row["received_at"])
                if options.set_based_dms
                else None
            )
            if dm is not None:
                run.append((row, payload, dm))
                continue
            await flush_run()  # keep each contact's events in order
            await apply_one(row, payload)
        await flush_run()
        for fin in await inbox_store.mark_finished(done_ids, outcomes, notes):
            lags.append(float(fin["lag_seconds"]))
        await inbox_store.mark_failed(fail_ids, fail_errors, fail_delays)
    # Committed: count.
    for outcome in outcomes:
        result.finished[outcome] = result.finished.get(outcome, 0) + 1
        metrics.processed[outcome] += 1
    for lag in lags:
        metrics.observe_lag(lag)
    metrics.failed += len(fail_ids)
    result.retry = list(zip(fail_ids, fail_delays, strict=True))
    return result


async def process_ids(
    pool: AsyncConnectionPool,
    ids: Sequence[int],
    options: IngestOptions,
    metrics: WebhookMetrics,
    payloads: Mapping[int, Mapping[str, Any]] | None = None,
) -> BatchResult:
    """Process the given inbox rows (those still pending and not locked elsewhere).
    ``payloads`` may supply rows' payloads already in memory; others are read."""
    payloads = payloads or {}
    with_payload = any(i not in payloads for i in ids)
    return await _run_batch(
        pool,
        lambda: inbox_store.claim_by_ids(ids, with_payload=with_payload),
        payloads,
        options,
        metrics,
    )


async def process_due(
    pool: AsyncConnectionPool, options: IngestOptions, metrics: WebhookMetrics
) -> BatchResult:
    """Claim and process up to ``batch_size`` due rows (FOR UPDATE SKIP LOCKED)."""
    return await _run_batch(
        pool, lambda: inbox_store.claim_due(options.batch_size), {}, options, metrics
    )


def make_inbox_retry_loop(
    options: IngestOptions | None = None, metrics: WebhookMetrics | None = None
) -> Callable[[Deps], Awaitable[float]]:
    """A worker loop (``mktx_grpc.worker.Loop``) over due inbox rows, with fixed
    options (tests) or, when None, options read from ``deps.settings``."""

    async def retry_webhook_inbox(deps: Deps) -> float:
        """Process one batch of due inbox rows; returns seconds to sleep (0 when the
        batch was full, so a backlog drains without pause)."""
        opts = options or IngestOptions.from_settings(deps.settings)
        result = await process_due(deps.pool, opts, metrics or DEFAULT_METRICS)
        return 0.0 if result.count >= opts.batch_size else opts.retry_poll

    return retry_webhook_inbox


#: The worker loop to add to ``mktx_grpc.worker.LOOPS``.
retry_webhook_inbox = make_inbox_retry_loop()


# ------------------------------------------------------------------ in-process


class InboxProcessor:
    """Processes freshly recorded events in the sidecar process, off the request path.

    Events are spread over ``options.workers`` queues by their shard (account and
    counterpart), so one contact's events are applied in order by one worker and
    workers never contend for the same rows. Each worker drains its queue in
    batches of up to ``batch_size``. A failed event is rescheduled in the table
    (for any process's retry loop) and, with ``inline_retries``, re-queued here
    after its delay. When the queues are full, events are left to the retry loop.
    """

    def __init__(
        self, pool: AsyncConnectionPool, options: IngestOptions, metrics: WebhookMetrics
    ) -> None:
        self.pool = pool
        self.options = options
        self.metrics = metrics
        n = max(1, options.workers)
        self._queues: list[asyncio.Queue[tuple[int, str, Mapping[str, Any] | None]]] = [
            asyncio.Queue() for _ in range(n)
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._busy = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not all(t.done() for t in self._tasks)

    def start(self) -> None:
        """Start the workers on the running loop (idempotent)."""
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._tasks = [
            asyncio.create_task(self._worker(q), name=f"webhook-ingest-{i}")
            for i, q in enumerate(self._queues)
        ]

    def _queue_for(self, shard: str) -> asyncio.Queue[tuple[int, str, Mapping[str, Any] | None]]:
        return self._queues[zlib.crc32(shard.encode()) % len(self._queues)]

    def submit(self, items: Sequence[tuple[int, InboxEvent]]) -> None:
        """Queue recorded events (inbox id, event) for processing."""
        self.start()
        for row_id, ev in items:
            self._put(row_id, ev.shard, ev.payload)

    def _put(self, row_id: int, shard: str, payload: Mapping[str, Any] | None) -> None:
        q = self._queue_for(shard)
        if q.qsize() >= self.options.queue_limit:
            return  # the retry loop takes it after claim_delay
        q.put_nowait((row_id, shard, payload))

    def idle(self) -> bool:
        """No queued events and no batch in flight (retries waiting on timers aside)."""
        return self._busy == 0 and all(q.empty() for q in self._queues)

    async def wait_idle(self, within: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + within
        while not self.idle():
            if loop.time() > give_up:
                raise TimeoutError("inbox processor still busy")
            await asyncio.sleep(0.01)

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Finish queued work for up to ``drain_timeout`` seconds, then stop. Whatever
        is left stays pending in the table for the retry loop."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        with contextlib.suppress(TimeoutError):
            await self.wait_idle(drain_timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _schedule_retry(self, row_id: int, shard: str, delay: float) -> None:
        if self._loop is None:
            return

        def fire() -> None:
            self._timers.discard(handle)
            self._put(row_id, shard, None)

        handle = self._loop.call_later(delay, fire)
        self._timers.add(handle)

    async def _worker(self, q: asyncio.Queue[tuple[int, str, Mapping[str, Any] | None]]) -> None:
        while True:
            first = await q.get()
            batch = [first]
            while len(batch) < self.options.batch_size and not q.empty():
                batch.append(q.get_nowait())
            self._busy += 1
            try:
                await self._process(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The rows stay pending; the retry loop takes them after claim_delay.
                log.exception("webhook ingest batch of %d failed", len(batch))
            finally:
                self._busy -= 1
                for _ in batch:
                    q.task_done()

    async def _process(self, batch: list[tuple[int, str, Mapping[str, Any] | None]]) -> None:
        ids = [row_id for row_id, _, _ in batch]
        shards = {row_id: shard for row_id, shard, _ in batch}
        payloads = {row_id: p for row_id, _, p in batch if p is not None}
        result = await process_ids(self.pool, ids, self.options, self.metrics, payloads)
        if self.options.inline_retries:
            for row_id, delay in result.retry:
                self._schedule_retry(row_id, shards[row_id], delay)
