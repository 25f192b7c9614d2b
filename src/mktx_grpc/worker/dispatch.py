"""The campaign engine's background loops: dispatch, crash recovery and schedules,
plus the campaign outbox consumer. Each loop is ``async def name(deps) -> float``
(seconds to sleep before the next pass) and safe to run in any number of processes
at once. The rules are in ``domain/campaigns.py``, the SQL in ``store/dispatch.py``
and ``store/campaigns.py``; this module is the algorithm.

Exactly once, per ledger row (campaign, contact, step), by the send-ledger pattern of
``worker/ledger.py`` on ``campaign_recipients``:

1. **Claim** (one transaction): due QUEUED rows of a RUNNING campaign are locked
   with ``FOR UPDATE SKIP LOCKED``; each gets ``domain.claim_decision`` (rendered for
   its contact, checked against opt-out, exclusions and the send window). Rows to
   send are armed (SENDING with the rendered text and a lease); the rest are SKIPPED
   (with the reason) or deferred to the next window opening. Committed before
   anything is sent.
2. **Send** with ``ledger.send_many`` (``XAccess.send_dm``, drawing from the
   account's DM budget, the batch announced so units are reserved many per round
   trip), concurrently within the batch, with no transaction open.
3. **Record** (one transaction per few sends): SENT with the X event id, the
   message stored in the contact's conversation; FAILED when X refused; back to
   QUEUED when X, its breaker or the budget said "not now" (the DM was certainly not
   sent), with the reason ("X rate limit until …", "breaker open until …"), and the
   campaign waits until then. When the outcome is unknown (timeout, 5xx, crash) the
   row stays SENDING, reason "resolving an ambiguous send at X".
4. **Recover**: a SENDING row whose lease ran out is resolved at X
   (``ledger.resolve_unclear_dms``: the conversation's DM events, our text, sent
   after the claim; one lookup per recipient for all its stale rows) before anything
   else happens. Found: SENT with that event id. Not found: QUEUED again. So no
   contact ever gets a campaign message twice, and no row stays SENDING forever.

Lock order everywhere: ledger rows first, the campaign row (counters) last; Cancel,
which locks the campaign first, only takes ledger rows nobody holds (SKIP LOCKED).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from ..core.db import use_connection
from ..deps import Deps
from ..domain import campaigns as domain
from ..domain.templates import TemplateDraft
from ..store import Row
from ..store import accounts as accounts_store
from ..store import campaigns as campaigns_store
from ..store import dispatch as store
from ..store import outbound as outbound_store
from ..store.budget import dm_budget_left
from ..store.dispatch import SentRow
from ..store.events import OutboxEvent, append_events
from ..store.templates import draft_from_row as template_draft
from . import ledger
from .consumer import Consumer, drain
from .ledger import Outcome, Resolution, SendOutcome

log = logging.getLogger(__name__)

#: The campaign consumer's name (its cursor in event_consumer_cursors).
CONSUMER = "campaigns"
#: Recovery pass size.
STALE_BATCH = 50


@dataclass(frozen=True)
class DispatchOptions:
    """Tunables; :meth:`from_settings` reads ``Settings`` attributes named
    ``campaign_<field>`` when present, so deployments can set them without code."""

    #: Most rows one campaign claims per pass.
    batch_size: int = ledger.CLAIM_BATCH
    #: DMs in flight at once per campaign being sent (see ``ledger.CONCURRENCY``).
    concurrency: int = ledger.CONCURRENCY
    #: Sent rows recorded per transaction.
    flush_size: int = ledger.FLUSH_SIZE
    #: Seconds a SENDING row belongs to its dispatcher before recovery may look it up.
    lease_seconds: float = ledger.LEASE_SECONDS
    #: Back-off after an unclear X answer: ``retry_base * 2**(attempts-1)`` seconds.
    retry_base: float = ledger.RETRY_BASE
    #: Attempts before a row whose sends keep failing unclearly is FAILED.
    max_attempts: int = ledger.MAX_ATTEMPTS
    #: Sleep when there was nothing to do.
    idle_sleep: float = 1.0
    #: Campaigns looked at per dispatch pass.
    campaigns_per_pass: int = 20

    @classmethod
    def from_settings(cls, settings: Any) -> DispatchOptions:
        values = {
            name: getattr(settings, f"campaign_{name}")
            for name in cls.__dataclass_fields__
            if hasattr(settings, f"campaign_{name}")
        }
        return cls(**values)


def _options(deps: Deps) -> DispatchOptions:
    return DispatchOptions.from_settings(deps.settings)


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ campaign context


@dataclass
class _Campaign:
    row: Row
    draft: domain.CampaignDraft
    account: Row
    templates: dict[str, TemplateDraft]
    window: domain.SendWindow

    @property
    def id(self) -> UUID:
        return UUID(str(self.row["id"]))

    @property
    def merchant_id(self) -> UUID:
        return UUID(str(self.row["merchant_id"]))


async def _load_campaign(merchant_id: UUID, campaign_id: UUID) -> _Campaign | None:
    row = await campaigns_store.get(merchant_id, campaign_id)
    if row is None:
        return None
    account = await accounts_store.get(merchant_id, row["account_id"])
    if account is None:
        return None
    draft = campaigns_store.draft_from_row(row)
    rows = await campaigns_store.templates(merchant_id, draft.template_ids())
    return _Campaign(
        row,
        draft,
        account,
        {k: template_draft(v) for k, v in rows.items()},
        domain.send_window(draft),
    )


# ------------------------------------------------------------------ dispatch


async def dispatch_due_recipients(deps: Deps, options: DispatchOptions | None = None) -> float:
    """Send what is due for every RUNNING campaign (see the module docstring).

    Returns 0 when it claimed anything (more is probably due), else the idle sleep.
    Errors of one campaign are logged and do not stop the others. ``options``
    overrides the settings (tests and benchmarks)."""
    opts = options or _options(deps)
    async with use_connection(deps.pool, transaction=True):
        due = await store.campaigns_to_dispatch(opts.campaigns_per_pass)
    busy = False
    for item in due:
        try:
            claimed = await _dispatch_campaign(deps, opts, item)
        except Exception:
            log.exception("dispatch failed", extra={"campaign_id": str(item["id"])})
            continue
        busy = busy or claimed > 0
    return 0.0 if busy else opts.idle_sleep


async def _dispatch_campaign(deps: Deps, opts: DispatchOptions, item: Row) -> int:
    merchant_id, campaign_id = item["merchant_id"], item["id"]
    now = _now()
    async with use_connection(deps.pool, transaction=True):
        c = await _load_campaign(merchant_id, campaign_id)
        if c is None or c.row["status"] != domain.RUNNING:
            return 0
        budget = await dm_budget_left(merchant_id, c.account["id"])
        allowed = domain.dispatch_allowance(
            c.draft,
            c.window,
            account_status=c.account["status"],
            budget_left=budget.left_now,
            budget_reset_at=budget.reset_at,
            sent_this_hour=int(item["sent_this_hour"]),
            in_flight=int(item["in_flight"]),
            batch_size=opts.batch_size,
            now=now,
        )
        if isinstance(allowed, domain.Wait):
            await store.set_waiting(c.merchant_id, c.id, allowed.until, allowed.reason)
            return 0
        await store.clear_waiting(merchant_id, campaign_id)

    to_send = await _claim(deps, opts, c, allowed, now)
    if to_send:
        await _send_batch(deps, opts, c, to_send)
    return len(to_send)


@dataclass
class _Claimed:
    id: int
    contact_id: UUID
    step: int
    x_user_id: str
    text: str
    attempts: int


async def _claim(
    deps: Deps, opts: DispatchOptions, c: _Campaign, limit: int, now: datetime
) -> list[_Claimed]:
    """Step 1 of the module docstring, in one transaction."""
    m = c.merchant_id
    async with use_connection(deps.pool, transaction=True):
        rows = await store.claim_candidates(m, c.id, limit)
        if not rows:
            return []
        d = c.draft
        facts: dict[UUID, Row] = {}
        if d.exclude_messaged_within or d.exclude_open_conversations:
            facts = await store.contact_facts(
                m,
                c.account["id"],
                c.id,
                within=d.exclude_messaged_within,
                contact_ids=[r["contact_id"] for r in rows],
            )
        claimed: list[_Claimed] = []
        skipped: list[tuple[int, str]] = []
        deferred: list[tuple[int, datetime]] = []
        for r in rows:
            decision = domain.claim_decision(
                d, c.window, c.templates, r, facts.get(r["contact_id"]), now
            )
            if isinstance(decision, domain.Send):
                claimed.append(
                    _Claimed(
                        r["id"],
                        r["contact_id"],
                        r["step"],
                        r["x_user_id"],
                        decision.text,
                        r["attempts"] + 1,
                    )
                )
            elif isinstance(decision, domain.Defer):
                deferred.append((r["id"], decision.until))
            else:
                skipped.append((r["id"], decision.reason))
        if claimed:
            await store.mark_sending(
                m,
                [x.id for x in claimed],
                [x.text for x in claimed],
                timedelta(seconds=opts.lease_seconds),
            )
        if deferred:
            await store.defer(m, [i for i, _ in deferred], [a for _, a in deferred])
        if skipped:
            n = await store.settle(
                m, domain.SKIPPED, [i for i, _ in skipped], [r for _, r in skipped]
            )
            await campaigns_store.bump(m, c.id, skipped=n)
    return claimed


async def _send_batch(
    deps: Deps, opts: DispatchOptions, c: _Campaign, batch: list[_Claimed]
) -> None:
    """Steps 2 and 3: send concurrently, record in small transactions."""

    async def record(out: list[tuple[_Claimed, SendOutcome]]) -> None:
        await _record(deps, opts, c, out)

    stop = await ledger.send_many(
        deps.xaccess,
        c.account,
        batch,
        to=lambda x: (x.x_user_id, x.text),
        record=record,
        concurrency=opts.concurrency,
        flush_size=opts.flush_size,
    )
    if stop is not None:
        assert stop.retry_at is not None
        async with use_connection(deps.pool, transaction=True):
            await store.set_waiting(c.merchant_id, c.id, stop.retry_at, stop.reason)


async def _record(
    deps: Deps, opts: DispatchOptions, c: _Campaign, out: list[tuple[_Claimed, SendOutcome]]
) -> None:
    """Step 3, one transaction: ledger rows first, counters last."""
    m = c.merchant_id
    sent = [(x, o) for x, o in out if o.kind is Outcome.SENT]
    failed = [(x, o) for x, o in out if o.kind is Outcome.FAILED]
    requeue: dict[tuple[datetime, str], list[int]] = defaultdict(list)
    for x, o in out:
        if o.kind is Outcome.REQUEUE:
            assert o.retry_at is not None
            requeue[(o.retry_at, o.reason)].append(x.id)
    unclear = [x for x, o in out if o.kind is Outcome.UNCLEAR]
    async with use_connection(deps.pool, transaction=True):
        await store.lock_in_order(m, [x.id for x, _ in out], [x.contact_id for x, _ in sent])
        deltas: dict[str, int] = defaultdict(int)
        if sent:
            await _finish_sent(
                c,
                [
                    SentRow(
                        x.id,
                        x.contact_id,
                        o.dm_event_id,
                        o.dm_conversation_id,
                        o.at or _now(),
                        x.text,
                    )
                    for x, o in sent
                ],
                deltas,
            )
        if failed:
            deltas["failed"] += await store.settle(
                m, domain.FAILED, [x.id for x, _ in failed], [o.reason for _, o in failed]
            )
        for (until, reason), group in requeue.items():
            await store.requeue(m, group, until, reason, refund=True)
        now = _now()
        for x in unclear:
            until = now + ledger.unclear_backoff(opts.retry_base, x.attempts)
            await store.extend_lease(m, [x.id], until, ledger.RESOLVING)
        await campaigns_store.bump(m, c.id, **deltas)


async def _finish_sent(c: _Campaign, sent: list[SentRow], deltas: dict[str, int]) -> None:
    """Rows X accepted → SENT with their inbox messages, announced as every stored
    message is (``message.created``: the inbox stream and the analytics rollups see
    campaign DMs too); the next step of a sequence is enrolled in the same
    transaction."""
    m = c.merchant_id
    done = await store.finish_sent(m, c.account["id"], c.id, sent)
    deltas["sent"] += len(done)
    await append_events(_message_events(c, done))
    at = {s.id: s.sent_at for s in sent}
    nxt = [
        (r["contact_id"], r["step"] + 1, due)
        for r in done
        if (due := domain.next_step_due(c.draft, r["step"], at[r["id"]])) is not None
    ]
    if nxt:
        deltas["total"] += await store.insert_steps(
            m,
            c.id,
            contact_ids=[n[0] for n in nxt],
            steps=[n[1] for n in nxt],
            due_ats=[n[2] for n in nxt],
        )


def _message_events(c: _Campaign, done: Sequence[Row]) -> list[dict[str, Any]]:
    """The outbox events of campaign DMs stored by ``store.finish_sent``: one
    ``message.created`` for each message the statement stored, already SENT (with its
    X event id), in the payload shape the one-off DM ledger writes. A DM is stored
    once X took it, so there is no later transition to announce (the one-off ledger's
    separate ``message.sent`` is for a message stored before X took it); a webhook
    echo taken over was announced when it arrived."""
    account_id = str(c.account["id"])
    return [
        {
            "merchant_id": c.merchant_id,
            "type": "message.created",
            "aggregate_id": r["conversation_id"],
            "payload": {
                "conversation_id": str(r["conversation_id"]),
                "account_id": account_id,
                "contact_id": str(r["contact_id"]),
                "message_id": str(r["message_id"]),
                "direction": "OUTBOUND",
                "origin": "CAMPAIGN",
                "campaign_id": str(c.id),
                "x_event_id": r["x_event_id"],
            },
        }
        for r in done
        if r["inserted"]
    ]


# ------------------------------------------------------------------ recovery


async def recover_stale_sends(deps: Deps, options: DispatchOptions | None = None) -> float:
    """Resolve SENDING rows whose lease ran out by looking the DM up at X, one lookup
    per recipient for all of its rows (X allows few lookups).

    Found (our text to that contact, sent no earlier than the claim): SENT with
    X's event id. Not found: QUEUED again (or SKIPPED when the campaign ended, or
    FAILED after ``max_attempts``). A lookup X cannot answer now is retried later (at
    X's reset when it rate-limits lookups); a lookup that can never be answered (the
    account lost its access) FAILS the row with reason "unconfirmed", because
    resending could duplicate it. Rows waiting here say "resolving an ambiguous send
    at X"."""
    opts = options or _options(deps)
    async with use_connection(deps.pool, transaction=True):
        rows = await store.stale_sending(STALE_BATCH)
        until = _now() + timedelta(seconds=opts.lease_seconds)
        for r in rows:
            await store.extend_lease(r["merchant_id"], [r["id"]], until, ledger.RESOLVING)
    groups: dict[tuple[UUID, UUID, str], list[Row]] = defaultdict(list)
    for r in rows:
        groups[(r["merchant_id"], r["account_id"], r["x_user_id"])].append(r)
    limited: dict[UUID, ledger.Resolved] = {}  # accounts whose lookups X rate-limited
    for (m, account_id, _), group in groups.items():
        try:
            if account_id in limited:
                # X said no more lookups for this account until its reset: do not ask.
                no = limited[account_id]
                assert no.retry_at is not None
                async with use_connection(deps.pool, transaction=True):
                    await store.extend_lease(
                        m, [r["id"] for r in group], no.retry_at, f"{ledger.RESOLVING}: {no.reason}"
                    )
                continue
            answer = await _resolve(deps, opts, group)
            if answer is not None:
                limited[account_id] = answer
        except Exception:
            log.exception("recovery failed", extra={"recipient_ids": [r["id"] for r in group]})
    return 0.0 if len(rows) == STALE_BATCH else 5.0


async def _resolve(deps: Deps, opts: DispatchOptions, rows: list[Row]) -> ledger.Resolved | None:
    """Resolve one recipient's stale rows (one account, one X user) with one lookup.
    Returns X's answer when it rate-limited the account's lookups."""
    m, contact_id = rows[0]["merchant_id"], rows[0]["contact_id"]
    campaigns: dict[UUID, _Campaign] = {}
    async with use_connection(deps.pool, transaction=True):
        for r in rows:
            if r["campaign_id"] not in campaigns:
                c = await _load_campaign(m, r["campaign_id"])
                if c is not None:
                    campaigns[r["campaign_id"]] = c
        earliest = min(r["sending_at"] for r in rows)
        known = await store.contact_sent_event_ids(m, contact_id)
        known |= await outbound_store.sent_event_ids(
            m, contact_id, earliest - ledger.LOOKUP_SKEW - timedelta(minutes=1)
        )
    rows = [r for r in rows if r["campaign_id"] in campaigns]
    if not rows:
        return None
    account = campaigns[rows[0]["campaign_id"]].account
    results = await ledger.resolve_unclear_dms(
        deps.xaccess,
        account,
        rows[0]["x_user_id"],
        [(r["text"], r["sending_at"]) for r in rows],
        known_event_ids=known,
    )
    async with use_connection(deps.pool, transaction=True):
        await store.lock_in_order(m, [r["id"] for r in rows], [contact_id])
        deltas: dict[UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r, res in zip(rows, results, strict=True):
            c, d = campaigns[r["campaign_id"]], deltas[r["campaign_id"]]
            if res.kind is Resolution.RETRY_LATER:
                until = res.retry_at or _now() + ledger.RETRY_LOOKUP
                reason = f"{ledger.RESOLVING}: {res.reason}"
                await store.extend_lease(m, [r["id"]], until, reason)
            elif res.kind is Resolution.UNCONFIRMABLE:
                d["failed"] += await store.settle(m, domain.FAILED, [r["id"]], [res.reason])
            elif res.kind is Resolution.FOUND:
                assert res.event is not None
                at = res.event.created_at or r["sending_at"]
                sent = SentRow(
                    r["id"],
                    r["contact_id"],
                    res.event.id,
                    res.event.dm_conversation_id or "",
                    at,
                    r["text"],
                )
                await _finish_sent(c, [sent], d)
            else:
                settled = domain.unsent_outcome(
                    r["campaign_status"], r["attempts"], opts.max_attempts
                )
                if settled is None:
                    await store.requeue(m, [r["id"]], _now())
                else:
                    state, reason = settled
                    d[state.lower()] += await store.settle(m, state, [r["id"]], [reason])
        for cid, d in sorted(deltas.items()):  # campaign rows last, in one order
            await campaigns_store.bump(m, cid, **d)
    first = results[0]
    if first.kind is Resolution.RETRY_LATER and first.error_reason == "RATE_LIMIT_EXCEEDED":
        return first
    return None


# ------------------------------------------------------------------ schedules


async def run_campaign_schedules(deps: Deps) -> float:
    """Start SCHEDULED campaigns whose time came (snapshotting their audience),
    complete campaigns past end_time or with every row settled, and skip rows that
    ended campaigns left queued."""
    now = _now()
    async with use_connection(deps.pool, transaction=True):
        for item in await store.due_scheduled(20):
            row = await campaigns_store.get(item["merchant_id"], item["id"])
            if row is not None:
                await campaigns_store.launch(item["merchant_id"], row, now=now)
    async with use_connection(deps.pool, transaction=True):
        for item in await store.due_to_end(50):
            await campaigns_store.finish(
                item["merchant_id"],
                item["id"],
                domain.COMPLETED,
                "end_time_passed" if item["ended"] else "",
            )
    async with use_connection(deps.pool, transaction=True):
        swept: dict[tuple[UUID, UUID], int] = defaultdict(int)
        for key in await store.sweep_leftovers():
            swept[key] += 1
        for (m, cid), n in swept.items():
            await campaigns_store.bump(m, cid, skipped=n)
    return 1.0


# ------------------------------------------------------------------ events

#: The inbox events campaigns react to.
CAMPAIGN_EVENT_TYPES = ("message.delivered", "message.read", "message.received", "contact.followed")

_Deltas = dict[tuple[UUID, UUID], dict[str, int]]


async def apply_campaign_events(events: Sequence[OutboxEvent]) -> None:
    """The campaign consumer's batch handler: apply inbox events to campaigns.

    - ``message.delivered`` / ``message.read`` (payload ``message_id``): the ledger
      row of that message becomes DELIVERED / READ;
    - ``message.received`` (``contact_id``): per campaign, the contact's latest row
      sent within the attribution window becomes REPLIED, and later steps of
      sequences that stop on reply are SKIPPED (reason "replied");
    - ``contact.followed`` (``contact_id``, ``account_id``): the follower enters the
      account's welcome campaigns by ``domain.welcome_enrolment`` and the
      campaign's audience (``domain.audience``).

    Counters move once per campaign for the batch. Every effect is idempotent per
    event (a redelivered event changes nothing). A malformed payload is logged and
    skipped; a database error fails the batch (the consumer retries it)."""
    deltas: _Deltas = defaultdict(lambda: defaultdict(int))
    now = _now()
    for ev in events:
        try:
            await _apply_event(ev, deltas, now)
        except (ValueError, KeyError, TypeError):
            log.warning("malformed event skipped", extra={"event_id": ev.id})
    for (m, cid), d in deltas.items():
        await campaigns_store.bump(m, cid, **d)


#: The campaign outbox consumer (registered in ``mktx_grpc.worker.CONSUMERS``).
CAMPAIGN_EVENTS = Consumer(CONSUMER, handle_batch=apply_campaign_events, types=CAMPAIGN_EVENT_TYPES)


async def consume_campaign_events(deps: Deps) -> float:
    """Deliver what the campaign consumer has waiting, now (``consumer.drain``: it
    waits a few seconds for held events to settle), and return 0.5. For tests and
    tools; the worker runs the consumer with ``consumer.consumer_loop``."""
    await drain(deps.pool, CAMPAIGN_EVENTS)
    return 0.5


def _uuid(value: Any) -> UUID:
    return UUID(str(value))


async def _apply_event(ev: OutboxEvent, deltas: _Deltas, now: datetime) -> None:
    kind, m, p, at = ev.type, ev.merchant_id, ev.payload, ev.created_at
    if kind == "message.delivered" and p.get("message_id"):
        for cid in await store.mark_delivered(m, _uuid(p["message_id"]), at):
            deltas[(m, cid)]["delivered"] += 1
    elif kind == "message.read" and p.get("message_id"):
        for cid, newly_delivered in await store.mark_read(m, _uuid(p["message_id"]), at):
            deltas[(m, cid)]["read"] += 1
            if newly_delivered:
                deltas[(m, cid)]["delivered"] += 1
    elif kind == "message.received" and p.get("contact_id"):
        contact_id = _uuid(p["contact_id"])
        for cid in await store.mark_replied(m, contact_id, at):
            deltas[(m, cid)]["replied"] += 1
        for cid in await store.stop_on_reply(m, contact_id, at):
            deltas[(m, cid)]["skipped"] += 1
    elif kind == "contact.followed" and p.get("contact_id") and p.get("account_id"):
        contact_id, account_id = _uuid(p["contact_id"]), _uuid(p["account_id"])
        for wid in await store.welcome_campaigns(m, account_id):
            row = await campaigns_store.get(m, wid)
            if row is None:
                continue
            draft = campaigns_store.draft_from_row(row)
            due_at = domain.welcome_enrolment(
                draft, status=row["status"], now=now, follow_applied=p.get("applied") is not False
            )
            if due_at is None:
                continue
            n = await campaigns_store.snapshot(m, row, draft, due_at=due_at, contact_id=contact_id)
            deltas[(m, wid)]["total"] += n
