"""Proto ⇄ domain for the AI assistant: settings (with the update mask), the
processing outcome, and the conversation context."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from mktx.v1 import ai_pb2

from ..domain import ai as domain
from ..store import Row, etag_of
from .common import ts
from .conversations import message_to_proto

A = ai_pb2


def _ts(value: datetime) -> Timestamp:
    out = ts(value)
    assert out is not None
    return out


UPDATABLE = (
    "enabled",
    "model",
    "temperature",
    "max_tokens",
    "escalation_threshold",
    "system_prompt",
    "business_hours_aware",
    "escalation_keywords",
    "handoff_message",
    "after_hours_message",
    "intents",
    "handoff_intents",
    "daily_token_budget",
    "session_timeout",
    "moderation_enabled",
)

SLOT_TYPE_TO_DOMAIN: dict[int, str] = {
    A.AI_SLOT_TYPE_UNSPECIFIED: "text",
    A.AI_SLOT_TYPE_TEXT: "text",
    A.AI_SLOT_TYPE_NUMBER: "number",
    A.AI_SLOT_TYPE_EMAIL: "email",
    A.AI_SLOT_TYPE_PHONE: "phone",
    A.AI_SLOT_TYPE_DATE: "date",
    A.AI_SLOT_TYPE_ORDER_ID: "order_id",
}
SLOT_TYPE_FROM_DOMAIN: dict[str, Any] = {
    v: k for k, v in SLOT_TYPE_TO_DOMAIN.items() if k != A.AI_SLOT_TYPE_UNSPECIFIED
}


def reason_to_proto(reason: str) -> Any:
    if not reason:
        return A.ESCALATION_REASON_UNSPECIFIED
    try:
        return A.EscalationReason.Value(f"ESCALATION_REASON_{reason}")
    except ValueError:
        return A.ESCALATION_REASON_CANNOT_ANSWER


def intent_to_proto(i: domain.IntentDef) -> A.AIIntent:
    return A.AIIntent(
        name=i.name,
        description=i.description,
        examples=list(i.examples),
        slots=[
            A.AISlot(
                name=s.name,
                type=SLOT_TYPE_FROM_DOMAIN.get(s.type, A.AI_SLOT_TYPE_TEXT),
                required=s.required,
                prompt=s.prompt,
            )
            for s in i.slots
        ],
    )


def intent_from_proto(i: A.AIIntent) -> domain.IntentDef:
    return domain.IntentDef(
        name=i.name,
        description=i.description,
        examples=tuple(i.examples),
        slots=tuple(
            domain.SlotDef(
                name=s.name,
                type=SLOT_TYPE_TO_DOMAIN.get(s.type, "text"),
                required=s.required,
                prompt=s.prompt,
            )
            for s in i.slots
        ),
    )


def settings_to_proto(merchant_id: Any, s: domain.Settings) -> A.AISettings:
    out = A.AISettings(
        enabled=s.enabled,
        model=s.model,
        temperature=s.temperature,
        max_tokens=s.max_tokens,
        escalation_threshold=s.escalation_threshold,
        system_prompt=s.system_prompt,
        business_hours_aware=s.business_hours_aware,
        escalation_keywords=list(s.escalation_keywords),
        handoff_message=s.handoff_message,
        after_hours_message=s.after_hours_message,
        intents=[intent_to_proto(i) for i in s.effective_intents],
        handoff_intents=list(s.effective_handoff_intents),
        daily_token_budget=s.daily_token_budget,
        session_timeout=Duration(seconds=s.session_timeout_seconds),
        moderation_enabled=s.moderation_enabled,
        etag=etag_of(merchant_id, s.version),
    )
    if s.updated_at is not None:
        out.update_time.CopyFrom(_ts(s.updated_at))
    return out


def changes_from_proto(p: A.AISettings, paths: list[str]) -> dict[str, Any]:
    """The domain fields the mask's ``paths`` set from ``p`` (already validated)."""
    out: dict[str, Any] = {}
    for path in paths:
        if path == "business_hours_aware":
            out["business_hours_aware"] = p.business_hours_aware
        elif path == "escalation_keywords":
            out["escalation_keywords"] = tuple(k.strip() for k in p.escalation_keywords)
        elif path == "intents":
            out["intents"] = tuple(intent_from_proto(i) for i in p.intents)
        elif path == "handoff_intents":
            out["handoff_intents"] = tuple(p.handoff_intents)
        elif path == "session_timeout":
            out["session_timeout_seconds"] = int(p.session_timeout.seconds)
        elif path in ("temperature", "escalation_threshold"):
            out[path] = round(float(getattr(p, path)), 4)
        else:
            out[path] = getattr(p, path)
    return out


def outcome_to_proto(o: Any) -> A.ProcessMessageResponse:
    latency = Duration()
    latency.FromNanoseconds(int(o.latency * 1e9))
    return A.ProcessMessageResponse(
        conversation_id=str(o.conversation_id) if o.conversation_id else "",
        intent=o.intent,
        confidence=o.confidence,
        slots=dict(o.slots),
        response_text=o.reply,
        requires_escalation=o.escalate,
        escalation_reason=reason_to_proto(o.reason if o.escalate else ""),
        escalation_detail=o.detail,
        within_business_hours=o.within_business_hours,
        model=o.model,
        usage=A.AITokenUsage(
            prompt_tokens=o.prompt_tokens,
            completion_tokens=o.completion_tokens,
            total_tokens=o.prompt_tokens + o.completion_tokens,
        ),
        latency=latency,
        missing_slots=list(o.missing_slots),
        escalation_summary=o.summary if o.escalate else "",
    )


def context_to_proto(
    conv: Row, session_row: Row | None, messages: list[Row]
) -> A.ConversationContext:
    session = domain.session_from_row(session_row)
    out = A.ConversationContext(
        conversation_id=str(conv["id"]),
        contact_id=str(conv["contact_id"]),
        recent_messages=[message_to_proto(m) for m in messages],
        slots=dict(session.slots),
        summary=session.summary,
        escalated=bool(conv.get("escalated")),
        total_usage=A.AITokenUsage(
            prompt_tokens=session.prompt_tokens,
            completion_tokens=session.completion_tokens,
            total_tokens=session.prompt_tokens + session.completion_tokens,
        ),
    )
    for d in session.intents[:50]:
        item = out.detected_intents.add(
            intent=str(d.get("intent", "")), confidence=float(d.get("confidence", 0.0))
        )
        if d.get("at"):
            item.detect_time.CopyFrom(_ts(datetime.fromisoformat(d["at"])))
    if session_row is not None and session_row.get("summary_updated_at"):
        out.summary_update_time.CopyFrom(_ts(session_row["summary_updated_at"]))
    s = out.session
    s.current_intent = session.current_intent
    s.missing_slots.extend(session.missing_slots)
    for c in session.context:
        s.context_items.add(role=c.role, text=c.text).create_time.CopyFrom(_ts(c.at))
    if session.expires_at is not None:
        s.expire_time.CopyFrom(_ts(session.expires_at))
    if session.started_at is not None and session_row is not None:
        s.start_time.CopyFrom(_ts(session.started_at))
    return out
