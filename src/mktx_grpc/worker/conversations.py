"""Background loops over conversations."""

from __future__ import annotations

from datetime import UTC, datetime

from ..core.db import use_connection
from ..deps import Deps
from ..domain import conversations as domain
from ..mapping.conversations import event_payload
from ..store import conversations as store
from ..store.events import append_event


async def wake_snoozed_conversations(deps: Deps) -> float:
    """Background loop: reopen SNOOZED conversations whose time has come, in batches
    claimed with SKIP LOCKED (any number of workers), each with a
    ``conversation.reopened`` event. Returns the seconds to sleep: until the next
    snooze is due, at most 30."""
    while True:
        async with use_connection(deps.pool, transaction=True):
            woken = await store.wake_due_snoozed()
            for r in woken:
                await append_event(
                    r["merchant_id"],
                    "conversation.reopened",
                    r["id"],
                    event_payload(
                        r,
                        previous_status=domain.SNOOZED,
                        status=domain.OPEN,
                        cause="snooze_expired",
                    ),
                )
        if len(woken) < 200:
            break
    async with use_connection(deps.pool):
        due = await store.next_snooze_due()
    if due is None:
        return 30.0
    return max(0.05, min(30.0, (due - datetime.now(UTC)).total_seconds()))
