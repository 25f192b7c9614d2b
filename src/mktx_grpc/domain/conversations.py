"""The conversation state machine and message rules. Pure: no I/O.

Status transitions (anything else is INVALID_STATE_TRANSITION):

    OPEN    -> PENDING, SNOOZED, CLOSED
    PENDING -> OPEN, SNOOZED, CLOSED
    SNOOZED -> OPEN, PENDING, CLOSED, SNOOZED (moves the wake-up time)
    CLOSED  -> OPEN

Assigning needs a conversation that is not CLOSED; unassigning and marking read
are allowed in every status.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..core.errors import FailedPrecondition

OPEN = "OPEN"
PENDING = "PENDING"
SNOOZED = "SNOOZED"
CLOSED = "CLOSED"
STATUSES = (OPEN, PENDING, SNOOZED, CLOSED)

TRANSITIONS: dict[str, frozenset[str]] = {
    OPEN: frozenset({PENDING, SNOOZED, CLOSED}),
    PENDING: frozenset({OPEN, SNOOZED, CLOSED}),
    SNOOZED: frozenset({OPEN, PENDING, CLOSED, SNOOZED}),
    CLOSED: frozenset({OPEN}),
}

#: The domain event written for a move into each status.
EVENT_FOR_STATUS = {
    OPEN: "conversation.reopened",
    PENDING: "conversation.pending",
    SNOOZED: "conversation.snoozed",
    CLOSED: "conversation.closed",
}

MAX_CLOSE_REASON = 500
MAX_ASSIGNEE = 128
MAX_TEXT = 10_000
MAX_ATTACHMENTS = 4
MAX_QUICK_REPLIES = 20
MAX_SNOOZE = timedelta(days=365)
PREVIEW_CHARS = 200


class InvalidTransition(FailedPrecondition):
    reason = "INVALID_STATE_TRANSITION"


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def check_transition(current: str, target: str) -> None:
    """Raise InvalidTransition unless ``current -> target`` is allowed."""
    if not can_transition(current, target):
        raise InvalidTransition(
            f"a {current} conversation cannot become {target}",
            metadata={"current_status": current, "requested_status": target},
        )


def check_assignable(current: str) -> None:
    if current == CLOSED:
        raise InvalidTransition(
            "a CLOSED conversation cannot be assigned; reopen it first",
            metadata={"current_status": current},
        )


def check_sendable(current: str) -> None:
    if current == CLOSED:
        raise InvalidTransition(
            "the conversation is CLOSED: reopen it or send by contact_id",
            metadata={"current_status": current},
        )


def snooze_problem(until: datetime, now: datetime) -> str | None:
    if until <= now:
        return "must be in the future"
    if until - now > MAX_SNOOZE:
        return "must be at most 365 days ahead"
    return None


def preview(text: str, media_types: list[str]) -> str:
    """The inbox preview of a message: its text's first 200 characters, or "[image]"."""
    if text.strip():
        return text[:PREVIEW_CHARS]
    if media_types:
        return f"[{media_types[0].lower()}]"
    return ""


def split_into_dms(text: str, media: list[str]) -> list[tuple[str, str | None]]:
    """X takes one attachment per DM: the first DM carries the text and the first
    medium, each further DM one more medium. Returns (text, medium) pairs in order."""
    if not media:
        return [(text, None)]
    return [(text if i == 0 else "", m) for i, m in enumerate(media)]


def x_conversation_id(account_x_user_id: str, contact_x_user_id: str) -> str:
    """X's one-to-one DM conversation id: "{smaller_user_id}-{larger_user_id}"."""
    a, b = sorted((account_x_user_id, contact_x_user_id), key=lambda s: (len(s), s))
    return f"{a}-{b}"


def media_type_from_url(url: str) -> str:
    """Guess a media kind from the URL's extension when the caller gave none."""
    path = url.split("?", 1)[0].lower()
    if path.endswith(".gif"):
        return "GIF"
    if path.endswith((".mp4", ".mov", ".m4v")):
        return "VIDEO"
    return "IMAGE"


#: How outbox event types show up in WatchConversations. Types not listed (contact.*,
#: conversation.opened, which the first message announces) are not streamed.
WATCH_KINDS: dict[str, str] = {
    "message.received": "NEW_MESSAGE",
    "message.created": "NEW_MESSAGE",
    "message.external": "NEW_MESSAGE",
    "message.sent": "MESSAGE_UPDATED",
    "message.delivered": "MESSAGE_UPDATED",
    "message.read": "MESSAGE_UPDATED",
    "message.failed": "MESSAGE_UPDATED",
    "conversation.reopened": "STATUS_CHANGED",
    "conversation.closed": "STATUS_CHANGED",
    "conversation.pending": "STATUS_CHANGED",
    "conversation.snoozed": "STATUS_CHANGED",
    "conversation.woken": "STATUS_CHANGED",
    "conversation.assigned": "ASSIGNED",
    "conversation.unassigned": "UNASSIGNED",
    "conversation.escalated": "ESCALATED",
    "conversation.read": "MARKED_READ",
    "conversation.deleted": "DELETED",
}
