"""The automation engine: triggers from the outbox, and the step runner over timers.

**Triggers** (:data:`AUTOMATION_TRIGGERS`, a batch handler on the shared outbox
consumer mechanism of ``worker/consumer.py``; messages, pending reply waits and each
account's ACTIVE flows are read once per batch): for each settled event of a trigger
type, the ACTIVE flows of the event's account whose published trigger matches start
an execution on their published version, in the consumer's transaction. The
execution's ``trigger_key`` is ``event:<outbox id>`` and (flow, contact,
trigger_key) is unique, so a redelivered or replayed event never starts a flow
twice; the flow's re-entry policy and the one-live-execution index decide the
rest. A ``message.received`` first resolves the contact's pending WAIT_FOR_REPLY
executions (branch ``replied``, or the tapped quick reply's metadata), making them
due at once and waking the runners by NOTIFY, so a reply is acted on immediately
rather than at a poll.

**Steps** (:func:`run_due_steps`, looped by :func:`automation_step_loop`): an
execution is its own timer row (``due_at``). A pass claims a batch of due rows of
every merchant with ``FOR UPDATE SKIP LOCKED`` and runs each one's steps, until it
parks (WAIT, WAIT_FOR_REPLY), ends, or has run :data:`STEPS_PER_PASS` steps (then
it stays due), **inside the claiming transaction** (optimistically the whole batch in
one savepoint, the step log and execution updates written pipelined at its end; if
anything raises, again one execution per savepoint, the failing one FAILED).
Every step's effects are database writes: contact tags and attributes,
conversation changes, a DM queued on the send ledger (``store.outbound.enqueue_dms``:
a pass's DMs in one statement, which the ledger's sender sends exactly once within
the DM budget), the step log row, the outbox events. So a step and its record
commit together or not at all: the row lock is the lease, and a worker killed
mid-pass (kill -9 included) loses its connection, PostgreSQL rolls its transaction
back and releases the rows, and the next claim redoes exactly the steps that did
not commit. The step log's
unique (execution, step_no) makes a repeated step impossible rather than unlikely.
Any number of workers can run passes: they claim disjoint rows.

**Sends**: a SEND_MESSAGE step moves on once the DM is queued (its output names the
ledger row); the ledger waits out a spent DM budget or a disconnected account
rather than failing, and skips an opted-out contact (the step itself is SKIPPED
for a contact already opted out when it runs). The ledger's source is ``flow`` and
its source_ref ``<execution id>:<step no>``, which is what makes the enqueue
idempotent.

**AI replies**: an AI_REPLY step hands the contact's latest inbound message to the
AI assistant through the auto-reply queue (``store.ai.enqueue_reply(...,
require_auto_reply=False)``; one row per message, so a message auto-reply queued
too is answered once), whose loop (``worker/auto_reply.py``) answers it through the
DM ledger. The step parks the execution (``waiting_for`` AI_REPLY, the message in
its context): a durable wait, resolved by the loop's ``store.ai.finish_reply``,
which makes the execution due in the same transaction that records the outcome
(and NOTIFYs the runners). The resumed step takes "default" when the bot answered
and "escalated" otherwise (see ``domain.ai_reply_branch``). A message answered
already is decided on the spot; a timer rechecks a parked step every
:data:`AI_REPLY_RECHECK` (a row answered while the parking transaction was still
open); no open conversation, no inbound message or one too old to answer is
SKIPPED on "escalated".
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from ..core.db import savepoint, use_connection
from ..deps import Deps
from ..domain import automation as domain
from ..domain.contacts import MAX_TAGS, normalize_tags, tag_problem
from ..domain.templates import (
    MissingVariables,
    QuickReply,
    TemplateDraft,
    contact_variables,
    render,
)
from ..store import Row
from ..store import ai as ai_store
from ..store import automation as store
from ..store import conversations as conversations_store
from ..store import templates as templates_store
from ..store.events import OutboxEvent, append_events
from ..store.live import dispatcher_for
from ..store.outbound import OutboundDm, enqueue_dms
from .auto_reply import MAX_MESSAGE_AGE_SECONDS
from .consumer import Consumer

log = logging.getLogger(__name__)

#: Steps one execution runs per claim before it yields to others (it stays due).
STEPS_PER_PASS = 50
#: One loop iteration runs at most this long, then returns (so the worker can stop).
ITERATION_SECONDS = 2.0
#: A parked AI_REPLY step looks at its queue row at least this often. The auto-reply
#: loop makes it due as soon as it records the outcome; this covers a row that was
#: answered while the parking transaction was still uncommitted.
AI_REPLY_RECHECK = timedelta(seconds=60)
#: The execution context key naming the message a parked AI_REPLY step waits on.
AI_REPLY_KEY = "ai_reply_message_id"

TRIGGER_EVENTS = (
    "contact.followed",
    "contact.created",
    "contact.mentioned",
    "message.received",
    "conversation.closed",
    "contact.updated",
)


@dataclass(frozen=True)
class StepOptions:
    #: Executions claimed per pass (per transaction). Kept small: a pass's transaction
    #: appends outbox events, and every outbox consumer waits for it to end.
    batch_size: int = 50
    #: Longest sleep when nothing is due and no notification arrives.
    idle_poll: float = 1.0


# ------------------------------------------------------------------ triggers


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


class _Batch:
    """What the trigger handler reads once per batch of events (messages, pending
    reply waits, each account's ACTIVE flows) and the executions it starts, written
    together at the end (one pipelined insert; the unique keys decide)."""

    def __init__(self) -> None:
        self.messages: dict[UUID, Row] = {}
        self.waits: dict[tuple[UUID, UUID], list[Row]] = {}
        self.flows: dict[tuple[UUID, UUID], list[Row]] = {}
        self.starts: list[dict[str, Any]] = []
        self.resolved: set[UUID] = set()

    async def prefetch(self, events: Sequence[OutboxEvent]) -> None:
        by_merchant: dict[UUID, tuple[set[UUID], set[UUID]]] = {}
        for ev in events:
            if ev.type != "message.received":
                continue
            msg, contact = _uuid(ev.payload.get("message_id")), _uuid(ev.payload.get("contact_id"))
            if msg is None or contact is None:
                continue
            ids, contacts = by_merchant.setdefault(ev.merchant_id, (set(), set()))
            ids.add(msg)
            contacts.add(contact)
        for m, (ids, contacts) in by_merchant.items():
            self.messages.update(await store.messages(m, ids))
            for row in await store.reply_waits_many(m, contacts):
                self.waits.setdefault((m, row["contact_id"]), []).append(row)

    async def active_flows(self, m: UUID, account_id: UUID, types: Iterable[str]) -> list[Row]:
        key = (m, account_id)
        if key not in self.flows:
            self.flows[key] = await store.active_flows(m, account_id, domain.TRIGGER_TYPES)
        wanted = set(types)
        return [f for f in self.flows[key] if f["trigger_type"] in wanted]

    async def start(
        self,
        m: UUID,
        f: Row,
        *,
        account_id: UUID,
        contact_id: UUID,
        conversation_id: UUID | None,
        trigger_key: str,
        facts: dict[str, Any],
    ) -> None:
        graph = _graph_of(f["id"], f["published_version"], f["definition"])
        entry = graph.entry
        if entry is None:
            return
        trigger = graph.definition.trigger
        if trigger.reentry != "EVERY_TIME":
            # EVERY_TIME needs no look: the one-live-execution index refuses a second.
            prev = await store.contact_entries(m, f["id"], contact_id)
            if not domain.may_enter(
                trigger, int(prev["n"]), prev["last_start"], bool(prev["live"]), datetime.now(UTC)
            ):
                return
        self.starts.append(
            store.new_execution_params(
                m,
                flow_id=f["id"],
                flow_version=f["published_version"],
                account_id=account_id,
                contact_id=contact_id,
                conversation_id=conversation_id,
                trigger_key=trigger_key,
                trigger_event=facts,
                node_id=entry,
            )
        )

    async def flush(self) -> None:
        await store.insert_executions(self.starts)
        self.starts.clear()


async def handle_trigger_events(events: Sequence[OutboxEvent]) -> None:
    """Start the flows a batch of outbox events triggers (see the module docstring)."""
    batch = _Batch()
    await batch.prefetch(events)
    for ev in events:
        await _handle(ev, batch)
    await batch.flush()


async def handle_trigger_event(ev: OutboxEvent) -> None:
    """One event (tests, tools): :func:`handle_trigger_events` of one."""
    await handle_trigger_events([ev])


async def _handle(ev: OutboxEvent, batch: _Batch) -> None:
    m, p = ev.merchant_id, ev.payload
    account_id, contact_id = _uuid(p.get("account_id")), _uuid(p.get("contact_id"))
    if account_id is None or contact_id is None:
        return
    facts: dict[str, Any] = {"event_id": ev.id, "event_type": ev.type}
    conversation_id = _uuid(p.get("conversation_id"))
    if ev.type == "message.received":
        message_id = _uuid(p.get("message_id"))
        msg = batch.messages.get(message_id) if message_id else None
        if msg is None:
            return
        await _resolve_reply_waits(m, contact_id, msg, batch)
        text, qr = str(msg["text"] or ""), str(msg["quick_reply_metadata"] or "")
        facts.update(type="message", text=text[:1000], message_id=str(message_id))
        if qr:
            facts["quick_reply_metadata"] = qr
        flows = await batch.active_flows(
            m, account_id, ("KEYWORD", "INBOUND_MESSAGE", "QUICK_REPLY")
        )
        chosen = [f for f in flows if _message_trigger(f, "KEYWORD", text=text, qr=qr)]
        chosen += [f for f in flows if _message_trigger(f, "QUICK_REPLY", text=text, qr=qr)]
        if not any(f["trigger_type"] == "KEYWORD" for f in chosen):
            inbound = [f for f in flows if f["trigger_type"] == "INBOUND_MESSAGE"]
            first: bool | None = None
            opening: bool | None = None
            for f in inbound:
                cfg = _trigger(f).config
                if cfg.get("first_message_only"):
                    if first is None:
                        first = await store.inbound_message_count(m, contact_id) == 1
                    if not first:
                        continue
                if cfg.get("new_conversation_only"):
                    if opening is None:
                        conv = msg["conversation_id"]
                        opening = await store.conversation_inbound_count(m, conv) == 1
                    if not opening:
                        continue
                chosen.append(f)
    elif ev.type == "contact.followed":
        if not p.get("follows_account") or p.get("applied") is False:
            return
        facts["type"] = "follow"
        chosen = await batch.active_flows(m, account_id, ("NEW_FOLLOWER",))
    elif ev.type == "contact.created":
        facts.update(type="contact_created", source=str(p.get("source", "")))
        chosen = await batch.active_flows(m, account_id, ("CONTACT_CREATED",))
    elif ev.type == "contact.mentioned":
        text, reply_to = str(p.get("text", "")), str(p.get("in_reply_to", ""))
        facts.update(type="mention", text=text[:1000], tweet_id=str(p.get("tweet_id", "")))
        flows = await batch.active_flows(m, account_id, ("MENTION",))
        chosen = [f for f in flows if domain.mention_matches(_trigger(f).config, text, reply_to)]
    elif ev.type == "contact.updated":
        changes = {k: p[k] for k in ("tags_added", "tags_removed", "attributes_changed") if k in p}
        if not changes:
            return
        facts.update(type="contact_updated", **changes)
        flows = await batch.active_flows(
            m, account_id, ("TAG_ADDED", "TAG_REMOVED", "ATTRIBUTE_CHANGED")
        )
        chosen = [f for f in flows if domain.tag_trigger_matches(_trigger(f), p)]
    elif ev.type == "conversation.closed":
        facts["type"] = "conversation_closed"
        chosen = await batch.active_flows(m, account_id, ("CONVERSATION_CLOSED",))
    else:
        return
    for f in chosen:
        await batch.start(
            m,
            f,
            account_id=account_id,
            contact_id=contact_id,
            conversation_id=conversation_id,
            trigger_key=f"event:{ev.id}",
            facts=facts,
        )


def _trigger(flow: Row) -> domain.Trigger:
    return _graph_of(flow["id"], flow["published_version"], flow["definition"]).definition.trigger


def _message_trigger(flow: Row, kind: str, *, text: str, qr: str) -> bool:
    if flow["trigger_type"] != kind:
        return False
    t = _trigger(flow)
    if kind == "KEYWORD":
        return bool(text) and domain.keyword_matches(t.config, text)
    wanted = t.config.get("metadata")
    return bool(qr) and (not wanted or wanted == qr)


async def _resolve_reply_waits(m: UUID, contact_id: UUID, msg: Row, batch: _Batch) -> None:
    """Resolve the contact's pending WAIT_FOR_REPLY executions with this message (each
    once: a later message of the same batch finds them resolved, as it would in
    order)."""
    waits = [w for w in batch.waits.get((m, contact_id), []) if w["id"] not in batch.resolved]
    for ex in waits:
        batch.resolved.add(ex["id"])
        graph = await _graph(m, ex["flow_id"], ex["flow_version"])
        branch = domain.reply_branch(
            graph, ex["current_node_id"], msg["quick_reply_metadata"] or ""
        )
        await store.resolve_reply(
            m,
            ex["id"],
            branch,
            {"last_reply": str(msg["text"] or ""), "last_reply_message_id": str(msg["id"])},
        )
    if waits:
        await store.notify(m)


AUTOMATION_TRIGGERS = Consumer(
    name="automation-triggers",
    handle_batch=handle_trigger_events,
    types=TRIGGER_EVENTS,
    # Executions commit with the consumer's pass: smaller passes start them sooner.
    batch_size=100,
)


# ------------------------------------------------------------------ the graphs

_GRAPHS: OrderedDict[tuple[UUID, int], domain.Graph] = OrderedDict()
_GRAPH_CACHE = 1024


def _graph_of(flow_id: UUID, version: int, definition: dict[str, Any]) -> domain.Graph:
    """A published version's graph from its definition in hand (cached as :func:`_graph`)."""
    key = (flow_id, version)
    g = _GRAPHS.get(key)
    if g is None:
        g = _GRAPHS[key] = domain.Graph(domain.Definition.from_json(definition))
        if len(_GRAPHS) > _GRAPH_CACHE:
            _GRAPHS.popitem(last=False)
    return g


async def _graph(m: UUID, flow_id: UUID, version: int) -> domain.Graph:
    """A published version as a runnable graph (versions are immutable: cached)."""
    key = (flow_id, version)
    g = _GRAPHS.get(key)
    if g is None:
        data = await store.flow_version(m, flow_id, version)
        if data is None:
            raise LookupError(f"flow {flow_id} has no version {version}")
        g = domain.Graph(domain.Definition.from_json(data))
        _GRAPHS[key] = g
        if len(_GRAPHS) > _GRAPH_CACHE:
            _GRAPHS.popitem(last=False)
    return g


# ------------------------------------------------------------------ steps


@dataclass
class _Outcome:
    status: str = "COMPLETED"  # COMPLETED | SKIPPED | FAILED | WAITING
    branch: str = domain.DEFAULT
    output: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    wake_at: datetime | None = None
    waiting_for: str = ""


@dataclass
class _Run:
    """One execution being advanced in a pass."""

    row: Row
    graph: domain.Graph
    contact: Row
    steps: int
    context: dict[str, Any]
    conversation_id: UUID | None
    p: _Pass

    @property
    def m(self) -> UUID:
        return UUID(str(self.row["merchant_id"]))

    @property
    def id(self) -> UUID:
        return UUID(str(self.row["id"]))


@dataclass
class _ContactChange:
    """The net tag and attribute changes a pass's steps made to one contact, applied
    relative to the row as it is when written (see ``apply_contact_changes``)."""

    add: dict[str, None] = field(default_factory=dict)  # ordered set
    remove: set[str] = field(default_factory=set)
    attrs: dict[str, Any] = field(default_factory=dict)
    unset: set[str] = field(default_factory=set)

    def add_tags(self, tags: Iterable[str]) -> None:
        for t in tags:
            self.remove.discard(t)
            self.add[t] = None

    def remove_tags(self, tags: Iterable[str]) -> None:
        for t in tags:
            self.add.pop(t, None)
            self.remove.add(t)

    def set_attribute(self, key: str, value: Any) -> None:
        if value is None:
            self.attrs.pop(key, None)
            self.unset.add(key)
        else:
            self.unset.discard(key)
            self.attrs[key] = value


@dataclass
class _Writes:
    """What a pass's steps write, written together in a few multi-row statements
    inside the pass's transaction: contact changes (also before conditions are
    evaluated, so they see them), resumed steps, the step log, execution updates
    and outbox events (in step order)."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    finished: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    contacts: dict[tuple[UUID, UUID], _ContactChange] = field(default_factory=dict)
    #: DMs for the send ledger (merchant, DM, the step's output to get its row id).
    dms: list[tuple[UUID, OutboundDm, dict[str, Any]]] = field(default_factory=list)

    def contact(self, m: UUID, contact_id: UUID) -> _ContactChange:
        return self.contacts.setdefault((m, contact_id), _ContactChange())

    def event(
        self, m: UUID, type_: str, aggregate_id: UUID | None, payload: dict[str, Any]
    ) -> None:
        self.events.append(
            {"merchant_id": m, "type": type_, "aggregate_id": aggregate_id, "payload": payload}
        )

    async def flush_contacts(self) -> None:
        rows = [
            {
                "merchant_id": m,
                "id": cid,
                "add_tags": list(c.add),
                "del_tags": sorted(c.remove),
                "set_attrs": c.attrs,
                "unset_attrs": sorted(c.unset),
            }
            for (m, cid), c in sorted(self.contacts.items(), key=lambda kv: str(kv[0][1]))
            if c.add or c.remove or c.attrs or c.unset
        ]
        self.contacts.clear()
        await store.apply_contact_changes(rows)

    async def flush(self) -> None:
        await self.flush_contacts()
        await store.finish_steps(self.finished)
        if self.dms:
            ids = await enqueue_dms([(m, dm) for m, dm, _ in self.dms])
            for (_, _, output), outbound_id in zip(self.dms, ids, strict=True):
                output["outbound_id"] = outbound_id
            self.dms.clear()
        await store.insert_steps(self.steps)
        await store.save_executions(self.executions)
        await append_events(self.events)
        self.finished.clear()
        self.steps.clear()
        self.executions.clear()
        self.events.clear()


class _Aborted(Exception):
    """A pass's job was stopped because another job of the same pass raised."""


class _Pass:
    """Runs a claimed batch's jobs (one per contact: its executions in order) one at
    a time, in order, as a single sequential loop would, except that a job parks at a
    CONDITION step: the next job runs, and once every unfinished job is parked the
    pending contact changes are written and all the parked conditions are evaluated
    together (one query per merchant and condition), and the jobs go on in order.

    Only one job runs at any moment (the baton), so the steps' own statements
    (savepoints included) never interleave; a job's writes are collected in
    :attr:`writes` for the caller to flush."""

    def __init__(self) -> None:
        self.writes = _Writes()
        self._baton = asyncio.Lock()
        self._asks: list[tuple[UUID, UUID, dict[str, Any], asyncio.Future[bool]]] = []
        self._alive = 0
        self._quiet = asyncio.Event()
        self._time_zones: dict[UUID, str] = {}
        self.aborted = False

    def _check(self) -> None:
        if self._alive == 0 or len(self._asks) == self._alive:
            self._quiet.set()

    async def time_zone(self, m: UUID) -> str:
        tz = self._time_zones.get(m)
        if tz is None:
            tz = self._time_zones[m] = await store.merchant_time_zone(m)
        return tz

    async def matches(self, m: UUID, contact_id: UUID, conditions: dict[str, Any]) -> bool:
        """Whether the contact matches the segment conditions, with this pass's
        contact changes so far (parks the calling job until every job is parked)."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._asks.append((m, contact_id, conditions, fut))
        self._check()
        self._baton.release()
        try:
            return await fut
        finally:
            await self._baton.acquire()

    async def _answer(self) -> None:
        asks, self._asks = self._asks, []
        if self.aborted:
            for *_, fut in asks:
                fut.set_exception(_Aborted())
            return
        await self.writes.flush_contacts()
        groups: dict[tuple[UUID, str], list[tuple[UUID, asyncio.Future[bool]]]] = {}
        conds: dict[str, dict[str, Any]] = {}
        for m, cid, c, fut in asks:
            key = json.dumps(c, sort_keys=True)
            conds[key] = c
            groups.setdefault((m, key), []).append((cid, fut))
        try:
            for (m, key), members in groups.items():
                hits = await store.contacts_matching(m, {cid for cid, _ in members}, conds[key])
                for cid, fut in members:
                    fut.set_result(cid in hits)
        except BaseException as exc:
            for *_, fut in asks:
                if not fut.done():
                    fut.set_exception(exc)
            raise

    async def run(self, jobs: Sequence[Callable[[], Awaitable[None]]]) -> None:
        """Run the jobs to their end; raises the first job's error (after all ended)."""
        errors: list[BaseException] = []

        async def one(job: Callable[[], Awaitable[None]]) -> None:
            await self._baton.acquire()
            try:
                if not self.aborted:
                    await job()
            except Exception as exc:
                self.aborted = True
                if not isinstance(exc, _Aborted):
                    errors.append(exc)
            finally:
                self._baton.release()
                self._alive -= 1
                self._check()

        self._alive = len(jobs)
        tasks = [asyncio.create_task(one(j)) for j in jobs]
        try:
            while self._alive:
                await self._quiet.wait()
                self._quiet.clear()
                if self._asks and len(self._asks) == self._alive:
                    async with self._baton:
                        await self._answer()
        finally:
            await asyncio.gather(*tasks, return_exceptions=True)
        if errors:
            raise errors[0]


async def run_due_steps(deps: Deps, options: StepOptions | None = None) -> int:
    """One pass: claim due executions (every merchant, ``FOR UPDATE SKIP LOCKED``) and
    run their steps in this transaction. Returns the executions claimed.

    Optimistically the whole batch runs in one savepoint (see :class:`_Pass`) with
    its writes flushed at the end; if anything raises, that savepoint is rolled back
    and the batch runs again one execution per savepoint, and an execution whose
    step raises is FAILED with the error (the others keep their progress)."""
    opts = options or StepOptions()
    async with use_connection(deps.pool, transaction=True):
        rows = await store.claim_due(opts.batch_size)
        if not rows:
            return 0
        # Contacts are written in one order by every runner, so two passes that touch
        # the same contacts wait for each other rather than deadlock.
        rows.sort(key=lambda r: (str(r["contact_id"]), str(r["id"])))
        contacts: dict[UUID, Row] = {}
        by_merchant: dict[UUID, list[UUID]] = {}
        for r in rows:
            by_merchant.setdefault(r["merchant_id"], []).append(r["contact_id"])
        for m, ids in by_merchant.items():
            contacts.update(await store.contacts_for_steps(m, ids))
        by_contact: dict[UUID, list[Row]] = {}
        for r in rows:
            by_contact.setdefault(r["contact_id"], []).append(r)
        try:
            async with savepoint():
                p = _Pass()

                def job(cid: UUID, mine: list[Row]) -> Callable[[], Awaitable[None]]:
                    async def go() -> None:
                        contact = contacts.get(cid)
                        for row in mine:  # one contact's executions, in order
                            contact = await _advance(row, contact, p)

                    return go

                await p.run([job(cid, mine) for cid, mine in by_contact.items()])
                await p.writes.flush()
        except Exception:
            log.info("a step pass failed; running its executions one by one", exc_info=True)
            for row in rows:
                try:
                    cid = row["contact_id"]
                    async with savepoint():
                        after = await _advance_alone(row, contacts.get(cid))
                    if after is not None:
                        contacts[cid] = after
                except psycopg.OperationalError:
                    # Transient (a lock timeout, a deadlock with another writer): the
                    # execution stays due and the next pass tries it again.
                    log.warning(
                        "flow execution step interrupted; retrying",
                        extra={"execution_id": str(row["id"])},
                        exc_info=True,
                    )
                except Exception as exc:
                    log.exception(
                        "flow execution step failed", extra={"execution_id": str(row["id"])}
                    )
                    async with savepoint():
                        await _fail(row, f"internal error in step: {type(exc).__name__}")
    return len(rows)


async def _advance_alone(row: Row, contact: Row | None) -> Row | None:
    """:func:`_advance` in a pass of its own, its writes flushed."""
    p = _Pass()
    after: list[Row | None] = []

    async def single() -> None:
        after.append(await _advance(row, contact, p))

    await p.run([single])
    await p.writes.flush()
    return after[0] if after else contact


async def _fail(row: Row, error: str) -> None:
    await store.save_execution(
        row["merchant_id"],
        row["id"],
        status="FAILED",
        current_node_id=row["current_node_id"],
        wake_at=None,
        due_at=None,
        waiting_for="",
        context=row["context"] or {},
        step_count=row["step_count"],
        error=error,
        conversation_id=None,
    )


async def _advance(row: Row, contact: Row | None, p: _Pass) -> Row | None:
    """Run one execution's steps (see the module docstring); returns the contact as
    its steps left it (tags, attributes)."""
    if row["status"] not in store.LIVE or contact is None:  # erased: its executions go too
        return contact
    run = await _start_run(row, contact, p)
    await _steps(run, row)
    return run.contact


async def _start_run(row: Row, contact: Row, p: _Pass) -> _Run:
    m = UUID(str(row["merchant_id"]))
    run = _Run(
        row=row,
        graph=await _graph(m, row["flow_id"], row["flow_version"]),
        contact=contact,
        steps=int(row["step_count"]),
        context=dict(row["context"] or {}),
        conversation_id=row["conversation_id"],
        p=p,
    )
    return run


async def _steps(run: _Run, row: Row) -> None:
    m = run.m
    node_id: str | None = row["current_node_id"]
    if row["status"] == "WAITING":
        if row["waiting_for"] == "AI_REPLY":
            awaited = _uuid(run.context.get(AI_REPLY_KEY))
            queued = await ai_store.get_reply_for_message(m, awaited) if awaited else None
            if queued is not None and queued["state"] != "DONE":
                # Not answered yet (the periodic recheck): park again.
                wake = datetime.now(UTC) + AI_REPLY_RECHECK
                return _save(
                    run,
                    "WAITING",
                    str(row["current_node_id"]),
                    wake_at=wake,
                    waiting_for="AI_REPLY",
                )
            node_id = await _resume(run, row, ai_reply=queued)
        else:
            node_id = await _resume(run, row)
    for _ in range(STEPS_PER_PASS):
        if node_id is None:
            return _save(run, "COMPLETED", "")
        if run.steps >= domain.MAX_STEPS:
            return _save(run, "FAILED", node_id, error=f"over {domain.MAX_STEPS} steps")
        node = run.graph.nodes.get(node_id)
        if node is None:
            return _save(run, "FAILED", node_id, error=f"node {node_id!r} is missing")
        run.steps += 1
        out = await _run_node(run, node)
        run.p.writes.steps.append(
            store.step_params(
                m,
                execution_id=run.id,
                flow_id=row["flow_id"],
                step_no=run.steps,
                node_id=node.id,
                node_type=node.type,
                status=out.status,
                branch="" if out.status == "WAITING" or node.type == "END" else out.branch,
                output=out.output,
                error=out.error,
            )
        )
        if out.status == "WAITING":
            return _save(run, "WAITING", node.id, wake_at=out.wake_at, waiting_for=out.waiting_for)
        if out.status == "FAILED":
            return _save(run, "FAILED", node.id, error=out.error)
        if node.type == "END":
            return _save(run, "COMPLETED", node.id)
        node_id = run.graph.next(node.id, out.branch)
    # Long run of instant steps: stay due, let other executions have the worker.
    _save(run, "RUNNING", node_id or "")


async def _resume(run: _Run, row: Row, *, ai_reply: Row | None = None) -> str | None:
    """Finish the step a WAITING execution parked on; the next node id."""
    node_id = str(row["current_node_id"])
    node = run.graph.nodes.get(node_id)
    if row["waiting_for"] == "AI_REPLY":
        run.context.pop(AI_REPLY_KEY, None)
        branch = domain.ai_reply_branch(ai_reply["outcome"] if ai_reply else None)
        output = _ai_out(ai_reply)
    elif row["resume_branch"]:
        branch = str(row["resume_branch"])
        output = {"reply": run.context.get("last_reply", "")}
    elif row["waiting_for"] == "REPLY":
        branch, output = "timeout", {}
    else:
        branch, output = domain.DEFAULT, {}
    run.p.writes.finished.append(
        store.finish_params(
            run.m, run.id, run.steps, status="COMPLETED", branch=branch, output=output
        )
    )
    if node is None:
        return None
    return run.graph.next(node_id, branch)


def _save(
    run: _Run,
    status: str,
    node_id: str,
    *,
    error: str = "",
    wake_at: datetime | None = None,
    waiting_for: str = "",
) -> None:
    due: datetime | None
    if status == "WAITING":
        due = wake_at
    elif status == "RUNNING":
        due = datetime.now(UTC)
    else:
        due = None
    run.p.writes.executions.append(
        store.execution_params(
            run.m,
            run.id,
            status=status,
            current_node_id=node_id,
            wake_at=wake_at,
            due_at=due,
            waiting_for=waiting_for,
            context=run.context,
            step_count=run.steps,
            error=error,
            conversation_id=run.conversation_id,
        )
    )


async def _run_node(run: _Run, node: domain.Node) -> _Outcome:
    c, t = node.config, node.type
    if t == "SEND_MESSAGE":
        return await _send(run, node)
    if t == "WAIT":
        tz = domain.zone(str(run.contact["time_zone"] or ""), await run.p.time_zone(run.m))
        wake = domain.wake_time(c, datetime.now(UTC), tz)
        return _Outcome(
            "WAITING", wake_at=wake, waiting_for="WAIT", output={"wake_time": wake.isoformat()}
        )
    if t == "WAIT_FOR_REPLY":
        timeout = domain.parse_duration(c.get("timeout"))
        assert timeout is not None
        wake = datetime.now(UTC) + timeout
        return _Outcome(
            "WAITING", wake_at=wake, waiting_for="REPLY", output={"timeout_time": wake.isoformat()}
        )
    if t == "CONDITION":
        if "reply_contains" in c:
            reply = domain.normalize_text(str(run.context.get("last_reply", "")))
            ok = domain.normalize_text(str(c["reply_contains"])) in reply
        else:
            ok = await run.p.matches(run.m, run.contact["id"], c["conditions"])
        return _Outcome(branch="true" if ok else "false")
    if t == "RANDOMIZER":
        key = f"{run.row['flow_id']}:{node.id}:{run.contact['id']}"
        return _Outcome(branch=domain.pick_path(c["paths"], key))
    if t in ("ADD_TAG", "REMOVE_TAG"):
        bad = [p for x in c["tags"] if (p := tag_problem(str(x))) is not None]
        if bad:  # a version published before the rule was checked at validation
            return _Outcome("FAILED", error=f"a tag {bad[0]}")
        tags = normalize_tags(c["tags"])
        had = list(run.contact["tags"] or [])
        change = run.p.writes.contact(run.m, run.contact["id"])
        if t == "ADD_TAG":
            after = had + [x for x in tags if x not in had]
            if len(after) > MAX_TAGS and len(after) > len(had):
                return _Outcome(
                    "SKIPPED",
                    error=f"the contact would have {len(after)} tags; at most {MAX_TAGS}",
                )
            change.add_tags(tags)
        else:
            change.remove_tags(tags)
            after = [x for x in had if x not in tags]
        await _contact_changed(run, "tags", {"tags": after})
        return _Outcome(output={"tags": tags})
    if t == "SET_ATTRIBUTE":
        value = run.context.get("last_reply", "") if c.get("from_reply") else c.get("value")
        key = str(c["key"])
        run.p.writes.contact(run.m, run.contact["id"]).set_attribute(key, value)
        attrs = dict(run.contact["attributes"] or {})
        if value is None:
            attrs.pop(key, None)
        else:
            attrs[key] = value
        await _contact_changed(run, "attributes", {"attributes": attrs})
        return _Outcome(output={"key": key, "value": value})
    if t in ("ASSIGN", "ESCALATE", "CLOSE_CONVERSATION"):
        return await _conversation_step(run, node)
    if t == "AI_REPLY":
        return await _ai_reply(run, node)
    if t == "START_FLOW":
        return await _start_flow(run, node)
    if t == "END":
        return _Outcome()
    return _Outcome("FAILED", error=f"unknown node type {t}")


async def _send(run: _Run, node: domain.Node) -> _Outcome:
    c = node.config
    if run.contact["opted_out"]:
        return _Outcome("SKIPPED", error="the contact opted out of messages")
    values = {
        **contact_variables(run.contact),
        **{k: str(v) for k, v in (c.get("variables") or {}).items()},
    }
    if c.get("template_id"):
        tpl = await templates_store.get(run.m, UUID(str(c["template_id"])))
        if tpl is None:
            return _Outcome("FAILED", error="the template no longer exists")
        draft = templates_store.draft_from_row(tpl)
    else:
        draft = TemplateDraft(name="", type="TEXT", content=str(c["text"]))
    if c.get("quick_replies"):
        draft.quick_replies = [
            QuickReply(
                str(q.get("label", "")), str(q.get("description", "")), str(q.get("metadata", ""))
            )
            for q in c["quick_replies"]
        ]
    try:
        rendered = render(draft, values)
    except MissingVariables as exc:
        return _Outcome("FAILED", error=f"template variables without a value: {exc}")
    dm = OutboundDm(
        account_id=run.row["account_id"],
        contact_id=run.contact["id"],
        text=rendered.content,
        source="flow",
        source_ref=f"{run.id}:{run.steps}",
        origin="AUTOMATION",
        flow_id=run.row["flow_id"],
        media_url=str(c["media_url"]) if c.get("media_url") else (rendered.card_media_url or None),
        quick_replies=[
            {"label": q.label, "description": q.description, "metadata": q.metadata}
            for q in rendered.quick_replies
        ],
    )
    problems = dm.problems()
    if problems:
        return _Outcome("FAILED", error=f"the message cannot be sent: {'; '.join(problems)}")
    # Queued with the pass's other DMs in one statement when its writes are flushed,
    # which fills in the ledger row's id.
    output: dict[str, Any] = {"outbound_id": None, "text": rendered.content[:200]}
    run.p.writes.dms.append((run.m, dm, output))
    return _Outcome(output=output)


async def _ai_reply(run: _Run, node: domain.Node) -> _Outcome:
    """Hand the contact's latest inbound message to the AI assistant: the same
    ``ai_reply_queue`` row auto-reply uses (one per message, so a message that
    auto-reply also queued is answered once), answered by its loop through the DM
    ledger. The step parks (``waiting_for`` AI_REPLY) until the row has its outcome;
    the loop makes the execution due in the transaction that records it."""
    skip = "escalated"
    conv = await store.live_conversation(run.m, run.row["account_id"], run.contact["id"])
    if conv is None:
        return _Outcome("SKIPPED", branch=skip, error="the contact has no open conversation")
    run.conversation_id = run.conversation_id or conv["id"]
    msg = await ai_store.latest_inbound_message(run.m, conv["id"])
    if msg is None:
        return _Outcome("SKIPPED", branch=skip, error="the contact sent no message to answer")
    await ai_store.enqueue_reply(
        run.m,
        conv["id"],
        msg["id"],
        max_age_seconds=MAX_MESSAGE_AGE_SECONDS,
        require_auto_reply=False,
        instructions=str(node.config.get("instructions") or ""),
    )
    queued = await ai_store.get_reply_for_message(run.m, msg["id"])
    if queued is None:
        return _Outcome("SKIPPED", branch=skip, error="the latest message is too old to answer")
    output = {"message_id": str(msg["id"]), "queue_id": int(queued["id"])}
    if queued["state"] == "DONE":  # answered already (auto-reply, or an earlier step)
        return _Outcome(branch=domain.ai_reply_branch(queued["outcome"]), output=_ai_out(queued))
    run.context[AI_REPLY_KEY] = str(msg["id"])
    return _Outcome(
        "WAITING",
        wake_at=datetime.now(UTC) + AI_REPLY_RECHECK,
        waiting_for="AI_REPLY",
        output=output,
    )


def _ai_out(queued: Row | None) -> dict[str, Any]:
    if queued is None:
        return {"outcome": "", "detail": "the assistant's queue row is gone"}
    return {
        "message_id": str(queued["message_id"]),
        "queue_id": int(queued["id"]),
        "outcome": str(queued["outcome"]),
        "detail": str(queued["detail"])[:200],
    }


async def _contact_changed(run: _Run, field_name: str, new: dict[str, Any]) -> None:
    """Record ``contact.updated`` for a step's change, only when something changed (so a
    flow triggered by a tag it adds itself does not run again for nothing), and keep
    the run's view of the contact current for later steps."""
    changes = domain.changed_tags_and_attributes(run.contact, {**run.contact, **new})
    run.contact = {**run.contact, **new}
    if not changes:
        return
    run.p.writes.event(
        run.m,
        "contact.updated",
        run.contact["id"],
        {
            "contact_id": str(run.contact["id"]),
            "account_id": str(run.row["account_id"]),
            "fields": [field_name],
            "actor_user_id": f"flow:{run.row['flow_id']}",
            **changes,
        },
    )


async def _conversation_step(run: _Run, node: domain.Node) -> _Outcome:
    conv = await store.live_conversation(run.m, run.row["account_id"], run.contact["id"])
    if conv is None:
        return _Outcome("SKIPPED", error="the contact has no open conversation")
    run.conversation_id = run.conversation_id or conv["id"]
    payload = {
        "conversation_id": str(conv["id"]),
        "account_id": str(conv["account_id"]),
        "contact_id": str(conv["contact_id"]),
        "actor_user_id": f"flow:{run.row['flow_id']}",
    }
    c = node.config
    if node.type == "ASSIGN":
        assignee = str(c["assignee_user_id"])
        await conversations_store.set_assignee(run.m, conv["id"], assignee)
        run.p.writes.event(
            run.m, "conversation.assigned", conv["id"], {**payload, "assignee_user_id": assignee}
        )
    elif node.type == "ESCALATE":
        reason = str(c.get("reason", ""))
        await store.escalate_conversation(run.m, conv["id"], reason)
        run.p.writes.event(
            run.m, "conversation.escalated", conv["id"], {**payload, "reason": reason}
        )
    else:
        reason = str(c.get("reason", ""))
        await conversations_store.set_status(run.m, conv["id"], "CLOSED", close_reason=reason)
        run.p.writes.event(
            run.m,
            "conversation.closed",
            conv["id"],
            {**payload, "status": "CLOSED", "reason": reason},
        )
    return _Outcome(output={"conversation_id": str(conv["id"])})


async def _start_flow(run: _Run, node: domain.Node) -> _Outcome:
    target = await store.get_flow(run.m, UUID(str(node.config["flow_id"])))
    if target is None or target["status"] != "ACTIVE" or target["published_definition"] is None:
        return _Outcome("SKIPPED", error="the flow to start is not ACTIVE")
    if target["account_id"] != run.row["account_id"]:
        return _Outcome("SKIPPED", error="the flow to start belongs to another account")
    started = await store.start_execution(
        run.m,
        flow_id=target["id"],
        flow_version=target["published_version"],
        definition=target["published_definition"],
        account_id=run.row["account_id"],
        contact_id=run.contact["id"],
        conversation_id=run.conversation_id,
        trigger_key=f"flow:{run.id}:{run.steps}",
        trigger_event={
            "type": "start_flow",
            "execution_id": str(run.id),
            "flow_id": str(run.row["flow_id"]),
        },
    )
    if started is None:
        return _Outcome("SKIPPED", error="the contact may not enter that flow now")
    return _Outcome(output={"execution_id": str(started["id"])})


# ------------------------------------------------------------------ the loop


async def automation_step_loop(deps: Deps, options: StepOptions | None = None) -> float:
    """The step runner for ``worker.run_loops``: passes back to back while executions
    are due; otherwise it sleeps until the next timer, a NOTIFY from a new or
    resumed execution, or ``idle_poll``. Returns 0 after :data:`ITERATION_SECONDS`."""
    opts = options or StepOptions()
    sub = await dispatcher_for(deps.pool, store.CHANNEL).subscribe(None)
    try:
        deadline = time.monotonic() + ITERATION_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            sub.clear()
            if await run_due_steps(deps, opts) >= opts.batch_size:
                continue
            async with use_connection(deps.pool):
                nxt = await store.seconds_to_next_due()
            if nxt is not None and nxt <= 0:
                await asyncio.sleep(0.005)  # due rows another worker holds
                continue
            wait = opts.idle_poll if nxt is None else min(nxt, opts.idle_poll)
            await sub.wait(max(0.001, min(wait, left)))
    finally:
        sub.close()
    return 0.0
