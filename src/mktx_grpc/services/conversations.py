"""ConversationsService: proto in, domain call, proto out. No SQL here.

SendMessage calls X: its path is ``operations.conversations.send_message`` (short
transactions of its own around the X call). WatchConversations' stream is
``operations.watch``; it borrows pooled connections only while it reads.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import grpc

from mktx.v1 import conversations_pb2_grpc

from ..core import prototime
from ..core.context import current_principal
from ..core.errors import (
    InvalidArgument,
    NotFound,
)
from ..core.pagination import decode_time_cursor, effective_page_size, time_page
from ..deps import Deps
from ..domain import conversations as domain
from ..mapping.common import from_ts
from ..mapping.conversations import (
    C,
    conversation_to_proto,
    event_payload,
    message_to_proto,
)
from ..operations.conversations import list_conversations_page, send_message
from ..operations.watch import watch_conversations
from ..store import Row, check_etag
from ..store import conversations as store
from ..store.events import append_event

log = logging.getLogger(__name__)


class ConversationsServicer(conversations_pb2_grpc.ConversationsServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    # ------------------------------------------------------------ helpers

    async def _load(self, merchant: UUID, conversation_id: str) -> Row:
        if self._deps.settings.coalesce_reads:
            row = await store.read_one(merchant, UUID(conversation_id))
        else:
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
            merchant, domain.EVENT_FOR_STATUS[target], row["id"], event_payload(row, **extra)
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
                from_ts(request.update_time_after, "update_time_after")
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
            field = "snooze_until_time"
            until = from_ts(request.snooze_until_time, field)
        else:
            field = "snooze_duration"
            until = prototime.add(
                now, prototime.to_timedelta(request.snooze_duration, field), field
            )
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
                event_payload(
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
                event_payload(
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
                event_payload(row, actor_user_id=principal.user_id, messages_read=changed),
            )
        return conversation_to_proto(await self._load(merchant, request.id))

    # ------------------------------------------------------------ sending

    async def SendMessage(
        self, request: C.SendMessageRequest, context: grpc.aio.ServicerContext
    ) -> C.SendMessageResponse:
        sent = await send_message(self._deps, request)
        return C.SendMessageResponse(
            conversation=conversation_to_proto(sent.conversation) if sent.conversation else None,
            messages=[message_to_proto(r) for r in sent.messages],
        )

    # ------------------------------------------------------------ live

    def WatchConversations(
        self, request: C.WatchConversationsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[C.ConversationEvent]:
        return watch_conversations(self._deps, request, context)
