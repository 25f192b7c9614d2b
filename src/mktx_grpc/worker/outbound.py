"""The one-off DM ledger's loops: the sender and its recovery (``store/outbound.py``
holds the table and the callers' API; ``worker/ledger.py`` the send-ledger pattern).

**Sender** (:func:`outbound_sender_loop` in the worker; :func:`dispatch_outbound` is
one synchronous pass, for tests and tools). Woken at once by the ``NOTIFY
mktx_outbound`` of :func:`store.outbound.enqueue_dm` (through ``store.live``'s
dispatcher), else every :attr:`OutboundOptions.idle_poll` seconds:

1. **Claim** (one transaction): due QUEUED rows of every merchant, ``FOR UPDATE SKIP
   LOCKED``, a contact's rows one at a time and in order. Per row: a contact who
   opted out is SKIPPED ``opted_out`` (unless the row may bypass it); a contact or
   account that is gone FAILS it; an account that is not ACTIVE makes its rows wait
   ("account revoked: reconnect it to send"), claimable again the moment it is
   ACTIVE; a spent DM budget makes them wait until it frees up ("waiting for DM
   budget until …"). The rest are **armed** (SENDING with a lease) and committed
   before anything is sent.
2. **Send**, per account concurrently (an account's batch through ``ledger.send_many``,
   drawing from its DM budget), with no transaction open; a media attachment is
   fetched and uploaded first. In the worker each account sends in a task of its
   own, so a slow account never holds up the others' first sends.
3. **Record** (one short transaction per few outcomes): SENT rows store their
   message in the contact's conversation as the agent send path stores one, with
   ``message.created`` and ``message.sent`` (``conversation.opened`` first when one
   was opened for it), a flush's rows set-based in a few statements (see
   :func:`_store_sent`); FAILED rows get ``outbound.failed``; "not now" (budget, X's 429,
   breaker, account) puts the rows and the account's other queued rows back to wait
   with the reason; an unknown outcome leaves the row armed ("resolving an ambiguous
   send at X") for recovery.

**Recovery** (:func:`recover_outbound`): armed rows whose lease ran out are resolved
at X before anything is sent again, one DM lookup per recipient shared by all its
unclear rows (``ledger.resolve_unclear_dms``): found → SENT with that event; not
found → QUEUED again (or FAILED after ``max_attempts``; an agent send adopted for
resolution is FAILED "not sent", never resent); X cannot tell now (its lookup limit,
an outage) → looked at again later, at X's reset; the account cannot read (not
active) → waits for it; can never be told → FAILED "unconfirmed".
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool

from ..core.db import use_connection
from ..core.errors import InvalidArgument
from ..deps import Deps
from ..domain import conversations as conv_domain
from ..mapping.conversations import event_payload
from ..store import Row
from ..store import accounts as accounts_store
from ..store import conversations as conv_store
from ..store import dispatch as dispatch_store
from ..store import outbound as store
from ..store.budget import dm_budget_left
from ..store.events import append_event, append_events
from ..store.live import dispatcher_for
from . import ledger
from .ledger import Outcome, Resolution, SendOutcome

log = logging.getLogger(__name__)

#: Recovery pass size.
STALE_BATCH = 50
#: One sender loop iteration runs at most this long, then returns (so the worker can stop).
ITERATION_SECONDS = 2.0
#: What an armed row whose outcome X left unknown says while it waits for recovery.
RESOLVING = ledger.RESOLVING
#: Record transactions that hit a deadlock are tried again this many times.
RECORD_RETRIES = 2


@dataclass(frozen=True)
class OutboundOptions:
    """Tunables; :meth:`from_settings` reads ``Settings`` attributes named
    ``outbound_<field>`` when present."""

    #: Most rows claimed per pass (across accounts).
    batch_size: int = ledger.CLAIM_BATCH
    #: DMs in flight at once per account.
    concurrency: int = ledger.CONCURRENCY
    #: Accounts sending at once per worker process.
    max_accounts: int = 8
    #: Outcomes recorded per transaction.
    flush_size: int = ledger.FLUSH_SIZE
    #: Seconds an armed row belongs to its sender before recovery may look it up.
    lease_seconds: float = ledger.LEASE_SECONDS
    #: Back-off after an unclear X answer: ``retry_base * 2**(attempts-1)`` seconds.
    retry_base: float = ledger.RETRY_BASE
    #: Attempts before a row whose sends keep ending unclearly (or not sent) is FAILED.
    max_attempts: int = ledger.MAX_ATTEMPTS
    #: Seconds between passes when nothing woke the sender.
    idle_poll: float = 1.0

    @classmethod
    def from_settings(cls, settings: Any) -> OutboundOptions:
        values = {
            name: getattr(settings, f"outbound_{name}")
            for name in cls.__dataclass_fields__
            if hasattr(settings, f"outbound_{name}")
        }
        return cls(**values)


def _options(deps: Deps) -> OutboundOptions:
    return OutboundOptions.from_settings(deps.settings)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Item:
    """One armed (or, in recovery, unclear) ledger row being sent or settled."""

    row: Row
    media_id: str | None = None

    @property
    def id(self) -> int:
        return int(self.row["id"])

    @property
    def merchant_id(self) -> UUID:
        return UUID(str(self.row["merchant_id"]))

    @property
    def attempts(self) -> int:
        """Attempts including the one being made."""
        return int(self.row["attempts"]) + (0 if self.row.get("sending_at") else 1)

    def target(self) -> tuple[str, str, str | None]:
        return str(self.row["x_user_id"]), str(self.row["text"] or ""), self.media_id


# ------------------------------------------------------------------ claim


async def _claim(
    deps: Deps, opts: OutboundOptions, busy: Sequence[UUID] = ()
) -> list[tuple[Row, list[_Item]]]:
    """Step 1 of the module docstring, in one transaction: the armed rows per account
    (with the account's row, for sending)."""
    now = _now()
    armed: list[tuple[Row, list[_Item]]] = []
    async with use_connection(deps.pool, transaction=True):
        rows = await store.claim_due(opts.batch_size, busy_accounts=busy)
        groups: dict[tuple[UUID, UUID], list[Row]] = defaultdict(list)
        for r in rows:
            groups[(r["merchant_id"], r["account_id"])].append(r)
        for (m, account_id), group in groups.items():
            failed: list[tuple[int, str]] = []
            skipped: list[int] = []
            sendable: list[Row] = []
            for r in group:
                if r["x_user_id"] is None or not r["contact_on_account"]:
                    failed.append((r["id"], "the contact is not one of the account's contacts"))
                elif r["account_status"] is None:
                    failed.append((r["id"], "the account is gone"))
                elif r["opted_out"] and not r["bypass_opt_out"]:
                    skipped.append(r["id"])
                else:
                    sendable.append(r)
            if failed:
                await store.settle(m, store.FAILED, [i for i, _ in failed], [w for _, w in failed])
            if skipped:
                await store.settle(m, store.SKIPPED, skipped, ["opted_out"] * len(skipped))
            if not sendable:
                continue
            status = str(sendable[0]["account_status"])
            if status != "ACTIVE":
                reason = f"account {status.lower()}: reconnect it to send"
                until = now + ledger.ACCOUNT_PAUSE
                await store.requeue(
                    m, [store.Wait(r["id"], until, reason, "account") for r in sendable]
                )
                continue
            budget = await dm_budget_left(m, account_id)
            if budget.left_now is not None and budget.left_now <= 0:
                until = budget.reset_at or now + ledger.ACCOUNT_PAUSE
                reason = f"waiting for DM budget until {until.isoformat()}"
                await store.requeue(m, [store.Wait(r["id"], until, reason) for r in sendable])
                continue
            if budget.left_now is not None:
                sendable = sendable[: budget.left_now]  # the rest stay QUEUED, untouched
            account = await accounts_store.get(m, account_id)
            if account is None:  # deleted since the claim's read
                continue
            await store.mark_sending(
                m, [r["id"] for r in sendable], timedelta(seconds=opts.lease_seconds)
            )
            armed.append((account, [_Item(r) for r in sendable]))
    return armed


# ------------------------------------------------------------------ send


async def _send_account(
    deps: Deps, opts: OutboundOptions, account: Row, items: list[_Item]
) -> None:
    """Steps 2 and 3 for one account's armed rows. Never raises: a failure is logged
    and the rows stay armed, for recovery."""
    try:
        pre: list[tuple[_Item, SendOutcome]] = []
        ready: list[_Item] = []
        for item in items:
            url = item.row["media_url"]
            if not url:
                ready.append(item)
                continue
            try:
                item.media_id = await deps.xaccess.upload_media_from_url(account, url, "media_url")
            except InvalidArgument as exc:
                reason = "; ".join(v.description for v in exc.violations) or exc.message
                pre.append((item, SendOutcome(Outcome.FAILED, f"media: {reason}")))
            except Exception as exc:
                outcome = ledger.classify_send_error(exc)
                if outcome.kind is Outcome.UNCLEAR:
                    # The upload is not the DM: nothing was sent; try again later.
                    outcome = SendOutcome(
                        Outcome.REQUEUE,
                        "media upload failed: X unavailable",
                        _now() + ledger.unclear_backoff(opts.retry_base, item.attempts),
                    )
                pre.append((item, outcome))
            else:
                ready.append(item)
        if pre:
            await _record(deps, opts, account, pre)

        async def record(out: list[tuple[_Item, SendOutcome]]) -> None:
            await _record(deps, opts, account, out)

        stop: SendOutcome | None = None
        if ready:
            stop = await ledger.send_many(
                deps.xaccess,
                account,
                ready,
                to=lambda x: x.target(),
                record=record,
                concurrency=opts.concurrency,
                flush_size=opts.flush_size,
            )
        stop = stop or next((o for _, o in pre if o.kind is Outcome.REQUEUE), None)
        if stop is not None and stop.retry_at is not None:
            async with use_connection(deps.pool, transaction=True):
                await store.pause_account(
                    account["merchant_id"],
                    account["id"],
                    stop.retry_at,
                    stop.reason,
                    "account" if stop.account else "",
                )
    except Exception:
        log.exception("outbound send failed", extra={"account_id": str(account["id"])})


async def _record(
    deps: Deps, opts: OutboundOptions, account: Row, out: list[tuple[_Item, SendOutcome]]
) -> None:
    """Step 3, in one transaction (tried again on a deadlock)."""
    for attempt in range(RECORD_RETRIES + 1):
        try:
            async with use_connection(deps.pool, transaction=True):
                await _record_in_tx(opts, account, out)
            return
        except psycopg.errors.DeadlockDetected:
            if attempt == RECORD_RETRIES:
                raise
            log.info("outbound record deadlocked; trying again")


async def _record_in_tx(
    opts: OutboundOptions, account: Row, out: list[tuple[_Item, SendOutcome]]
) -> None:
    m = UUID(str(account["merchant_id"]))
    now = _now()
    sent: list[_Sent] = []
    failed: list[tuple[_Item, str]] = []
    waits: list[store.Wait] = []
    unclear: dict[datetime, list[int]] = defaultdict(list)
    for item, o in out:
        if o.kind is Outcome.SENT:
            sent.append(_Sent(item, o.dm_event_id, o.dm_conversation_id, o.at or now))
        elif o.kind is Outcome.FAILED:
            failed.append((item, o.reason))
        elif o.kind is Outcome.REQUEUE:
            assert o.retry_at is not None
            waiting_for = "account" if o.account else ""
            waits.append(store.Wait(item.id, o.retry_at, o.reason, waiting_for, refund=True))
        else:
            unclear[now + ledger.unclear_backoff(opts.retry_base, item.attempts)].append(item.id)
    await _store_sent(m, account, sent)
    if failed:
        await _fail(m, failed)
    await store.requeue(m, waits)
    for until, ids in unclear.items():
        await store.extend_lease(m, ids, until, RESOLVING)


async def _fail(m: UUID, failed: list[tuple[_Item, str]]) -> None:
    """Rows become FAILED (with outbound.failed); an adopted agent send's message too."""
    settled = await store.settle(m, store.FAILED, [i.id for i, _ in failed], [r for _, r in failed])
    for r in settled:
        if r["message_id"] is not None:
            msg = await conv_store.mark_failed(m, r["message_id"], r["reason"])
            if msg is not None:
                conv = await conv_store.get(m, msg["conversation_id"])
                if conv is not None:
                    await append_event(
                        m,
                        "message.failed",
                        conv["id"],
                        event_payload(conv, message_id=str(msg["id"]), reason=r["reason"]),
                    )


@dataclass(frozen=True, slots=True)
class _Sent:
    """A row X accepted, with its DM's ids and when X took it."""

    item: _Item
    x_event_id: str
    x_conversation_id: str
    at: datetime


#: An outbox event to append: (type, aggregate id, payload).
_Event = tuple[str, UUID | None, dict[str, Any]]


async def _store_sent(m: UUID, account: Row, sent: Sequence[_Sent]) -> None:
    """Rows X accepted (of one account): SENT, each DM stored in the contact's
    conversation as the agent send path stores one (or, for an adopted agent send,
    that message marked SENT), with ``message.created`` and ``message.sent`` (and
    ``conversation.opened`` for a conversation opened for it). A message already
    stored from X's webhook echo of a DM is adopted instead of stored twice. Rows
    settled meanwhile (recovery got there first) are left alone.

    A flush is recorded set-based in a few statements (``store.finish_sent``,
    ``conv_store.live_or_open_many``, ``store.store_sent_messages``, one append of its
    events in row order); echoes and adopted agent sends, which are rare, one by one.
    Rows to a contact already in the flush go in a later round, so each round has one
    row per conversation."""
    for part in _rounds(sent):
        await _store_sent_round(m, account, part)


def _rounds(sent: Sequence[_Sent]) -> list[list[_Sent]]:
    """``sent`` split, in order, into runs with one row per contact each."""
    rounds: list[list[_Sent]] = []
    seen: list[set[UUID]] = []
    for s in sent:
        contact = UUID(str(s.item.row["contact_id"]))
        # The first round after this contact's latest row (rows keep their order).
        n = next((k + 1 for k in range(len(seen) - 1, -1, -1) if contact in seen[k]), 0)
        if n == len(rounds):
            rounds.append([])
            seen.append(set())
        rounds[n].append(s)
        seen[n].add(contact)
    return rounds


async def _store_sent_round(m: UUID, account: Row, sent: Sequence[_Sent]) -> None:
    finished = await store.finish_sent(
        m, [store.Accepted(s.item.id, s.x_event_id, s.at) for s in sent]
    )
    sent = [s for s in sent if s.item.id in finished]
    if not sent:
        return
    await dispatch_store.lock_in_order(m, (), [s.item.row["contact_id"] for s in sent])
    events: dict[int, list[_Event]] = {}
    new: list[tuple[_Sent, UUID | None]] = []  # (row, the conversation it asked for)
    for s in sent:
        f = finished[s.item.id]
        if f["echo_id"] is not None or s.item.row["message_id"] is not None:
            events[s.item.id] = await _store_sent_one(m, s, f if f["echo_id"] is not None else None)
        else:
            new.append((s, f["asked_conversation_id"]))
    if new:
        events.update(await _store_new_messages(m, account, new))
    await append_events(
        [
            {"merchant_id": m, "type": t, "aggregate_id": a, "payload": p}
            for s in sent
            for t, a, p in events[s.item.id]
        ]
    )


async def _store_new_messages(
    m: UUID, account: Row, new: Sequence[tuple[_Sent, UUID | None]]
) -> dict[int, list[_Event]]:
    """The common case, set-based: each DM a new SENT message in the conversation the
    row asked for when it is still the contact's on that account, else in the
    contact's live one, opened if there is none. Returns each row's events."""
    account_id = UUID(str(account["id"]))
    wanted = {
        UUID(str(s.item.row["contact_id"])): conv_domain.x_conversation_id(
            str(account["x_user_id"]), str(s.item.row["x_user_id"])
        )
        for s, asked in new
        if asked is None
    }
    convs = await conv_store.live_or_open_many(m, account_id, wanted)
    messages: list[store.SentMessage] = []
    opened: dict[int, bool] = {}
    for s, asked in new:
        r = s.item.row
        contact_id = UUID(str(r["contact_id"]))
        if asked is not None:
            conv_id, opened[s.item.id] = asked, False
        else:
            conv_id, opened[s.item.id] = convs[contact_id]
        text = str(r["text"] or "")
        attachments: list[dict[str, Any]] = []
        if r["media_url"]:
            attachments.append(
                {
                    "url": r["media_url"],
                    "type": conv_domain.media_type_from_url(r["media_url"]),
                    "alt_text": "",
                    "x_media_id": s.item.media_id or "",
                }
            )
        quick_replies = list(r["quick_replies"] or [])
        messages.append(
            store.SentMessage(
                id=s.item.id,
                conversation_id=conv_id,
                contact_id=contact_id,
                type="QUICK_REPLY" if quick_replies else ("IMAGE" if attachments else "TEXT"),
                text=text,
                attachments=attachments,
                quick_replies=quick_replies,
                origin=r["origin"],
                is_from_bot=bool(r["is_from_bot"]),
                flow_id=r["flow_id"],
                x_event_id=s.x_event_id,
                x_conversation_id=s.x_conversation_id,
                preview=conv_domain.preview(text, [a["type"] for a in attachments]),
            )
        )
    stored = await store.store_sent_messages(m, messages)
    events: dict[int, list[_Event]] = {}
    for s, msg in zip((s for s, _ in new), messages, strict=True):
        conv = {"id": msg.conversation_id, "account_id": account_id, "contact_id": msg.contact_id}
        out: list[_Event] = []
        if opened[s.item.id]:
            out.append(("conversation.opened", msg.conversation_id, event_payload(conv)))
        message_id = stored.get(s.item.id)
        if message_id is None:
            # X's webhook echo of this DM was stored meanwhile: adopt it.
            echo = await store.message_by_x_event_id(m, s.x_event_id)
            assert echo is not None, "a message holds the X event id"
            out += await _store_sent_one(
                m, s, {"echo_id": echo["id"], "echo_conversation_id": echo["conversation_id"]}
            )
        else:
            out.append(
                (
                    "message.created",
                    msg.conversation_id,
                    event_payload(conv, message_id=str(message_id), direction="OUTBOUND"),
                )
            )
            out.append(_message_sent(s, message_id, msg.conversation_id))
        events[s.item.id] = out
    return events


async def _store_sent_one(m: UUID, s: _Sent, echo: Row | dict[str, Any] | None) -> list[_Event]:
    """A SENT row whose DM is stored already, one by one: X's webhook echo of it
    (``echo``: its ``echo_id`` and ``echo_conversation_id``) takes the row's origin,
    bot flag, flow and quick replies (an adopted agent send's PENDING message is then
    dropped); else the adopted agent send's PENDING message becomes SENT. Returns the
    row's events."""
    r = s.item.row
    contact_id = UUID(str(r["contact_id"]))
    conv: Row | None = None
    message_id: UUID
    if echo is not None:
        await store.adopt_echo(
            m,
            echo["echo_id"],
            origin=r["origin"],
            is_from_bot=bool(r["is_from_bot"]),
            flow_id=r["flow_id"],
            quick_replies=list(r["quick_replies"] or []),
        )
        if r["message_id"] is not None:
            await store.delete_pending_message(m, r["message_id"])
        message_id = echo["echo_id"]
        conv = await conv_store.get(m, echo["echo_conversation_id"])
    else:
        message_id = r["message_id"]
        await conv_store.mark_sent(m, message_id, s.x_event_id)
        conv = await conv_store.get(m, r["conversation_id"]) if r["conversation_id"] else None
        await conv_store.record_outbound_interaction(m, contact_id, s.x_event_id)
    if conv is not None and s.x_conversation_id:
        await conv_store.set_x_conversation_id(m, conv["id"], s.x_conversation_id)
    await store.link_message(m, s.item.id, message_id)
    return [_message_sent(s, message_id, conv["id"] if conv is not None else None)]


def _message_sent(s: _Sent, message_id: UUID, conversation_id: UUID | None) -> _Event:
    r = s.item.row
    return (
        "message.sent",
        conversation_id,
        {
            "message_id": str(message_id),
            "conversation_id": str(conversation_id) if conversation_id is not None else "",
            "contact_id": str(r["contact_id"]),
            "account_id": str(r["account_id"]),
            "direction": "OUTBOUND",
            "origin": r["origin"],
            "x_event_id": s.x_event_id,
            "outbound_id": s.item.id,
            "source": r["source"],
            "source_ref": r["source_ref"],
        },
    )


# ------------------------------------------------------------------ loops


async def dispatch_outbound(deps: Deps, options: OutboundOptions | None = None) -> float:
    """One synchronous pass: claim, send every account's rows (concurrently), record.
    Returns 0 when the batch was full (more may be due), else ``idle_poll``. For tests
    and tools; the worker runs :func:`outbound_sender_loop`."""
    opts = options or _options(deps)
    armed = await _claim(deps, opts)
    await asyncio.gather(*(_send_account(deps, opts, a, items) for a, items in armed))
    claimed = sum(len(items) for _, items in armed)
    return 0.0 if claimed >= opts.batch_size else opts.idle_poll


@dataclass
class _SenderState:
    """The accounts this process is sending for, across loop iterations."""

    tasks: dict[UUID, asyncio.Task[None]] = field(default_factory=dict)


_senders: weakref.WeakKeyDictionary[AsyncConnectionPool, _SenderState] = weakref.WeakKeyDictionary()


def _sender_state(pool: AsyncConnectionPool) -> _SenderState:
    st = _senders.get(pool)
    if st is None:
        st = _senders[pool] = _SenderState()
    return st


async def outbound_sender_loop(deps: Deps) -> float:
    """The sender's background loop for ``worker.run_loops``.

    Each call claims and starts sends for up to :data:`ITERATION_SECONDS`: at once
    when ``NOTIFY mktx_outbound`` arrives or an account finishes sending (its
    contacts' next DMs may be due), else every ``idle_poll`` seconds. Each account
    sends in a task of its own, outliving the iteration; a claim leaves out the
    accounts this process is sending for. :func:`stop_outbound_senders` waits for
    them at shutdown. Returns 0."""
    opts = _options(deps)
    st = _sender_state(deps.pool)
    sub = await dispatcher_for(deps.pool, store.CHANNEL).subscribe(None)
    try:
        deadline = time.monotonic() + ITERATION_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            sub.clear()
            st.tasks = {a: t for a, t in st.tasks.items() if not t.done()}
            claimed = 0
            if len(st.tasks) < opts.max_accounts:
                for account, items in await _claim(deps, opts, busy=list(st.tasks)):
                    task = asyncio.create_task(
                        _send_account(deps, opts, account, items), name="outbound-send"
                    )
                    st.tasks[UUID(str(account["id"]))] = task
                    claimed += len(items)
            if claimed >= opts.batch_size:
                continue
            woken = asyncio.create_task(sub.wait(min(opts.idle_poll, left)))
            try:
                await asyncio.wait({woken, *st.tasks.values()}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
    finally:
        sub.close()
    return 0.0


async def stop_outbound_senders(deps: Deps) -> None:
    """Wait for the sends this process started (the worker's shutdown); a send cut
    short later is simply recovered after its lease."""
    st = _sender_state(deps.pool)
    if st.tasks:
        await asyncio.gather(*st.tasks.values(), return_exceptions=True)
    st.tasks.clear()


# ------------------------------------------------------------------ recovery


async def recover_outbound(deps: Deps, options: OutboundOptions | None = None) -> float:
    """Resolve armed rows whose lease ran out at X (see the module docstring). Returns
    0 when a full batch was taken (more may be stale), else 5 seconds."""
    opts = options or _options(deps)
    async with use_connection(deps.pool, transaction=True):
        rows = await store.stale_sending(STALE_BATCH)
        until = _now() + timedelta(seconds=opts.lease_seconds)
        by_merchant: dict[UUID, list[int]] = defaultdict(list)
        for r in rows:
            by_merchant[r["merchant_id"]].append(r["id"])
        for m, ids in by_merchant.items():
            await store.extend_lease(m, ids, until, RESOLVING)
    groups: dict[tuple[UUID, UUID, UUID], list[Row]] = defaultdict(list)
    for r in rows:
        groups[(r["merchant_id"], r["account_id"], r["contact_id"])].append(r)
    limited: dict[UUID, ledger.Resolved] = {}  # accounts whose lookups X rate-limited
    for (m, account_id, contact_id), group in groups.items():
        try:
            if account_id in limited:
                # X said no more lookups for this account until its reset: do not ask.
                no = limited[account_id]
                assert no.retry_at is not None
                async with use_connection(deps.pool, transaction=True):
                    await store.extend_lease(
                        m, [r["id"] for r in group], no.retry_at, f"{RESOLVING}: {no.reason}"
                    )
                continue
            answer = await _resolve_recipient(deps, opts, m, account_id, contact_id, group)
            if answer is not None:
                limited[account_id] = answer
        except Exception:
            log.exception("outbound recovery failed", extra={"ids": [r["id"] for r in group]})
    return 0.0 if len(rows) == STALE_BATCH else 5.0


async def _resolve_recipient(
    deps: Deps,
    opts: OutboundOptions,
    m: UUID,
    account_id: UUID,
    contact_id: UUID,
    rows: list[Row],
) -> ledger.Resolved | None:
    """Resolve one recipient's unclear rows with one lookup, then settle them. Returns
    X's answer when it rate-limited the account's lookups (so the pass asks no more)."""
    async with use_connection(deps.pool):
        account = await accounts_store.get(m, account_id)
        earliest = min(r["sending_at"] for r in rows)
        known = await store.sent_event_ids(
            m, contact_id, earliest - ledger.LOOKUP_SKEW - timedelta(minutes=1)
        )
    if account is None:
        return None  # deleted: its rows went with it
    now = _now()
    if account["status"] != "ACTIVE":
        reason = f"account {account['status'].lower()}: reconnect it to resolve an unclear send"
        async with use_connection(deps.pool, transaction=True):
            await store.extend_lease(m, [r["id"] for r in rows], now + ledger.ACCOUNT_PAUSE, reason)
        return None
    results = await ledger.resolve_unclear_dms(
        deps.xaccess,
        account,
        str(rows[0]["x_user_id"]),
        [(str(r["text"] or ""), r["sending_at"]) for r in rows],
        known_event_ids=known,
    )
    async with use_connection(deps.pool, transaction=True):
        found: list[_Sent] = []
        failed: list[tuple[_Item, str]] = []
        waits: list[store.Wait] = []
        for r, res in zip(rows, results, strict=True):
            item = _Item(r)
            if res.kind is Resolution.FOUND:
                assert res.event is not None
                found.append(
                    _Sent(
                        item,
                        res.event.id,
                        res.event.dm_conversation_id or "",
                        res.event.created_at or r["sending_at"],
                    )
                )
            elif res.kind is Resolution.NOT_SENT:
                if not r["resend"]:
                    failed.append((item, "not sent: X does not have it (safe to send again)"))
                elif r["attempts"] >= opts.max_attempts:
                    failed.append(
                        (item, f"not sent: gave up after {r['attempts']} unclear attempts")
                    )
                else:
                    waits.append(store.Wait(r["id"], now, "resending: X did not have it"))
            elif res.kind is Resolution.UNCONFIRMABLE:
                if res.error_reason in ("ACCOUNT_NOT_ACTIVE", "ACCOUNT_AUTH_REVOKED"):
                    reason = "account cannot read its DMs: reconnect it to resolve an unclear send"
                    await store.extend_lease(m, [r["id"]], now + ledger.ACCOUNT_PAUSE, reason)
                else:
                    failed.append((item, res.reason))
            else:
                until = res.retry_at or now + ledger.RETRY_LOOKUP
                await store.extend_lease(m, [r["id"]], until, f"{RESOLVING}: {res.reason}")
        await _store_sent(m, account, found)
        if failed:
            await _fail(m, failed)
        await store.requeue(m, waits)
    first = results[0]
    if first.kind is Resolution.RETRY_LATER and first.error_reason == "RATE_LIMIT_EXCEEDED":
        return first
    return None
