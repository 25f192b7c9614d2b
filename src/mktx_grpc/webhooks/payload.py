"""Reading fields out of X's Account Activity payloads (no I/O).

X's JSON is taken as it comes: a field may be missing, null, a number where a
string is expected, or an object where a scalar is. These helpers never raise on
such input; they return empty values, and the caller decides whether an empty
value makes the event malformed. Used by the delivery splitter (:mod:`.events`)
and by both ways of applying events (:mod:`.handlers`, :mod:`.dm_batch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "MessageContent",
    "as_str",
    "message_content",
    "ms_time",
    "profile",
    "recipient_id",
    "user_id",
]


def as_str(value: Any) -> str:
    """A scalar as text; "" for None, booleans, objects and arrays (an id or a text
    field holding one of those is as good as missing)."""
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    return str(value)


def user_id(user: Any) -> str:
    """The id of a v1.1 user object (``id_str``, else ``id``); "" when absent."""
    if not isinstance(user, dict):
        return ""
    return as_str(user.get("id_str")) or as_str(user.get("id"))


def recipient_id(target: Any) -> str:
    """``target.recipient_id`` of a DM or read event; "" when absent."""
    return as_str(target.get("recipient_id")) if isinstance(target, dict) else ""


def profile(user: Any) -> dict[str, str]:
    """Contact profile fields (``username``, ``display_name``, ``profile_image_url``)
    from a v1.1 user object (users map, follow source, tweet author); {} when the
    value is not an object."""
    if not isinstance(user, dict):
        return {}
    return {
        "username": as_str(user.get("screen_name") or user.get("username")),
        "display_name": as_str(user.get("name")),
        "profile_image_url": as_str(
            user.get("profile_image_url_https") or user.get("profile_image_url")
        ),
    }


def ms_time(value: Any, default: datetime) -> datetime:
    """An epoch-milliseconds value (X sends strings) as an aware UTC datetime;
    ``default`` when it is missing or not a number in range."""
    try:
        return datetime.fromtimestamp(int(str(value)) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return default


@dataclass(frozen=True, slots=True)
class MessageContent:
    """What a DM's ``message_data`` carries, as messages store it."""

    #: IMAGE with an attachment, else TEXT.
    type: str
    text: str
    #: At most one (X allows one per DM): ``type, media_id, media_type, url``, where
    #: ``media_type`` is X's kind (``photo``, ``animated_gif``, ``video``) or "".
    attachments: list[dict[str, Any]]
    #: The chosen quick-reply option's metadata, or "".
    quick_reply_metadata: str

    @property
    def media_kinds(self) -> list[str]:
        """The attachments' media kinds, for :func:`mktx_grpc.domain.conversations.preview`."""
        return [str(a["media_type"]) for a in self.attachments]


def message_content(data: Any) -> MessageContent:
    """The content of a DM's ``message_data`` (anything else reads as empty)."""
    data = data if isinstance(data, dict) else {}
    attachments: list[dict[str, Any]] = []
    att = data.get("attachment")
    if isinstance(att, dict) and isinstance(att.get("media"), dict):
        media = att["media"]
        attachments.append(
            {
                "type": as_str(att.get("type")) or "media",
                "media_id": as_str(media.get("id_str")) or as_str(media.get("id")),
                "media_type": as_str(media.get("type")),
                "url": as_str(media.get("media_url_https") or media.get("media_url")),
            }
        )
    qr = data.get("quick_reply_response")
    return MessageContent(
        type="IMAGE" if attachments else "TEXT",
        text=as_str(data.get("text")),
        attachments=attachments,
        quick_reply_metadata=as_str(qr.get("metadata")) if isinstance(qr, dict) else "",
    )
