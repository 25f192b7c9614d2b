"""Typed results of X calls. ``raw`` keeps the full JSON object for fields not modelled."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "DmEvent",
    "DmEventPage",
    "DmSendResult",
    "MediaUpload",
    "Post",
    "PostPage",
    "ReplayJob",
    "Webhook",
    "XUser",
    "parse_time",
]


def parse_time(value: Any) -> datetime | None:
    """Parse X's ISO-8601 timestamps (``2024-01-01T00:00:00.000Z``)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class XUser:
    id: str
    username: str
    name: str
    profile_image_url: str | None = None
    verified: bool | None = None
    public_metrics: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> XUser:
        return cls(
            id=str(d["id"]),
            username=str(d["username"]),
            name=str(d.get("name", "")),
            profile_image_url=d.get("profile_image_url"),
            verified=d.get("verified"),
            public_metrics=dict(d.get("public_metrics") or {}),
        )


@dataclass(frozen=True, slots=True)
class DmSendResult:
    dm_conversation_id: str
    dm_event_id: str


@dataclass(frozen=True, slots=True)
class DmEvent:
    id: str
    event_type: str
    text: str | None
    sender_id: str | None
    dm_conversation_id: str | None
    created_at: datetime | None
    media_keys: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DmEvent:
        attachments = d.get("attachments") or {}
        return cls(
            id=str(d["id"]),
            event_type=str(d.get("event_type", "MessageCreate")),
            text=d.get("text"),
            sender_id=d.get("sender_id"),
            dm_conversation_id=d.get("dm_conversation_id"),
            created_at=parse_time(d.get("created_at")),
            media_keys=tuple(attachments.get("media_keys") or ()),
            raw=d,
        )


@dataclass(frozen=True, slots=True)
class DmEventPage:
    events: list[DmEvent]
    next_token: str | None
    result_count: int


@dataclass(frozen=True, slots=True)
class MediaUpload:
    """An uploaded media item. ``state`` is ``succeeded`` when usable."""

    id: str
    media_key: str | None
    size: int | None
    expires_after_secs: int | None
    state: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MediaUpload:
        info = d.get("processing_info") or {}
        return cls(
            id=str(d["id"]),
            media_key=d.get("media_key"),
            size=d.get("size"),
            expires_after_secs=d.get("expires_after_secs"),
            state=str(info.get("state", "succeeded")),
            raw=d,
        )


@dataclass(frozen=True, slots=True)
class Post:
    """A post. ``text`` is the full text: X gives a long post's whole text in
    ``note_tweet.text`` and only its start in ``text``. ``reply_to`` / ``quote_of`` are
    the posts it replies to and quotes (from ``referenced_tweets``, when requested)."""

    id: str
    text: str
    author_id: str | None = None
    created_at: datetime | None = None
    public_metrics: dict[str, int] = field(default_factory=dict)
    non_public_metrics: dict[str, int] | None = None
    organic_metrics: dict[str, int] | None = None
    reply_to: str | None = None
    quote_of: str | None = None
    has_media: bool = False

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Post:
        refs = {
            str(r.get("type")): str(r.get("id"))
            for r in d.get("referenced_tweets") or []
            if isinstance(r, dict)
        }
        note = d.get("note_tweet")
        text = note.get("text") if isinstance(note, dict) else None
        attachments = d.get("attachments") or {}
        return cls(
            id=str(d["id"]),
            text=str(text if isinstance(text, str) else d.get("text", "")),
            author_id=d.get("author_id"),
            created_at=parse_time(d.get("created_at")),
            public_metrics=dict(d.get("public_metrics") or {}),
            non_public_metrics=d.get("non_public_metrics"),
            organic_metrics=d.get("organic_metrics"),
            reply_to=refs.get("replied_to"),
            quote_of=refs.get("quoted"),
            has_media=bool(isinstance(attachments, dict) and attachments.get("media_keys")),
        )


@dataclass(frozen=True, slots=True)
class PostPage:
    """One page of a user's timeline, newest first; ``next_token`` leads to older."""

    posts: list[Post]
    next_token: str | None
    result_count: int


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    url: str
    valid: bool
    created_at: datetime | None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Webhook:
        return cls(
            id=str(d["id"]),
            url=str(d["url"]),
            valid=bool(d.get("valid", False)),
            created_at=parse_time(d.get("created_at")),
        )


@dataclass(frozen=True, slots=True)
class ReplayJob:
    job_id: str
    created_at: datetime | None
