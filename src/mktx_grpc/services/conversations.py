"""ConversationsService: proto in, domain call, proto out. No SQL here.

SendMessage is declared ``db=True, write=False``: it runs short explicit transactions
on its connection (store PENDING, then SENT or FAILED) and calls X between them, so a
refused DM stays recorded as FAILED while the RPC still returns the error.
WatchConversations is streaming (``db=False``) and borrows pooled connections only
while it reads, never while it waits on its client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import grpc

from mktx.v1 import common_pb2, conversations_pb2, conversations_pb2_grpc

from ..core.context import current_connection, current_principal
from ..core.db import use_connection
from ..core.errors import (
    DomainError,
    FieldViolation,
    InvalidArgument,
    NotFound,
    QuotaExceeded,
)
from ..core.pagination import decode_time_cursor, effective_page_size, time_page
from ..deps import Deps
from ..domain import conversations as domain
from ..domain import templates as templates_domain
from ..mapping.common import from_ts, ts
from ..store import Row, check_etag, etag_of, live
from ..store import conversations as store
from ..store import templates as templates_store
from ..store.events import append_event
from ..store.idempotency import create_once
from ..x.access import XAccess

log = logging.getLogger(__name__)

C = conversations_pb2
T = TypeVar("T")

STATUS_TO_DB: dict[Any, str] = {
    C.CONVERSATION_STATUS_OPEN: domain.OPEN,
    C.CONVERSATION_STATUS_PENDING: domain.PENDING,
    C.CONVERSATION_STATUS_SNOOZED: domain.SNOOZED,
    C.CONVERSATION_STATUS_CLOSED: domain.CLOSED,
}
STATUS_FROM_DB: dict[str, Any] = {v: k for k, v in STATUS_TO_DB.items()}


def _enum(enum: Any, prefix: str, value: Any) -> Any:
    """Map a stored enum name ("OUTBOUND" or "MESSAGE_DIRECTION_OUTBOUND") or number."""
    if isinstance(value, int):
        return value if value in enum.values() else 0
    if not value:
        return 0
    name = str(value).upper()
    if not name.startswith(prefix):
        name = prefix + name
    try:
        return int(enum.Value(name))
    except ValueError:
        return 0


def conversation_to_proto(row: Row) -> C.Conversation:
    """A conversation row from ``store.get`` / ``store.list_page`` (with ``contact_*``)."""
    return C.Conversation(
        id=str(row["id"]),
        account_id=str(row["account_id"]),
        contact_id=str(row["contact_id"]),
        contact=C.ContactSummary(
            id=str(row["contact_id"]),
            x_user_id=row.get("contact_x_user_id") or "",
            username=row.get("contact_username") or "",
            display_name=row.get("contact_display_name") or "",
            profile_image_url=row.get("contact_profile_image_url") or "",
        ),
        x_conversation_id=row["x_conversation_id"],
        status=STATUS_FROM_DB.get(row["status"], 0),
        assignee_user_id=row["assignee_user_id"],
        snooze_until_time=ts(row["snooze_until"]) if row["status"] == domain.SNOOZED else None,
        close_reason=row["close_reason"] if row["status"] == domain.CLOSED else "",
        close_time=ts(row["closed_at"]) if row["status"] == domain.CLOSED else None,
        escalated=bool(row.get("escalated", False)),
        escalation_reason=row.get("escalation_reason") or "",
        last_message_preview=row["last_message_preview"],
        last_message_time=ts(row["last_message_at"]),
        last_inbound_time=ts(row.get("last_inbound_at")),
        unread_count=row["unread_count"],
        message_count=row["message_count"],
        create_time=ts(row["created_at"]),
        update_time=ts(row["updated_at"]),
        etag=etag_of(row["id"], row["version"]),
    )


#: X's media kinds (as webhook ingestion stores them) and ours.
_X_MEDIA_TYPES = {"photo": "IMAGE", "animated_gif": "GIF", "video": "VIDEO"}


def _attachment(a: Any) -> common_pb2.MediaAttachment:
    if not isinstance(a, dict):
        return common_pb2.MediaAttachment()
    kind = _X_MEDIA_TYPES.get(str(a.get("media_type") or ""), a.get("type"))
    return common_pb2.MediaAttachment(
        url=str(a.get("url") or ""),
        type=_enum(common_pb2.MediaType, "MEDIA_TYPE_", kind),
        x_media_id=str(a.get("x_media_id") or a.get("media_id") or ""),
        alt_text=str(a.get("alt_text") or ""),
    )


def _origin(row: Row) -> Any:
    """The stored MessageOrigin name (older rows may say APP: refined by who sent it)."""
    origin = row.get("origin") or ("CONTACT" if row["direction"] == "INBOUND" else "APP")
    if origin != "APP":
        return _enum(C.MessageOrigin, "MESSAGE_ORIGIN_", origin)
    if row.get("campaign_id"):
        return C.MESSAGE_ORIGIN_CAMPAIGN
    if row.get("flow_id"):
        return C.MESSAGE_ORIGIN_AUTOMATION
    if row["is_from_bot"]:
        return C.MESSAGE_ORIGIN_AI
    return C.MESSAGE_ORIGIN_AGENT


def message_to_proto(row: Row) -> C.Message:
    def opt(key: str) -> Any:
        return row.get(key)

    return C.Message(
        id=str(row["id"]),
        conversation_id=str(row["conversation_id"]),
        direction=_enum(C.MessageDirection, "MESSAGE_DIRECTION_", row["direction"]),
        type=_enum(C.MessageType, "MESSAGE_TYPE_", row["type"]),
        text=row["text"],
        attachments=[_attachment(a) for a in row["attachments"] or []],
        quick_replies=[
            common_pb2.QuickReplyOption(
                label=q.get("label", ""),
                description=q.get("description", ""),
                metadata=q.get("metadata", ""),
            )
            for q in row["quick_replies"] or []
            if isinstance(q, dict)
        ],
        card_buttons=[
            common_pb2.CardButton(label=b.get("label", ""), url=b.get("url", ""))
            for b in opt("card_buttons") or []
            if isinstance(b, dict)
        ],
        quick_reply_metadata=opt("quick_reply_metadata") or "",
        origin=_origin(row),
        is_from_bot=row["is_from_bot"],
        sender_user_id=row["sender_user_id"],
        campaign_id=str(opt("campaign_id") or ""),
        flow_id=str(opt("flow_id") or ""),
        x_message_id=row["x_event_id"] or "",
        sent_time=ts(row["sent_at"]),
        delivery_state=_enum(
            C.MessageDeliveryState, "MESSAGE_DELIVERY_STATE_", row["delivery_state"]
        ),
        deliver_time=ts(opt("delivered_at")),
        read_time=ts(opt("read_at")),
        failure_reason=row["failure_reason"],
        create_time=ts(row["created_at"]),
    )


def _payload(row: Row, **extra: Any) -> dict[str, Any]:
    return {
        "conversation_id": str(row["id"]),
        "account_id": str(row["account_id"]),
        "contact_id": str(row["contact_id"]),
        **extra,
    }


class CursorExpired(DomainError):
    code = grpc.StatusCode.OUT_OF_RANGE
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

_KIND_ENUM: dict[str, Any] = {
    k: C.ConversationEventType.Value(f"CONVERSATION_EVENT_TYPE_{v}")
    for k, v in domain.WATCH_KINDS.items()
}


class ConversationsServicer(conversations_pb2_grpc.ConversationsServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    @property
    def _x(self) -> XAccess:
        return self._deps.xaccess

    # ------------------------------------------------------------ helpers

    async def _load(self, merchant: UUID, conversation_id: str) -> Row:
        row = await store.get(merchant, UUID(conversation_id))
        if row is None:
            raise NotFound("conversation", conversation_id)
        return row

    async def _lock(self, merchant: UUID, conversation_id: str) -> Row:
        row = await store.lock(merchant, UUID(conversation_id))
        if row is None:
            raise NotFound("conversation", conversation_id)
        return row

    async def _transition(
        self,
        conversation_id: str,
        etag: str,
        target: str,
        *,
        snooze_until: datetime | None = None,
        close_reason: str = "",
    ) -> C.Conversation:
        principal = current_principal()
        merchant = principal.merchant_id
        row = await self._lock(merchant, conversation_id)
        check_etag(etag, row, "conversation")
        domain.check_transition(row["status"], target)
        if target == domain.OPEN and await store.other_live(merchant, row) is not None:
            raise domain.InvalidTransition(
                "the contact already has another conversation that is not CLOSED on this account",
                metadata={"current_status": row["status"]},
            )
        await store.set_status(
            merchant, row["id"], target, snooze_until=snooze_until, close_reason=close_reason
        )
        extra: dict[str, Any] = {
            "previous_status": row["status"],
            "status": target,
            "actor_user_id": principal.user_id,
        }
        if snooze_until is not None:
            extra["snooze_until"] = snooze_until.isoformat()
        await append_event(
            merchant, domain.EVENT_FOR_STATUS[target], row["id"], _payload(row, **extra)
        )
        return conversation_to_proto(await self._load(merchant, conversation_id))

    # ------------------------------------------------------------ reads

    async def ListConversations(
        self, request: C.ListConversationsRequest, context: grpc.aio.ServicerContext
    ) -> C.ListConversationsResponse:
        merchant = current_principal().merchant_id
        return await list_conversations_page(
            self._deps,
            merchant,
            account_id=request.account_id,
            status=request.status,
            assignee="" if request.unassigned else (request.assignee_user_id or None),
            contact_id=request.contact_id,
            updated_after=(
                from_ts(request.update_time_after)
                if request.HasField("update_time_after")
                else None
            ),
            page_size=request.page_size,
            page_token=request.page_token,
        )

    async def GetConversation(
        self, request: C.GetConversationRequest, context: grpc.aio.ServicerContext
    ) -> C.GetConversationResponse:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.id)
        tokens = self._deps.page_tokens
        filters = ["messages", str(merchant), request.id]
        after = decode_time_cursor(tokens, request.message_page_token, filters)
        size = effective_page_size(request.message_page_size)
        rows = await store.list_messages(merchant, row["id"], after=after, limit=size + 1)
        page, next_token = time_page(tokens, rows, size, filters)
        return C.GetConversationResponse(
            conversation=conversation_to_proto(row),
            messages=[message_to_proto(m) for m in page],
            next_message_page_token=next_token,
        )

    # ------------------------------------------------------------ status

    async def CloseConversation(
        self, request: C.CloseConversationRequest, context: grpc.aio.ServicerContext
    ) -> C.Conversation:
        return await self._transition(
            request.id, request.etag, domain.CLOSED, close_reason=request.reason
        )

    async def ReopenConversation(
        self, request: C.ReopenConversationRequest, context: grpc.aio.ServicerContext
    ) -> C.Conversation:
        return await self._transition(request.id, request.etag, domain.OPEN)

    async def MarkConversationPending(
        self, request: C.MarkConversationPendingRequest, context: grpc.aio.ServicerContext
    ) -> C.Conversation:
        return await self._transition(request.id, request.etag, domain.PENDING)

    async def SnoozeConversation(
        self, request: C.SnoozeConversationRequest, context: grpc.aio.ServicerContext
    ) -> C.Conversation:
        now = datetime.now(UTC)
        if request.HasField("snooze_until_time"):
            until = from_ts(request.snooze_until_time)
            field = "snooze_until_time"
        else:
            until = now + request.snooze_duration.ToTimedelta()
            field = "snooze_duration"
        problem = domain.snooze_problem(until, now)
        if problem:  # re-checked here: the validator ran a moment earlier
            raise InvalidArgument.single(field, problem)
        return await self._transition(request.id, request.etag, domain.SNOOZED, snooze_until=until)

    async def AssignConversation(
        self, request: C.AssignConversationRequest, context: grpc.aio.ServicerContext
    ) -> C.Conversation:
        principal = current_principal()
        merchant = principal.merchant_id
        row = await self._lock(merchant, request.id)
        check_etag(request.etag, row, "conversation")
        domain.check_assignable(row["status"])
        if row["assignee_user_id"] != request.assignee_user_id:
            await store.set_assignee(merchant, row["id"], request.assignee_user_id)
            await append_event(
                merchant,
                "conversation.assigned",
                row["id"],
                _payload(
                    row,
                    assignee_user_id=request.assignee_user_id,
                    previous_assignee_user_id=row["assignee_user_id"],
                    actor_user_id=principal.user_id,
                ),
            )
        return conversation_to_proto(await self._load(merchant, request.id))

    async def UnassignConversation(
        self, request: C.UnassignConversationRequest, context: grpc.aio.ServicerContext
    ) -> C.Conversation:
        principal = current_principal()
        merchant = principal.merchant_id
        row = await self._lock(merchant, request.id)
        check_etag(request.etag, row, "conversation")
        if row["assignee_user_id"]:
            await store.set_assignee(merchant, row["id"], "")
            await append_event(
                merchant,
                "conversation.unassigned",
                row["id"],
                _payload(
                    row,
                    previous_assignee_user_id=row["assignee_user_id"],
                    actor_user_id=principal.user_id,
                ),
            )
        return conversation_to_proto(await self._load(merchant, request.id))

    async def MarkConversationRead(
        self, request: C.MarkConversationReadRequest, context: grpc.aio.ServicerContext
    ) -> C.Conversation:
        principal = current_principal()
        merchant = principal.merchant_id
        row = await self._lock(merchant, request.id)
        changed = await store.mark_read(merchant, row)
        if changed or row["unread_count"]:
            await append_event(
                merchant,
                "conversation.read",
                row["id"],
                _payload(row, actor_user_id=principal.user_id, messages_read=changed),
            )
        return conversation_to_proto(await self._load(merchant, request.id))

    # ------------------------------------------------------------ sending

    async def SendMessage(
        self, request: C.SendMessageRequest, context: grpc.aio.ServicerContext
    ) -> C.SendMessageResponse:
        principal = current_principal()
        merchant = principal.merchant_id
        conn = current_connection()
        request_id = request.request_id or None

        if request_id:
            previous = await store.messages_by_request(merchant, request_id)
            if previous:
                return await self._send_result(merchant, previous)

        # Resolve whom to send to, and check everything before anything is stored.
        if request.WhichOneof("target") == "conversation_id":
            conv = await self._load(merchant, request.conversation_id)
            domain.check_sendable(conv["status"])
            contact_id, account_id = conv["contact_id"], conv["account_id"]
        else:
            conv = None
            contact_id = UUID(request.contact_id)
            contact_row = await store.contact(merchant, contact_id)
            if contact_row is None:
                raise NotFound("contact", request.contact_id)
            account_id = contact_row["account_id"]
        contact = await store.contact(merchant, contact_id)
        account = await store.account(merchant, account_id)
        if contact is None or account is None:
            raise NotFound("conversation", request.conversation_id or request.contact_id)
        if account["status"] != "ACTIVE":
            from ..core.errors import FailedPrecondition

            raise FailedPrecondition(
                f"the account is {account['status']}, not ACTIVE",
                reason="ACCOUNT_NOT_ACTIVE",
                metadata={"account_id": str(account_id)},
            )

        text, attachments, quick_replies, card_buttons, msg_type = await self._content(
            merchant, request, contact
        )

        # Upload media first (outside any transaction): bad media is INVALID_ARGUMENT
        # and nothing is stored.
        media_ids: list[str] = []
        for i, a in enumerate(attachments):
            media_id = await self._x.upload_media_from_url(
                account, a["url"], field=f"attachments[{i}].url"
            )
            a["x_media_id"] = media_id
            media_ids.append(media_id)

        dms = domain.split_into_dms(text, media_ids)

        async def create() -> tuple[UUID, tuple[bool, Row, list[Row]]]:
            nonlocal conv
            if conv is None:
                conv, opened = await store.live_or_open(
                    merchant,
                    account_id,
                    contact_id,
                    domain.x_conversation_id(account["x_user_id"], contact["x_user_id"]),
                )
                if opened:
                    await append_event(
                        merchant,
                        "conversation.opened",
                        conv["id"],
                        _payload(conv, actor_user_id=principal.user_id),
                    )
            else:
                locked = await self._lock(merchant, str(conv["id"]))
                domain.check_sendable(locked["status"])
            rows = []
            for i, (dm_text, _media) in enumerate(dms):
                rows.append(
                    await store.insert_outbound(
                        merchant,
                        conv["id"],
                        type_=msg_type if i == 0 else "IMAGE",
                        text=dm_text,
                        attachments=[attachments[i]] if attachments else [],
                        quick_replies=quick_replies if i == 0 else [],
                        card_buttons=card_buttons if i == 0 else [],
                        sender_user_id=principal.user_id,
                        request_id=request_id,
                    )
                )
            media_kinds = [a["type"] for a in attachments]
            await store.note_outbound(
                merchant, conv["id"], domain.preview(text, media_kinds), len(rows)
            )
            for r in rows:
                await append_event(
                    merchant,
                    "message.created",
                    conv["id"],
                    _payload(
                        conv,
                        message_id=str(r["id"]),
                        direction="OUTBOUND",
                        actor_user_id=principal.user_id,
                    ),
                )
            return conv["id"], (True, conv, rows)

        async def load(_conversation_id: UUID) -> tuple[bool, Row, list[Row]]:
            return False, {}, await store.messages_by_request(merchant, request_id or "")

        async with conn.transaction():
            fresh, conv_row, rows = await create_once(
                merchant, "send_message", request_id or "", create, load
            )
        if not fresh:  # a concurrent retry stored them first
            return await self._send_result(merchant, rows)

        sent: list[Row] = []
        for i, row in enumerate(rows):
            dm_text, dm_media = dms[i]
            try:
                result = await self._x.send_dm(
                    account, contact["x_user_id"], text=dm_text, media_id=dm_media
                )
            except Exception as exc:
                reason = exc.message if isinstance(exc, DomainError) else "internal error"
                await self._fail(merchant, conv_row, rows[i:], reason, principal.user_id)
                raise
            async with conn.transaction():
                updated = await store.mark_sent(merchant, row["id"], result.dm_event_id)
                if result.dm_conversation_id:
                    await store.set_x_conversation_id(
                        merchant, conv_row["id"], result.dm_conversation_id
                    )
                await store.record_outbound_interaction(merchant, contact_id, result.dm_event_id)
                await append_event(
                    merchant,
                    "message.sent",
                    conv_row["id"],
                    _payload(
                        conv_row,
                        message_id=str(row["id"]),
                        x_event_id=result.dm_event_id,
                        actor_user_id=principal.user_id,
                    ),
                )
            sent.append(updated or row)
        return await self._send_result(merchant, sent)

    async def _fail(
        self, merchant: UUID, conv: Row, rows: list[Row], reason: str, user_id: str
    ) -> None:
        async with current_connection().transaction():
            for i, r in enumerate(rows):
                why = reason if i == 0 else f"not sent: an earlier DM failed ({reason})"
                if await store.mark_failed(merchant, r["id"], why) is not None:
                    await append_event(
                        merchant,
                        "message.failed",
                        conv["id"],
                        _payload(conv, message_id=str(r["id"]), reason=why, actor_user_id=user_id),
                    )

    async def _send_result(self, merchant: UUID, rows: list[Row]) -> C.SendMessageResponse:
        conv = await store.get(merchant, rows[0]["conversation_id"])
        fresh = [await store.get_message(merchant, r["id"]) or r for r in rows]
        return C.SendMessageResponse(
            conversation=conversation_to_proto(conv) if conv else None,
            messages=[message_to_proto(r) for r in fresh],
        )

    async def _content(
        self, merchant: UUID, request: C.SendMessageRequest, contact: Row
    ) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], str]:
        """(text, attachments, quick replies, card buttons, message type) to send."""
        if not request.template_id:
            attachments = [
                {
                    "url": a.url,
                    "type": (
                        common_pb2.MediaType.Name(a.type).removeprefix("MEDIA_TYPE_")
                        if a.type
                        else domain.media_type_from_url(a.url)
                    ),
                    "alt_text": a.alt_text,
                }
                for a in request.attachments
            ]
            qrs = [
                {"label": q.label, "description": q.description, "metadata": q.metadata}
                for q in request.quick_replies
            ]
            kind = "QUICK_REPLY" if qrs else ("IMAGE" if attachments else "TEXT")
            return request.text, attachments, qrs, [], kind
        trow = await templates_store.get(merchant, UUID(request.template_id))
        if trow is None:
            raise NotFound("template", request.template_id)
        draft = templates_store.draft_from_row(trow)
        first = (contact["display_name"] or "").split(" ")[0]
        values = {
            "username": contact["username"],
            "display_name": contact["display_name"],
            "first_name": first,
            "x_user_id": contact["x_user_id"],
            "contact.username": contact["username"],
            "contact.display_name": contact["display_name"],
            "contact.first_name": first,
        }
        for key, value in (contact["attributes"] or {}).items():
            values[f"contact.attributes.{key}"] = str(value)
        values.update(dict(request.variables))
        try:
            out = templates_domain.render(draft, values)
        except templates_domain.MissingVariables as missing:
            raise InvalidArgument(
                [
                    FieldViolation(f"variables.{n}", "no value given and no fallback")
                    for n in missing.names
                ],
                f"missing values for template variables: {', '.join(missing.names)}",
                reason="MISSING_VARIABLES",
            ) from None
        attachments = []
        if out.card_media_url:
            attachments.append(
                {
                    "url": out.card_media_url,
                    "type": domain.media_type_from_url(out.card_media_url),
                    "alt_text": "",
                }
            )
        qrs = [
            {"label": q.label, "description": q.description, "metadata": q.metadata}
            for q in out.quick_replies
        ]
        buttons = [{"label": b.label, "url": b.url} for b in out.card_buttons]
        kind = {"CARD": "CARD", "QUICK_REPLY": "QUICK_REPLY"}.get(draft.type, "TEXT")
        return out.content, attachments, qrs, buttons, kind

    # ------------------------------------------------------------ live

    async def WatchConversations(
        self, request: C.WatchConversationsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[C.ConversationEvent]:
        merchant = current_principal().merchant_id
        pool = self._deps.pool
        tokens = self._deps.page_tokens
        cursor_filters = ["watch", str(merchant)]
        wanted = {t for t in request.event_types if t}
        account_filter = request.account_id or None
        conv_filter = request.conversation_id or None

        async with use_connection(pool):
            if account_filter and await store.account(merchant, UUID(account_filter)) is None:
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
                force = held_since is not None and (
                    time.monotonic() - held_since >= MAX_HOLD_SECONDS
                )
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
    kind = _KIND_ENUM.get(ev["type"])
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


async def list_conversations_page(
    deps: Deps,
    merchant: UUID,
    *,
    account_id: str,
    status: int,
    assignee: str | None,
    contact_id: str,
    updated_after: datetime | None,
    page_size: int,
    page_token: str,
) -> C.ListConversationsResponse:
    """One page of conversations, newest activity first (shared with
    ContactsService.ListContactConversations)."""
    tokens = deps.page_tokens
    filters = [
        "conversations",
        str(merchant),
        account_id,
        status,
        assignee,
        contact_id,
        updated_after.isoformat() if updated_after else "",
    ]
    after = decode_time_cursor(tokens, page_token, filters)
    size = effective_page_size(page_size)
    rows = await store.list_page(
        merchant,
        account_id=UUID(account_id) if account_id else None,
        status=STATUS_TO_DB.get(status),
        assignee=assignee,
        contact_id=UUID(contact_id) if contact_id else None,
        updated_after=updated_after,
        after=after,
        limit=size + 1,
    )
    page, next_token = time_page(tokens, rows, size, filters, time_key="activity_at")
    return C.ListConversationsResponse(
        conversations=[conversation_to_proto(r) for r in page], next_page_token=next_token
    )


async def wake_snoozed_conversations(deps: Deps) -> float:
    """Background loop: reopen SNOOZED conversations whose time has come, in batches
    claimed with SKIP LOCKED (any number of workers), each with a
    ``conversation.reopened`` event. Returns the seconds to sleep: until the next
    snooze is due, at most 30."""
    async with use_connection(deps.pool) as conn:
        while True:
            async with conn.transaction():
                woken = await store.wake_due_snoozed()
                for r in woken:
                    await append_event(
                        r["merchant_id"],
                        "conversation.reopened",
                        r["id"],
                        _payload(
                            r,
                            previous_status=domain.SNOOZED,
                            status=domain.OPEN,
                            cause="snooze_expired",
                        ),
                    )
            if len(woken) < 200:
                break
        due = await store.next_snooze_due()
    if due is None:
        return 30.0
    return max(0.05, min(30.0, (due - datetime.now(UTC)).total_seconds()))
