"""Auto-reply: the AI assistant answers inbound DMs of accounts with
``auto_reply_enabled``.

Two halves, so a slow model never holds the outbox stream:

- :data:`AUTO_REPLY_EVENTS`, the ``ai-auto-reply`` outbox consumer
  (``worker/consumer.py``) on ``message.received``: quick database work, it queues
  the message in ``ai_reply_queue`` (once per message) when the account has
  auto-reply on.
- :func:`auto_reply_loop`, a loop that claims queued messages
  (``FOR UPDATE SKIP LOCKED``, one per conversation at a time, a lease that a
  crashed worker's rows outlive) and answers each with no connection held while the
  model works.

Every queued message ends as exactly one of (``ai_reply_queue.outcome``):

- ``REPLIED``: the bot's reply queued on the DM ledger (``store/outbound.py``: sent
  once, within the account's DM budget, ``is_from_bot``);
- ``AWAY``: outside the account's business hours, the away message (at most once
  per conversation per closed period; later messages in that period are
  ``AWAY_SENT`` and wait for humans in the inbox);
- ``ESCALATED``: handed to humans (low confidence, hand-off intent, keyword,
  moderation, malformed output, the model down or its breaker open, the token
  budget spent), with the hand-off message and the AIEscalationRequested event;
- ``HUMANS``: the bot stays out: the conversation is escalated, assigned, or a
  human has replied in it (until it is closed and a new one starts);
- ``SKIPPED``: the assistant is disabled for the merchant (the message is in the
  inbox like any other).

A row whose processing raised unexpectedly is retried with a back-off, and after
:data:`MAX_ATTEMPTS` escalated with a template summary: no message is left silently
unanswered.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from ..core.db import use_connection
from ..core.errors import DomainError
from ..deps import Deps
from ..domain import ai as domain
from ..operations import ai as ops
from ..store import ai as store
from ..store import conversations as conversations_store
from ..store.events import OutboxEvent
from ..store.live import dispatcher_for
from ..store.outbound import OutboundDm, enqueue_dm
from .consumer import Consumer

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
#: One loop iteration runs at most this long, then returns (so the worker can stop).
ITERATION_SECONDS = 2.0
#: Inbound messages older than this when the consumer sees them are left to humans
#: (a new consumer starts at the first event ever recorded).
MAX_MESSAGE_AGE_SECONDS = 3600.0
MAX_ATTEMPTS = 5
IDLE_SECONDS = 1.0
#: Answered queue rows are kept this long (for inspection), then purged.
KEEP_DONE_SECONDS = 7 * 24 * 3600.0

REPLIED, AWAY, AWAY_SENT, ESCALATED, HUMANS, SKIPPED = (
    "REPLIED",
    "AWAY",
    "AWAY_SENT",
    "ESCALATED",
    "HUMANS",
    "SKIPPED",
)


async def queue_inbound_message(ev: OutboxEvent) -> None:
    """The consumer's handler: queue an inbound DM for auto-reply (idempotent)."""
    p = ev.payload
    if p.get("direction", "INBOUND") != "INBOUND":
        return
    if not p.get("message_id") or not p.get("conversation_id"):
        return
    await store.enqueue_reply(
        ev.merchant_id,
        UUID(p["conversation_id"]),
        UUID(p["message_id"]),
        max_age_seconds=MAX_MESSAGE_AGE_SECONDS,
    )


AUTO_REPLY_EVENTS = Consumer(
    name="ai-auto-reply", handle=queue_inbound_message, types=("message.received",)
)


async def drain_replies(deps: Deps, *, now: datetime | None = None) -> int:
    """Answer queued messages until none is claimable; returns how many were taken.
    For one-shot callers (tests, tools); the worker runs :func:`auto_reply_loop`.
    ``now`` is the instant business hours are judged at."""
    taken = 0
    while True:
        async with use_connection(deps.pool, transaction=True):
            rows = await store.claim_replies(deps.settings.auto_reply_concurrency, LEASE_SECONDS)
        if not rows:
            return taken
        taken += len(rows)
        await asyncio.gather(*(answer_one(deps, row, now=now) for row in rows))


@dataclass
class _LoopState:
    tasks: set[asyncio.Task[str]] = field(default_factory=set)


_loop_states: weakref.WeakKeyDictionary[Any, _LoopState] = weakref.WeakKeyDictionary()


def _loop_state(deps: Deps) -> _LoopState:
    st = _loop_states.get(deps.pool)
    if st is None:
        st = _loop_states[deps.pool] = _LoopState()
    return st


async def auto_reply_loop(deps: Deps) -> float:
    """The worker's loop: for up to :data:`ITERATION_SECONDS`, keep up to
    ``auto_reply_concurrency`` messages in flight, each in a task of its own (so a
    slow model answer never delays the next claim), claiming more as soon as one
    finishes or ``NOTIFY mktx_ai_replies`` arrives (else every
    :data:`IDLE_SECONDS`). :func:`stop_auto_replies` waits for the tasks at
    shutdown. Returns 0."""
    st = _loop_state(deps)
    limit = deps.settings.auto_reply_concurrency
    sub = await dispatcher_for(deps.pool, store.CHANNEL).subscribe(None)
    try:
        deadline = time.monotonic() + ITERATION_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            sub.clear()
            st.tasks = {t for t in st.tasks if not t.done()}
            free = limit - len(st.tasks)
            claimed = 0
            if free > 0:
                async with use_connection(deps.pool, transaction=True):
                    rows = await store.claim_replies(free, LEASE_SECONDS)
                for row in rows:
                    st.tasks.add(asyncio.create_task(answer_one(deps, row), name="auto-reply"))
                claimed = len(rows)
            if claimed and claimed == free:
                continue
            woken = asyncio.create_task(sub.wait(min(IDLE_SECONDS, left)))
            try:
                await asyncio.wait({woken, *st.tasks}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
    finally:
        sub.close()
    return 0.0


async def purge_answered(deps: Deps) -> float:
    """Delete answered queue rows past :data:`KEEP_DONE_SECONDS`; seconds to sleep."""
    async with use_connection(deps.pool, transaction=True):
        n = await store.purge_done_replies(KEEP_DONE_SECONDS)
    return 1.0 if n == 1000 else 3600.0


async def stop_auto_replies(deps: Deps) -> None:
    """Wait for the answers this process started (a cut-short one is claimed again
    after its lease)."""
    st = _loop_state(deps)
    if st.tasks:
        await asyncio.gather(*st.tasks, return_exceptions=True)
    st.tasks.clear()


async def answer_one(deps: Deps, row: dict[str, Any], *, now: datetime | None = None) -> str:
    """Answer one claimed queue row; returns its outcome ("" while it is retried)."""
    merchant: UUID = row["merchant_id"]
    try:
        return await _answer(deps, row, now or datetime.now(UTC))
    except Exception as exc:
        if row["attempts"] < MAX_ATTEMPTS:
            log.warning(
                "auto-reply failed; will retry",
                extra={"queue_id": row["id"], "attempts": row["attempts"]},
                exc_info=True,
            )
            async with use_connection(deps.pool, transaction=True):
                await store.retry_reply(
                    merchant, row["id"], 0.5 * 2 ** row["attempts"], type(exc).__name__
                )
            return ""
        log.error("auto-reply failed repeatedly; escalating", extra={"queue_id": row["id"]})
        return await _escalate_plainly(deps, row, domain.CANNOT_ANSWER, "auto-reply kept failing")


async def _answer(deps: Deps, row: dict[str, Any], now: datetime) -> str:
    merchant: UUID = row["merchant_id"]
    conv_id: UUID = row["conversation_id"]
    try:
        facts = await ops.load_facts(deps, merchant, conversation_id=conv_id)
    except DomainError:  # the conversation is gone (erased contact)
        return await _finish(deps, row, SKIPPED, "the conversation no longer exists")
    conv = facts.conversation
    assert conv is not None
    if not facts.settings.enabled:
        return await _finish(deps, row, SKIPPED, "the AI assistant is disabled")
    if row.get("instructions"):  # an automation ai_reply step's extra prompt
        settings = domain.with_instructions(facts.settings, row["instructions"])
        facts = replace(facts, settings=settings)
    if conv["status"] == "CLOSED":
        return await _finish(deps, row, SKIPPED, "the conversation is closed")
    if conv["escalated"] or conv["assignee_user_id"] or conv["human_replied"]:
        return await _finish(deps, row, HUMANS, "a human has the conversation")
    async with use_connection(deps.pool):
        message = await conversations_store.get_message(merchant, row["message_id"])
    text = (message or {}).get("text") or ""
    sched = ops.business_schedule(facts.account_settings)
    if sched is not None and not sched.is_open(now):
        return await _away(deps, row, facts.settings, sched.next_open(now))
    if not text.strip():
        return await _escalate_plainly(deps, row, domain.CANNOT_ANSWER, "a message without text")
    try:
        out = await ops.process_message(
            deps, merchant, text=text, conversation_id=conv_id, facts=facts, defer_save=True
        )
    except DomainError as exc:
        reason, detail = ops.escalation_for_error(exc)
        return await _escalate_plainly(deps, row, reason, detail, text=text, facts=facts)
    # The session, the reply's send (or the escalation) and the queue row commit
    # together: a crash before means the message is answered again from scratch.
    if out.escalate:
        async with use_connection(deps.pool, transaction=True):
            await ops.save_session(merchant, conv_id, out)
            await ops.escalate(
                merchant,
                conv_id,
                reason=out.reason,
                detail=out.detail,
                summary=out.summary,
                handoff_text=out.reply,
                handoff_ref=f"handoff:{row['message_id']}",
            )
            await store.finish_reply(merchant, row["id"], ESCALATED, out.reason)
        return ESCALATED
    async with use_connection(deps.pool, transaction=True):
        await ops.save_session(merchant, conv_id, out)
        await enqueue_dm(
            merchant,
            OutboundDm(
                account_id=row["account_id"],
                contact_id=row["contact_id"],
                text=out.reply,
                source="ai",
                source_ref=f"reply:{row['message_id']}",
                origin="AI",
                is_from_bot=True,
                conversation_id=conv_id,
                bypass_opt_out=True,
            ),
        )
        await store.finish_reply(merchant, row["id"], REPLIED, out.intent)
    return REPLIED


async def _away(
    deps: Deps, row: dict[str, Any], settings: domain.Settings, next_open: datetime | None
) -> str:
    merchant: UUID = row["merchant_id"]
    period = next_open.isoformat() if next_open is not None else "never"
    async with use_connection(deps.pool, transaction=True):
        first = await store.claim_away(merchant, row["conversation_id"], row["contact_id"], period)
        if first and settings.after_hours_message:
            await enqueue_dm(
                merchant,
                OutboundDm(
                    account_id=row["account_id"],
                    contact_id=row["contact_id"],
                    text=settings.after_hours_message.replace("{{next_open_time}}", ""),
                    source="ai",
                    source_ref=f"away:{row['conversation_id']}:{period}",
                    origin="AI",
                    is_from_bot=True,
                    conversation_id=row["conversation_id"],
                    bypass_opt_out=True,
                ),
            )
        outcome = AWAY if first else AWAY_SENT
        await store.finish_reply(merchant, row["id"], outcome, period)
    return outcome


async def _escalate_plainly(
    deps: Deps,
    row: dict[str, Any],
    reason: str,
    detail: str,
    *,
    text: str = "",
    facts: ops.Facts | None = None,
) -> str:
    """Escalate without the model's help (it is down, over budget, or failing)."""
    merchant: UUID = row["merchant_id"]
    settings = facts.settings if facts is not None else domain.DEFAULT_SETTINGS
    session = facts.session if facts is not None else domain.Session()
    summary = domain.template_summary(
        intent=session.current_intent or None,
        confidence=0.0,
        slots=session.slots,
        text=text,
        reason=reason,
    )
    async with use_connection(deps.pool, transaction=True):
        try:
            await ops.escalate(
                merchant,
                row["conversation_id"],
                reason=reason,
                detail=detail,
                summary=summary,
                handoff_text=settings.handoff_message,
                handoff_ref=f"handoff:{row['message_id']}",
            )
        except DomainError:  # closed or gone meanwhile: humans see it in the inbox
            await store.finish_reply(merchant, row["id"], SKIPPED, "could not escalate")
            return SKIPPED
        await store.finish_reply(merchant, row["id"], ESCALATED, reason)
    return ESCALATED


async def _finish(deps: Deps, row: dict[str, Any], outcome: str, detail: str) -> str:
    async with use_connection(deps.pool, transaction=True):
        await store.finish_reply(row["merchant_id"], row["id"], outcome, detail)
    return outcome
