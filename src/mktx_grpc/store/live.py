"""Live outbox notifications: one LISTEN connection per process, fanned out to streams.

``append_event`` commits each domain event with ``NOTIFY mktx_events,
'<merchant_id>:<event_id>:<type>'``. A :class:`LiveDispatcher` holds one dedicated
connection that LISTENs on that channel and hands each notification to the
subscriptions of that merchant (and of every merchant), except those that asked for
other event types only: an outbox consumer of a few types is not woken by every
event of the others. A notification without a type (``'<merchant_id>:<event_id>'``,
or a re-read after a reconnect) wakes every subscription. The dispatcher starts lazily
with the first subscription and stops when the last one leaves, so idle processes
hold no extra connection.

A notification is only a wake-up: streams read the events themselves from
``domain_events`` (the source of truth, in id order), so a notification lost while
the listener reconnects costs nothing but latency: after reconnecting, every
subscription is woken to re-read.

Each subscription remembers the ids it was notified of and the stream has not yet
passed: its lag. The record is bounded (``HARD_LIMIT_FACTOR`` times the limit), so
the dispatcher never blocks and never buffers without bound. A stream whose client
is slow (its writes wait on gRPC flow control) while its lag exceeds the limit is
ended with SLOW_CONSUMER and resumes from its cursor; a fast stream catching up on a
burst larger than the limit is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Collection
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from .events import CHANNEL

log = logging.getLogger(__name__)

#: Events a stream may lag behind before a slow client is cut off.
MAX_PENDING = 1_000
#: A lagging stream is cut off regardless of its pace once it lags this many times
#: MAX_PENDING (the notification record stops growing there).
HARD_LIMIT_FACTOR = 10


class Subscription:
    """One stream's view of the live notifications of one merchant."""

    def __init__(
        self,
        dispatcher: LiveDispatcher,
        merchant_id: UUID | None,
        limit: int,
        types: frozenset[str] | None = None,
    ) -> None:
        self.merchant_id = merchant_id
        self.limit = limit
        #: Only notifications of these event types (or of no known type) wake it.
        self.types = types
        self.saturated = False
        self._ids: list[int] = []
        self._wake = asyncio.Event()
        self._dispatcher = dispatcher

    def offer(self, event_id: int) -> None:
        """Record a notification (0 = re-read without a known id) and wake the stream."""
        if event_id:
            if len(self._ids) >= self.limit * HARD_LIMIT_FACTOR:
                self.saturated = True
            else:
                self._ids.append(event_id)
        self._wake.set()

    def passed(self, position: int) -> None:
        """The stream has read every event up to ``position``."""
        self._ids = [i for i in self._ids if i > position]
        if not self._ids:
            self.saturated = False

    @property
    def lag(self) -> int:
        """Notified events the stream has not passed yet."""
        return len(self._ids)

    def clear(self) -> None:
        """Forget the wake-up (the caller is about to read the table)."""
        self._wake.clear()

    async def wait(self, seconds: float) -> bool:
        """Wait for a notification since the last clear(); False on timeout."""
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self._dispatcher.unsubscribe(self)


class LiveDispatcher:
    """The process's LISTEN connection and its subscriptions. See the module doc."""

    def __init__(
        self, conninfo: str, *, reconnect_delay: float = 1.0, channel: str = CHANNEL
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._subs: dict[UUID | None, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._reconnect_delay = reconnect_delay

    async def subscribe(
        self,
        merchant_id: UUID | None,
        limit: int | None = None,
        *,
        types: Collection[str] | None = None,
    ) -> Subscription:
        """Register a subscription (``merchant_id`` None: every merchant's events, for
        outbox consumers; ``types``: only events of these types wake it, for consumers
        that filter on type). Returns once the listener is LISTENing, so any event
        committed after this returns is notified."""
        sub = Subscription(
            self, merchant_id, limit or MAX_PENDING, frozenset(types) if types is not None else None
        )
        self._subs.setdefault(merchant_id, set()).add(sub)
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="live-dispatcher")
        await self._ready.wait()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.merchant_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.merchant_id]
        if not self._subs and self._task is not None:
            self._task.cancel()
            self._task = None

    def _dispatch(self, payload: str) -> None:
        # '<merchant_id>:<event_id>:<type>' on the outbox channel (the type may be
        # missing); other channels (the outbound DM ledger's) send the merchant id
        # alone: a wake-up without an id.
        merchant, _, rest = payload.partition(":")
        event_id, _, type_ = rest.partition(":")
        try:
            key, eid = UUID(merchant), int(event_id or 0)
        except ValueError:
            return
        for sub in [*self._subs.get(key, ()), *self._subs.get(None, ())]:
            if type_ and sub.types is not None and type_ not in sub.types:
                continue
            sub.offer(eid)

    def _wake_all(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.offer(0)

    async def _run(self) -> None:
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            except (psycopg.OperationalError, OSError):
                log.warning("live listener cannot connect; retrying", exc_info=True)
                await asyncio.sleep(self._reconnect_delay)
                continue
            try:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                if self._ready.is_set():
                    self._wake_all()  # notifications may have been missed while away
                self._ready.set()
                async for note in conn.notifies():
                    self._dispatch(note.payload)
            except psycopg.OperationalError:
                log.warning("live listener lost its connection; reconnecting", exc_info=True)
                await asyncio.sleep(self._reconnect_delay)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()


_dispatchers: weakref.WeakKeyDictionary[AsyncConnectionPool, dict[str, LiveDispatcher]] = (
    weakref.WeakKeyDictionary()
)


def dispatcher_for(pool: AsyncConnectionPool, channel: str = CHANNEL) -> LiveDispatcher:
    """The process's dispatcher of ``channel`` (the outbox's by default) for the
    database of ``pool`` (created on first use)."""
    per_pool = _dispatchers.get(pool)
    if per_pool is None:
        per_pool = _dispatchers[pool] = {}
    d = per_pool.get(channel)
    if d is None:
        d = per_pool[channel] = LiveDispatcher(str(pool.conninfo), channel=channel)
    return d
