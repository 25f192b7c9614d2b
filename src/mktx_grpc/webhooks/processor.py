"""The sidecar's in-process processing of freshly recorded events (:class:`InboxProcessor`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg_pool import AsyncConnectionPool

from .batch import process_ids
from .events import InboxEvent
from .metrics import WebhookMetrics
from .options import IngestOptions

__all__ = ["InboxProcessor"]

log = logging.getLogger(__name__)


class InboxProcessor:
    """Processes freshly recorded events in the sidecar process, off the request path.

    Events are spread over ``options.workers`` queues by their shard (account and
    counterpart), so one contact's events are applied in order by one worker and
    workers never contend for the same rows. Each worker drains its queue in
    batches of up to ``batch_size``. A failed event is rescheduled in the table
    (for any process's retry loop) and, with ``inline_retries``, re-queued here
    after its delay. When the queues are full, events are left to the retry loop.
    """

    def __init__(
        self, pool: AsyncConnectionPool, options: IngestOptions, metrics: WebhookMetrics
    ) -> None:
        self.pool = pool
        self.options = options
        self.metrics = metrics
        n = max(1, options.workers)
        self._queues: list[asyncio.Queue[tuple[int, str, Mapping[str, Any] | None]]] = [
            asyncio.Queue() for _ in range(n)
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._busy = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not all(t.done() for t in self._tasks)

    def start(self) -> None:
        """Start the workers on the running loop (idempotent)."""
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._tasks = [
            asyncio.create_task(self._worker(q), name=f"webhook-ingest-{i}")
            for i, q in enumerate(self._queues)
        ]

    def _queue_for(self, shard: str) -> asyncio.Queue[tuple[int, str, Mapping[str, Any] | None]]:
        return self._queues[zlib.crc32(shard.encode()) % len(self._queues)]

    def submit(self, items: Sequence[tuple[int, InboxEvent]]) -> None:
        """Queue recorded events (inbox id, event) for processing."""
        self.start()
        for row_id, ev in items:
            self._put(row_id, ev.shard, ev.payload)

    def _put(self, row_id: int, shard: str, payload: Mapping[str, Any] | None) -> None:
        q = self._queue_for(shard)
        if q.qsize() >= self.options.queue_limit:
            return  # the retry loop takes it after claim_delay
        q.put_nowait((row_id, shard, payload))

    def idle(self) -> bool:
        """No queued events and no batch in flight (retries waiting on timers aside)."""
        return self._busy == 0 and all(q.empty() for q in self._queues)

    async def wait_idle(self, within: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + within
        while not self.idle():
            if loop.time() > give_up:
                raise TimeoutError("inbox processor still busy")
            await asyncio.sleep(0.01)

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Finish queued work for up to ``drain_timeout`` seconds, then stop. Whatever
        is left stays pending in the table for the retry loop."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        with contextlib.suppress(TimeoutError):
            await self.wait_idle(drain_timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _schedule_retry(self, row_id: int, shard: str, delay: float) -> None:
        if self._loop is None:
            return

        def fire() -> None:
            self._timers.discard(handle)
            self._put(row_id, shard, None)

        handle = self._loop.call_later(delay, fire)
        self._timers.add(handle)

    async def _worker(self, q: asyncio.Queue[tuple[int, str, Mapping[str, Any] | None]]) -> None:
        while True:
            first = await q.get()
            batch = [first]
            while len(batch) < self.options.batch_size and not q.empty():
                batch.append(q.get_nowait())
            self._busy += 1
            try:
                await self._process(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The rows stay pending; the retry loop takes them after claim_delay.
                log.exception("webhook ingest batch of %d failed", len(batch))
            finally:
                self._busy -= 1
                for _ in batch:
                    q.task_done()

    async def _process(self, batch: list[tuple[int, str, Mapping[str, Any] | None]]) -> None:
        ids = [row_id for row_id, _, _ in batch]
        shards = {row_id: shard for row_id, shard, _ in batch}
        payloads = {row_id: p for row_id, _, p in batch if p is not None}
        result = await process_ids(self.pool, ids, self.options, self.metrics, payloads)
        if self.options.inline_retries:
            for row_id, delay in result.retry:
                self._schedule_retry(row_id, shards[row_id], delay)
