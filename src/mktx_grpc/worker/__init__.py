"""Background loops: run by ``mktx-grpc worker`` and in-process by ``serve``.

Each loop claims its work with ``FOR UPDATE SKIP LOCKED`` (or is idempotent), so
any number of worker processes can run against one database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..core.db import is_connection_failure
from ..deps import Deps

log = logging.getLogger(__name__)

Loop = Callable[[Deps], Awaitable[float]]


async def purge_expired_connections(deps: Deps) -> float:
    """Delete pending OAuth connections past their expiry. Returns seconds to sleep."""
    from ..core.db import use_connection
    from ..store import accounts as accounts_store
    from ..store import execute

    async with use_connection(deps.pool, transaction=True):
        await execute(accounts_store.Q.purge_expired_connections, {})
    return 300.0


async def run_loops(deps: Deps, stop: asyncio.Event, loops: list[Loop] | None = None) -> None:
    """Run every loop until ``stop`` is set. A failing iteration is logged and retried
    after a back-off (a second when the database is unavailable); it never stops the
    other loops."""

    async def runner(loop: Loop) -> None:
        while not stop.is_set():
            try:
                delay = await loop(deps)
            except Exception as exc:
                if is_connection_failure(exc):
                    # The database is away: no traceback, and look again soon, so the
                    # loops resume about a second after it returns.
                    log.warning(
                        "background loop %s: database unavailable (%s); retrying",
                        loop.__name__,
                        type(exc).__name__,
                    )
                    delay = 1.0
                else:
                    log.exception("background loop %s failed", loop.__name__)
                    delay = 5.0
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass

    await asyncio.gather(*(runner(loop) for loop in (loops or LOOPS)))
    for hook in AT_STOP:
        try:
            await hook(deps)
        except Exception:
            log.exception("stopping %s failed", hook.__name__)


async def refresh_expiring_tokens(deps: Deps) -> float:
    """Refresh OAuth 2.0 tokens that expire within 10 minutes, for every merchant.

    Each account refreshes under its own row lock (see XAccess.refresh), so several
    workers may run this at once. An account whose refresh X refuses is marked
    ERROR and skipped; other failures are logged and retried on the next pass.
    """
    from ..core.db import use_connection
    from ..core.errors import DomainError
    from ..store import accounts as accounts_store

    async with use_connection(deps.pool, transaction=True):
        due = await accounts_store.due_for_refresh(within_seconds=600, limit=100)
    for item in due:
        async with use_connection(deps.pool, transaction=True):
            account = await accounts_store.get(item["merchant_id"], item["id"])
        if account is None:
            continue
        try:
            await deps.xaccess.refresh(account)
        except DomainError as exc:
            log.warning(
                "token refresh failed", extra={"account_id": str(item["id"]), "reason": exc.reason}
            )
    return 5.0 if len(due) == 100 else 60.0


from .auto_reply import AUTO_REPLY_EVENTS  # noqa: E402
from .automation import AUTOMATION_TRIGGERS, automation_step_loop  # noqa: E402
from .consumer import Consumer, consumer_loops  # noqa: E402 - the loops need the helpers above
from .dispatch import (  # noqa: E402
    CAMPAIGN_EVENTS,
    dispatch_due_recipients,
    recover_stale_sends,
    run_campaign_schedules,
)
from .outbound import (  # noqa: E402
    outbound_sender_loop,
    recover_outbound,
    stop_outbound_senders,
)
from .rollups import ANALYTICS_ROLLUPS  # noqa: E402


async def _retry_webhook_inbox(deps: Deps) -> float:
    from ..webhooks.batch import retry_webhook_inbox

    return await retry_webhook_inbox(deps)


async def _wake_snoozed_conversations(deps: Deps) -> float:
    from .conversations import wake_snoozed_conversations

    return await wake_snoozed_conversations(deps)


async def _refresh_segment_counts(deps: Deps) -> float:
    from .segments import refresh_segment_counts

    return await refresh_segment_counts(deps)


async def _publish_due_posts(deps: Deps) -> float:
    from .publishing import publish_due_posts

    return await publish_due_posts(deps)


async def _refresh_post_metrics(deps: Deps) -> float:
    from .publishing import refresh_due_metrics

    return await refresh_due_metrics(deps)


async def _auto_reply_loop(deps: Deps) -> float:
    from .auto_reply import auto_reply_loop

    return await auto_reply_loop(deps)


async def _purge_answered_replies(deps: Deps) -> float:
    from .auto_reply import purge_answered

    return await purge_answered(deps)


async def _stop_auto_replies(deps: Deps) -> None:
    from .auto_reply import stop_auto_replies

    await stop_auto_replies(deps)


async def _check_webhook_subscriptions(deps: Deps) -> float:
    from .webhook_checks import check_webhook_subscriptions

    return await check_webhook_subscriptions(deps)


#: The outbox consumers (worker/consumer.py): a name and a handler each, one loop each.
CONSUMERS: list[Consumer] = [
    CAMPAIGN_EVENTS,
    AUTO_REPLY_EVENTS,
    AUTOMATION_TRIGGERS,
    ANALYTICS_ROLLUPS,
]

LOOPS: list[Loop] = [
    purge_expired_connections,
    refresh_expiring_tokens,
    _retry_webhook_inbox,
    _wake_snoozed_conversations,
    _refresh_segment_counts,
    dispatch_due_recipients,
    recover_stale_sends,
    run_campaign_schedules,
    outbound_sender_loop,
    recover_outbound,
    _publish_due_posts,
    _refresh_post_metrics,
    *consumer_loops(CONSUMERS),
    _check_webhook_subscriptions,
    _auto_reply_loop,
    _purge_answered_replies,
    automation_step_loop,
]

#: Awaited once after the loops have stopped (work they left running in the background).
AT_STOP: list[Callable[[Deps], Awaitable[None]]] = [
    stop_outbound_senders,
    _stop_auto_replies,
]
