"""Posts in user context: create, delete, and look up with metrics.

Publishing (threads, polls, media posts, metrics) builds on this module.

- :meth:`Posts.create_post` is a POST: retried only after an error proving the
  request never left, never after a 5xx or a read timeout
  (:mod:`mktx_grpc.x.transport`). :class:`XOutcomeUnknown` leaves the outcome
  unknown: the post may be live. Look for it before posting again (that needs the
  user timeline, ``GET /2/users/:id/tweets``, which is not here yet);
  :class:`XNotSent` means it was not sent. Mutually exclusive options raise
  ``ValueError`` before any request.
- :meth:`Posts.delete_post` (DELETE) and :meth:`Posts.get_posts` (GET) are
  idempotent and retried on every transient failure within the deadline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .context import CallContext
from .models import Post
from .transport import response_data, response_json

__all__ = ["Posts"]


class Posts(CallContext):
    """``/2/tweets`` for one connected user."""

    async def create_post(
        self,
        text: str | None = None,
        *,
        media_ids: Sequence[str] | None = None,
        reply_to: str | None = None,
        quote_tweet_id: str | None = None,
        poll_options: Sequence[str] | None = None,
        poll_duration_minutes: int | None = None,
        reply_settings: str | None = None,
        deadline: float | None = None,
    ) -> Post:
        """``POST /2/tweets``. Media, poll and quote exclude each other (ValueError)."""
        if sum(x is not None for x in (media_ids, poll_options, quote_tweet_id)) > 1:
            raise ValueError("media, poll and quote_tweet_id are mutually exclusive")
        body: dict[str, Any] = {}
        if text is not None:
            body["text"] = text
        if media_ids is not None:
            body["media"] = {"media_ids": list(media_ids)}
        if reply_to is not None:
            body["reply"] = {"in_reply_to_tweet_id": reply_to}
        if quote_tweet_id is not None:
            body["quote_tweet_id"] = quote_tweet_id
        if poll_options is not None:
            body["poll"] = {
                "options": list(poll_options),
                "duration_minutes": poll_duration_minutes or 1440,
            }
        if reply_settings is not None:
            body["reply_settings"] = reply_settings
        data = response_data(await self._call("POST", "/2/tweets", json=body, deadline=deadline))
        return Post(id=str(data["id"]), text=str(data.get("text", "")))

    async def delete_post(self, post_id: str, *, deadline: float | None = None) -> bool:
        """``DELETE /2/tweets/:id``; True when X reports it deleted."""
        data = response_data(await self._call("DELETE", f"/2/tweets/{post_id}", deadline=deadline))
        return bool(data.get("deleted"))

    async def get_posts(
        self, ids: Sequence[str], *, non_public_metrics: bool = False, deadline: float | None = None
    ) -> list[Post]:
        """``GET /2/tweets?ids=`` with public metrics (and non-public ones, which X
        gives only for the user's own recent posts). Missing ids are left out."""
        if not 1 <= len(ids) <= 100:
            raise ValueError("between 1 and 100 ids")
        fields = "public_metrics,author_id,created_at"
        if non_public_metrics:
            fields += ",non_public_metrics,organic_metrics"
        body = response_json(
            await self._call(
                "GET",
                "/2/tweets",
                params={"ids": ",".join(ids), "tweet.fields": fields},
                deadline=deadline,
            )
        )
        return [Post.from_json(p) for p in body.get("data") or []]
