"""Posts in user context: create, delete, look up with metrics, and read a timeline.

Publishing (``worker/publishing.py``: threads, polls, media posts, metrics) builds on
this module.

- :meth:`Posts.create_post` is a POST: retried only after an error proving the
  request never left, never after a 5xx or a read timeout
  (:mod:`mktx_grpc.x.transport`). :class:`XOutcomeUnknown` leaves the outcome
  unknown: the post may be live. Look for it in the user's timeline
  (:meth:`Posts.user_posts`, ``XAccess.find_published_post``) before posting again;
  :class:`XNotSent` means it was not sent. X refuses a text the user posted recently
  (403, "duplicate content"): :func:`is_duplicate_refusal` tells that answer apart,
  since after an unknown outcome it may mean the first try went through. Mutually
  exclusive options raise ``ValueError`` before any request.
- :meth:`Posts.delete_post` (DELETE), :meth:`Posts.get_posts` and
  :meth:`Posts.user_posts` (GET) are idempotent and retried on every transient
  failure within the deadline.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .context import CallContext
from .errors import XError, XForbidden
from .models import Post, PostPage
from .transport import response_data, response_json

__all__ = ["MAX_LOOKUP_IDS", "REPLY_SETTINGS", "Posts", "is_duplicate_refusal"]

#: ``GET /2/tweets`` takes at most this many ids.
MAX_LOOKUP_IDS = 100
#: X's ``reply_settings`` values (everyone is the default and is not sent).
REPLY_SETTINGS = ("following", "mentionedUsers", "subscribers", "verified")
#: What ``user_posts`` asks for by default: enough to recognise a post we sent.
TIMELINE_FIELDS = "created_at,author_id,referenced_tweets,attachments,note_tweet"


def is_duplicate_refusal(exc: XError) -> bool:
    """Whether X refused a post because the user posted the same text recently."""
    text = f"{exc.title or ''} {exc.detail or ''}".lower()
    return isinstance(exc, XForbidden) and "duplicate" in text


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
        """``POST /2/tweets``. Media, poll and quote exclude each other; ``reply_settings``
        is one of :data:`REPLY_SETTINGS` (None: everyone). Bad combinations raise
        ValueError before any request."""
        if sum(x is not None for x in (media_ids, poll_options, quote_tweet_id)) > 1:
            raise ValueError("media, poll and quote_tweet_id are mutually exclusive")
        if reply_settings is not None and reply_settings not in REPLY_SETTINGS:
            raise ValueError(f"reply_settings must be one of {', '.join(REPLY_SETTINGS)}")
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
        """``GET /2/tweets?ids=`` (1 to :data:`MAX_LOOKUP_IDS` ids) with public metrics
        (and non-public and organic ones, which X gives only for the user's own posts of
        the last 30 days: asked for others, X leaves them out and says so in ``errors``).
        Missing or deleted ids are left out."""
        if not 1 <= len(ids) <= MAX_LOOKUP_IDS:
            raise ValueError(f"between 1 and {MAX_LOOKUP_IDS} ids")
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

    async def user_posts(
        self,
        user_id: str,
        *,
        max_results: int = 100,
        pagination_token: str | None = None,
        start_time: datetime | None = None,
        since_id: str | None = None,
        fields: str = TIMELINE_FIELDS,
        deadline: float | None = None,
    ) -> PostPage:
        """``GET /2/users/:id/tweets``, newest first, replies included: ``max_results``
        5 to 100 per page, only posts from ``start_time`` (or after ``since_id``) when
        given. ValueError for a bad ``max_results``."""
        if not 5 <= max_results <= 100:
            raise ValueError("max_results must be 5 to 100")
        params = {"max_results": str(max_results), "tweet.fields": fields}
        if pagination_token:
            params["pagination_token"] = pagination_token
        if start_time is not None:
            params["start_time"] = start_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if since_id:
            params["since_id"] = since_id
        body = response_json(
            await self._call("GET", f"/2/users/{user_id}/tweets", params=params, deadline=deadline)
        )
        meta = body.get("meta") or {}
        posts = [Post.from_json(p) for p in body.get("data") or []]
        return PostPage(
            posts=posts,
            next_token=meta.get("next_token"),
            result_count=int(meta.get("result_count", len(posts))),
        )
