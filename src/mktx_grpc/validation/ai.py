"""Validation rules for AIService requests (run by the validation interceptor; every
violation of a request is reported together)."""

from __future__ import annotations

from typing import Any

from mktx.v1 import ai_pb2

from ..core.errors import FieldViolation
from ..domain import ai as domain
from ..mapping.ai import UPDATABLE
from . import rules

A = ai_pb2

MAX_MESSAGE = 10_000
MAX_REASON = 500
MAX_USER_ID = 200
MAX_ETAG = 64
MAX_INTENTS = 50
MAX_EXAMPLES = 50
MAX_SLOTS = 20
MAX_KEYWORDS = 50
MIN_SESSION = 60
MAX_SESSION = 7 * 24 * 3600


def _string(
    value: str, field: str, max_len: int, *, required: bool = False
) -> list[FieldViolation]:
    if "\x00" in value:
        return [FieldViolation(field, "must not contain NUL characters")]
    if required and not value.strip():
        return [FieldViolation(field, "is required")]
    if len(value) > max_len:
        return [FieldViolation(field, f"must be at most {max_len:,} characters")]
    return []


def _target(req: Any) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    if req.conversation_id:
        v += rules.uuid_field(req.conversation_id, "conversation_id")
        if req.account_id or req.contact_id:
            v.append(
                FieldViolation(
                    "conversation_id", "give conversation_id, or account_id with contact_id"
                )
            )
    else:
        if not req.account_id and not req.contact_id:
            v.append(
                FieldViolation("conversation_id", "is required (or account_id with contact_id)")
            )
        else:
            v += rules.uuid_field(req.account_id, "account_id")
            v += rules.uuid_field(req.contact_id, "contact_id")
    v += _string(req.text, "text", MAX_MESSAGE, required=True)
    return v


def process_message(req: Any) -> list[FieldViolation]:
    return _target(req)


def get_conversation_context(req: A.GetConversationContextRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.conversation_id, "conversation_id")
    if req.message_limit < 0:
        v.append(FieldViolation("message_limit", "must not be negative"))
    return v


def escalate_conversation(req: A.EscalateConversationRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.conversation_id, "conversation_id")
    v += _string(req.reason, "reason", MAX_REASON, required=True)
    v += _string(req.assignee_user_id, "assignee_user_id", MAX_USER_ID)
    return v


def _intents(intents: Any, field: str) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    if len(intents) > MAX_INTENTS:
        return [FieldViolation(field, f"at most {MAX_INTENTS} intents")]
    names: set[str] = set()
    for i, intent in enumerate(intents):
        p = f"{field}[{i}]"
        if not domain.NAME_RE.match(intent.name):
            v.append(FieldViolation(f"{p}.name", "must be 1 to 64 characters of [a-z0-9_]"))
        elif intent.name in names:
            v.append(FieldViolation(f"{p}.name", "is not unique"))
        names.add(intent.name)
        v += _string(intent.description, f"{p}.description", 500)
        if len(intent.examples) > MAX_EXAMPLES:
            v.append(FieldViolation(f"{p}.examples", f"at most {MAX_EXAMPLES} examples"))
        else:
            for j, ex in enumerate(intent.examples):
                v += _string(ex, f"{p}.examples[{j}]", 500, required=True)
        if len(intent.slots) > MAX_SLOTS:
            v.append(FieldViolation(f"{p}.slots", f"at most {MAX_SLOTS} slots"))
            continue
        slot_names: set[str] = set()
        for j, slot in enumerate(intent.slots):
            sp = f"{p}.slots[{j}]"
            if not domain.NAME_RE.match(slot.name):
                v.append(FieldViolation(f"{sp}.name", "must be 1 to 64 characters of [a-z0-9_]"))
            elif slot.name in slot_names:
                v.append(FieldViolation(f"{sp}.name", "is not unique within the intent"))
            slot_names.add(slot.name)
            v += rules.enum_field(slot.type, f"{sp}.type", A.AISlotType, required=False)
            v += _string(slot.prompt, f"{sp}.prompt", 500)
    return v


def update_ai_settings(req: A.UpdateAISettingsRequest) -> list[FieldViolation]:
    paths = list(req.update_mask.paths)
    v = rules.mask_paths(req.update_mask, UPDATABLE, required=True)
    v += _string(req.etag, "etag", MAX_ETAG)
    s = req.settings
    f = "settings."
    if "model" in paths:
        v += _string(s.model, f + "model", 100, required=True)
    if "temperature" in paths and not 0.0 <= s.temperature <= 2.0:
        v.append(FieldViolation(f + "temperature", "must be between 0 and 2"))
    if "max_tokens" in paths and not 1 <= s.max_tokens <= 4096:
        v.append(FieldViolation(f + "max_tokens", "must be between 1 and 4,096"))
    if "escalation_threshold" in paths and not 0.0 <= s.escalation_threshold <= 1.0:
        v.append(FieldViolation(f + "escalation_threshold", "must be between 0 and 1"))
    if "system_prompt" in paths:
        v += _string(s.system_prompt, f + "system_prompt", 10_000)
    if "handoff_message" in paths:
        v += _string(s.handoff_message, f + "handoff_message", 1_000)
    if "after_hours_message" in paths:
        v += _string(s.after_hours_message, f + "after_hours_message", 1_000)
    if "escalation_keywords" in paths:
        if len(s.escalation_keywords) > MAX_KEYWORDS:
            v.append(FieldViolation(f + "escalation_keywords", f"at most {MAX_KEYWORDS}"))
        else:
            for i, kw in enumerate(s.escalation_keywords):
                v += _string(kw, f"{f}escalation_keywords[{i}]", 100, required=True)
    if "intents" in paths:
        v += _intents(s.intents, f + "intents")
    if "handoff_intents" in paths:
        if len(s.handoff_intents) > MAX_INTENTS:
            v.append(FieldViolation(f + "handoff_intents", f"at most {MAX_INTENTS}"))
        else:
            for i, name in enumerate(s.handoff_intents):
                if not domain.NAME_RE.match(name):
                    v.append(
                        FieldViolation(
                            f"{f}handoff_intents[{i}]", "must be 1 to 64 characters of [a-z0-9_]"
                        )
                    )
    if "daily_token_budget" in paths and s.daily_token_budget < 0:
        v.append(FieldViolation(f + "daily_token_budget", "must not be negative"))
    if "session_timeout" in paths:
        d = s.session_timeout
        if d.nanos != 0 or not MIN_SESSION <= d.seconds <= MAX_SESSION:
            v.append(
                FieldViolation(f + "session_timeout", "must be whole seconds, 1 minute to 7 days")
            )
    return v
