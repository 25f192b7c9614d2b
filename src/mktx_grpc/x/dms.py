"""Direct messages in user context: sending, and reading DM events back.

**Sending** (:meth:`DirectMessages.send_dm`) is a POST, so it follows the
transport's rules for non-idempotent calls (:mod:`mktx_grpc.x.transport`): it is
retried only after errors that prove the request never left, never after a 5xx, a
read timeout or a dropped connection. Before the request, the client's
:class:`DmBudget` (if any) spends one unit for the account; its
:class:`XRateLimited` propagates and no request is made. What the caller sees:

- :class:`DmSendResult`: X accepted the DM.
- :class:`XRateLimited` (X's per-user limits or the budget), :class:`XForbidden`
  (the recipient does not accept the DM), :class:`XBadRequest`, :class:`XAuthError`,
  :class:`XNotSent` (open breaker, unreachable): the DM was certainly not sent.
- :class:`XOutcomeUnknown`: **the outcome is unknown**, the DM may have been
  delivered. Do not resend blindly; look for it with
  :meth:`DirectMessages.dm_events` first (the send ledger's recovery does).

**Reading** (:meth:`DirectMessages.dm_events`) is a GET and is retried on every
transient failure within the deadline. X returns only the last 30 days.
"""

from __future__ import annotations

from typing import Any

from .context import CallContext
from .models import DmEvent, DmEventPage, DmSendResult
from .transport import response_data, response_json

__all__ = ["DEFAULT_DM_EVENT_FIELDS", "DirectMessages"]

DEFAULT_DM_EVENT_FIELDS = "id,event_type,text,sender_id,dm_conversation_id,created_at,attachments"


class DirectMessages(CallContext):
    """``/2/dm_conversations`` and ``/2/dm_events`` for one connected user."""

    #: Names the account for the DM budget; set by the concrete context.
    account_key: str

    async def send_dm(
        self,
        participant_id: str | None = None,
        *,
        conversation_id: str | None = None,
        text: str | None = None,
        media_id: str | None = None,
        deadline: float | None = None,
    ) -> DmSendResult:
        """Send a DM to a user (1:1, created if needed) or into a conversation.

        Exactly one of ``participant_id``/``conversation_id``; at least one of
        ``text``/``media_id``. The DM budget, if any, is acquired first and its
        XRateLimited propagates without a request being made. Raises ValueError on
        bad arguments, XForbidden when the recipient does not accept the DM,
        XRateLimited on X's per-user limits, XNotSent when nothing left;
        XOutcomeUnknown leaves the outcome unknown (see the module docstring).
        """
        if (participant_id is None) == (conversation_id is None):
            raise ValueError("give exactly one of participant_id or conversation_id")
        if not text and not media_id:
            raise ValueError("a DM needs text or a media_id")
        body: dict[str, Any] = {}
        if text:
            body["text"] = text
        if media_id:
            body["attachments"] = [{"media_id": media_id}]
        if participant_id is not None:
            if not participant_id.isdigit():
                raise ValueError("participant_id must be a numeric user id")
            path = f"/2/dm_conversations/with/{participant_id}/messages"
        else:
            path = f"/2/dm_conversations/{conversation_id}/messages"
        if self._client.dm_budget is not None:
            await self._client.dm_budget.acquire(self.account_key)
        resp = await self._call("POST", path, json=body, deadline=deadline)
        data = response_data(resp)
        return DmSendResult(str(data["dm_conversation_id"]), str(data["dm_event_id"]))

    async def dm_events(
        self,
        *,
        participant_id: str | None = None,
        max_results: int = 100,
        pagination_token: str | None = None,
        deadline: float | None = None,
    ) -> DmEventPage:
        """One page of DM events (last 30 days, newest first): all conversations
        (``GET /2/dm_events``) or one 1:1 (``.../with/{participant_id}/dm_events``)."""
        params = {
            "max_results": str(max(1, min(100, max_results))),
            "event_types": "MessageCreate",
            "dm_event.fields": DEFAULT_DM_EVENT_FIELDS,
        }
        if pagination_token:
            params["pagination_token"] = pagination_token
        path = (
            f"/2/dm_conversations/with/{participant_id}/dm_events"
            if participant_id
            else "/2/dm_events"
        )
        body = response_json(await self._call("GET", path, params=params, deadline=deadline))
        meta = body.get("meta") or {}
        events = [DmEvent.from_json(e) for e in body.get("data") or []]
        return DmEventPage(
            events, meta.get("next_token"), int(meta.get("result_count", len(events)))
        )
