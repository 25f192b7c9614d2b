"""Outbox consumers: one mechanism for everything that reacts to domain events.

Every state change others react to writes a ``domain_events`` row (the outbox) in
its own transaction, with a NOTIFY. A consumer is a :class:`Consumer`: a name and a
handler, registered in ``mktx_grpc.worker.CONSUMERS``; :func:`consumer_loop` makes
its background loop. Campaign events (``worker/dispatch.py``) are one; automation
triggers, AI auto-reply and analytics rollups are to be others.

What every consumer gets:

- **Its own durable cursor** (``event_consumer_cursors``, keyed by the name): the id
  of the last event it is done with. It starts at 0 (every event ever recorded).
- **Events in id order**, optionally only of the ``types`` it names (filtered in
  SQL), in batches of ``batch_size``.
- **Only settled events.** An event may commit after a higher id already has, so a
  consumer never passes an id below which an event may still appear. Each pass
  notes the highest id handed out so far and its own transaction id (the
  *horizon*); once every transaction older than that has ended (seen in a later
  pass), every id up to it is final, committed or rolled back. Events past the
  settled id are *held*, never skipped; the pass reports the first one and how long
  it has been held (``PassResult.held_seconds``, also in :func:`stats`), and a hold
  past :data:`HELD_WARNING_SECONDS` is logged: a long-running transaction anywhere
  on the server holds every consumer.
- **Handlers run inside the claiming transaction**, and the cursor advances in the
  same transaction: an event's effects and the cursor move commit together, so a
  crash anywhere means the batch is delivered again from where it stopped. Per-event
  handlers (``handle``) are called once per event; batch handlers (``handle_batch``,
  for set-based consumers) once per batch. A pass's events run in one savepoint; if
  a handler raises, the savepoint is rolled back and the events before the failing
  one are run again (a failing batch: one event per savepoint, to find the event),
  so every event but the failing one keeps its effects.
  Handlers must be idempotent per event anyway (an operator may rewind a cursor),
  and must be quick database work: slow work (X, the model) belongs in its own
  ledger table that the handler writes and another loop drains (``worker/ledger.py``).
- **One pass at a time across processes**: the cursor row is claimed with
  ``FOR UPDATE SKIP LOCKED``; a process that finds it busy waits briefly.
- **Failures do not block the stream forever.** When a handler raises, its
  savepoint is rolled back (a failing batch is retried one event at a time to find
  the event), the failure is recorded in ``event_consumer_failures`` and the
  consumer holds at that event, retrying it after ``retry_base * 2**(attempt-1)``
  seconds. After ``max_attempts`` the event is *parked* (a dead letter with its
  last error, listed by ``store.events.parked_events``) and the consumer moves on.
  Ordering is kept: nothing after a failing event is delivered while it is retried.
- **Derived consumers** (``derived=True``, the analytics rollups) write only rows
  recomputed from raw data. Their passes commit with ``synchronous_commit`` off
  (no wait for the disk flush): a crash can lose the last passes, effects and cursor
  move together, and the events are delivered and recomputed again. A consumer whose
  writes lead anywhere outside the database (a ledger row a sender acts on) must
  stay durable: a lost commit there could mean a second send.
- **Lingering** (``linger``, the analytics rollups): a consumer whose passes cost
  more than its events starts its next pass no sooner than ``linger`` seconds after
  one that did not fill its batch (or after the NOTIFY that woke it), so a burst is
  taken in a few passes instead of one per committing transaction.
- **Latency**: the loop waits for the outbox NOTIFY (the process's one LISTEN
  connection, ``store.live``; a consumer of some ``types`` only for a NOTIFY of
  one of them) when it has nothing to do, and re-reads at least every
  :data:`IDLE_POLL_SECONDS` in case a notification was lost. A new event is seen
  within milliseconds and settles on the next pass (see bench/results/consumers.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from psycopg_pool import AsyncConnectionPool

from ..core.db import savepoint, use_connection
from ..deps import Deps
from ..store import events as store
from ..store.events import OutboxEvent
from ..store.live import dispatcher_for

log = logging.getLogger(__name__)

EventHandler = Callable[[OutboxEvent], Awaitable[None]]
BatchHandler = Callable[[Sequence[OutboxEvent]], Awaitable[None]]
Loop = Callable[[Deps], Awaitable[float]]

#: A held event is logged once it has been held this long.
HELD_WARNING_SECONDS = 30.0
#: Idle consumers re-read at least this often even without a notification.
IDLE_POLL_SECONDS = 1.0
#: One loop iteration runs at most this long, then returns (so the worker can stop).
ITERATION_SECONDS = 2.0
#: How soon a pass that found its cursor busy (another process) or held events looks again.
BUSY_SLEEP_SECONDS = 0.1
HELD_SLEEP_SECONDS = (0.002, 0.05)
#: Horizons remembered per consumer while old transactions keep them from settling.
MAX_HORIZONS = 32


@dataclass(frozen=True)
class Consumer:
    """A named outbox consumer; exactly one of ``handle`` / ``handle_batch``."""

    name: str
    #: Called once per event, in id order, inside the claiming transaction.
    handle: EventHandler | None = None
    #: Called with each batch of events (id order) in one savepoint; on failure the
    #: batch is retried one event at a time.
    handle_batch: BatchHandler | None = None
    #: Only events of these types (None: every event).
    types: tuple[str, ...] | None = None
    batch_size: int = 500
    #: Attempts at an event before it is parked.
    max_attempts: int = 5
    #: Seconds before the first retry of a failed event; doubled per attempt.
    retry_base: float = 0.2
    #: The handler only writes data recomputed from other rows (rollups): its passes
    #: commit without waiting for the WAL flush (see the module docstring). Never for
    #: a handler whose writes lead to a send or anything else outside the database.
    derived: bool = False
    #: Seconds a pass waits for company: after a pass that did not fill its batch, the
    #: next one starts no sooner than this, so a burst is taken in fewer passes. For a
    #: consumer whose passes cost more than its events (rollups); adds at most this
    #: much to its lag. 0: at once.
    linger: float = 0.0

    def __post_init__(self) -> None:
        if (self.handle is None) == (self.handle_batch is None):
            raise ValueError(f"consumer {self.name!r} needs exactly one of handle, handle_batch")
        if self.batch_size < 1 or self.max_attempts < 1 or self.retry_base < 0 or self.linger < 0:
            raise ValueError(
                f"consumer {self.name!r}: bad batch_size, max_attempts, retry_base or linger"
            )


@dataclass(frozen=True)
class PassResult:
    """What one pass of a consumer did and saw."""

    #: False when another pass (another process) held the cursor: nothing was done.
    claimed: bool
    delivered: int = 0
    parked: int = 0
    #: The cursor after the pass.
    position: int = 0
    #: The first event past the cursor that has not settled yet, and how long ago its
    #: transaction started.
    held_event_id: int | None = None
    held_seconds: float = 0.0
    #: Age of the oldest event this pass left undelivered (0: caught up).
    lag_seconds: float = 0.0
    #: Set while retrying a failed event: seconds until its next attempt.
    backoff_seconds: float | None = None
    #: A full batch was delivered: more is probably waiting.
    more: bool = False

    @property
    def progressed(self) -> bool:
        return self.delivered > 0 or self.parked > 0


@dataclass
class _State:
    """What this process knows about one consumer."""

    cursor_ensured: bool = False
    #: Every event id up to this one is final (committed or rolled back).
    settled_through: int = 0
    #: (transaction id of a pass, highest event id handed out when it began), oldest
    #: first: once every transaction below the first is over, the second is settled.
    horizons: list[tuple[int, int]] = field(default_factory=list)
    last: PassResult | None = None
    warned_event_id: int | None = None


_states: weakref.WeakKeyDictionary[AsyncConnectionPool, dict[str, _State]] = (
    weakref.WeakKeyDictionary()
)


def _state(pool: AsyncConnectionPool, name: str) -> _State:
    per_pool = _states.get(pool)
    if per_pool is None:
        per_pool = _states[pool] = {}
    st = per_pool.get(name)
    if st is None:
        st = per_pool[name] = _State()
    return st


def stats(pool: AsyncConnectionPool) -> dict[str, PassResult]:
    """The last pass of each consumer this process ran against ``pool``'s database
    (position, held event and for how long, lag, back-off), for metrics."""
    return {n: s.last for n, s in _states.get(pool, {}).items() if s.last is not None}


def _settle(st: _State, allocated: int, xid: int, xmin: int) -> None:
    """Advance ``settled_through`` by the horizons every older transaction has passed,
    and remember this pass's own horizon."""
    ready = [a for x, a in st.horizons if x < xmin]
    if ready:
        st.settled_through = max(st.settled_through, *ready)
        st.horizons = [(x, a) for x, a in st.horizons if x >= xmin]
    newest = st.horizons[-1][1] if st.horizons else st.settled_through
    if allocated > newest:
        if len(st.horizons) >= MAX_HORIZONS:
            # Replacing the newest with a later one only delays settling: still safe.
            st.horizons[-1] = (xid, allocated)
        else:
            st.horizons.append((xid, allocated))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def consume_once(pool: AsyncConnectionPool, consumer: Consumer) -> PassResult:
    """Run one pass of ``consumer`` (see the module docstring) in one transaction.

    Returns what it did. Raises what the database raises (the pass is then rolled
    back, cursor included, and the next pass delivers the same events again);
    handler errors are not raised but recorded, retried and eventually parked."""
    st = _state(pool, consumer.name)
    if not st.cursor_ensured:
        async with use_connection(pool):
            await store.ensure_cursor(consumer.name)
        st.cursor_ensured = True
    async with use_connection(pool, transaction=True):
        horizon = await store.horizon()  # first: before this transaction has an id
        claim = await store.claim_cursor(consumer.name)
        if claim is None:
            result = PassResult(claimed=False, position=st.last.position if st.last else 0)
            st.last = result
            return result
        cursor, xid = claim
        if consumer.derived:
            await store.commit_without_flush()
        _settle(st, horizon.allocated, xid, horizon.xmin)
        events = await store.events_for_consumer(
            cursor,
            settled_through=st.settled_through,
            types=consumer.types,
            limit=consumer.batch_size,
        )
        deliverable: list[OutboxEvent] = []
        held: OutboxEvent | None = None
        for ev in events:
            if not ev.settled:
                held = ev
                break
            deliverable.append(ev)
        run = _Run(consumer)
        if deliverable:
            await run.deliver(deliverable, cursor)
        if run.stopped_at is not None:
            through = run.stopped_at.id - 1
        elif held is None and len(events) == consumer.batch_size:
            through = events[-1].id
        else:
            through = st.settled_through
        through = max(cursor, min(through, st.settled_through))
        if through != cursor:
            await store.advance_cursor(consumer.name, through)
    full = run.stopped_at is None and held is None and len(events) == consumer.batch_size
    waiting = run.stopped_at or held
    if waiting is not None:
        lag = waiting.age_seconds
    elif full:
        lag = deliverable[-1].age_seconds  # at least: more are waiting behind it
    else:
        lag = 0.0
    result = PassResult(
        claimed=True,
        delivered=run.delivered,
        parked=run.parked,
        position=through,
        held_event_id=held.id if held is not None else None,
        held_seconds=held.age_seconds if held is not None else 0.0,
        lag_seconds=lag,
        backoff_seconds=run.backoff,
        more=full,
    )
    st.last = result
    if held is not None and held.age_seconds > HELD_WARNING_SECONDS:
        if st.warned_event_id != held.id:
            st.warned_event_id = held.id
            log.warning(
                "outbox consumer held by an unsettled event",
                extra={"consumer": consumer.name, "event_id": held.id, "held_s": held.age_seconds},
            )
    return result


class _Run:
    """Delivery of one pass's settled events, with the failure policy."""

    def __init__(self, consumer: Consumer) -> None:
        self.c = consumer
        self.delivered = 0
        self.parked = 0
        #: The event the pass stopped before (being retried), if any.
        self.stopped_at: OutboxEvent | None = None
        self.backoff: float | None = None

    async def deliver(self, events: list[OutboxEvent], cursor: int) -> None:
        failure = await store.retrying_failure(self.c.name, cursor)
        if failure is not None:
            idx = next((i for i, e in enumerate(events) if e.id == failure.event_id), None)
            if idx is not None:
                if not await self._many(events[:idx]):
                    return
                retried = events[idx]
                if failure.waiting:
                    self.stopped_at, self.backoff = retried, failure.wait_seconds
                    return
                if not await self._one(retried, failure.attempts):
                    return
                events = events[idx + 1 :]
        await self._many(events)

    async def _many(self, events: list[OutboxEvent]) -> bool:
        """Deliver ``events``; False when it stopped at a failing one.

        Optimistically all in one savepoint, which saves two round trips per event.
        When a handler raises, that savepoint is rolled back: a per-event handler's
        events before the failing one are delivered again (their effects went with
        the savepoint) and the failing one is recorded; a failing batch is delivered
        again one event at a time, each in its own savepoint, to find the event."""
        while events:
            at = 0
            try:
                async with savepoint():
                    if self.c.handle_batch is not None:
                        await self.c.handle_batch(events)
                    else:
                        assert self.c.handle is not None
                        for at, ev in enumerate(events):  # noqa: B007 - `at` is read below
                            await self.c.handle(ev)
            except Exception as exc:
                if self.c.handle_batch is not None and len(events) > 1:
                    log.info(
                        "outbox batch failed; retrying it event by event",
                        extra={"consumer": self.c.name, "first_event_id": events[0].id},
                        exc_info=True,
                    )
                    for ev in events:
                        if not await self._one(ev, 0):
                            return False
                    return True
                if at and not await self._many(events[:at]):
                    return False
                if not await self._failed(events[at], 0, exc):
                    return False
                events = events[at + 1 :]
            else:
                self.delivered += len(events)
                return True
        return True

    async def _one(self, ev: OutboxEvent, attempts_before: int) -> bool:
        """Deliver one event in a savepoint; False when the consumer must hold here."""
        try:
            async with savepoint():
                if self.c.handle is not None:
                    await self.c.handle(ev)
                else:
                    assert self.c.handle_batch is not None
                    await self.c.handle_batch([ev])
        except Exception as exc:
            return await self._failed(ev, attempts_before, exc)
        if attempts_before:
            await store.clear_failure(self.c.name, ev.id)
        self.delivered += 1
        return True

    async def _failed(self, ev: OutboxEvent, attempts_before: int, exc: Exception) -> bool:
        """Record a failed attempt at ``ev``: park it (True: move on) or hold (False)."""
        attempts = attempts_before + 1
        park = attempts >= self.c.max_attempts
        backoff = self.c.retry_base * 2 ** (attempts - 1)
        await store.record_failure(
            self.c.name,
            ev,
            attempts=attempts,
            reason=_reason(exc),
            park=park,
            backoff=timedelta(seconds=backoff),
        )
        extra = {
            "consumer": self.c.name,
            "event_id": ev.id,
            "event_type": ev.type,
            "attempts": attempts,
        }
        if park:
            log.error("outbox event parked after repeated failures", extra=extra, exc_info=exc)
            self.parked += 1
            return True
        log.warning("outbox event failed; will retry", extra=extra, exc_info=exc)
        self.stopped_at, self.backoff = ev, backoff
        return False


async def drain(
    pool: AsyncConnectionPool, consumer: Consumer, *, settle_within: float = 5.0
) -> PassResult:
    """Run passes until the consumer has delivered what is there: no full batch left,
    and no held event (waiting up to ``settle_within`` seconds for held events to
    settle). A retry back-off or a cursor busy elsewhere ends it. Returns the last
    pass. For one-shot callers (tests, tools); the worker uses :func:`consumer_loop`."""
    deadline = time.monotonic() + settle_within
    pause = HELD_SLEEP_SECONDS[0]
    while True:
        r = await consume_once(pool, consumer)
        if r.more:
            continue
        if r.held_event_id is None or not r.claimed or r.backoff_seconds is not None:
            return r
        if time.monotonic() >= deadline:
            return r
        await asyncio.sleep(pause)
        pause = min(pause * 2, HELD_SLEEP_SECONDS[1])


def consumer_loop(consumer: Consumer) -> Loop:
    """The background loop of ``consumer`` for ``worker.run_loops``.

    Each call runs passes for up to :data:`ITERATION_SECONDS`: at once while there is
    work, briefly apart while events are held or the cursor is busy in another
    process, after the back-off while an event is retried, and otherwise when the
    outbox NOTIFY arrives (or :data:`IDLE_POLL_SECONDS` pass). Then it returns 0 so
    the worker can stop between iterations."""

    async def loop(deps: Deps) -> float:
        # A consumer of some types only is woken by their events alone (the NOTIFY
        # names the type); it still re-reads every IDLE_POLL_SECONDS, which moves its
        # cursor past the others' events.
        sub = await dispatcher_for(deps.pool).subscribe(None, types=consumer.types)
        try:
            deadline = time.monotonic() + ITERATION_SECONDS
            pause = HELD_SLEEP_SECONDS[0]
            while (left := deadline - time.monotonic()) > 0:
                sub.clear()
                r = await consume_once(deps.pool, consumer)
                sub.passed(r.position)
                if r.more:
                    pause = HELD_SLEEP_SECONDS[0]
                    continue
                if r.progressed:
                    pause = HELD_SLEEP_SECONDS[0]
                    if consumer.linger:
                        await asyncio.sleep(min(consumer.linger, left))
                    continue
                if not r.claimed:
                    await asyncio.sleep(min(BUSY_SLEEP_SECONDS, left))
                elif r.backoff_seconds is not None:
                    await asyncio.sleep(min(r.backoff_seconds, left))
                elif r.held_event_id is not None:
                    await asyncio.sleep(min(max(pause, consumer.linger), left))
                    pause = min(pause * 2, HELD_SLEEP_SECONDS[1])
                else:
                    pause = HELD_SLEEP_SECONDS[0]
                    if await sub.wait(min(IDLE_POLL_SECONDS, left)) and consumer.linger:
                        await asyncio.sleep(min(consumer.linger, left))
        finally:
            sub.close()
        return 0.0

    loop.__name__ = loop.__qualname__ = f"consume_{consumer.name}"
    return loop


def consumer_loops(consumers: Sequence[Consumer]) -> list[Loop]:
    """One loop per consumer (names must be unique: each owns its cursor)."""
    names = [c.name for c in consumers]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate consumer names in {names}")
    return [consumer_loop(c) for c in consumers]
