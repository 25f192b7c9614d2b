"""Applying inbox rows in batches, each batch in one transaction, and the retry loop.

Two paths process ``webhook_inbox`` rows, with the same code:

* the sidecar's :class:`~.processor.InboxProcessor`, fed in memory right after a
  delivery is committed (so the 200 is not delayed by processing), calls
  :func:`process_ids`; and
* :func:`retry_webhook_inbox`, a worker loop (``mktx_grpc.worker.LOOPS``) that
  claims due rows with ``FOR UPDATE SKIP LOCKED`` (:func:`process_due`): failed
  attempts after their back-off, and rows the sidecar never got to (crash, queue
  overflow) once ``claim_delay`` has passed since receipt.

A batch runs in one transaction: the rows are locked, each event is applied inside
its own savepoint (so an event is applied entirely or not at all, and one bad
event does not spoil the others), and every row is finished or rescheduled in the
same transaction. Nothing is marked processed unless its changes commit with it.
Runs of plain inbound DMs are applied set-based in one savepoint (:mod:`.dm_batch`)
and fall back to one event at a time. What each event does, and the outcomes
recorded, are in :mod:`.handlers`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ..core.db import savepoint, use_connection
from ..deps import Deps
from ..store import Row
from ..store import inbox as inbox_store
from .dm_batch import FastPathMiss, InboundDm, apply_dm_run, plain_inbound_dm
from .handlers import (
    DEAD,
    DUPLICATE,
    PROCESSED,
    Account,
    DuplicateEvent,
    MalformedEvent,
    RetryLater,
    apply_event,
)
from .metrics import DEFAULT_METRICS, WebhookMetrics
from .options import IngestOptions

__all__ = [
    "BatchResult",
    "make_inbox_retry_loop",
    "process_due",
    "process_ids",
    "retry_webhook_inbox",
]

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """What one batch did: finished rows and rows rescheduled, with their delays."""

    finished: dict[str, int] = field(default_factory=dict)
    retry: list[tuple[int, float]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.finished.values()) + len(self.retry)


async def _run_batch(
    pool: AsyncConnectionPool,
    claim: Callable[[], Awaitable[list[Row]]],
    payloads: Mapping[int, Mapping[str, Any]],
    options: IngestOptions,
    metrics: WebhookMetrics,
) -> BatchResult:
    result = BatchResult()
    lags: list[float] = []
    done_ids: list[int] = []
    outcomes: list[str] = []
    notes: list[str] = []
    fail_ids: list[int] = []
    fail_errors: list[str] = []
    fail_delays: list[float] = []
    async with use_connection(pool, transaction=True):
        rows = await claim()
        if not rows:
            return result
        items = [(r, payloads.get(r["id"]) or r["payload"]) for r in rows]
        x_users = sorted({str(p.get("for_user_id", "")) for _, p in items})
        accounts = {
            a["x_user_id"]: Account(a["id"], a["merchant_id"], a["x_user_id"], a["status"])
            for a in await inbox_store.accounts_by_x_user(x_users)
        }

        def fail(row_id: int, attempt: int, error: str, delay: float) -> None:
            if attempt >= options.max_attempts:
                done_ids.append(row_id)
                outcomes.append(DEAD)
                notes.append(f"gave up after {attempt} attempts: {error}")
            else:
                fail_ids.append(row_id)
                fail_errors.append(error)
                fail_delays.append(delay)

        async def apply_one(row: Row, payload: Mapping[str, Any]) -> None:
            attempt = int(row["attempts"]) + 1
            account = accounts.get(str(payload.get("for_user_id", "")))
            try:
                async with savepoint():
                    outcome, note = await apply_event(account, payload, row["received_at"], options)
            except DuplicateEvent as exc:
                outcome, note = DUPLICATE, str(exc)
            except MalformedEvent as exc:
                outcome, note = DEAD, f"malformed: {exc}"
            except RetryLater as exc:
                fail(row["id"], attempt, str(exc), exc.delay)
                return
            except Exception as exc:  # any database or data error: retry later
                log.warning("webhook event %s failed (attempt %d): %s", row["id"], attempt, exc)
                fail(
                    row["id"],
                    attempt,
                    f"{type(exc).__name__}: {exc}"[:1000],
                    options.backoff(attempt),
                )
                return
            done_ids.append(row["id"])
            outcomes.append(outcome)
            notes.append(note)

        run: list[tuple[Row, Mapping[str, Any], InboundDm]] = []

        async def flush_run() -> None:
            """Apply a run of plain inbound DMs set-based, in one savepoint; on any
            failure, apply them one by one instead."""
            if not run:
                return
            todo = list(run)
            run.clear()
            try:
                async with savepoint():
                    await apply_dm_run([dm for _, _, dm in todo], options)
            except Exception as exc:
                metrics.dm_runs["fallback"] += 1
                if not isinstance(exc, FastPathMiss):
                    log.info("batched DM run fell back to single events: %s", exc)
                for row, payload, _ in todo:
                    await apply_one(row, payload)
                return
            metrics.dm_runs["set_based"] += 1
            for row, _, _ in todo:
                done_ids.append(row["id"])
                outcomes.append(PROCESSED)
                notes.append("")

        for row, payload in items:
            account = accounts.get(str(payload.get("for_user_id", "")))
            dm = (
                plain_inbound_dm(account, payload, row["received_at"])
                if options.set_based_dms
                else None
            )
            if dm is not None:
                run.append((row, payload, dm))
                continue
            await flush_run()  # keep each contact's events in order
            await apply_one(row, payload)
        await flush_run()
        for fin in await inbox_store.mark_finished(done_ids, outcomes, notes):
            lags.append(float(fin["lag_seconds"]))
        await inbox_store.mark_failed(fail_ids, fail_errors, fail_delays)
    # Committed: count.
    for outcome in outcomes:
        result.finished[outcome] = result.finished.get(outcome, 0) + 1
        metrics.processed[outcome] += 1
    for lag in lags:
        metrics.observe_lag(lag)
    metrics.failed += len(fail_ids)
    result.retry = list(zip(fail_ids, fail_delays, strict=True))
    return result


async def process_ids(
    pool: AsyncConnectionPool,
    ids: Sequence[int],
    options: IngestOptions,
    metrics: WebhookMetrics,
    payloads: Mapping[int, Mapping[str, Any]] | None = None,
) -> BatchResult:
    """Process the given inbox rows (those still pending and not locked elsewhere).
    ``payloads`` may supply rows' payloads already in memory; others are read."""
    payloads = payloads or {}
    with_payload = any(i not in payloads for i in ids)
    return await _run_batch(
        pool,
        lambda: inbox_store.claim_by_ids(ids, with_payload=with_payload),
        payloads,
        options,
        metrics,
    )


async def process_due(
    pool: AsyncConnectionPool, options: IngestOptions, metrics: WebhookMetrics
) -> BatchResult:
    """Claim and process up to ``batch_size`` due rows (FOR UPDATE SKIP LOCKED)."""
    return await _run_batch(
        pool, lambda: inbox_store.claim_due(options.batch_size), {}, options, metrics
    )


def make_inbox_retry_loop(
    options: IngestOptions | None = None, metrics: WebhookMetrics | None = None
) -> Callable[[Deps], Awaitable[float]]:
    """A worker loop (``mktx_grpc.worker.Loop``) over due inbox rows, with fixed
    options (tests) or, when None, options read from ``deps.settings``."""

    async def retry_webhook_inbox(deps: Deps) -> float:
        """Process one batch of due inbox rows; returns seconds to sleep (0 when the
        batch was full, so a backlog drains without pause)."""
        opts = options or IngestOptions.from_settings(deps.settings)
        result = await process_due(deps.pool, opts, metrics or DEFAULT_METRICS)
        return 0.0 if result.count >= opts.batch_size else opts.retry_poll

    return retry_webhook_inbox


#: The worker loop to add to ``mktx_grpc.worker.LOOPS``.
retry_webhook_inbox = make_inbox_retry_loop()
