"""AIService: proto in, operation or store call, proto out. No SQL here.

ProcessMessage and StreamProcessMessage are operations (``operations/ai.py``): they
call the model between short transactions, so they hold no connection while it
answers. The settings RPCs, GetConversationContext and EscalateConversation run on
the unit of work's connection. Auto-reply is ``worker/auto_reply.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID

import grpc

from mktx.v1 import ai_pb2, ai_pb2_grpc, conversations_pb2

from ..core.context import current_principal
from ..core.errors import FieldViolation, InvalidArgument, NotFound
from ..deps import Deps
from ..domain import ai as domain
from ..mapping import ai as mapping
from ..mapping.conversations import conversation_to_proto
from ..operations import ai as ops
from ..store import ai as store
from ..store import check_etag

A = ai_pb2

DEFAULT_MESSAGE_LIMIT = 20
MAX_MESSAGE_LIMIT = 100


def _target(req: A.ProcessMessageRequest | A.StreamProcessMessageRequest) -> dict[str, UUID | None]:
    if req.conversation_id:
        return {"conversation_id": UUID(req.conversation_id)}
    return {
        "conversation_id": None,
        "account_id": UUID(req.account_id),
        "contact_id": UUID(req.contact_id),
    }


class AIServicer(ai_pb2_grpc.AIServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def ProcessMessage(
        self, request: A.ProcessMessageRequest, context: grpc.aio.ServicerContext
    ) -> A.ProcessMessageResponse:
        out = await ops.process_message(
            self._deps,
            current_principal().merchant_id,
            text=request.text,
            dry_run=request.dry_run,
            **_target(request),  # type: ignore[arg-type]
        )
        return mapping.outcome_to_proto(out)

    async def StreamProcessMessage(
        self, request: A.StreamProcessMessageRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[A.StreamProcessMessageResponse]:
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        async def on_delta(piece: str) -> None:
            await queue.put(piece)

        async def run() -> ops.Outcome:
            try:
                return await ops.process_message(
                    self._deps,
                    current_principal().merchant_id,
                    text=request.text,
                    dry_run=request.dry_run,
                    on_delta=on_delta,
                    **_target(request),  # type: ignore[arg-type]
                )
            finally:
                await queue.put(None)

        task = asyncio.create_task(run())
        try:
            while (piece := await queue.get()) is not None:
                yield A.StreamProcessMessageResponse(text_delta=piece)
            out = await task
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        yield A.StreamProcessMessageResponse(result=mapping.outcome_to_proto(out))

    async def GetConversationContext(
        self, request: A.GetConversationContextRequest, context: grpc.aio.ServicerContext
    ) -> A.ConversationContext:
        merchant = current_principal().merchant_id
        conv_id = UUID(request.conversation_id)
        conv = await store.conversation_facts(merchant, conv_id)
        if conv is None:
            raise NotFound("conversation", request.conversation_id)
        limit = min(request.message_limit or DEFAULT_MESSAGE_LIMIT, MAX_MESSAGE_LIMIT)
        session = await store.get_session(merchant, conv_id)
        messages = await store.recent_messages(merchant, conv_id, limit)
        return mapping.context_to_proto(conv, session, messages)

    async def EscalateConversation(
        self, request: A.EscalateConversationRequest, context: grpc.aio.ServicerContext
    ) -> conversations_pb2.Conversation:
        merchant = current_principal().merchant_id
        conv_id = UUID(request.conversation_id)
        conv = await store.conversation_facts(merchant, conv_id)
        if conv is None:
            raise NotFound("conversation", request.conversation_id)
        settings = domain.settings_from_row(await store.get_settings(merchant))
        session = domain.session_from_row(await store.get_session(merchant, conv_id))
        handoff = ""
        # Escalating an escalated conversation only updates the reason and assignee:
        # the contact was told already.
        if request.notify_contact and not conv["escalated"]:
            sched = ops.business_schedule(conv["account_settings"] or {})
            within = sched is None or sched.is_open(datetime.now(UTC))
            handoff = ops.holding_reply(settings, within)
        last = await store.latest_inbound_message(merchant, conv_id)
        summary = domain.template_summary(
            intent=session.current_intent or None,
            confidence=1.0,
            slots=session.slots,
            text=last["text"] if last else request.reason,
            reason=domain.MANUAL,
        )
        row = await ops.escalate(
            merchant,
            conv_id,
            reason=domain.MANUAL,
            detail=request.reason,
            summary=summary,
            assignee=request.assignee_user_id,
            handoff_text=handoff,
            handoff_ref=f"handoff:{conv_id}:{datetime.now(UTC).isoformat()}",
            requested_by=current_principal().user_id or "agent",
        )
        fresh = await store.conversation_facts(merchant, conv_id)
        return conversation_to_proto(fresh or row)

    async def GetAISettings(
        self, request: A.GetAISettingsRequest, context: grpc.aio.ServicerContext
    ) -> A.AISettings:
        merchant = current_principal().merchant_id
        return mapping.settings_to_proto(
            merchant, domain.settings_from_row(await store.get_settings(merchant))
        )

    async def UpdateAISettings(
        self, request: A.UpdateAISettingsRequest, context: grpc.aio.ServicerContext
    ) -> A.AISettings:
        merchant = current_principal().merchant_id
        row = await store.get_settings(merchant, for_update=True)
        current = domain.settings_from_row(row)
        if request.etag:
            check_etag(request.etag, {"id": merchant, "version": current.version}, "AI settings")
        paths = list(dict.fromkeys(request.update_mask.paths))
        new = domain.with_changes(current, mapping.changes_from_proto(request.settings, paths))
        names = {i.name for i in new.effective_intents}
        bad = [
            FieldViolation(f"settings.handoff_intents[{i}]", "is not one of the intents")
            for i, n in enumerate(new.handoff_intents)
            if n not in names
        ]
        if bad:
            raise InvalidArgument(bad)
        saved = await store.save_settings(merchant, new)
        return mapping.settings_to_proto(merchant, domain.settings_from_row(saved))
