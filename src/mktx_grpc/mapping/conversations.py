"""Proto ⇄ domain and row conversions for conversations (shared by the servicer, validation and
other modules that need them)."""

from __future__ import annotations

from typing import Any

from mktx.v1 import common_pb2, conversations_pb2

from ..domain import conversations as domain
from ..store import Row, etag_of
from .common import ts

C = conversations_pb2

STATUS_TO_DB: dict[Any, str] = {
    C.CONVERSATION_STATUS_OPEN: domain.OPEN,
    C.CONVERSATION_STATUS_PENDING: domain.PENDING,
    C.CONVERSATION_STATUS_SNOOZED: domain.SNOOZED,
    C.CONVERSATION_STATUS_CLOSED: domain.CLOSED,
}

STATUS_FROM_DB: dict[str, Any] = {v: k for k, v in STATUS_TO_DB.items()}


def enum_value(enum: Any, prefix: str, value: Any) -> Any:
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


def attachment_to_proto(a: Any) -> common_pb2.MediaAttachment:
    if not isinstance(a, dict):
        return common_pb2.MediaAttachment()
    kind = domain.media_kind(str(a.get("media_type") or "")) or a.get("type")
    return common_pb2.MediaAttachment(
        url=str(a.get("url") or ""),
        type=enum_value(common_pb2.MediaType, "MEDIA_TYPE_", kind),
        x_media_id=str(a.get("x_media_id") or a.get("media_id") or ""),
        alt_text=str(a.get("alt_text") or ""),
    )


def origin_of(row: Row) -> Any:
    """The stored MessageOrigin name (older rows may say APP: refined by who sent it)."""
    origin = row.get("origin") or ("CONTACT" if row["direction"] == "INBOUND" else "APP")
    if origin != "APP":
        return enum_value(C.MessageOrigin, "MESSAGE_ORIGIN_", origin)
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
        direction=enum_value(C.MessageDirection, "MESSAGE_DIRECTION_", row["direction"]),
        type=enum_value(C.MessageType, "MESSAGE_TYPE_", row["type"]),
        text=row["text"],
        attachments=[attachment_to_proto(a) for a in row["attachments"] or []],
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
        origin=origin_of(row),
        is_from_bot=row["is_from_bot"],
        sender_user_id=row["sender_user_id"],
        campaign_id=str(opt("campaign_id") or ""),
        flow_id=str(opt("flow_id") or ""),
        x_message_id=row["x_event_id"] or "",
        sent_time=ts(row["sent_at"]),
        delivery_state=enum_value(
            C.MessageDeliveryState, "MESSAGE_DELIVERY_STATE_", row["delivery_state"]
        ),
        deliver_time=ts(opt("delivered_at")),
        read_time=ts(opt("read_at")),
        failure_reason=row["failure_reason"],
        create_time=ts(row["created_at"]),
    )


def event_payload(row: Row, **extra: Any) -> dict[str, Any]:
    return {
        "conversation_id": str(row["id"]),
        "account_id": str(row["account_id"]),
        "contact_id": str(row["contact_id"]),
        **extra,
    }


KIND_ENUM: dict[str, Any] = {
    k: C.ConversationEventType.Value(f"CONVERSATION_EVENT_TYPE_{v}")
    for k, v in domain.WATCH_KINDS.items()
}
