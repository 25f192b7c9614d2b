"""Applying one inbox event: what each kind of X event does to contacts,
conversations, messages, interactions, accounts and the domain event outbox.

:func:`apply_event` runs on the current connection, inside the caller's
transaction and savepoint (:mod:`.batch`), and returns the event's outcome with a
note, or raises one of the exceptions below, which the caller records.

Outcomes (``webhook_inbox.outcome``): PROCESSED; IGNORED (no connected account for
``for_user_id``, or nothing for us to do: the account's own follows and posts, a
post that does not mention it); DUPLICATE (the message was already stored:
:class:`DuplicateEvent`); DEAD (malformed: :class:`MalformedEvent`, or still
failing after ``max_attempts``). :class:`RetryLater` and anything else raised is a
failed attempt, retried with exponential back-off.

An inbound DM joins the conversation :func:`mktx_grpc.domain.conversations.choose_conversation`
picks (the rule is documented there); runs of plain inbound DMs take the set-based
path in :mod:`.dm_batch`, with the same effects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from ..domain import conversations as domain
from ..store import ingest as store
from ..store.events import append_event
from .events import DM, FOLLOW, READ, TWEET, USER_EVENT
from .options import IngestOptions
from .payload import as_str, message_content, ms_time, profile, recipient_id, user_id

__all__ = [
    "DEAD",
    "DUPLICATE",
    "IGNORED",
    "PROCESSED",
    "Account",
    "DuplicateEvent",
    "MalformedEvent",
    "RetryLater",
    "apply_event",
    "event_payload",
]

PROCESSED, IGNORED, DUPLICATE, DEAD = "PROCESSED", "IGNORED", "DUPLICATE", "DEAD"


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
    """The connected account an event was delivered for (``for_user_id``)."""

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


def event_payload(account: Account, **fields: Any) -> dict[str, Any]:
    """A domain event payload from ingestion: ``account_id`` first, then ``fields``,
    UUIDs as strings (JSON-ready)."""
    payload: dict[str, Any] = {"account_id": account.id, **fields}
    return {k: (str(v) if isinstance(v, UUID) else v) for k, v in payload.items()}


async def _emit(ctx: _Ctx, type_: str, aggregate_id: UUID | None, **payload: Any) -> None:
    await append_event(ctx.merchant_id, type_, aggregate_id, event_payload(ctx.account, **payload))


async def _upsert_contact(ctx: _Ctx, x_user_id: str, user: Any, source: str, at: datetime) -> UUID:
    contact_id, created = await store.upsert_contact(
        ctx.merchant_id, ctx.account.id, x_user_id, source=source, at=at, **profile(user)
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


async def _find_or_open_conversation(
    ctx: _Ctx, contact_id: UUID, at: datetime, x_conv: str
) -> UUID:
    """The conversation an inbound message sent at ``at`` joins, woken, reopened or
    opened as :func:`~mktx_grpc.domain.conversations.choose_conversation` decides
    (the rows it looks at are locked); emits the conversation.* event of the change.
    Raises RuntimeError when a conversation another transaction opened meanwhile
    cannot be found (a retried attempt then decides again)."""
    m, a = ctx.merchant_id, ctx.account.id
    window = timedelta(seconds=ctx.options.reopen_window)
    live = await store.live_conversation_for_update(m, a, contact_id)
    if live is not None:
        conv_id = UUID(str(live["id"]))
        choice = domain.choose_conversation(live["status"], None, at, window)
    else:
        closed = await store.latest_closed_conversation_for_update(m, a, contact_id)
        closed_at = None if closed is None else closed["closed_at"]
        choice = domain.choose_conversation(None, closed_at, at, window)
        if choice.route is domain.Route.REOPEN:
            assert closed is not None
            conv_id = UUID(str(closed["id"]))
            await store.reopen_conversation(m, conv_id)
        else:
            opened = await store.open_conversation(m, a, contact_id, x_conv)
            if opened is None:  # opened meanwhile by a concurrent transaction
                live = await store.live_conversation_for_update(m, a, contact_id)
                if live is None:
                    raise RuntimeError("conversation vanished while opening it")
                return UUID(str(live["id"]))
            conv_id = opened
    if choice.event_type is not None:
        await _emit(
            ctx,
            choice.event_type,
            conv_id,
            conversation_id=conv_id,
            contact_id=contact_id,
            **choice.event_fields(),
        )
    return conv_id


async def _handle_dm(ctx: _Ctx) -> tuple[str, str]:
    ev = ctx.event
    mc = ev.get("message_create")
    event_id = as_str(ev.get("id"))
    if not isinstance(mc, dict) or not event_id:
        raise MalformedEvent("direct message event without id or message_create")
    sender = as_str(mc.get("sender_id"))
    recipient = recipient_id(mc.get("target"))
    if not sender or not recipient:
        raise MalformedEvent("direct message event without sender_id or recipient_id")
    data = mc.get("message_data")
    at = ms_time(ev.get("created_timestamp"), ctx.received_at)
    me = ctx.account.x_user_id
    if sender == me:
        return await _handle_echo(ctx, event_id, recipient, data, at)
    if recipient != me:
        return IGNORED, "direct message neither from nor to the account"

    content = message_content(data)
    contact_id = await _upsert_contact(ctx, sender, ctx.users.get(sender), "INBOUND_MESSAGE", at)
    x_conv = domain.x_conversation_id(me, sender)
    conv_id = await _find_or_open_conversation(ctx, contact_id, at, x_conv)
    message_id = await store.insert_message(
        ctx.merchant_id,
        conv_id,
        direction="INBOUND",
        type_=content.type,
        text=content.text,
        attachments=content.attachments,
        sender_user_id=sender,
        x_event_id=event_id,
        origin="CONTACT",
        quick_reply_metadata=content.quick_reply_metadata,
        at=at,
    )
    if message_id is None:
        raise DuplicateEvent(f"message {event_id} already stored")
    await store.record_message_on_conversation(
        ctx.merchant_id,
        conv_id,
        inbound=True,
        at=at,
        preview=domain.preview(content.text, content.media_kinds),
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
    ctx: _Ctx, event_id: str, recipient: str, data: Any, at: datetime
) -> tuple[str, str]:
    """Our account's own DM, delivered back: mark the stored message DELIVERED, or
    (once ``echo_grace`` has passed without the send path storing it) record it as
    sent from another client. Such a message joins the contact's live or latest
    conversation as it is (an outbound message neither wakes nor reopens), or opens
    one when the contact has none."""
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

    content = message_content(data)
    contact_id = await _upsert_contact(ctx, recipient, ctx.users.get(recipient), "MANUAL", at)
    m, a = ctx.merchant_id, ctx.account.id
    x_conv = domain.x_conversation_id(ctx.account.x_user_id, recipient)
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
        type_=content.type,
        text=content.text,
        attachments=content.attachments,
        sender_user_id=ctx.account.x_user_id,
        x_event_id=event_id,
        origin="EXTERNAL",
        quick_reply_metadata=content.quick_reply_metadata,
        at=at,
    )
    if message_id is None:
        raise DuplicateEvent(f"message {event_id} already stored")
    await store.record_message_on_conversation(
        m,
        conv_id,
        inbound=False,
        at=at,
        preview=domain.preview(content.text, content.media_kinds),
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
    reader = as_str(ev.get("sender_id"))
    last = as_str(ev.get("last_read_event_id"))
    other = recipient_id(ev.get("target"))
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
    kind = as_str(ev.get("type"))
    source, target = ev.get("source"), ev.get("target")
    src, tgt = user_id(source), user_id(target)
    if kind not in ("follow", "unfollow") or not src or not tgt:
        raise MalformedEvent("follow event without type, source or target")
    if tgt != ctx.account.x_user_id:
        return IGNORED, "the account's own follow activity"
    at = ms_time(ev.get("created_timestamp"), ctx.received_at)
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
    tweet_id = as_str(tweet.get("id_str")) or as_str(tweet.get("id"))
    author = tweet.get("user")
    author_id = user_id(author)
    if not tweet_id or not author_id:
        raise MalformedEvent("tweet event without id or user")
    me = ctx.account.x_user_id
    if author_id == me:
        return IGNORED, "the account's own post"
    if isinstance(tweet.get("retweeted_status"), dict):
        return IGNORED, "a repost, not a mention"
    entities = tweet.get("entities")
    mentions = entities.get("user_mentions") if isinstance(entities, dict) else None
    mentioned = any(user_id(u) == me for u in mentions or [] if isinstance(u, dict))
    if not mentioned and as_str(tweet.get("in_reply_to_user_id_str")) != me:
        return IGNORED, "does not mention the account"
    at = ms_time(tweet.get("timestamp_ms"), ctx.received_at)
    contact_id = await _upsert_contact(ctx, author_id, author, "MENTION", at)
    await store.insert_interaction(ctx.merchant_id, contact_id, "MENTION", at, tweet_id)
    await _emit(
        ctx,
        "contact.mentioned",
        contact_id,
        contact_id=contact_id,
        tweet_id=tweet_id,
        text=as_str(tweet.get("text")),
        # The post it replies to, if any (automation's MENTION trigger may name one).
        in_reply_to=as_str(tweet.get("in_reply_to_status_id_str")),
    )
    return PROCESSED, ""


async def _handle_user_event(ctx: _Ctx) -> tuple[str, str]:
    revoke = ctx.event.get("revoke")
    if not isinstance(revoke, dict):
        return IGNORED, "user event other than revoke"
    when = as_str(revoke.get("date_time")) or ctx.received_at.isoformat()
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
    handler = _HANDLERS.get(as_str(payload.get("type")))
    event = payload.get("event")
    if handler is None or not isinstance(event, dict):
        raise MalformedEvent(f"unknown inbox event type {payload.get('type')!r}")
    users = payload.get("users")
    ctx = _Ctx(account, event, users if isinstance(users, dict) else {}, received_at, options)
    return await handler(ctx)
