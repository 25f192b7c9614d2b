"""Posts as X shows them: weighted text length, ``tweet.fields`` rendering, metrics.

Pure functions over :class:`~.state.PostRecord`; the HTTP handlers in ``app.py``
decide who may see what and pass it in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..domain.post_text import parse_post_text
from .state import PostRecord, iso

__all__ = [
    "LONG_POST_LIMIT",
    "POST_LIMIT",
    "PRIVATE_METRICS",
    "TWEET_FIELDS",
    "organic_metrics",
    "render_post",
    "weighted_length",
]

POST_LIMIT = 280
LONG_POST_LIMIT = 25_000

#: ``tweet.fields`` values X accepts (its OpenAPI enum plus the long-standing names
#: the enum lost, which X still serves).
TWEET_FIELDS = frozenset(
    "article attachments author_id card_uri community_id context_annotations "
    "conversation_id created_at display_text_range edit_controls edit_history_tweet_ids "
    "entities geo id in_reply_to_user_id lang media_metadata non_public_metrics note_tweet "
    "organic_metrics paid_partnership possibly_sensitive promoted_metrics public_metrics "
    "referenced_tweets reply_settings scopes source text withheld".split()
)
PRIVATE_METRICS = ("non_public_metrics", "organic_metrics")


def weighted_length(text: str) -> int:
    """The length X gives ``text``: twitter-text v3 weighting (URLs 23, CJK and emoji
    2, NFC first), the same counter the service validates with."""
    return parse_post_text(text, max_weighted_length=LONG_POST_LIMIT).weighted_length


def organic_metrics(post: PostRecord) -> dict[str, int]:
    pub, private = post.public_metrics, post.non_public_metrics
    return {
        "impression_count": private.get("impression_count", 0),
        "like_count": pub.get("like_count", 0),
        "reply_count": pub.get("reply_count", 0),
        "retweet_count": pub.get("retweet_count", 0),
        "url_link_clicks": private.get("url_link_clicks", 0),
        "user_profile_clicks": private.get("user_profile_clicks", 0),
    }


def render_post(
    post: PostRecord,
    fields: Iterable[str],
    *,
    media_keys: list[str],
    private_ok: bool,
) -> dict[str, Any]:
    """The post object with ``id``, ``text``, ``edit_history_tweet_ids`` and the
    requested fields. ``private_ok`` says whether the caller may see
    ``non_public_metrics``/``organic_metrics``; when not, they are left out (the
    caller reports the field errors)."""
    want = set(fields)
    out: dict[str, Any] = {
        "id": post.id,
        "text": post.text,
        "edit_history_tweet_ids": [post.id],
    }
    if "author_id" in want:
        out["author_id"] = post.author_id
    if "created_at" in want:
        out["created_at"] = iso(post.created_at)
    if "conversation_id" in want:
        out["conversation_id"] = post.conversation_id or post.id
    if "in_reply_to_user_id" in want and post.in_reply_to_user_id:
        out["in_reply_to_user_id"] = post.in_reply_to_user_id
    if "referenced_tweets" in want:
        refs = []
        if post.reply_to:
            refs.append({"type": "replied_to", "id": post.reply_to})
        if post.quote_tweet_id:
            refs.append({"type": "quoted", "id": post.quote_tweet_id})
        if refs:
            out["referenced_tweets"] = refs
    if "attachments" in want:
        att: dict[str, Any] = {}
        if media_keys:
            att["media_keys"] = media_keys
        if post.poll:
            att["poll_ids"] = [post.poll["id"]]
        if att:
            out["attachments"] = att
    if "reply_settings" in want:
        out["reply_settings"] = post.reply_settings or "everyone"
    if "possibly_sensitive" in want:
        out["possibly_sensitive"] = False
    if "lang" in want:
        out["lang"] = "en"
    if "public_metrics" in want:
        out["public_metrics"] = dict(post.public_metrics)
    if private_ok:
        if "non_public_metrics" in want:
            out["non_public_metrics"] = dict(post.non_public_metrics)
        if "organic_metrics" in want:
            out["organic_metrics"] = organic_metrics(post)
    return out
