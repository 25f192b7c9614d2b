"""The campaign engine's background loops: dispatch, crash recovery, schedules and
the domain-event consumer. Each is ``async def name(deps) -> float`` (seconds to
sleep before the next pass) and safe to run in any number of processes at once.

Exactly once, per ledger row (campaign, contact, step):

1. **Claim** (one transaction): due QUEUED rows of a RUNNING campaign are locked
   with ``FOR UPDATE SKIP LOCKED``; each is rendered for its contact and checked
   against opt-out, exclusions and the send window. Rows to send become SENDING
   with the rendered text and a lease; the rest are SKIPPED (with the reason) or
   deferred to the next window opening. Committed before anything is sent.
2. **Send** through ``XAccess.send_dm`` (which draws from the account's DM
   budget; the batch is announced with ``XAccess.dm_batch`` so units are reserved
   many per round trip), concurrently within the batch, with no transaction open.
3. **Record** (one transaction per few sends): SENT with the X event id, the
   message stored in the contact's conversation; FAILED when X refused; back to
   QUEUED when X or the budget said "not now" (the DM was certainly not sent), and
   the campaign waits until the reset time. When the outcome is unknown (timeout,
   5xx, crash) the row stays SENDING.
4. **Recover**: a SENDING row whose lease ran out is looked up at X (the
   conversation's DM events: our text, sent after the claim) before anything else
   happens. Found: SENT with that event id. Not found: QUEUED again. So no contact
   ever gets a campaign message twice, and no row stays SENDING forever.

Lock order everywhere: ledger rows first, the campaign row (counters) last; Cancel,
which locks the campaign first, only takes ledger rows nobody holds (SKIP LOCKED).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from ..core.db import use_connection
from ..core.errors import DomainError, FailedPrecondition, QuotaExceeded
from ..deps import Deps
from ..domain import campaigns as domain
from ..domain.templates import MissingVariables, TemplateDraft
from ..store import Row, execute, fetch_all, fetch_one
from ..store import campaigns as store
from ..store.budget import DEFAULT_PER_15_MINUTES, DEFAULT_PER_24_HOURS
from ..store.templates import draft_from_row as template_draft
from ..x import UserContext
from ..x.models import DmEvent, DmEventPage

log = logging.getLogger(__name__)
Q = store.Q

CONSUMER = "campaigns"
#: Clock skew tolerated between our claim time and X's timestamp of the DM.
LOOKUP_SKEW = timedelta(seconds=30)


@dataclass(frozen=True)
class DispatchOptions:
    """Tunables; :meth:`from_settings` reads ``Settings`` attributes named
    ``campaign_<field>`` when present, so deployments can set them without code."""

    #: Most rows one campaign claims per pass.
    batch_size: int = 500
    #: DMs in flight at once per worker process. Measured against the sandbox: the
    #: worker is CPU-bound and httpcore's pool costs O(connections x requests) per
    #: request, so 4-8 in flight beat 16 (see bench/results/dispatch.md).
    concurrency: int = 8
    #: Sent rows recorded per transaction.
    flush_size: int = 64
    #: Seconds a SENDING row belongs to its dispatcher before recovery may look it up.
    #: Longer than any send can take (the X client's deadline) plus recording it.
    lease_seconds: float = 120.0
    #: Back-off after an unclear X answer: ``retry_base * 2**(attempts-1)`` seconds.
    retry_base: float = 2.0
    #: Attempts before a row whose sends keep failing unclearly is FAILED.
    max_attempts: int = 5
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

    def template_for(self, step: int) -> tuple[TemplateDraft | None, dict[str, str]]:
        if self.draft.type in domain.STEP_TYPES:
            if step >= len(self.draft.steps):
                return None, {}
            s = self.draft.steps[step]
            return self.templates.get(s.template_id.lower()), s.variables
        return self.templates.get(self.draft.template_id.lower()), {}


async def _load_campaign(merchant_id: UUID, campaign_id: UUID) -> _Campaign | None:
    row = await store.get(merchant_id, campaign_id)
    if row is None:
        return None
    account = await store.get_account(merchant_id, row["account_id"])
    if account is None:
        return None
    draft = store.draft_from_row(row)
    rows = await store.templates(merchant_id, draft.template_ids())
    return _Campaign(
        row,
        draft,
        account,
        {k: template_draft(v) for k, v in rows.items()},
        domain.send_window(draft),
    )


async def _wait(c: _Campaign, until: datetime, reason: str) -> None:
    await execute(
        Q.set_waiting, {"merchant_id": c.merchant_id, "id": c.id, "until": until, "reason": reason}
    )


# ------------------------------------------------------------------ dispatch


async def dispatch_due_recipients(deps: Deps, options: DispatchOptions | None = None) -> float:
    """Send what is due for every RUNNING campaign (see the module docstring).

    Returns 0 when it claimed anything (more is probably due), else the idle sleep.
    Errors of one campaign are logged and do not stop the others. ``options``
    overrides the settings (tests and benchmarks)."""
    opts = options or _options(deps)
    async with use_connection(deps.pool, transaction=True):
        due = await fetch_all(Q.campaigns_to_dispatch, {"limit": opts.campaigns_per_pass})
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
        limit = opts.batch_size
        if c.account["status"] != "ACTIVE":
            await _wait(
                c,
                now + timedelta(minutes=1),
                f"account {c.account['status'].lower()}: reconnect it to send",
            )
            return 0
        budget = await fetch_one(
            Q.budget_left,
            {
                "merchant_id": merchant_id,
                "account_id": c.account["id"],
                "default_15": DEFAULT_PER_15_MINUTES,
                "default_24": DEFAULT_PER_24_HOURS,
            },
        )
        if budget is not None and budget["left_now"] is not None:
            if budget["left_now"] <= 0:
                reset = budget["reset_at"] or now + timedelta(minutes=1)
                await _wait(c, reset, f"waiting for DM budget until {reset.isoformat()}")
                return 0
            limit = min(limit, int(budget["left_now"]))
        cap = c.draft.max_sends_per_hour
        if cap:
            left = cap - int(item["sent_this_hour"]) - int(item["in_flight"])
            if left <= 0:
                hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
                await _wait(c, hour, f"hourly send cap of {cap} reached")
                return 0
            limit = min(limit, left)
        if not domain.uses_contact_zone(c.draft):
            opens = c.window.next_open(now)
            if opens is None:
                await _wait(c, now + timedelta(days=1), "the send window never opens")
                return 0
            if opens > now:
                await _wait(c, opens, "outside send window")
                return 0
        await execute(Q.clear_waiting, {"merchant_id": merchant_id, "id": campaign_id})

    to_send = await _claim(deps, opts, c, limit, now)
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
        rows = await fetch_all(
            Q.claim_candidates, {"merchant_id": m, "campaign_id": c.id, "limit": limit}
        )
        if not rows:
            return []
        d = c.draft
        facts: dict[UUID, Row] = {}
        if d.exclude_messaged_within or d.exclude_open_conversations:
            for fact in await fetch_all(
                Q.contact_facts,
                {
                    "merchant_id": m,
                    "account_id": c.account["id"],
                    "campaign_id": c.id,
                    "within": d.exclude_messaged_within,
                    "contact_ids": [r["contact_id"] for r in rows],
                },
            ):
                facts[fact["contact_id"]] = fact
        claimed: list[_Claimed] = []
        skipped: list[tuple[int, str]] = []
        deferred: list[tuple[int, datetime]] = []
        per_contact = domain.uses_contact_zone(d)
        for r in rows:
            if r["opted_out"]:
                skipped.append((r["id"], "opted_out"))
                continue
            if per_contact:
                opens = c.window.next_open(now, r["time_zone"] or "")
                if opens is None:
                    skipped.append((r["id"], "outside_send_window"))
                    continue
                if opens > now:
                    deferred.append((r["id"], opens))
                    continue
            f = facts.get(r["contact_id"])
            if f is not None and d.exclude_messaged_within and f["recently_messaged"]:
                skipped.append((r["id"], "recently_messaged"))
                continue
            if f is not None and d.exclude_open_conversations and f["open_conversation"]:
                skipped.append((r["id"], "open_conversation"))
                continue
            template, step_vars = c.template_for(r["step"])
            if template is None:
                skipped.append((r["id"], "template_missing"))
                continue
            try:
                text = domain.render_for_contact(template, r, d.variables, step_vars)
            except MissingVariables as missing:
                skipped.append((r["id"], f"missing_variable:{','.join(missing.names)}"))
                continue
            if not text.strip():
                skipped.append((r["id"], "empty_message"))
                continue
            claimed.append(
                _Claimed(
                    r["id"], r["contact_id"], r["step"], r["x_user_id"], text, r["attempts"] + 1
                )
            )
        if claimed:
            await execute(
                Q.mark_sending,
                {
                    "merchant_id": m,
                    "ids": [x.id for x in claimed],
                    "texts": [x.text for x in claimed],
                    "lease": timedelta(seconds=opts.lease_seconds),
                },
            )
        if deferred:
            await execute(
                Q.defer_rows,
                {
                    "merchant_id": m,
                    "ids": [i for i, _ in deferred],
                    "ats": [a for _, a in deferred],
                },
            )
        if skipped:
            done = await fetch_all(
                Q.settle_rows,
                {
                    "merchant_id": m,
                    "state": domain.SKIPPED,
                    "ids": [i for i, _ in skipped],
                    "reasons": [r for _, r in skipped],
                },
            )
            await store.bump(m, c.id, skipped=len(done))
    return claimed


@dataclass
class _Outcomes:
    sent: list[tuple[_Claimed, str, str, datetime]] = field(default_factory=list)
    failed: list[tuple[_Claimed, str]] = field(default_factory=list)
    requeue: list[tuple[_Claimed, datetime]] = field(default_factory=list)
    unclear: list[_Claimed] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sent) + len(self.failed) + len(self.requeue) + len(self.unclear)


async def _send_batch(
    deps: Deps, opts: DispatchOptions, c: _Campaign, batch: list[_Claimed]
) -> None:
    """Steps 2 and 3: send concurrently, record in small transactions."""
    gate = asyncio.Semaphore(opts.concurrency)
    pending = _Outcomes()
    flush_lock = asyncio.Lock()
    stop: dict[str, Any] = {}  # set when the budget, X or the account says stop

    async def flush(force: bool = False) -> None:
        nonlocal pending
        if not force and len(pending) < opts.flush_size:
            return
        async with flush_lock:
            out, pending = pending, _Outcomes()
            if len(out):
                await _record(deps, opts, c, out)

    async def one(x: _Claimed) -> None:
        async with gate:
            if stop:
                pending.requeue.append((x, stop["until"]))
                return
            try:
                sent = await deps.xaccess.send_dm(c.account, x.x_user_id, text=x.text)
            except QuotaExceeded as exc:
                until = exc.retry_at or _now() + timedelta(minutes=1)
                stop.setdefault("until", until)
                stop.setdefault(
                    "reason",
                    f"waiting for DM budget until {until.isoformat()}"
                    if exc.reason == "DM_BUDGET_SPENT"
                    else f"X rate limit until {until.isoformat()}",
                )
                pending.requeue.append((x, until))
            except FailedPrecondition as exc:
                if exc.reason in ("TWITTER_FORBIDDEN", "TWITTER_REJECTED"):
                    pending.failed.append((x, f"{exc.reason}: {exc.message}"))
                else:  # the account cannot send (not active, revoked): nothing went out
                    until = _now() + timedelta(minutes=1)
                    stop.setdefault("until", until)
                    stop.setdefault("reason", f"account cannot send: {exc.message}")
                    pending.requeue.append((x, until))
            except DomainError:
                pending.unclear.append(x)  # may have reached X: recovery decides
            except Exception:
                log.exception("unexpected error sending a campaign DM")
                pending.unclear.append(x)
            else:
                pending.sent.append((x, sent.dm_event_id, sent.dm_conversation_id, _now()))
        await flush()

    async with deps.xaccess.dm_batch(c.account, len(batch)):
        await asyncio.gather(*(one(x) for x in batch))
    await flush(force=True)
    if stop:
        async with use_connection(deps.pool, transaction=True):
            await _wait(c, stop["until"], stop["reason"])


async def _record(deps: Deps, opts: DispatchOptions, c: _Campaign, out: _Outcomes) -> None:
    """Step 3, one transaction: ledger rows first, counters last."""
    m = c.merchant_id
    async with use_connection(deps.pool, transaction=True):
        deltas: dict[str, int] = defaultdict(int)
        if out.sent:
            await _finish_sent(
                c,
                [(x.id, x.contact_id, x.step, ev, conv, at) for x, ev, conv, at in out.sent],
                deltas,
            )
        if out.failed:
            done = await fetch_all(
                Q.settle_rows,
                {
                    "merchant_id": m,
                    "state": domain.FAILED,
                    "ids": [x.id for x, _ in out.failed],
                    "reasons": [r for _, r in out.failed],
                },
            )
            deltas["failed"] += len(done)
        for until, group in _group(out.requeue).items():
            await execute(Q.requeue_rows, {"merchant_id": m, "ids": group, "ready_at": until})
        now = _now()
        for x in out.unclear:
            backoff = opts.retry_base * 2 ** max(0, x.attempts - 1)
            await execute(
                Q.extend_lease,
                {"merchant_id": m, "ids": [x.id], "until": now + timedelta(seconds=backoff)},
            )
        await store.bump(m, c.id, **deltas)


def _group(items: list[tuple[_Claimed, datetime]]) -> dict[datetime, list[int]]:
    out: dict[datetime, list[int]] = defaultdict(list)
    for x, until in items:
        out[until].append(x.id)
    return out


async def _finish_sent(
    c: _Campaign,
    sent: list[tuple[int, UUID, int, str, str, datetime]],
    deltas: dict[str, int],
) -> None:
    """Rows X accepted → SENT with their inbox messages; the next step of a sequence
    is enrolled in the same transaction."""
    m = c.merchant_id
    done = await fetch_all(
        Q.finish_sent,
        {
            "merchant_id": m,
            "account_id": c.account["id"],
            "campaign_id": c.id,
            "ids": [s[0] for s in sent],
            "contact_ids": [s[1] for s in sent],
            "x_event_ids": [s[3] for s in sent],
            "x_conversation_ids": [s[4] for s in sent],
            "sent_ats": [s[5] for s in sent],
        },
    )
    deltas["sent"] += len(done)
    steps = c.draft.steps
    if c.draft.type in domain.STEP_TYPES and done:
        at = {s[0]: s[5] for s in sent}
        nxt = [
            (r["contact_id"], r["step"] + 1, at[r["id"]] + steps[r["step"] + 1].delay)
            for r in done
            if r["step"] + 1 < len(steps)
        ]
        if nxt:
            added = await fetch_all(
                Q.insert_steps,
                {
                    "merchant_id": m,
                    "campaign_id": c.id,
                    "contact_ids": [n[0] for n in nxt],
                    "steps": [n[1] for n in nxt],
                    "due_ats": [n[2] for n in nxt],
                },
            )
            deltas["total"] += len(added)


# ------------------------------------------------------------------ recovery


async def recover_stale_sends(deps: Deps, options: DispatchOptions | None = None) -> float:
    """Resolve SENDING rows whose lease ran out by looking the DM up at X.

    Found (our text to that contact, sent no earlier than the claim): SENT with
    X's event id. Not found: QUEUED again (or SKIPPED when the campaign ended, or
    FAILED after ``max_attempts``). A lookup X cannot answer now is retried later; a
    lookup that can never be answered (the account lost its access) FAILS the row
    with reason "unconfirmed", because resending could duplicate it."""
    opts = options or _options(deps)
    async with use_connection(deps.pool, transaction=True):
        rows = await fetch_all(Q.stale_sending, {"limit": 50})
        now = _now()
        for r in rows:
            await execute(
                Q.extend_lease,
                {
                    "merchant_id": r["merchant_id"],
                    "ids": [r["id"]],
                    "until": now + timedelta(seconds=opts.lease_seconds),
                },
            )
    for r in rows:
        try:
            await _resolve(deps, opts, r)
        except Exception:
            log.exception("recovery failed", extra={"recipient_id": r["id"]})
    return 0.0 if len(rows) == 50 else 5.0


async def _resolve(deps: Deps, opts: DispatchOptions, r: Row) -> None:
    m = r["merchant_id"]
    async with use_connection(deps.pool, transaction=True):
        c = await _load_campaign(m, r["campaign_id"])
        known = {
            x["x_event_id"]
            for x in await fetch_all(
                Q.contact_sent_event_ids, {"merchant_id": m, "contact_id": r["contact_id"]}
            )
        }
    if c is None:
        return
    me = str(c.account["x_user_id"])
    since = r["sending_at"] - LOOKUP_SKEW
    found: DmEvent | None = None
    token: str | None = None

    async def lookup(u: UserContext) -> DmEventPage:
        return await u.dm_events(
            participant_id=r["x_user_id"], max_results=100, pagination_token=token
        )

    try:
        for _ in range(5):
            page = await deps.xaccess.call(c.account, lookup)
            for ev in page.events:
                if (
                    ev.sender_id == me
                    and ev.id not in known
                    and (ev.text or "").strip() == r["text"].strip()
                    and (ev.created_at is None or ev.created_at >= since)
                ):
                    found = ev
                    break
            oldest = page.events[-1].created_at if page.events else None
            if found or not page.next_token or (oldest is not None and oldest < since):
                break
            token = page.next_token
    except FailedPrecondition as exc:
        async with use_connection(deps.pool, transaction=True):
            done = await fetch_all(
                Q.settle_rows,
                {
                    "merchant_id": m,
                    "state": domain.FAILED,
                    "ids": [r["id"]],
                    "reasons": [f"unconfirmed: {exc.message}"],
                },
            )
            await store.bump(m, c.id, failed=len(done))
        return
    except DomainError:
        async with use_connection(deps.pool, transaction=True):
            await execute(
                Q.extend_lease,
                {"merchant_id": m, "ids": [r["id"]], "until": _now() + timedelta(seconds=30)},
            )
        return
    async with use_connection(deps.pool, transaction=True):
        deltas: dict[str, int] = defaultdict(int)
        if found is not None:
            at = found.created_at or r["sending_at"]
            await _finish_sent(
                c,
                [
                    (
                        r["id"],
                        r["contact_id"],
                        r["step"],
                        found.id,
                        found.dm_conversation_id or "",
                        at,
                    )
                ],
                deltas,
            )
        elif r["campaign_status"] in (domain.CANCELLED, domain.COMPLETED):
            done = await fetch_all(
                Q.settle_rows,
                {
                    "merchant_id": m,
                    "state": domain.SKIPPED,
                    "ids": [r["id"]],
                    "reasons": [
                        "campaign_cancelled"
                        if r["campaign_status"] == domain.CANCELLED
                        else "end_time_passed"
                    ],
                },
            )
            deltas["skipped"] += len(done)
        elif r["attempts"] >= opts.max_attempts:
            done = await fetch_all(
                Q.settle_rows,
                {
                    "merchant_id": m,
                    "state": domain.FAILED,
                    "ids": [r["id"]],
                    "reasons": ["x_unavailable: gave up after repeated unclear answers"],
                },
            )
            deltas["failed"] += len(done)
        else:
            await execute(Q.requeue_rows, {"merchant_id": m, "ids": [r["id"]], "ready_at": _now()})
        await store.bump(m, c.id, **deltas)


# ------------------------------------------------------------------ schedules


async def run_campaign_schedules(deps: Deps) -> float:
    """Start SCHEDULED campaigns whose time came (snapshotting their audience),
    complete campaigns past end_time or with every row settled, and skip rows that
    ended campaigns left queued."""
    now = _now()
    async with use_connection(deps.pool, transaction=True):
        for item in await fetch_all(Q.due_scheduled, {"limit": 20}):
            row = await store.get(item["merchant_id"], item["id"])
            if row is not None:
                await store.launch(item["merchant_id"], row, now=now)
    async with use_connection(deps.pool, transaction=True):
        for item in await fetch_all(Q.due_to_end, {"limit": 50}):
            await store.finish(
                item["merchant_id"],
                item["id"],
                domain.COMPLETED,
                "end_time_passed" if item["ended"] else "",
            )
    async with use_connection(deps.pool, transaction=True):
        swept: dict[tuple[UUID, UUID], int] = defaultdict(int)
        for r in await fetch_all(Q.sweep_leftovers, {}):
            swept[(r["merchant_id"], r["campaign_id"])] += 1
        for (m, cid), n in swept.items():
            await store.bump(m, cid, skipped=n)
    return 1.0


# ------------------------------------------------------------------ events


async def consume_campaign_events(deps: Deps) -> float:
    """Apply inbox events to campaigns, from a durable cursor:

    - ``message.delivered`` / ``message.read`` (payload ``message_id``): the ledger
      row of that message becomes DELIVERED / READ;
    - ``message.received`` (``contact_id``): per campaign, the contact's latest row
      sent within the attribution window becomes REPLIED, and later steps of
      sequences that stop on reply are SKIPPED (reason "replied");
    - ``contact.followed`` (``contact_id``, ``account_id``): the follower is enrolled
      in the account's RUNNING welcome campaigns (``enrol_delay`` later) when the
      campaign's segments, if any, match them.

    One pass runs at a time across workers (the cursor row is claimed with SKIP
    LOCKED); every effect is idempotent, and the cursor advances in the same
    transaction as the effects."""
    async with use_connection(deps.pool, transaction=True):
        await execute(Q.lock_cursor, {"consumer": CONSUMER})
    limit = 500
    async with use_connection(deps.pool, transaction=True):
        cur = await fetch_one(Q.claim_cursor, {"consumer": CONSUMER})
        if cur is None:
            return 0.5
        events = await fetch_all(
            Q.events_for_consumer, {"after_id": cur["last_event_id"], "limit": limit}
        )
        last = cur["last_event_id"]
        deltas: dict[tuple[UUID, UUID], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        now = _now()
        for ev in events:
            if not ev["settled"]:
                break
            try:
                await _apply_event(ev, deltas, now)
            except (ValueError, KeyError, TypeError):
                log.warning("malformed event skipped", extra={"event_id": ev["id"]})
            last = ev["id"]
        for (m, cid), d in deltas.items():
            await store.bump(m, cid, **d)
        if last != cur["last_event_id"]:
            await execute(Q.advance_cursor, {"consumer": CONSUMER, "last_event_id": last})
    return 0.0 if len(events) == limit and last != cur["last_event_id"] else 0.5


def _uuid(value: Any) -> UUID:
    return UUID(str(value))


async def _apply_event(
    ev: Row, deltas: dict[tuple[UUID, UUID], dict[str, int]], now: datetime
) -> None:
    kind, m, p = ev["type"], ev["merchant_id"], ev["payload"] or {}
    at = ev["created_at"]
    if kind == "message.delivered" and p.get("message_id"):
        for r in await fetch_all(
            Q.mark_delivered, {"merchant_id": m, "at": at, "message_id": _uuid(p["message_id"])}
        ):
            deltas[(m, r["campaign_id"])]["delivered"] += 1
    elif kind == "message.read" and p.get("message_id"):
        for r in await fetch_all(
            Q.mark_read, {"merchant_id": m, "at": at, "message_id": _uuid(p["message_id"])}
        ):
            deltas[(m, r["campaign_id"])]["read"] += 1
            if r["newly_delivered"]:
                deltas[(m, r["campaign_id"])]["delivered"] += 1
    elif kind == "message.received" and p.get("contact_id"):
        contact_id = _uuid(p["contact_id"])
        params = {"merchant_id": m, "contact_id": contact_id, "at": at}
        for r in await fetch_all(Q.mark_replied, params):
            deltas[(m, r["campaign_id"])]["replied"] += 1
        for r in await fetch_all(Q.stop_on_reply, params):
            deltas[(m, r["campaign_id"])]["skipped"] += 1
    elif kind == "contact.followed" and p.get("contact_id") and p.get("account_id"):
        if p.get("applied") is False:
            return
        contact_id = _uuid(p["contact_id"])
        for w in await fetch_all(
            Q.welcome_campaigns, {"merchant_id": m, "account_id": _uuid(p["account_id"])}
        ):
            row = await store.get(m, w["id"])
            if row is None:
                continue
            draft = store.draft_from_row(row)
            n = await store.snapshot(
                m, row, draft, due_at=now + draft.enrol_delay, contact_id=contact_id
            )
            deltas[(m, w["id"])]["total"] += n
