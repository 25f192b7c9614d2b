"""Background loop: do the webhook subscriptions the accounts claim still exist at X?

An account says ``webhook.subscribed: true`` once RegisterWebhook subscribed it. X
can drop that without telling the service: the webhook is deleted or fails X's
periodic CRC check, the user revokes the app, or (the built-in sandbox) X itself
forgets. Then no event arrives and an operator reading the account would be misled.
Every ``webhook_check_interval`` seconds this loop lists the app's webhooks once
and, for accounts whose webhook is still there and valid, asks X whether each
account is still subscribed (user context, a page of accounts per pass). An account
whose webhook or subscription is gone is marked unsubscribed; RegisterWebhook
subscribes it again. A send refused for the account's tokens marks it ERROR and
unsubscribed as well (``store.accounts.mark_error``).
"""

from __future__ import annotations

import logging
from uuid import UUID

from ..core.db import use_connection
from ..core.errors import DomainError
from ..deps import Deps
from ..store import Row
from ..store import accounts as store
from ..x import XError

log = logging.getLogger(__name__)

#: Accounts whose subscription is asked about per pass (one X call each).
PAGE = 50
_ZERO = UUID(int=0)


class WebhookChecks:
    """The loop's memory between passes: where the page of accounts resumes."""

    def __init__(self) -> None:
        self.after_id = _ZERO

    async def run(self, deps: Deps) -> float:
        """One pass. Returns the seconds until the next (``webhook_check_interval``;
        a pass with more accounts to look at comes sooner)."""
        interval = deps.settings.webhook_check_interval
        if interval <= 0:
            return 3600.0
        async with use_connection(deps.pool):
            accounts = await store.subscribed_page(self.after_id, PAGE)
        if not accounts:
            self.after_id = _ZERO
            return interval
        try:
            hooks = {h.id: h.valid for h in await deps.xaccess.x.as_app().list_webhooks()}
        except XError as exc:
            log.warning("webhook check: X's webhook list unavailable (%s)", type(exc).__name__)
            return min(interval, 300.0)
        for account in accounts:
            await self._check(deps, account, hooks)
        self.after_id = accounts[-1]["id"] if len(accounts) == PAGE else _ZERO
        return 1.0 if len(accounts) == PAGE else interval

    async def _check(self, deps: Deps, account: Row, hooks: dict[str, bool]) -> None:
        hook = account["webhook_id"]
        if not hooks.get(hook, False):
            why = (
                "X no longer has the account's webhook"
                if hook not in hooks
                else ("the account's webhook fails X's CRC check")
            )
            await _unsubscribed(deps, account, why)
            return
        try:
            subscribed = await deps.xaccess.call(account, lambda u: u.is_subscribed(hook))
        except DomainError as exc:
            # ACCOUNT_AUTH_REVOKED has marked it ERROR and unsubscribed already; a
            # rate limit or an outage is asked about again on a later pass.
            log.info(
                "webhook check skipped an account",
                extra={"account_id": str(account["id"]), "reason": exc.reason},
            )
            return
        if not subscribed:
            await _unsubscribed(deps, account, "X no longer has the account's subscription")


async def _unsubscribed(deps: Deps, account: Row, why: str) -> None:
    async with use_connection(deps.pool, transaction=True):
        changed = await store.mark_webhook_unsubscribed(account["merchant_id"], account["id"])
    if changed is not None:
        log.warning(
            "%s; marked unsubscribed (RegisterWebhook subscribes it again)",
            why,
            extra={"account_id": str(account["id"]), "webhook_id": account["webhook_id"]},
        )


#: The process's loop state; the worker runs ``check_webhook_subscriptions``.
_CHECKS = WebhookChecks()


async def check_webhook_subscriptions(deps: Deps) -> float:
    """The LOOPS entry: one pass of :class:`WebhookChecks`."""
    return await _CHECKS.run(deps)
