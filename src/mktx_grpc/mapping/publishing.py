"""Proto ⇄ domain and row conversions for publishing (the servicer, validation and
the operations share them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mktx.v1 import publishing_pb2

from ..domain import publishing as domain
from ..domain.post_rules import MediaKind, Poll
from ..domain.post_text import LONG_POST_MAX_WEIGHTED_LENGTH, TextProblem, parse_post_text
from ..store import Row, etag_of
from .common import from_ts, ts

P = publishing_pb2

STATUS_FROM_DB: dict[str, P.PostStatus] = {
    domain.SCHEDULED: P.POST_STATUS_SCHEDULED,
    domain.PUBLISHING: P.POST_STATUS_PUBLISHING,
    domain.PUBLISHED: P.POST_STATUS_PUBLISHED,
    domain.PARTIALLY_PUBLISHED: P.POST_STATUS_PARTIALLY_PUBLISHED,
    domain.FAILED: P.POST_STATUS_FAILED,
    domain.CANCELLED: P.POST_STATUS_CANCELLED,
    domain.DELETED: P.POST_STATUS_DELETED,
}
STATUS_TO_DB = {v: k for k, v in STATUS_FROM_DB.items()}

PART_STATE_FROM_DB: dict[str, P.PostPartState] = {
    domain.PART_PENDING: P.POST_PART_STATE_PENDING,
    domain.PART_PUBLISHING: P.POST_PART_STATE_PUBLISHING,
    domain.PART_PUBLISHED: P.POST_PART_STATE_PUBLISHED,
    domain.PART_FAILED: P.POST_PART_STATE_FAILED,
    domain.PART_DELETED: P.POST_PART_STATE_DELETED,
}

REPLY_TO_DB: dict[int, str] = {
    P.REPLY_SETTINGS_UNSPECIFIED: "EVERYONE",
    P.REPLY_SETTINGS_EVERYONE: "EVERYONE",
    P.REPLY_SETTINGS_FOLLOWING: "FOLLOWING",
    P.REPLY_SETTINGS_MENTIONED_USERS: "MENTIONED_USERS",
}
REPLY_FROM_DB: dict[str, P.ReplySettings] = {
    "EVERYONE": P.REPLY_SETTINGS_EVERYONE,
    "FOLLOWING": P.REPLY_SETTINGS_FOLLOWING,
    "MENTIONED_USERS": P.REPLY_SETTINGS_MENTIONED_USERS,
}
#: ``reply_settings`` on X's wire (everyone is X's default and is not sent).
REPLY_TO_X: dict[str, str | None] = {
    "EVERYONE": None,
    "FOLLOWING": "following",
    "MENTIONED_USERS": "mentionedUsers",
}

KIND_FROM_PROTO: dict[int, MediaKind | None] = {
    P.POST_MEDIA_TYPE_UNSPECIFIED: None,
    P.POST_MEDIA_TYPE_IMAGE: MediaKind.IMAGE,
    P.POST_MEDIA_TYPE_GIF: MediaKind.GIF,
    P.POST_MEDIA_TYPE_VIDEO: MediaKind.VIDEO,
}
KIND_TO_PROTO: dict[str, P.PostMediaType] = {
    MediaKind.IMAGE.value: P.POST_MEDIA_TYPE_IMAGE,
    MediaKind.GIF.value: P.POST_MEDIA_TYPE_GIF,
    MediaKind.VIDEO.value: P.POST_MEDIA_TYPE_VIDEO,
}

#: UpdatePost mask paths.
UPDATABLE = ("parts", "reply_settings", "quote_post_id", "reply_to_post_id", "publish_time")


def parts_from_proto(parts: Sequence[P.PostPart]) -> tuple[domain.PartDraft, ...]:
    return tuple(
        domain.PartDraft(
            text=p.text,
            media=tuple(
                domain.MediaDraft(
                    url=m.url, alt_text=m.alt_text, declared=KIND_FROM_PROTO.get(m.type)
                )
                for m in p.media
            ),
            poll=(
                Poll(list(p.poll.options), p.poll.duration_minutes) if p.HasField("poll") else None
            ),
        )
        for p in parts
    )


def draft_from_proto(post: P.Post) -> domain.PostDraft:
    """The client's post as a draft. ``publish_time`` must have been range-checked
    (validation does)."""
    return domain.PostDraft(
        account_id=post.account_id,
        parts=parts_from_proto(post.parts),
        reply_settings=REPLY_TO_DB.get(post.reply_settings, "EVERYONE"),
        quote_post_id=post.quote_post_id,
        reply_to_post_id=post.reply_to_post_id,
        publish_at=from_ts(post.publish_time, "post.publish_time")
        if post.HasField("publish_time")
        else None,
    )


def _kind(value: Any) -> MediaKind | None:
    try:
        return MediaKind(value) if value else None
    except ValueError:
        return None


def draft_from_rows(row: Row, parts: Sequence[Row]) -> domain.PostDraft:
    """A stored post as a draft (UpdatePost merges the client's fields into it)."""
    return domain.PostDraft(
        account_id=str(row["account_id"]),
        parts=tuple(
            domain.PartDraft(
                text=p["text"],
                media=tuple(
                    domain.MediaDraft(
                        url=m["url"],
                        alt_text=m.get("alt_text", ""),
                        declared=_kind(m.get("declared")),
                    )
                    for m in p["media"]
                ),
                poll=(
                    Poll(list(p["poll"]["options"]), int(p["poll"]["duration_minutes"]))
                    if p["poll"]
                    else None
                ),
            )
            for p in parts
        ),
        reply_settings=row["reply_settings"],
        quote_post_id=row["quote_post_id"],
        reply_to_post_id=row["reply_to_post_id"],
        publish_at=row["publish_at"],
    )


def metrics_to_proto(values: domain.MetricsValues) -> P.PostMetricsValues:
    out = P.PostMetricsValues(
        impressions=values.impressions,
        likes=values.likes,
        reposts=values.reposts,
        replies=values.replies,
        quotes=values.quotes,
        bookmarks=values.bookmarks,
    )
    if values.url_clicks is not None:
        out.url_clicks = values.url_clicks
    if values.profile_clicks is not None:
        out.profile_clicks = values.profile_clicks
    return out


def _weighted(text: str) -> int:
    return parse_post_text(text, max_weighted_length=LONG_POST_MAX_WEIGHTED_LENGTH).weighted_length


def part_to_proto(p: Row) -> P.PostPart:
    poll = p["poll"]
    return P.PostPart(
        text=p["text"],
        media=[
            P.PostMedia(
                url=m["url"],
                alt_text=m.get("alt_text") or "",
                type=KIND_TO_PROTO.get(m.get("kind") or m.get("declared") or "", 0),  # type: ignore[arg-type]
                x_media_id=m.get("x_media_id") or "",
                size_bytes=int(m.get("size_bytes") or 0),
            )
            for m in p["media"]
        ],
        poll=(
            P.PostPoll(options=poll["options"], duration_minutes=int(poll["duration_minutes"]))
            if poll
            else None
        ),
        state=PART_STATE_FROM_DB[p["state"]],
        x_post_id=p["x_post_id"] or "",
        url=p["url"],
        error=p["error"],
        publish_time=ts(p["published_at"]),
        weighted_length=_weighted(p["text"]),
        attempt_count=p["attempts"],
    )


def post_to_proto(row: Row, parts: Sequence[Row]) -> P.Post:
    """The public view of a post (the lease and ledger internals are not shown)."""
    return P.Post(
        id=str(row["id"]),
        account_id=str(row["account_id"]),
        parts=[part_to_proto(p) for p in parts],
        reply_settings=REPLY_FROM_DB[row["reply_settings"]],
        quote_post_id=row["quote_post_id"],
        reply_to_post_id=row["reply_to_post_id"],
        publish_time=ts(row["publish_at"]),
        status=STATUS_FROM_DB[row["status"]],
        status_reason=row["status_reason"],
        published_time=ts(row["published_at"]),
        metrics=(
            metrics_to_proto(domain.MetricsValues.from_dict(row["metrics"]))
            if row["metrics"]
            else None
        ),
        metrics_time=ts(row["metrics_at"]),
        create_time=ts(row["created_at"]),
        update_time=ts(row["updated_at"]),
        etag=etag_of(row["id"], row["version"]),
    )


def count_to_proto(text: str, *, max_weighted_length: int, has_media: bool) -> P.PostTextCount:
    """How ``text`` counts against ``max_weighted_length`` (an empty text is valid in a
    part with media)."""
    parsed = parse_post_text(text, max_weighted_length=max_weighted_length)
    return P.PostTextCount(
        weighted_length=parsed.weighted_length,
        max_weighted_length=parsed.max_weighted_length,
        remaining=parsed.remaining,
        permillage=parsed.permillage,
        valid=parsed.valid or (has_media and parsed.reason is TextProblem.EMPTY),
        valid_range_end=parsed.valid_range.end,
    )
