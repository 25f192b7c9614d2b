"""Validation rules for ConversationsService requests."""

from __future__ import annotations

from datetime import UTC, datetime

from mktx.v1 import conversations_pb2

from ..core import prototime
from ..core.errors import FieldViolation
from ..domain import conversations as domain
from . import rules

C = conversations_pb2


def list_conversations(req: C.ListConversationsRequest) -> list[FieldViolation]:
    v = rules.page(req)
    v += rules.uuid_field(req.account_id, "account_id", required=False)
    v += rules.uuid_field(req.contact_id, "contact_id", required=False)
    v += rules.enum_field(req.status, "status", C.ConversationStatus, required=False)
    if req.assignee_user_id and req.unassigned:
        v.append(FieldViolation("unassigned", "must not be set together with assignee_user_id"))
    v += rules.text_field(req.assignee_user_id, "assignee_user_id", max_len=domain.MAX_ASSIGNEE)
    return v


def get_conversation(req: C.GetConversationRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.id, "id")
    if req.message_page_size < 0:
        v.append(FieldViolation("message_page_size", "must not be negative"))
    if len(req.message_page_token) > 2048:
        v.append(FieldViolation("message_page_token", "is not a valid page token"))
    return v


def send_message(req: C.SendMessageRequest) -> list[FieldViolation]:
    v = rules.request_id(req.request_id)
    target = req.WhichOneof("target")
    if target is None:
        v.append(FieldViolation("target", "conversation_id or contact_id is required"))
    else:
        v += rules.uuid_field(getattr(req, target), target)
    if len(req.text) > domain.MAX_TEXT:
        v.append(FieldViolation("text", f"must be at most {domain.MAX_TEXT} characters"))
    if req.template_id:
        v += rules.uuid_field(req.template_id, "template_id")
        for name in ("text", "attachments", "quick_replies"):
            if getattr(req, name):
                v.append(FieldViolation(name, "must be empty when template_id is set"))
    elif not req.text.strip() and not req.attachments:
        v.append(FieldViolation("text", "text or attachments are required"))
    if len(req.attachments) > domain.MAX_ATTACHMENTS:
        v.append(FieldViolation("attachments", f"at most {domain.MAX_ATTACHMENTS} attachments"))
    for i, a in enumerate(req.attachments):
        v += rules.https_url(a.url, f"attachments[{i}].url", required=True)
        v += rules.text_field(a.alt_text, f"attachments[{i}].alt_text", max_len=1000)
    if len(req.quick_replies) > domain.MAX_QUICK_REPLIES:
        v.append(FieldViolation("quick_replies", f"at most {domain.MAX_QUICK_REPLIES} options"))
    for i, q in enumerate(req.quick_replies):
        v += rules.text_field(q.label, f"quick_replies[{i}].label", required=True, max_len=36)
        v += rules.text_field(q.description, f"quick_replies[{i}].description", max_len=72)
        v += rules.text_field(q.metadata, f"quick_replies[{i}].metadata", max_len=1000)
    for key, value in req.variables.items():
        if len(value) > domain.MAX_TEXT:
            v.append(FieldViolation(f"variables.{key}", "must be at most 10000 characters"))
    return v


def close_conversation(req: C.CloseConversationRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.id, "id")
    v += rules.text_field(req.reason, "reason", max_len=domain.MAX_CLOSE_REASON)
    return v


def assign_conversation(req: C.AssignConversationRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.id, "id")
    v += rules.text_field(
        req.assignee_user_id, "assignee_user_id", required=True, max_len=domain.MAX_ASSIGNEE
    )
    return v


def snooze_conversation(req: C.SnoozeConversationRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.id, "id")
    which = req.WhichOneof("until")
    now = datetime.now(UTC)
    if which is None:
        v.append(FieldViolation("until", "snooze_until_time or snooze_duration is required"))
    elif which == "snooze_until_time":
        problem = prototime.timestamp_problem(
            req.snooze_until_time.seconds, req.snooze_until_time.nanos
        ) or domain.snooze_problem(prototime.to_datetime(req.snooze_until_time, which), now)
        if problem:
            v.append(FieldViolation("snooze_until_time", problem))
    else:
        bad = prototime.duration_problem(req.snooze_duration.seconds, req.snooze_duration.nanos)
        d = None if bad else prototime.to_timedelta(req.snooze_duration, which)
        if d is None:
            v.append(FieldViolation("snooze_duration", bad))
        elif d.total_seconds() <= 0:
            v.append(FieldViolation("snooze_duration", "must be positive"))
        elif d > domain.MAX_SNOOZE:
            v.append(FieldViolation("snooze_duration", "must be at most 365 days"))
    return v


def watch_conversations(req: C.WatchConversationsRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.account_id, "account_id", required=False)
    v += rules.uuid_field(req.conversation_id, "conversation_id", required=False)
    for i, t in enumerate(req.event_types):
        if t not in C.ConversationEventType.values():
            v.append(FieldViolation(f"event_types[{i}]", "is not a known value"))
    if len(req.cursor) > 1024:
        v.append(FieldViolation("cursor", "is not a valid cursor"))
    return v
