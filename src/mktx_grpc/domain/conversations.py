"""The conversation state machine and message rules. Pure: no I/O.

Status transitions (anything else is INVALID_STATE_TRANSITION):

    OPEN    -> PENDING, SNOOZED, CLOSED
    PENDING -> OPEN, SNOOZED, CLOSED
    SNOOZED -> OPEN, PENDING, CLOSED, SNOOZED (moves the wake-up time)
    CLOSED  -> OPEN

Assigning needs a conversation that is not CLOSED; unassigning and marking read
are allowed in every status.

Which conversation an inbound message joins (:func:`choose_conversation`; issue 4
§3, "choose and document"): the contact's live (not CLOSED) conversation, waking it
if SNOOZED or PENDING. If there is none, the most recently closed conversation is
reopened when it was closed less than the reopen window (``webhook_reopen_window``,
default 24 h) before the message was sent; otherwise a new conversation is opened.
A reply within a day continues the same thread for the agent; a customer coming
back later starts a fresh one, so reports per conversation stay meaningful. Webhook
ingestion applies this rule one event at a time and for runs of DMs set-based
(``webhooks/handlers.py`` and ``webhooks/dm_batch.py``); both call this function.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
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


#: X's media kinds, as webhook payloads name them (``photo``, ...), in our terms.
X_MEDIA_KINDS = {"photo": "IMAGE", "animated_gif": "GIF", "video": "VIDEO"}
#: Our media kinds (the ``MediaType`` enum names without their prefix).
MEDIA_KINDS = frozenset(X_MEDIA_KINDS.values())


def media_kind(name: str) -> str | None:
    """Our media kind (IMAGE, GIF, VIDEO) for one of ours in any case or one of X's
    (``photo``, ``animated_gif``, ``video``); None when the name is neither."""
    if name in X_MEDIA_KINDS:
        return X_MEDIA_KINDS[name]
    upper = name.upper()
    return upper if upper in MEDIA_KINDS else None


def preview(text: str, media_kinds: Sequence[str]) -> str:
    """The inbox preview of a message, the same however the message arrived (sent
    through the API, received by webhook, or sent from another X client).

    Text that is not blank is the preview, cut to ``PREVIEW_CHARS`` characters in
    all, the last one then being "…" so a reader sees it was cut. Without text, the
    first medium's kind in brackets ("[image]", "[gif]", "[video]"; "[media]" when
    the kind is unknown, see :func:`media_kind`). Neither gives "". Never raises.
    """
    if text.strip():
        if len(text) <= PREVIEW_CHARS:
            return text
        return text[: PREVIEW_CHARS - 1] + "…"
    if media_kinds:
        kind = media_kind(media_kinds[0])
        return f"[{kind.lower()}]" if kind else "[media]"
    return ""


def split_into_dms(text: str, media: list[str]) -> list[tuple[str, str | None]]:
    """X takes one attachment per DM: the first DM carries the text and the first
    medium, each further DM one more medium. Returns (text, medium) pairs in order."""
    if not media:
        return [(text, None)]
    return [(text if i == 0 else "", m) for i, m in enumerate(media)]


def x_conversation_id(account_x_user_id: str, contact_x_user_id: str) -> str:
    """X's one-to-one DM conversation id: "{smaller_user_id}-{larger_user_id}".

    Symmetric in its arguments. X user ids are decimal strings without leading
    zeros, so ordering by (length, text) is numeric order; it is also a total order
    on any other strings, so this never raises."""
    a, b = sorted((account_x_user_id, contact_x_user_id), key=lambda s: (len(s), s))
    return f"{a}-{b}"


class Route(enum.StrEnum):
    """What an inbound message does to the contact's conversations."""

    #: Join the live conversation, which is OPEN already.
    JOIN = "JOIN"
    #: Join the live conversation and wake it (SNOOZED or PENDING -> OPEN).
    WAKE = "WAKE"
    #: Reopen the most recently closed conversation (CLOSED -> OPEN).
    REOPEN = "REOPEN"
    #: Open a new conversation.
    OPEN_NEW = "OPEN_NEW"


_ROUTE_EVENTS = {
    Route.WAKE: "conversation.woken",
    Route.REOPEN: "conversation.reopened",
    Route.OPEN_NEW: "conversation.opened",
}


@dataclass(frozen=True, slots=True)
class ConversationChoice:
    """The decision of :func:`choose_conversation`.

    ``previous_status`` is the status the conversation leaves (WAKE, REOPEN), else
    None. After any route the conversation is OPEN."""

    route: Route
    previous_status: str | None = None

    @property
    def event_type(self) -> str | None:
        """The domain event recording the change; None when nothing changes (JOIN)."""
        return _ROUTE_EVENTS.get(self.route)

    def event_fields(self) -> dict[str, str]:
        """The status fields of that event's payload: ``previous_status`` (when the
        conversation had one) and ``status``, in that order."""
        fields = {"previous_status": self.previous_status} if self.previous_status else {}
        return {**fields, "status": OPEN}


def choose_conversation(
    live_status: str | None,
    closed_at: datetime | None,
    message_at: datetime,
    reopen_window: timedelta,
) -> ConversationChoice:
    """Which conversation an inbound message joins (the rule in the module docstring).

    ``live_status`` is the status of the contact's live conversation (OPEN, PENDING
    or SNOOZED), or None when it has none; ``closed_at`` is when its most recently
    closed conversation was closed, or None (none, or no close time recorded), and
    is only looked at when there is no live one. ``message_at`` is when the message
    was sent. A conversation closed exactly ``reopen_window`` before is not reopened.

    Raises ValueError when ``live_status`` is CLOSED or not a status: a live
    conversation is never CLOSED, so the caller passed the wrong row.
    """
    if live_status is not None:
        if live_status == OPEN:
            return ConversationChoice(Route.JOIN)
        if live_status in (SNOOZED, PENDING):
            return ConversationChoice(Route.WAKE, live_status)
        raise ValueError(f"a live conversation cannot be {live_status!r}")
    if closed_at is not None and message_at - closed_at < reopen_window:
        return ConversationChoice(Route.REOPEN, CLOSED)
    return ConversationChoice(Route.OPEN_NEW)


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
