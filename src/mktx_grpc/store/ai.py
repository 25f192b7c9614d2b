"""The AI assistant's data (sql/queries/ai.sql): settings, sessions, daily token
usage, the conversation facts it reads, escalation and the auto-reply queue.

Every function runs on the current connection and takes the merchant id
explicitly, except :func:`claim_replies`, which discovers work for every merchant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from ..domain import ai as domain
from . import Jsonb, Queries, Row, execute, fetch_all, fetch_one

Q = Queries("ai")

#: The NOTIFY channel :func:`enqueue_reply` wakes the auto-reply loop on.
CHANNEL = "mktx_ai_replies"


# ------------------------------------------------------------------ settings


async def get_settings(merchant_id: UUID, *, for_update: bool = False) -> Row | None:
    query = Q.get_settings_for_update if for_update else Q.get_settings
    return await fetch_one(query, {"merchant_id": merchant_id})


async def save_settings(merchant_id: UUID, settings: domain.Settings) -> Row:
    cols = domain.settings_columns(settings)
    cols["intents"] = Jsonb(cols["intents"])
    row = await fetch_one(Q.upsert_settings, {"merchant_id": merchant_id, **cols})
    assert row is not None
    return row


# ------------------------------------------------------------------ sessions


async def get_session(
    merchant_id: UUID, conversation_id: UUID, *, for_update: bool = False
) -> Row | None:
    query = Q.get_session_for_update if for_update else Q.get_session
    return await fetch_one(query, {"merchant_id": merchant_id, "conversation_id": conversation_id})


async def latest_contact_slots(
    merchant_id: UUID, contact_id: UUID, conversation_id: UUID
) -> dict[str, Any]:
    """The slots of the contact's most recent session in another conversation."""
    row = await fetch_one(
        Q.latest_contact_slots,
        {"merchant_id": merchant_id, "contact_id": contact_id, "conversation_id": conversation_id},
    )
    return dict(row["slots"]) if row else {}


def _jsonb(value: Any) -> Jsonb:
    """``value`` as a jsonb parameter written by orjson: the session's plain dicts,
    lists and strings, stored as the same jsonb as json.dumps's text (jsonb keeps no
    spacing), at a fraction of its CPU on every message's session write."""
    return Jsonb(value, dumps=orjson.dumps)


def _session_params(
    merchant_id: UUID,
    conversation_id: UUID,
    contact_id: UUID,
    session: domain.Session,
    summary_updated_at: datetime | None,
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    return {
        "merchant_id": merchant_id,
        "conversation_id": conversation_id,
        "contact_id": contact_id,
        "intents": _jsonb(list(session.intents)),
        "slots": _jsonb(dict(session.slots)),
        "summary": session.summary,
        "summary_updated_at": summary_updated_at,
        "context": _jsonb([c.to_json() for c in session.context]),
        "current_intent": session.current_intent,
        "missing_slots": list(session.missing_slots),
        "session_started_at": session.started_at,
        "last_activity_at": session.last_activity_at,
        "expires_at": session.expires_at,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
    }


async def save_session(
    merchant_id: UUID,
    conversation_id: UUID,
    contact_id: UUID,
    session: domain.Session,
    *,
    summary_updated_at: datetime | None,
    prompt_tokens: int,
    completion_tokens: int,
    with_usage: bool = False,
) -> None:
    """Write ``session`` (the token counts are added to the stored totals) and, with
    ``with_usage`` when tokens were spent, the day's usage as :func:`add_usage` does,
    in one statement: on an autocommit connection the two commit together in one
    round trip (on a transaction's, they are part of it)."""
    params = _session_params(
        merchant_id,
        conversation_id,
        contact_id,
        session,
        summary_updated_at,
        prompt_tokens,
        completion_tokens,
    )
    params["record_usage"] = with_usage and bool(prompt_tokens or completion_tokens)
    await execute(Q.save_session, params)


async def note_escalation(
    merchant_id: UUID, conversation_id: UUID, contact_id: UUID, *, reason: str, summary: str
) -> None:
    await execute(
        Q.note_escalation,
        {
            "merchant_id": merchant_id,
            "conversation_id": conversation_id,
            "contact_id": contact_id,
            "reason": reason,
            "summary": summary,
        },
    )


async def claim_away(
    merchant_id: UUID, conversation_id: UUID, contact_id: UUID, period: str
) -> bool:
    """True the first time the away message is claimed for the closed ``period`` of
    this conversation (the caller then sends it); False when it already went out."""
    row = await fetch_one(
        Q.claim_away,
        {
            "merchant_id": merchant_id,
            "conversation_id": conversation_id,
            "contact_id": contact_id,
            "period": period,
        },
    )
    return row is not None


# ------------------------------------------------------------------ usage


async def add_usage(merchant_id: UUID, prompt_tokens: int, completion_tokens: int) -> None:
    await execute(
        Q.add_usage,
        {
            "merchant_id": merchant_id,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
        },
    )


async def usage_today(merchant_id: UUID) -> int:
    row = await fetch_one(Q.usage_today, {"merchant_id": merchant_id})
    return int(row["total"]) if row else 0


# ------------------------------------------------------------------ conversations


async def conversation_facts(merchant_id: UUID, conversation_id: UUID) -> Row | None:
    """The conversation with its contact's profile (``contact_*``), its account's
    ``account_settings`` and whether a human has replied in it (``human_replied``)."""
    return await fetch_one(
        Q.conversation_facts, {"merchant_id": merchant_id, "conversation_id": conversation_id}
    )


#: The ``ai_settings`` columns :func:`process_facts` reads (as ``st_<column>``).
_SETTINGS_COLUMNS = (
    "enabled",
    "model",
    "temperature",
    "max_tokens",
    "escalation_threshold",
    "system_prompt",
    "respect_business_hours",
    "escalation_keywords",
    "handoff_message",
    "after_hours_message",
    "intents",
    "handoff_intents",
    "daily_token_budget",
    "session_timeout_seconds",
    "moderation_enabled",
    "updated_at",
    "version",
)
#: The ``ai_sessions`` columns :func:`process_facts` reads (as ``ses_<column>``).
_SESSION_COLUMNS = (
    "context",
    "current_intent",
    "missing_slots",
    "slots",
    "intents",
    "summary",
    "session_started_at",
    "last_activity_at",
    "expires_at",
    "escalated",
    "prompt_tokens",
    "completion_tokens",
    "away_sent_for",
)


@dataclass(frozen=True)
class ProcessFacts:
    """What :func:`process_facts` read, split back into its parts."""

    #: The conversation_facts row: the conversation's columns (all None for a
    #: message outside any conversation), contact_*, account_settings, human_replied.
    facts: Row
    #: The ai_settings row (the columns domain.settings_from_row reads); None when
    #: the merchant never stored settings.
    settings: Row | None
    #: The ai_sessions row (the columns domain.session_from_row reads); None when the
    #: conversation has none (always None outside a conversation).
    session: Row | None
    #: The slots of the contact's latest session in another conversation, when this
    #: conversation has no session (empty when none).
    prior_slots: dict[str, Any]
    #: The merchant's tokens of the UTC day.
    used_today: int


def _split(row: Row) -> ProcessFacts:
    settings = {c: row.pop(f"st_{c}") for c in _SETTINGS_COLUMNS}
    ses: Row | None = {c: row.pop(f"ses_{c}") for c in _SESSION_COLUMNS}
    prior = dict(row.pop("prior_slots") or {})
    if not row.pop("ses_found"):
        ses = None
    found = row.pop("st_found")
    used = int(row.pop("used_today"))
    return ProcessFacts(
        facts=row,
        settings=settings if found else None,
        session=ses,
        prior_slots=prior,
        used_today=used,
    )


async def process_facts(
    merchant_id: UUID,
    conversation_id: UUID | None,
    *,
    account_id: UUID | None = None,
    contact_id: UUID | None = None,
) -> ProcessFacts | None:
    """In one query: the conversation's facts (as :func:`conversation_facts`), the
    merchant's settings (as :func:`get_settings`), the session (as
    :func:`get_session`), the contact's prior slots when the conversation has no
    session (as :func:`latest_contact_slots`) and the day's usage (as
    :func:`usage_today`). With ``conversation_id`` None, the same for the contact
    ``contact_id`` of the account ``account_id`` outside any conversation (no
    conversation columns, no session). None when the conversation, or the contact of
    that account, is not the merchant's."""
    row = await fetch_one(
        Q.process_facts,
        {
            "merchant_id": merchant_id,
            "conversation_id": conversation_id,
            "account_id": account_id,
            "contact_id": contact_id,
        },
    )
    return None if row is None else _split(row)


async def contact_facts(merchant_id: UUID, account_id: UUID, contact_id: UUID) -> Row | None:
    return await fetch_one(
        Q.contact_facts,
        {"merchant_id": merchant_id, "account_id": account_id, "contact_id": contact_id},
    )


async def recent_messages(merchant_id: UUID, conversation_id: UUID, limit: int) -> list[Row]:
    return await fetch_all(
        Q.recent_messages,
        {"merchant_id": merchant_id, "conversation_id": conversation_id, "limit": limit},
    )


async def latest_inbound_message(merchant_id: UUID, conversation_id: UUID) -> Row | None:
    return await fetch_one(
        Q.latest_inbound_message, {"merchant_id": merchant_id, "conversation_id": conversation_id}
    )


async def mark_escalated(
    merchant_id: UUID, conversation_id: UUID, *, reason: str, assignee: str
) -> Row | None:
    """Mark the conversation escalated and OPEN (assigned when ``assignee``); None
    when it is CLOSED or missing."""
    return await fetch_one(
        Q.mark_escalated,
        {
            "merchant_id": merchant_id,
            "conversation_id": conversation_id,
            "reason": reason[: domain.MAX_DETAIL],
            "assignee": assignee,
        },
    )


# ------------------------------------------------------------------ auto-reply queue


async def enqueue_reply(
    merchant_id: UUID,
    conversation_id: UUID,
    message_id: UUID,
    *,
    max_age_seconds: float,
    require_auto_reply: bool = True,
    instructions: str = "",
) -> int:
    """Queue an inbound message for the assistant to answer (``worker/auto_reply.py``)
    when its account has ``auto_reply_enabled`` (or whatever the account says, with
    ``require_auto_reply=False``: an automation's ``ai_reply`` step takes the same
    path) and the message is younger than ``max_age_seconds``
    (idempotent per message), waking the loop with ``NOTIFY mktx_ai_replies`` when
    the caller's transaction commits. ``instructions`` are added to the assistant's
    prompt for this message (an ``ai_reply`` step's; a message queued already keeps
    its own). Returns rows queued (0 or 1)."""
    n = await execute(
        Q.enqueue_reply,
        {
            "merchant_id": merchant_id,
            "conversation_id": conversation_id,
            "message_id": message_id,
            "max_age_seconds": max_age_seconds,
            "require_auto_reply": require_auto_reply,
            "instructions": instructions[: domain.MAX_INSTRUCTIONS],
        },
    )
    if n:
        await execute(Q.notify_replies, {"merchant_id": merchant_id})
    return n


async def claim_replies(limit: int, lease_seconds: float) -> list[Row]:
    """Cross-merchant: claim due queue rows (one per conversation at a time)."""
    return await fetch_all(Q.claim_replies, {"limit": limit, "lease_seconds": lease_seconds})


async def finish_reply(merchant_id: UUID, reply_id: int, outcome: str, detail: str = "") -> bool:
    """Record a claimed row's outcome (False: its lease was lost). Automation
    executions parked on the row's message (an ``ai_reply`` step) are made due in
    the same statement, and the step runners woken when the transaction commits."""
    row = await fetch_one(
        Q.finish_reply,
        {"merchant_id": merchant_id, "id": reply_id, "outcome": outcome, "detail": detail[:500]},
    )
    assert row is not None
    if row["woken"]:
        await execute(Q.notify_automation, {"merchant_id": merchant_id})
    return int(row["finished"]) == 1


async def get_reply_for_message(merchant_id: UUID, message_id: UUID) -> Row | None:
    """The queue row of an inbound message (one per message), if any."""
    return await fetch_one(
        Q.get_reply_for_message, {"merchant_id": merchant_id, "message_id": message_id}
    )


async def retry_reply(merchant_id: UUID, reply_id: int, delay_seconds: float, detail: str) -> None:
    await execute(
        Q.retry_reply,
        {
            "merchant_id": merchant_id,
            "id": reply_id,
            "delay_seconds": delay_seconds,
            "detail": detail[:500],
        },
    )


async def get_reply(merchant_id: UUID, reply_id: int) -> dict[str, Any] | None:
    return await fetch_one(Q.get_reply, {"merchant_id": merchant_id, "id": reply_id})


async def purge_done_replies(keep_seconds: float, limit: int = 1000) -> int:
    """Cross-merchant: delete answered queue rows older than ``keep_seconds``."""
    return await execute(Q.purge_done_replies, {"keep_seconds": keep_seconds, "limit": limit})
