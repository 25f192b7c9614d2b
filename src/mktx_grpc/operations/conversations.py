"""Conversation operations shared by servicers, and the agent's send path.

``send_message`` is SendMessage's path, declared ``calls_out`` in the method table
(no connection is held while X is called): in short transactions of its own it
stores the outbound messages (PENDING) before calling X, then records each as SENT
with X's event id, or every unsent one as FAILED with the reason when X refuses, so
a refused DM stays visible in the inbox while the RPC returns the mapped error. A
DM whose outcome X left unknown (a 5xx, a timeout, a dropped connection) is never
reported FAILED: it is looked up at X first (see :func:`_resolve_unclear`).
Media are uploaded first, outside any transaction: bad media is INVALID_ARGUMENT and
nothing is stored. ``request_id`` makes a retried send return the first result.

``list_conversations_page`` is one page of the inbox, for ConversationsService and
ContactsService (ListContactConversations) alike; it runs on the caller's unit of
work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from mktx.v1 import common_pb2, conversations_pb2

from ..core.context import current_principal
from ..core.db import use_connection
from ..core.errors import DomainError, FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from ..core.pagination import decode_time_cursor, effective_page_size, time_page
from ..deps import Deps
from ..domain import conversations as domain
from ..domain import templates as templates_domain
from ..mapping.conversations import STATUS_TO_DB, conversation_to_proto, event_payload
from ..store import Row
from ..store import accounts as accounts_store
from ..store import conversations as store
from ..store import outbound as outbound_store
from ..store import templates as templates_store
from ..store.events import append_event
from ..store.idempotency import create_once
from ..worker import ledger
from ..worker.ledger import Outcome, Resolution
from ..x.access import SentDm, UpstreamNotSent, UpstreamOutcomeUnknown

C = conversations_pb2


@dataclass(frozen=True)
class SentMessages:
    """What a send stored: the conversation (None if it vanished) and its messages."""

    conversation: Row | None
    messages: list[Row]


async def _load(merchant: UUID, conversation_id: str) -> Row:
    row = await store.get(merchant, UUID(conversation_id))
    if row is None:
        raise NotFound("conversation", conversation_id)
    return row


async def _lock(merchant: UUID, conversation_id: str) -> Row:
    row = await store.lock(merchant, UUID(conversation_id))
    if row is None:
        raise NotFound("conversation", conversation_id)
    return row


async def send_message(deps: Deps, request: C.SendMessageRequest) -> SentMessages:
    principal = current_principal()
    merchant = principal.merchant_id
    request_id = request.request_id or None

    async with use_connection(deps.pool):
        if request_id:
            previous = await store.messages_by_request(merchant, request_id)
            if previous:
                return await _sent_rows(merchant, previous)

        # Resolve whom to send to, and check everything before anything is stored.
        if request.WhichOneof("target") == "conversation_id":
            conv = await _load(merchant, request.conversation_id)
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
        account = await accounts_store.get(merchant, account_id)
        if contact is None or account is None:
            raise NotFound("conversation", request.conversation_id or request.contact_id)
        if account["status"] != "ACTIVE":
            raise FailedPrecondition(
                f"the account is {account['status']}, not ACTIVE",
                reason="ACCOUNT_NOT_ACTIVE",
                metadata={"account_id": str(account_id)},
            )

        text, attachments, quick_replies, card_buttons, msg_type = await _content(
            merchant, request, contact
        )

    # Upload media first (outside any transaction): bad media is INVALID_ARGUMENT
    # and nothing is stored.
    media_ids: list[str] = []
    for i, a in enumerate(attachments):
        media_id = await deps.xaccess.upload_media_from_url(
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
                    event_payload(conv, actor_user_id=principal.user_id),
                )
        else:
            locked = await _lock(merchant, str(conv["id"]))
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
                event_payload(
                    conv,
                    message_id=str(r["id"]),
                    direction="OUTBOUND",
                    actor_user_id=principal.user_id,
                ),
            )
        return conv["id"], (True, conv, rows)

    async def load(_conversation_id: UUID) -> tuple[bool, Row, list[Row]]:
        return False, {}, await store.messages_by_request(merchant, request_id or "")

    async with use_connection(deps.pool, transaction=True):
        fresh, conv_row, rows = await create_once(
            merchant, "send_message", request_id or "", create, load
        )
    if not fresh:  # a concurrent retry stored them first
        async with use_connection(deps.pool):
            return await _sent_rows(merchant, rows)

    sent: list[Row] = []
    for i, row in enumerate(rows):
        dm_text, dm_media = dms[i]
        try:
            result = await deps.xaccess.send_dm(
                account, contact["x_user_id"], text=dm_text, media_id=dm_media
            )
        except Exception as exc:
            if ledger.classify_send_error(exc).kind is not Outcome.UNCLEAR:
                reason = exc.message if isinstance(exc, DomainError) else "internal error"
                await _fail(deps, merchant, conv_row, rows[i:], reason, principal.user_id)
                raise
            # X may have taken it: never answer FAILED for a DM that may be out.
            result = await _resolve_unclear(
                deps, merchant, account, contact, conv_row, rows[i:], dm_text, principal.user_id
            )
        async with use_connection(deps.pool, transaction=True):
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
                event_payload(
                    conv_row,
                    message_id=str(row["id"]),
                    x_event_id=result.dm_event_id,
                    actor_user_id=principal.user_id,
                ),
            )
        sent.append(updated or row)
    async with use_connection(deps.pool):
        return await _sent_rows(merchant, sent)


async def _resolve_unclear(
    deps: Deps,
    merchant: UUID,
    account: Row,
    contact: Row,
    conv: Row,
    rows: list[Row],
    text: str,
    user_id: str,
) -> SentDm:
    """The send of ``rows[0]`` ended without an answer X vouches for: look it up at X
    before answering (``ledger.resolve_unclear_dm``). Found: it was sent (returns it).
    Not there: the message and the rest become FAILED "not sent" and the call is
    UNAVAILABLE (``x_outcome=not_sent``: safe to retry). X cannot tell now: the
    message stays PENDING with the reason, the send ledger's recovery settles it once
    X can (it is never resent), the rest are FAILED, and the call is UNAVAILABLE
    (``x_outcome=unknown``)."""
    row = rows[0]
    async with use_connection(deps.pool):
        known = await outbound_store.sent_event_ids(
            merchant, contact["id"], row["created_at"] - timedelta(minutes=5)
        )
    res = await ledger.resolve_unclear_dm(
        deps.xaccess,
        account,
        contact["x_user_id"],
        text,
        armed_at=row["created_at"],
        known_event_ids=known,
    )
    if res.kind is Resolution.FOUND:
        assert res.event is not None
        return SentDm(res.event.id, res.event.dm_conversation_id or "")
    if res.kind is Resolution.NOT_SENT:
        reason = "not sent: X's answer was lost and X does not have it (safe to retry)"
        await _fail(deps, merchant, conv, rows, reason, user_id)
        raise UpstreamNotSent("X is unavailable; the message was not sent, try again later")
    reason = f"{ledger.RESOLVING}: {res.reason}"
    async with use_connection(deps.pool, transaction=True):
        await outbound_store.note_pending_message(merchant, row["id"], reason)
        wait = (res.retry_at or datetime.now(UTC) + ledger.RETRY_LOOKUP) - datetime.now(UTC)
        await outbound_store.adopt_unclear_send(
            merchant,
            account_id=conv["account_id"],
            contact_id=contact["id"],
            conversation_id=conv["id"],
            message_id=row["id"],
            text=text,
            armed_at=row["created_at"],
            reason=reason,
            lease=max(wait, timedelta(seconds=1)),
        )
    if rows[1:]:
        why = "not sent: an earlier DM's outcome at X is unknown"
        await _fail(deps, merchant, conv, rows[1:], why, user_id)
    raise UpstreamOutcomeUnknown(
        "X's answer was lost and X cannot tell yet whether the message went out; it stays"
        " PENDING until X can (do not resend it)"
    )


async def _fail(
    deps: Deps, merchant: UUID, conv: Row, rows: list[Row], reason: str, user_id: str
) -> None:
    async with use_connection(deps.pool, transaction=True):
        for i, r in enumerate(rows):
            why = reason if i == 0 else f"not sent: an earlier DM failed ({reason})"
            if await store.mark_failed(merchant, r["id"], why) is not None:
                await append_event(
                    merchant,
                    "message.failed",
                    conv["id"],
                    event_payload(conv, message_id=str(r["id"]), reason=why, actor_user_id=user_id),
                )


async def _sent_rows(merchant: UUID, rows: list[Row]) -> SentMessages:
    conv = await store.get(merchant, rows[0]["conversation_id"])
    fresh = [await store.get_message(merchant, r["id"]) or r for r in rows]
    return SentMessages(conv, fresh)


async def _content(
    merchant: UUID, request: C.SendMessageRequest, contact: Row
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
    # The contact's variables (the same set campaigns and flows use); the request's
    # own variables win for this one send.
    values = templates_domain.contact_variables(contact)
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
