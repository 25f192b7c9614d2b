"""The AI assistant's use cases, shared by ``services/ai.py`` and
``worker/auto_reply.py``: understanding a message (a short read, the model call
with no connection held, a short write) and escalating a conversation.

:func:`process_message` raises, for the RPCs to map:
``NotFound`` (conversation, account or contact), ``FailedPrecondition``
(``AI_DISABLED``), ``QuotaExceeded`` (``AI_TOKEN_BUDGET_EXHAUSTED`` with the next
UTC midnight; the provider's ``RATE_LIMIT_EXCEEDED``), ``ModelUnavailable`` and
``ModelTimeout`` (``ai/client.py``). Everything else a message can meet (keyword,
moderation, hand-off intent, low confidence, output malformed twice) is an
:class:`Outcome` with ``escalate`` set. The auto-reply loop turns the raised
errors into escalations too (:func:`escalation_for_error`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from ..ai.client import Completion, ModelTimeout, ModelUnavailable, StreamDelta
from ..core.db import use_connection
from ..core.errors import DomainError, FailedPrecondition, NotFound, QuotaExceeded
from ..deps import Deps
from ..domain import ai as domain
from ..domain.schedule import Schedule, schedule_from_proto
from ..mapping.accounts import settings_from_json
from ..mapping.conversations import event_payload
from ..store import ai as store
from ..store.events import append_event
from ..store.outbound import OutboundDm, enqueue_dm

Delta = Callable[[str], Awaitable[None]]


@dataclass
class Outcome:
    """What the assistant made of one message."""

    conversation_id: UUID | None
    intent: str
    confidence: float
    slots: dict[str, str]
    reply: str
    escalate: bool
    reason: str = ""
    detail: str = ""
    summary: str = ""
    missing_slots: tuple[str, ...] = ()
    within_business_hours: bool = True
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Facts:
    """What one processing reads before calling the model."""

    settings: domain.Settings
    conversation: dict[str, Any] | None
    account_id: UUID
    contact_id: UUID
    contact: dict[str, Any]
    account_settings: dict[str, Any]
    session: domain.Session
    used_today: int


def business_schedule(account_settings: Mapping[str, Any]) -> Schedule | None:
    """The account's business hours, or None when it has none (always open)."""
    proto = settings_from_json(dict(account_settings))
    if not proto.business_hours.enabled or not proto.business_hours.HasField("schedule"):
        return None
    return schedule_from_proto(proto.business_hours.schedule)


def _contact_profile(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": row["contact_display_name"] or row["contact_username"],
        "username": row["contact_username"],
        "tags": list(row["contact_tags"] or []),
        "attributes": row["contact_attributes"] or {},
    }


async def load_facts(
    deps: Deps,
    merchant_id: UUID,
    *,
    conversation_id: UUID | None,
    account_id: UUID | None = None,
    contact_id: UUID | None = None,
) -> Facts:
    # One query reads it all (store.process_facts): a message costs one round trip
    # before the model, not four or five.
    async with use_connection(deps.pool):
        if conversation_id is not None:
            read = await store.process_facts(merchant_id, conversation_id)
            if read is None:
                raise NotFound("conversation", str(conversation_id))
        else:
            assert account_id is not None and contact_id is not None
            read = await store.process_facts(
                merchant_id, None, account_id=account_id, contact_id=contact_id
            )
            if read is None:
                raise NotFound("contact", str(contact_id))
    settings = domain.settings_from_row(read.settings)
    facts_row: Mapping[str, Any] = read.facts
    conv: dict[str, Any] | None = None
    if conversation_id is not None:
        conv = read.facts
        account_id, contact_id = conv["account_id"], conv["contact_id"]
        if read.session is None:
            # A new conversation: the contact's known slots carry over (those still
            # valid are kept when the session starts, see fresh_if_expired).
            session = domain.Session(slots={str(k): str(v) for k, v in read.prior_slots.items()})
        else:
            session = domain.session_from_row(read.session)
    else:
        session = domain.Session()
    used = read.used_today
    assert account_id is not None and contact_id is not None
    return Facts(
        settings=settings,
        conversation=conv,
        account_id=account_id,
        contact_id=contact_id,
        contact=_contact_profile(facts_row),
        account_settings=dict(facts_row["account_settings"] or {}),
        session=session,
        used_today=used,
    )


def check_usable(facts: Facts, now: datetime) -> None:
    """Raise when the assistant may not answer at all (disabled, budget spent)."""
    if not facts.settings.enabled:
        raise FailedPrecondition(
            "the AI assistant is disabled (AISettings.enabled)", reason="AI_DISABLED"
        )
    if domain.budget_spent(facts.settings, facts.used_today):
        raise QuotaExceeded(
            "the daily AI token budget is spent",
            retry_at=domain.next_utc_midnight(now),
            reason="AI_TOKEN_BUDGET_EXHAUSTED",
            metadata={"daily_token_budget": str(facts.settings.daily_token_budget)},
        )


async def process_message(
    deps: Deps,
    merchant_id: UUID,
    *,
    text: str,
    conversation_id: UUID | None = None,
    account_id: UUID | None = None,
    contact_id: UUID | None = None,
    dry_run: bool = False,
    on_delta: Delta | None = None,
    facts: Facts | None = None,
    defer_save: bool = False,
) -> Outcome:
    """Understand ``text`` and propose the reply (see the module docstring).

    Unless ``dry_run``, the conversation's session is updated (context, intent,
    slots, expiry, token totals). The day's token usage is recorded either way: the
    tokens were spent. With ``on_delta`` the model's answer is streamed and each new
    piece of the reply text is passed to it as it arrives. With ``defer_save`` the
    session is not written here: the caller writes it with :func:`save_session` in
    the transaction that acts on the outcome (auto-reply: with the reply's send)."""
    now = datetime.now(UTC)
    if facts is None:
        facts = await load_facts(
            deps,
            merchant_id,
            conversation_id=conversation_id,
            account_id=account_id,
            contact_id=contact_id,
        )
    check_usable(facts, now)
    settings = facts.settings
    session = domain.fresh_if_expired(facts.session, settings, now)
    sched = business_schedule(facts.account_settings)
    within = sched is None or sched.is_open(now)
    out = Outcome(
        conversation_id=conversation_id,
        intent="other",
        confidence=0.0,
        slots=dict(session.slots),
        reply="",
        escalate=False,
        within_business_hours=within,
        model=settings.model or deps.model.default_model,
    )

    try:
        keyword = domain.keyword_in(settings, text)
        if keyword is not None:
            _escalated(out, domain.KEYWORD, f"escalation keyword {keyword!r}", settings, within)
        elif settings.moderation_enabled and deps.model.moderation:
            out = await _ask_model_moderated(deps, out, facts, session, text, now, on_delta)
        else:
            await _ask_model(deps, out, facts, session, text, now, on_delta)
    except DomainError:
        # A malformed first answer's tokens were spent even though the retry failed.
        if out.prompt_tokens or out.completion_tokens:
            async with use_connection(deps.pool):  # one statement: it autocommits
                await store.add_usage(merchant_id, out.prompt_tokens, out.completion_tokens)
        raise

    if out.escalate:
        out.summary = await _summary(deps, out, facts, session, text)
    out.extra = {"session": session, "text": text, "now": now, "facts": facts}
    save = not dry_run and not defer_save and conversation_id is not None
    # Each branch is one statement on an autocommit connection: the session and the
    # day's usage commit together in one round trip (no BEGIN/COMMIT around them).
    if save:
        assert conversation_id is not None
        async with use_connection(deps.pool):
            await _save(
                merchant_id, conversation_id, facts, session, out, text, now, with_usage=True
            )
    elif out.prompt_tokens or out.completion_tokens:
        async with use_connection(deps.pool):
            await store.add_usage(merchant_id, out.prompt_tokens, out.completion_tokens)
    return out


def _escalated(
    out: Outcome, reason: str, detail: str, settings: domain.Settings, within: bool
) -> None:
    out.escalate, out.reason, out.detail = True, reason, detail[: domain.MAX_DETAIL]
    out.reply = holding_reply(settings, within)


def holding_reply(settings: domain.Settings, within: bool) -> str:
    """What the contact is told when a human takes over."""
    if not within and settings.business_hours_aware and settings.after_hours_message:
        return settings.after_hours_message.replace("{{next_open_time}}", "")
    return settings.handoff_message


class _DeltaGate:
    """Holds a streamed reply back until moderation has passed the text: pieces
    that arrive before are kept, in order, and :meth:`open` delivers them and lets
    the rest through; pieces of a text moderation flags are never delivered."""

    def __init__(self, on_delta: Delta) -> None:
        self._on_delta = on_delta
        self._held: list[str] = []
        self._open = False

    async def deliver(self, piece: str) -> None:
        if self._open:
            await self._on_delta(piece)
        else:
            self._held.append(piece)

    async def open(self) -> None:
        # Pieces that arrive while the held ones are delivered join the queue; the
        # gate opens only once it is empty, so the order is kept.
        while self._held:
            await self._on_delta(self._held.pop(0))
        self._open = True


async def _ask_model_moderated(
    deps: Deps,
    out: Outcome,
    facts: Facts,
    session: domain.Session,
    text: str,
    now: datetime,
    on_delta: Delta | None,
) -> Outcome:
    """Moderation and the model's answer at the same time (one model latency per
    message instead of two, as OpenAI's guardrails guide advises), returning the
    outcome to use.

    - Moderation passes the text: the model's answer, exactly as without moderation
      (its streamed pieces held until then).
    - Moderation flags it: the answer is discarded unseen and the message escalates
      (``MODERATION_FLAGGED``); the bot never answers it. The answer's tokens were
      spent, so they count towards the day's usage; its failure does not matter.
    - Moderation fails (provider down, breaker open): the answer is cancelled and the
      error raised, as before."""
    trial = replace(out, slots=dict(out.slots))
    gate = _DeltaGate(on_delta) if on_delta is not None else None
    answering = asyncio.ensure_future(
        _ask_model(deps, trial, facts, session, text, now, gate.deliver if gate else None)
    )
    try:
        flagged = await deps.model.flagged(text)
        if not flagged and gate is not None:
            await gate.open()
    except BaseException:
        answering.cancel()
        await asyncio.gather(answering, return_exceptions=True)
        raise
    if flagged:
        with contextlib.suppress(DomainError):
            await answering
        out.prompt_tokens += trial.prompt_tokens
        out.completion_tokens += trial.completion_tokens
        _escalated(
            out,
            domain.MODERATION_FLAGGED,
            "moderation flagged the message",
            facts.settings,
            out.within_business_hours,
        )
        return out
    try:
        await answering
    except DomainError:
        # As _ask_model's own failure: what a malformed first answer spent is kept.
        out.prompt_tokens += trial.prompt_tokens
        out.completion_tokens += trial.completion_tokens
        raise
    return trial


async def _ask_model(
    deps: Deps,
    out: Outcome,
    facts: Facts,
    session: domain.Session,
    text: str,
    now: datetime,
    on_delta: Delta | None,
) -> None:
    settings = facts.settings
    schema = domain.output_schema(settings)
    messages = domain.build_messages(
        settings,
        contact=facts.contact,
        context=session.context,
        text=text,
        known_slots=session.slots,
        today=now,
    )
    answer: domain.Answer | None = None
    problem = ""
    for attempt in range(2):  # the first answer and one retry on malformed output
        completion = await _complete(
            deps, settings, messages, schema, on_delta if attempt == 0 else None
        )
        out.prompt_tokens += completion.prompt_tokens
        out.completion_tokens += completion.completion_tokens
        out.latency += completion.latency
        out.model = completion.model or out.model
        try:
            answer = domain.parse_answer(completion.content, schema)
            break
        except domain.MalformedOutput as exc:
            problem = str(exc)
    if answer is None:
        _escalated(
            out,
            domain.MALFORMED_OUTPUT,
            f"the model's output failed validation twice ({problem})",
            settings,
            out.within_business_hours,
        )
        return
    slots = domain.merge_slots(settings, session.slots, answer.slots)
    answer = domain.continue_intent(session, answer, slots)
    intent_def = settings.intent(answer.intent)
    out.intent = answer.intent or "other"
    out.confidence = answer.confidence
    out.slots = slots
    out.missing_slots = domain.missing_slots(intent_def, slots)
    decision = domain.decide(settings, answer)
    if decision.escalate:
        _escalated(out, decision.reason, decision.detail, settings, out.within_business_hours)
        return
    if out.missing_slots and intent_def is not None and not answer.reply:
        out.reply = domain.ask_for(intent_def, out.missing_slots[0])
    else:
        out.reply = answer.reply


async def _complete(
    deps: Deps,
    settings: domain.Settings,
    messages: list[dict[str, str]],
    schema: dict[str, Any],
    on_delta: Delta | None,
) -> Completion:
    kwargs: dict[str, Any] = {
        "model": settings.model or deps.model.default_model,
        "messages": messages,
        "schema": schema,
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
    }
    if on_delta is None:
        return await deps.model.complete(**kwargs)
    extractor = domain.ReplyExtractor()
    final: Completion | None = None
    async for item in deps.model.stream(**kwargs):
        if isinstance(item, StreamDelta):
            piece = extractor.feed(item.text)
            if piece:
                await on_delta(piece)
        else:
            final = item
    assert final is not None
    return final


async def _summary(
    deps: Deps, out: Outcome, facts: Facts, session: domain.Session, text: str
) -> str:
    """The agent's 2-3 line summary: the model's, or the template's when the model
    cannot write one."""
    fallback = domain.template_summary(
        intent=out.intent if out.intent != "other" else None,
        confidence=out.confidence,
        slots=out.slots,
        text=text,
        reason=out.reason,
    )
    if out.reason in (domain.MODEL_UNAVAILABLE, domain.BUDGET_EXHAUSTED):
        return fallback
    try:
        completion = await deps.model.complete(
            model=facts.settings.model or deps.model.default_model,
            messages=domain.summary_messages(facts.settings, session.context, text),
            temperature=0.0,
            max_tokens=200,
        )
    except DomainError:
        return fallback
    out.prompt_tokens += completion.prompt_tokens
    out.completion_tokens += completion.completion_tokens
    return domain.clean_summary(completion.content) or fallback


async def save_session(merchant_id: UUID, conversation_id: UUID, out: Outcome) -> None:
    """In the CALLER'S transaction: write the session a ``defer_save`` call of
    :func:`process_message` computed."""
    x = out.extra
    await _save(merchant_id, conversation_id, x["facts"], x["session"], out, x["text"], x["now"])


async def _save(
    merchant_id: UUID,
    conversation_id: UUID,
    facts: Facts,
    session: domain.Session,
    out: Outcome,
    text: str,
    now: datetime,
    *,
    with_usage: bool = False,
) -> None:
    """Write the session (on the caller's connection or transaction); with
    ``with_usage`` the day's token usage too, in the same statement."""
    items = [*session.context, domain.ContextItem("user", text, now)]
    if out.reply:
        items.append(domain.ContextItem("assistant", out.reply, now))
    intents = list(session.intents)
    if out.intent and out.intent != "other":
        intents.insert(
            0,
            {"intent": out.intent, "confidence": out.confidence, "at": now.isoformat()},
        )
    summary_at = now if out.summary else None
    new = replace(
        session,
        context=domain.trim_context(items),
        current_intent=out.intent if out.intent not in ("", "other") else session.current_intent,
        missing_slots=out.missing_slots,
        slots=out.slots,
        intents=tuple(intents[:50]),
        summary=out.summary or session.summary,
        started_at=session.started_at or now,
        last_activity_at=now,
        expires_at=now + timedelta(seconds=facts.settings.session_timeout_seconds),
    )
    await store.save_session(
        merchant_id,
        conversation_id,
        facts.contact_id,
        new,
        summary_updated_at=summary_at,
        prompt_tokens=out.prompt_tokens,
        completion_tokens=out.completion_tokens,
        with_usage=with_usage,
    )


def escalation_for_error(exc: DomainError) -> tuple[str, str]:
    """The escalation reason and detail auto-reply uses for an error that kept the
    model from answering."""
    if isinstance(exc, QuotaExceeded) and exc.reason == "AI_TOKEN_BUDGET_EXHAUSTED":
        return domain.BUDGET_EXHAUSTED, "the daily token budget is spent"
    if isinstance(exc, ModelUnavailable | ModelTimeout | QuotaExceeded):
        return domain.MODEL_UNAVAILABLE, exc.message
    return domain.CANNOT_ANSWER, exc.message


# ------------------------------------------------------------------ escalation


async def escalate(
    merchant_id: UUID,
    conversation_id: UUID,
    *,
    reason: str,
    detail: str,
    summary: str,
    assignee: str = "",
    handoff_text: str = "",
    handoff_ref: str = "",
    requested_by: str = "ai",
) -> dict[str, Any]:
    """In the CALLER'S transaction: mark the conversation escalated and OPEN
    (assigned when ``assignee``), record the summary in its session, queue
    ``handoff_text`` to the contact through the DM ledger (idempotent per
    ``handoff_ref``), and append the AIEscalationRequested event
    (``conversation.escalated``). Returns the conversation row. Raises NotFound, or
    FailedPrecondition (``INVALID_STATE_TRANSITION``) for a CLOSED conversation."""
    facts = await store.conversation_facts(merchant_id, conversation_id)
    if facts is None:
        raise NotFound("conversation", str(conversation_id))
    if facts["status"] == "CLOSED":
        raise FailedPrecondition(
            "a closed conversation cannot be escalated", reason="INVALID_STATE_TRANSITION"
        )
    text_reason = f"{reason}: {detail}" if detail else reason
    row = await store.mark_escalated(
        merchant_id, conversation_id, reason=text_reason, assignee=assignee
    )
    if row is None:  # closed between the two statements
        raise FailedPrecondition(
            "a closed conversation cannot be escalated", reason="INVALID_STATE_TRANSITION"
        )
    await store.note_escalation(
        merchant_id, conversation_id, row["contact_id"], reason=reason, summary=summary
    )
    outbound_id = None
    if handoff_text:
        outbound_id = await enqueue_dm(
            merchant_id,
            OutboundDm(
                account_id=row["account_id"],
                contact_id=row["contact_id"],
                text=handoff_text,
                source="ai",
                source_ref=handoff_ref or f"handoff:{conversation_id}:{row['version']}",
                origin="AI",
                is_from_bot=True,
                conversation_id=conversation_id,
                bypass_opt_out=True,
            ),
        )
    await append_event(
        merchant_id,
        domain.AI_ESCALATION_REQUESTED,
        conversation_id,
        event_payload(
            row,
            reason=reason,
            detail=detail,
            summary=summary,
            requested_by=requested_by,
            assignee_user_id=row["assignee_user_id"],
            handoff_outbound_id=outbound_id,
        ),
    )
    return row
