"""The send ledger: every DM a background sender sends to X goes through this pattern.

Campaigns use it today (``worker/dispatch.py``, ledger ``campaign_recipients``);
automation flow steps, the AI assistant's auto-replies and published posts are to
use it the same way. The guarantee: no recipient gets a message twice, and no
message is lost, whatever crashes or times out where.

**The pattern** (per ledger row, i.e. per message to send)

1. **Arm** (one transaction, committed *before* X is called): the row gets its final
   text, ``attempts + 1``, the time it was armed and a *lease* (it belongs to this
   sender until then). The campaign ledger calls this state SENDING.
2. **Send** with no transaction open, through :func:`send_dm` (one) or
   :func:`send_many` (a batch, concurrently, announced to the DM budget so units are
   reserved many per round trip). Both draw from the account's per-account DM
   budget (``XAccess.send_dm`` -> ``DbDmBudget``), which holds across processes.
   Each send ends in one :class:`SendOutcome`:

   - ``SENT``: X accepted it; record its ``dm_event_id``/``dm_conversation_id``.
   - ``FAILED``: X refused this message for good (``TWITTER_FORBIDDEN``: the
     recipient does not take DMs; ``TWITTER_REJECTED``); ``reason`` says why.
   - ``REQUEUE``: *certainly not sent* and the account must stop for now (its DM
     budget is spent, X's 429, X's breaker is open or X could not be reached, or the
     account cannot send: revoked, not active).
     Put the row back (QUEUED) ready at ``retry_at`` and pause the sender until
     then; ``reason`` is the pause's reason. :func:`send_many` stops the batch at
     the first such outcome and requeues the rest with it.
   - ``UNCLEAR``: it may or may not have reached X (a 5xx, a timeout, a dropped
     connection: ``UpstreamOutcomeUnknown``; or an unexpected error). Leave the row
     armed with reason :data:`RESOLVING`, extend its lease by :func:`unclear_backoff`;
     never resend.
3. **Record** (one short transaction per few outcomes): SENT / FAILED / QUEUED.
4. **Recover**: an armed row whose lease ran out (its sender died, or the outcome was
   unclear) is resolved at X *before any retry* with :func:`resolve_unclear_dm`,
   which looks the DM up (``XAccess.find_sent_dm``: the account's 1:1 conversation
   with the recipient, our text, sent no earlier than the arming time minus
   :data:`LOOKUP_SKEW`, excluding X event ids the ledger already holds for that
   recipient, so an older identical message is not taken for this one):

   - ``FOUND``: record it SENT with that event.
   - ``NOT_SENT``: queue it again (or give up after the sender's attempt limit).
   - ``UNCONFIRMABLE``: the lookup can never be answered (the account lost access):
     FAIL the row with ``reason``; resending could duplicate it.
   - ``RETRY_LATER``: X cannot answer now; extend the lease to ``retry_at`` (X's
     rate-limit reset for lookups, else :data:`RETRY_LOOKUP`).

   Lookups are scarce (X allows 15 per 15 minutes per user on pro), so a recovery
   pass resolves all the unclear rows of one recipient with one read of the
   conversation (:func:`resolve_unclear_dms`), stopping at the first page older than
   the earliest arming time.

**Adding a ledger** (flow steps, AI replies): a table with, per message, the
recipient's X user id, ``state`` (QUEUED / SENDING / SENT / FAILED / SKIPPED),
``text``, ``attempts``, ``sending_at``, ``lease_until``, ``x_event_id`` and
``reason``; store functions to claim due rows (``FOR UPDATE SKIP LOCKED``) and arm
them, to record each outcome kind, to find stale armed rows, and to list the X
event ids already recorded for a recipient. The worker then arms, calls
:func:`send_many` (or :func:`send_dm`), records, and runs a recovery loop over
:func:`resolve_unclear_dm`, exactly as ``worker/dispatch.py`` does. Nothing here
knows about campaigns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from ..core.errors import DomainError, FailedPrecondition, QuotaExceeded
from ..store import Row
from ..x.access import UpstreamNotSent, XAccess
from ..x.models import DmEvent

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Clock skew tolerated between our arming time and X's timestamp of the DM.
LOOKUP_SKEW = timedelta(seconds=30)
#: A lookup X could not answer is tried again this much later.
RETRY_LOOKUP = timedelta(seconds=30)
#: How long an account that cannot send (not active, revoked) pauses its sender.
ACCOUNT_PAUSE = timedelta(minutes=1)
#: How long a sender waits after X could not be reached (nothing was sent).
NOT_SENT_PAUSE = timedelta(seconds=10)
#: What an armed row whose outcome X left unknown says while it waits for recovery.
RESOLVING = "resolving an ambiguous send at X"
#: X refusals that are final for the message (not for the account).
REFUSED = ("TWITTER_FORBIDDEN", "TWITTER_REJECTED")

# The senders' tunables: every ledger's sender (campaign dispatch, the one-off DM
# ledger of flow steps, AI replies and agent sends) defaults to these, so the same
# mechanism runs with the same figures (bench/results/dispatch.md and
# automation_send.md: at 4 in flight and 32 per record the one-off sender made 0.53x
# of campaign dispatch's DMs/s in the same run; at these, 0.65-0.73x).
#: Most rows one claim takes.
CLAIM_BATCH = 500
#: DMs in flight at once per sending account. The worker is CPU-bound and httpcore's
#: pool costs O(connections x requests) per request, so 4-8 in flight beat 16.
CONCURRENCY = 8
#: Outcomes recorded per transaction.
FLUSH_SIZE = 64
#: Seconds an armed row belongs to its sender before recovery may look it up: longer
#: than any send can take (the X client's deadline) plus recording it.
LEASE_SECONDS = 120.0
#: Back-off after an unclear X answer: ``RETRY_BASE * 2**(attempts-1)`` seconds.
RETRY_BASE = 2.0
#: Attempts before a row whose sends keep ending unclearly (or not sent) is FAILED.
MAX_ATTEMPTS = 5


def _now() -> datetime:
    return datetime.now(UTC)


class Outcome(StrEnum):
    SENT = "SENT"
    FAILED = "FAILED"
    REQUEUE = "REQUEUE"
    UNCLEAR = "UNCLEAR"


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """How one send ended; see the module docstring for what the sender does."""

    kind: Outcome
    #: FAILED: the reason stored on the row; REQUEUE: why the sender pauses.
    reason: str = ""
    #: REQUEUE: when the row is ready again (and the sender may resume).
    retry_at: datetime | None = None
    #: SENT: X's ids of the DM and the time it was accepted.
    dm_event_id: str = ""
    dm_conversation_id: str = ""
    at: datetime | None = None
    #: REQUEUE: the account itself cannot send (not active, revoked): the row waits
    #: for it to be ACTIVE again rather than for ``retry_at`` alone.
    account: bool = False


def unclear_backoff(retry_base: float, attempts: int) -> timedelta:
    """How long an armed row whose outcome was unclear waits before recovery looks it
    up: ``retry_base * 2**(attempts-1)`` seconds (``attempts`` counts this one)."""
    return timedelta(seconds=retry_base * 2 ** max(0, attempts - 1))


def classify_send_error(exc: BaseException, now: datetime | None = None) -> SendOutcome:
    """The outcome of a send that raised ``exc`` (``XAccess.send_dm``'s domain errors;
    anything else is UNCLEAR and logged)."""
    now = now or _now()
    if isinstance(exc, QuotaExceeded):
        until = exc.retry_at or now + ACCOUNT_PAUSE
        reason = (
            f"waiting for DM budget until {until.isoformat()}"
            if exc.reason == "DM_BUDGET_SPENT"
            else f"X rate limit until {until.isoformat()}"
        )
        return SendOutcome(Outcome.REQUEUE, reason, until)
    if isinstance(exc, FailedPrecondition):
        if exc.reason in REFUSED:
            return SendOutcome(Outcome.FAILED, f"{exc.reason}: {exc.message}")
        # The account cannot send (not active, revoked): nothing went out.
        return SendOutcome(
            Outcome.REQUEUE,
            f"account cannot send: {exc.message}",
            now + ACCOUNT_PAUSE,
            account=True,
        )
    if isinstance(exc, UpstreamNotSent):
        # Refused before it left (open breaker, X unreachable): certainly not sent,
        # so it goes back to the queue at once, with no lookup.
        until = exc.retry_at or now + NOT_SENT_PAUSE
        if exc.cause == "BREAKER_OPEN":
            reason = f"breaker open until {until.isoformat()}"
        else:
            reason = f"X unreachable (not sent) until {until.isoformat()}"
        return SendOutcome(Outcome.REQUEUE, reason, until)
    if isinstance(exc, DomainError):
        return SendOutcome(Outcome.UNCLEAR)  # may have reached X: recovery decides
    log.error("unexpected error sending a DM", exc_info=exc)
    return SendOutcome(Outcome.UNCLEAR)


async def send_dm(
    xaccess: XAccess,
    account: Row,
    recipient_x_user_id: str,
    text: str,
    media_id: str | None = None,
) -> SendOutcome:
    """Send one armed message (with an uploaded X media id, if any) and classify the
    outcome; never raises for X's answers."""
    try:
        sent = await xaccess.send_dm(account, recipient_x_user_id, text=text, media_id=media_id)
    except Exception as exc:
        return classify_send_error(exc)
    return SendOutcome(
        Outcome.SENT,
        dm_event_id=sent.dm_event_id,
        dm_conversation_id=sent.dm_conversation_id,
        at=_now(),
    )


async def send_many(
    xaccess: XAccess,
    account: Row,
    items: Sequence[T],
    *,
    to: Callable[[T], tuple[str, str] | tuple[str, str, str | None]],
    record: Callable[[list[tuple[T, SendOutcome]]], Awaitable[None]],
    concurrency: int,
    flush_size: int,
) -> SendOutcome | None:
    """Send armed ``items`` from ``account`` (``to(item)`` gives the recipient's X user
    id, the text and optionally an uploaded X media id), ``concurrency`` at a time,
    announced to the DM budget as one batch. Outcomes are handed to ``record`` in
    groups of about ``flush_size`` (one call at a time; the last group when all are
    done). After the first REQUEUE outcome nothing more is sent: the remaining items
    get that same outcome. Returns that outcome (the sender pauses until its
    ``retry_at``), else None. Raises what ``record`` raises."""
    gate = asyncio.Semaphore(concurrency)
    pending: list[tuple[T, SendOutcome]] = []
    flush_lock = asyncio.Lock()
    stop: SendOutcome | None = None

    async def flush(force: bool = False) -> None:
        nonlocal pending
        if not force and len(pending) < flush_size:
            return
        async with flush_lock:
            out, pending = pending, []
            if out:
                await record(out)

    async def one(item: T) -> None:
        nonlocal stop
        async with gate:
            if stop is not None:
                pending.append((item, stop))
                return
            target = to(item)
            media_id = target[2] if len(target) > 2 else None
            outcome = await send_dm(xaccess, account, target[0], target[1], media_id)
            if outcome.kind is Outcome.REQUEUE and stop is None:
                stop = outcome
            pending.append((item, outcome))
        await flush()

    async with xaccess.dm_batch(account, len(items)):
        await asyncio.gather(*(one(x) for x in items))
    await flush(force=True)
    return stop


class Resolution(StrEnum):
    FOUND = "FOUND"
    NOT_SENT = "NOT_SENT"
    UNCONFIRMABLE = "UNCONFIRMABLE"
    RETRY_LATER = "RETRY_LATER"


@dataclass(frozen=True, slots=True)
class Resolved:
    """What X says about an armed message whose outcome was unknown."""

    kind: Resolution
    #: FOUND: the DM at X.
    event: DmEvent | None = None
    #: UNCONFIRMABLE: the reason to store on the row; RETRY_LATER: why X cannot tell now.
    reason: str = ""
    #: UNCONFIRMABLE / RETRY_LATER: the domain error's reason (ACCOUNT_NOT_ACTIVE,
    #: ACCOUNT_AUTH_REVOKED, RATE_LIMIT_EXCEEDED, ...), so a ledger can tell an
    #: account that may come back from one that never will.
    error_reason: str = ""
    #: RETRY_LATER: when to look again (X's rate-limit reset; else now + RETRY_LOOKUP).
    retry_at: datetime | None = None


async def resolve_unclear_dm(
    xaccess: XAccess,
    account: Row,
    recipient_x_user_id: str,
    text: str,
    *,
    armed_at: datetime,
    known_event_ids: Collection[str],
) -> Resolved:
    """Resolve an armed message at X (step 4 of the module docstring); never raises
    for X's answers."""
    (one,) = await resolve_unclear_dms(
        xaccess, account, recipient_x_user_id, [(text, armed_at)], known_event_ids=known_event_ids
    )
    return one


async def resolve_unclear_dms(
    xaccess: XAccess,
    account: Row,
    recipient_x_user_id: str,
    armed: Sequence[tuple[str, datetime]],
    *,
    known_event_ids: Collection[str],
) -> list[Resolved]:
    """Resolve every armed message to one recipient (``armed``: text and arming time
    each) with one lookup of the conversation (``XAccess.find_sent_dms``): each gets
    the DM sent no earlier than its arming time minus :data:`LOOKUP_SKEW`, never one
    another message got. Returns one :class:`Resolved` per message, in order; never
    raises for X's answers. X's rate limit on lookups gives RETRY_LATER at its reset,
    so recovery backs off instead of failing."""
    if not armed:
        return []
    now = _now()
    try:
        found = await xaccess.find_sent_dms(
            account,
            recipient_x_user_id,
            [(text, at - LOOKUP_SKEW) for text, at in armed],
            known_event_ids,
        )
    except FailedPrecondition as exc:
        gone = Resolved(
            Resolution.UNCONFIRMABLE, reason=f"unconfirmed: {exc.message}", error_reason=exc.reason
        )
        return [gone] * len(armed)
    except QuotaExceeded as exc:
        until = exc.retry_at or now + RETRY_LOOKUP
        later = Resolved(
            Resolution.RETRY_LATER,
            reason=f"DM lookups rate-limited by X until {until.isoformat()}",
            error_reason=exc.reason,
            retry_at=until,
        )
        return [later] * len(armed)
    except DomainError as exc:
        later = Resolved(
            Resolution.RETRY_LATER,
            reason="X could not answer the lookup",
            error_reason=exc.reason,
            retry_at=now + RETRY_LOOKUP,
        )
        return [later] * len(armed)
    return [
        Resolved(Resolution.NOT_SENT) if ev is None else Resolved(Resolution.FOUND, ev)
        for ev in found
    ]
