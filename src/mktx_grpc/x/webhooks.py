"""Account Activity: webhook management, subscriptions and replay.

Two halves, by the credentials X wants:

- :class:`Subscriptions` (user context): subscribe the connected user's activity to
  a webhook, or ask whether it is subscribed.
- :class:`WebhookAdmin` (app-only bearer): register, list, re-validate (CRC) and
  delete webhooks, remove a user's subscription, and ask X to replay the last 24 h.

Failure modes (retry rules in :mod:`mktx_grpc.x.transport`):

- GET, PUT (re-validate) and DELETE are idempotent and retried on every transient
  failure within the deadline.
- POSTs (register, subscribe, replay) are retried only on a 5xx or an error
  proving the request never left. After an :class:`XUnavailable` or
  :class:`XUpstreamError` their outcome is unknown; each is safe to check or
  repeat: :meth:`WebhookAdmin.list_webhooks` shows a registered URL (registering
  it again fails with ``DuplicateUrlFailed``), :meth:`Subscriptions.is_subscribed`
  shows a subscription, and a second replay only re-delivers events the webhook
  receiver de-duplicates by id.
- A failed CRC on register or re-validate raises :class:`XBadRequest` with
  ``reason == "CrcValidationFailed"``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .context import CallContext
from .models import ReplayJob, Webhook, parse_time
from .transport import response_data, response_json

__all__ = ["Subscriptions", "WebhookAdmin"]


class Subscriptions(CallContext):
    """A connected user's own Account Activity subscription (user context)."""

    async def subscribe(self, webhook_id: str, *, deadline: float | None = None) -> bool:
        """Subscribe this user's activity to a webhook (user context)."""
        data = response_data(
            await self._call(
                "POST",
                f"/2/account_activity/webhooks/{webhook_id}/subscriptions/all",
                deadline=deadline,
            )
        )
        return bool(data.get("subscribed"))

    async def is_subscribed(self, webhook_id: str, *, deadline: float | None = None) -> bool:
        """Whether this user is subscribed to the webhook."""
        data = response_data(
            await self._call(
                "GET",
                f"/2/account_activity/webhooks/{webhook_id}/subscriptions/all",
                deadline=deadline,
            )
        )
        return bool(data.get("subscribed"))


class WebhookAdmin(CallContext):
    """App-only webhook management, subscription removal and replay."""

    async def register_webhook(self, url: str, *, deadline: float | None = None) -> Webhook:
        """``POST /2/webhooks``; X runs the CRC first. A failed CRC raises
        XBadRequest with ``reason == "CrcValidationFailed"``."""
        data = response_data(
            await self._call("POST", "/2/webhooks", json={"url": url}, deadline=deadline)
        )
        return Webhook.from_json(data)

    async def list_webhooks(self, *, deadline: float | None = None) -> list[Webhook]:
        body = response_json(await self._call("GET", "/2/webhooks", deadline=deadline))
        return [Webhook.from_json(w) for w in body.get("data") or []]

    async def revalidate_webhook(self, webhook_id: str, *, deadline: float | None = None) -> bool:
        """``PUT /2/webhooks/:id`` re-runs the CRC; returns the resulting validity.
        A failed CRC raises XBadRequest (``CrcValidationFailed``)."""
        data = response_data(
            await self._call("PUT", f"/2/webhooks/{webhook_id}", deadline=deadline)
        )
        return bool(data.get("valid", data.get("attempted", False)))

    async def delete_webhook(self, webhook_id: str, *, deadline: float | None = None) -> bool:
        data = response_data(
            await self._call("DELETE", f"/2/webhooks/{webhook_id}", deadline=deadline)
        )
        return bool(data.get("deleted"))

    async def unsubscribe(
        self, webhook_id: str, user_id: str, *, deadline: float | None = None
    ) -> bool:
        """Remove a user's subscription; True when no longer subscribed."""
        data = response_data(
            await self._call(
                "DELETE",
                f"/2/account_activity/webhooks/{webhook_id}/subscriptions/{user_id}/all",
                deadline=deadline,
            )
        )
        return not bool(data.get("subscribed", False))

    async def replay(
        self,
        webhook_id: str,
        from_time: datetime,
        to_time: datetime,
        *,
        deadline: float | None = None,
    ) -> ReplayJob:
        """Ask X to re-deliver the activity of ``[from_time, to_time]`` (last 24 h,
        minute precision, UTC) to the webhook."""

        def fmt(dt: datetime) -> str:
            return dt.astimezone(UTC).strftime("%Y%m%d%H%M")

        data = response_data(
            await self._call(
                "POST",
                f"/2/account_activity/replay/webhooks/{webhook_id}/subscriptions/all",
                params={"from_date": fmt(from_time), "to_date": fmt(to_time)},
                deadline=deadline,
            )
        )
        return ReplayJob(job_id=str(data["job_id"]), created_at=parse_time(data.get("created_at")))
