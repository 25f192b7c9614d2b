"""Publishing rules without I/O: the post status machine, thread and schedule rules,
how a publish attempt's outcome is classified, how a post found at X is recognised as
ours, and when metrics are read again. The text counter and the media/poll rules are
:mod:`.post_text` and :mod:`.post_rules`; :func:`check_post` puts them together.

Status machine (``posts.status``):

- ``SCHEDULED`` -> ``PUBLISHING`` (claimed by a publisher), ``CANCELLED``, ``FAILED``
  (more than the grace late), ``DELETED``;
- ``PUBLISHING`` -> ``PUBLISHED``, ``PARTIALLY_PUBLISHED`` (a thread stopped after at
  least one part), ``FAILED`` (nothing published), ``SCHEDULED`` (X's rate limit, when
  nothing is published yet: the post waits for the reset);
- ``FAILED`` / ``PARTIALLY_PUBLISHED`` -> ``PUBLISHING`` (RetryPost), ``DELETED``;
- ``PUBLISHED`` / ``CANCELLED`` -> ``DELETED``.

Invariant: ``FAILED`` and ``SCHEDULED`` posts have no part at X;
``PARTIALLY_PUBLISHED`` ones have at least one.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from ..core.errors import DomainError, FailedPrecondition, FieldViolation, QuotaExceeded
from .post_rules import Media, MediaKind, Poll, PostPart, check_thread
from .post_text import LONG_POST_MAX_WEIGHTED_LENGTH, STANDARD_MAX_WEIGHTED_LENGTH, extract_urls

__all__ = [
    "CANCELLED",
    "DELETED",
    "FAILED",
    "PARTIALLY_PUBLISHED",
    "PUBLISHED",
    "PUBLISHING",
    "SCHEDULED",
    "MetricsValues",
    "Outcome",
    "PartDraft",
    "PostDraft",
    "PublishOutcome",
    "check_post",
    "check_transition",
    "classify_publish_error",
    "missed_publish_time",
    "next_metrics_refresh",
    "private_metrics_allowed",
    "same_post_text",
]

SCHEDULED: Final = "SCHEDULED"
PUBLISHING: Final = "PUBLISHING"
PUBLISHED: Final = "PUBLISHED"
PARTIALLY_PUBLISHED: Final = "PARTIALLY_PUBLISHED"
FAILED: Final = "FAILED"
CANCELLED: Final = "CANCELLED"
DELETED: Final = "DELETED"
STATUSES: Final = (SCHEDULED, PUBLISHING, PUBLISHED, PARTIALLY_PUBLISHED, FAILED, CANCELLED)

# Part states (``post_parts.state``).
PART_PENDING: Final = "PENDING"
PART_PUBLISHING: Final = "PUBLISHING"
PART_PUBLISHED: Final = "PUBLISHED"
PART_FAILED: Final = "FAILED"
PART_DELETED: Final = "DELETED"

#: What each client action may start from.
_ALLOWED: Final[dict[str, frozenset[str]]] = {
    "update": frozenset({SCHEDULED}),
    "cancel": frozenset({SCHEDULED}),
    "retry": frozenset({FAILED, PARTIALLY_PUBLISHED}),
    "delete": frozenset({SCHEDULED, PUBLISHED, PARTIALLY_PUBLISHED, FAILED, CANCELLED, DELETED}),
    "refresh_metrics": frozenset({PUBLISHED, PARTIALLY_PUBLISHED}),
}

#: A publish_time this far in the past still means "now" (clients' clocks differ).
PUBLISH_NOW_TOLERANCE: Final = timedelta(minutes=1)
#: The furthest ahead a post can be scheduled.
MAX_SCHEDULE_AHEAD: Final = timedelta(days=365)
#: X post ids are decimal snowflakes.
X_POST_ID_RE: Final = re.compile(r"^[0-9]{1,19}$")


def check_transition(status: str, action: str) -> None:
    """Raise FailedPrecondition (INVALID_STATE_TRANSITION) unless ``action`` ("update",
    "cancel", "retry", "delete", "refresh_metrics") may start from ``status``."""
    if status not in _ALLOWED[action]:
        verb = action.replace("_", " ")
        raise FailedPrecondition(
            f"cannot {verb} a post that is {status.lower().replace('_', ' ')}",
            reason="INVALID_STATE_TRANSITION",
            metadata={"status": status},
        )


def status_after_failure(published_parts: int) -> str:
    """FAILED when nothing is at X, else PARTIALLY_PUBLISHED."""
    return PARTIALLY_PUBLISHED if published_parts > 0 else FAILED


# ------------------------------------------------------------------ drafts and rules


@dataclass(frozen=True, slots=True)
class MediaDraft:
    url: str
    alt_text: str = ""
    declared: MediaKind | None = None


@dataclass(frozen=True, slots=True)
class PartDraft:
    text: str = ""
    media: tuple[MediaDraft, ...] = ()
    poll: Poll | None = None


@dataclass(frozen=True, slots=True)
class PostDraft:
    """A post as the client describes it (before anything is fetched or sent)."""

    account_id: str
    parts: tuple[PartDraft, ...]
    reply_settings: str = "EVERYONE"
    quote_post_id: str = ""
    reply_to_post_id: str = ""
    #: None: publish now.
    publish_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Probe:
    """What fetching a media URL showed: its first bytes and its size."""

    head: bytes
    size_bytes: int


def check_post(
    draft: PostDraft,
    *,
    max_weighted_length: int = STANDARD_MAX_WEIGHTED_LENGTH,
    probes: Mapping[tuple[int, int], Probe] | None = None,
    now: datetime | None = None,
    path: str = "post",
) -> list[FieldViolation]:
    """Every violation of ``draft``: the thread rules of :func:`post_rules.check_thread`
    (text against ``max_weighted_length``, media counts and mixing, sizes and sniffed
    kinds where ``probes`` (keyed by (part, media) index) know them, polls, quotes),
    the X post id formats, and with ``now`` the schedule (not more than a minute in the
    past, not more than a year ahead). Paths are under ``path`` (``post.parts[2].text``).
    """
    probes = probes or {}
    parts = [
        PostPart(
            text=p.text,
            media=[
                Media(
                    url=m.url,
                    declared=m.declared,
                    head=probes[(i, j)].head if (i, j) in probes else None,
                    size_bytes=probes[(i, j)].size_bytes if (i, j) in probes else None,
                )
                for j, m in enumerate(p.media)
            ],
            poll=p.poll,
            # X quotes from the first part only.
            quote_post_id=(draft.quote_post_id or None) if i == 0 else None,
        )
        for i, p in enumerate(draft.parts)
    ]
    prefix = f"{path}." if path else ""
    violations = check_thread(parts, max_weighted_length=max_weighted_length, path=f"{prefix}parts")
    for name in ("quote_post_id", "reply_to_post_id"):
        value = getattr(draft, name)
        if value and not X_POST_ID_RE.match(value):
            violations.append(FieldViolation(f"{prefix}{name}", "must be an X post id (digits)"))
    if now is not None and draft.publish_at is not None:
        problem = schedule_problem(draft.publish_at, now)
        if problem:
            violations.append(FieldViolation(f"{prefix}publish_time", problem))
    return violations


def too_long_only(violations: Iterable[FieldViolation]) -> list[FieldViolation]:
    """The violations that are about a text being too long (their message says so)."""
    return [v for v in violations if "over the limit of" in v.description]


def schedule_problem(publish_at: datetime, now: datetime) -> str | None:
    """Why ``publish_at`` cannot be a post's publish time, or None."""
    if publish_at < now - PUBLISH_NOW_TOLERANCE:
        return "must not be in the past (leave it unset to publish now)"
    if publish_at > now + MAX_SCHEDULE_AHEAD:
        return "must be at most a year ahead"
    return None


def publishes_now(publish_at: datetime | None, now: datetime) -> bool:
    """Whether a post with this publish time goes out at once."""
    return publish_at is None or publish_at <= now


def account_limit(settings: Mapping[str, Any]) -> int:
    """The account's weighted length limit from its settings (``max_post_length``;
    0, missing or out of range means the standard 280)."""
    raw = settings.get("max_post_length")
    try:
        value = int(raw) if raw is not None else 0
    except (TypeError, ValueError):
        return STANDARD_MAX_WEIGHTED_LENGTH
    if 1 <= value <= LONG_POST_MAX_WEIGHTED_LENGTH:
        return value
    return STANDARD_MAX_WEIGHTED_LENGTH


def missed_publish_time(due_at: datetime, now: datetime, grace: timedelta) -> str | None:
    """The reason a scheduled post must fail instead of going out now (it is more than
    ``grace`` late: the service was down at its time), or None."""
    late = now - due_at
    if late <= grace:
        return None
    return (
        f"missed its publish time by {_duration(late)}, more than the grace of"
        f" {_duration(grace)}; RetryPost publishes it now"
    )


def _duration(d: timedelta) -> str:
    s = int(d.total_seconds())
    if s >= 86400:
        return f"{s // 86400} d {s % 86400 // 3600} h"
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min"
    return f"{s} s"


def reply_target(index: int, reply_to_post_id: str, previous_x_post_id: str | None) -> str | None:
    """The X post the part at ``index`` replies to: the post's ``reply_to_post_id`` for
    the first part (if any), the previous part's X post for the others."""
    if index == 0:
        return reply_to_post_id or None
    if not previous_x_post_id:
        raise ValueError(f"part {index} cannot be sent before part {index - 1} is published")
    return previous_x_post_id


def post_url(username: str, x_post_id: str) -> str:
    """The post's address at X (``/i/status/`` works whatever the account's name)."""
    return f"https://x.com/{username or 'i'}/status/{x_post_id}"


# ------------------------------------------------------------------ outcomes


class Outcome(StrEnum):
    PUBLISHED = "PUBLISHED"
    #: X refused the part for good, or the account cannot post: the part fails.
    FAILED = "FAILED"
    #: Certainly not posted; wait until ``retry_at`` (X's rate limit).
    WAIT = "WAIT"
    #: It may have reached X: resolve at X before anything is sent again.
    UNCLEAR = "UNCLEAR"


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    kind: Outcome
    reason: str = ""
    retry_at: datetime | None = None


#: FailedPrecondition reasons meaning X refused this request (not the account).
REFUSED: Final = ("TWITTER_FORBIDDEN", "TWITTER_REJECTED")
#: How long a post waits when X's rate limit gave no reset time.
DEFAULT_WAIT: Final = timedelta(minutes=1)
#: The least a post waits after X was not called (its breaker open, unreachable).
NOT_SENT_WAIT: Final = timedelta(seconds=5)


def classify_publish_error(exc: BaseException, now: datetime) -> PublishOutcome:
    """What a failed X call of a publish step (media upload, alt text, the post itself)
    means for the part, from the domain errors ``XAccess.call`` raises:

    - ``QuotaExceeded`` (X's 429 beyond the deadline): WAIT until its reset;
    - an error whose ErrorInfo says ``x_outcome=not_sent`` (X was not called: its
      breaker is open, or it could not be reached): WAIT until its ``retry_at``;
    - ``FailedPrecondition``: FAILED with the reason (X refused the request, or the
      account is not active or its tokens were revoked: nothing was sent);
    - any other error (X's answer lost after a 5xx, a timeout or a dropped
      connection, anything unexpected): UNCLEAR, since the request may have been
      acted on.
    """
    if isinstance(exc, QuotaExceeded):
        until = exc.retry_at or now + DEFAULT_WAIT
        return PublishOutcome(
            Outcome.WAIT, f"X rate limit reached; waiting until {until.isoformat()}", until
        )
    if isinstance(exc, DomainError) and exc.metadata.get("x_outcome") == "not_sent":
        retry_at = getattr(exc, "retry_at", None)
        until = retry_at if isinstance(retry_at, datetime) and retry_at > now else now
        until = max(until, now + NOT_SENT_WAIT)
        return PublishOutcome(
            Outcome.WAIT,
            f"X is unavailable, nothing was sent; retrying at {until.isoformat()}",
            until,
        )
    if isinstance(exc, FailedPrecondition):
        if exc.reason in REFUSED:
            return PublishOutcome(Outcome.FAILED, exc.message)
        return PublishOutcome(Outcome.FAILED, f"{exc.message} (reconnect it, then RetryPost)")
    if isinstance(exc, DomainError):
        return PublishOutcome(Outcome.UNCLEAR, exc.message)
    return PublishOutcome(Outcome.UNCLEAR, "unexpected error")


def unclear_backoff(attempts: int, base: float, maximum: float) -> timedelta:
    """How long an armed part whose outcome is unknown waits before it is looked up
    again: ``base * 2**(attempts-1)`` seconds, at most ``maximum``."""
    return timedelta(seconds=min(maximum, base * 2 ** max(0, attempts - 1)))


# ------------------------------------------------------------------ finding ours at X

_SPACES = re.compile(r"\s+")
_URL_TOKEN: Final = "\x00url\x00"


def _comparable(text: str) -> str:
    """The text as X's answer and ours can both be reduced to: HTML entities X
    escapes undone, NFC, every URL one token (X wraps links in t.co ones), runs of
    white space one space, none at the ends."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    urls = extract_urls(text)
    out: list[str] = []
    pos = 0
    for u in urls:
        out.append(text[pos : u.start])
        out.append(_URL_TOKEN)
        pos = u.end
    out.append(text[pos:])
    return _SPACES.sub(" ", "".join(out)).strip()


def same_post_text(ours: str, theirs: str, *, has_media: bool) -> bool:
    """Whether a post X shows with ``theirs`` as its text is one we sent as ``ours``.

    X returns links as t.co links, escapes ``&``, ``<`` and ``>`` as HTML entities, and
    appends a link to the media of a post that has any; all of that is allowed for,
    nothing else (so "Sale" is not "Sale!").
    """
    a, b = _comparable(ours), _comparable(theirs)
    if a == b:
        return True
    if has_media and b.endswith(_URL_TOKEN):
        return b[: -len(_URL_TOKEN)].rstrip() == a
    return False


# ------------------------------------------------------------------ metrics

#: (age below which, refresh every): the schedule thins out with age; past the last
#: age metrics are no longer read.
METRICS_SCHEDULE: Final = (
    (timedelta(days=1), timedelta(minutes=15)),
    (timedelta(days=7), timedelta(hours=1)),
    (timedelta(days=30), timedelta(days=1)),
)
#: X gives non-public and organic metrics for the account's own posts this young.
PRIVATE_METRICS_WINDOW: Final = timedelta(days=30)


def next_metrics_refresh(
    published_at: datetime,
    now: datetime,
    schedule: Sequence[tuple[timedelta, timedelta]] = METRICS_SCHEDULE,
) -> datetime | None:
    """When a post published at ``published_at`` and read at ``now`` is read next, or
    None once it is older than the schedule's last age (30 days)."""
    age = now - published_at
    for below, every in schedule:
        if age < below:
            return min(now + every, published_at + below)
    return None


def private_metrics_allowed(published_at: datetime, now: datetime) -> bool:
    """Whether X gives the account's non-public metrics for this post now."""
    return now - published_at < PRIVATE_METRICS_WINDOW


@dataclass(frozen=True, slots=True)
class MetricsValues:
    """One reading of a post's counters; ``url_clicks`` and ``profile_clicks`` are None
    when X did not give non-public metrics."""

    impressions: int = 0
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    quotes: int = 0
    bookmarks: int = 0
    url_clicks: int | None = None
    profile_clicks: int | None = None

    @classmethod
    def from_x(
        cls,
        public: Mapping[str, Any],
        non_public: Mapping[str, Any] | None = None,
        organic: Mapping[str, Any] | None = None,
    ) -> MetricsValues:
        """From X's ``public_metrics`` and, when given, ``non_public_metrics`` /
        ``organic_metrics`` (X's impression count there is the account's own view)."""
        private = {**(organic or {}), **(non_public or {})}
        has_private = non_public is not None or organic is not None
        impressions = _count(public.get("impression_count"))
        if has_private and "impression_count" in private:
            impressions = max(impressions, _count(private.get("impression_count")))
        return cls(
            impressions=impressions,
            likes=_count(public.get("like_count")),
            reposts=_count(public.get("retweet_count")),
            replies=_count(public.get("reply_count")),
            quotes=_count(public.get("quote_count")),
            bookmarks=_count(public.get("bookmark_count")),
            url_clicks=_count(private.get("url_link_clicks")) if has_private else None,
            profile_clicks=_count(private.get("user_profile_clicks")) if has_private else None,
        )

    def as_dict(self) -> dict[str, int | None]:
        return {
            "impressions": self.impressions,
            "likes": self.likes,
            "reposts": self.reposts,
            "replies": self.replies,
            "quotes": self.quotes,
            "bookmarks": self.bookmarks,
            "url_clicks": self.url_clicks,
            "profile_clicks": self.profile_clicks,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricsValues:
        def opt(v: Any) -> int | None:
            return None if v is None else _count(v)

        return cls(
            impressions=_count(d.get("impressions")),
            likes=_count(d.get("likes")),
            reposts=_count(d.get("reposts")),
            replies=_count(d.get("replies")),
            quotes=_count(d.get("quotes")),
            bookmarks=_count(d.get("bookmarks")),
            url_clicks=opt(d.get("url_clicks")),
            profile_clicks=opt(d.get("profile_clicks")),
        )


def sum_metrics(values: Iterable[MetricsValues]) -> MetricsValues:
    """Counters added over a thread's parts; a non-public counter is given only when
    every part had it."""
    items = list(values)
    if not items:
        return MetricsValues()

    def total_opt(name: str) -> int | None:
        got = [getattr(v, name) for v in items]
        return None if any(g is None for g in got) else sum(got)

    return MetricsValues(
        impressions=sum(v.impressions for v in items),
        likes=sum(v.likes for v in items),
        reposts=sum(v.reposts for v in items),
        replies=sum(v.replies for v in items),
        quotes=sum(v.quotes for v in items),
        bookmarks=sum(v.bookmarks for v in items),
        url_clicks=total_opt("url_clicks"),
        profile_clicks=total_opt("profile_clicks"),
    )


def _count(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return 0
    return max(0, n)


def batch_for_lookup(
    posts: Sequence[tuple[Any, Sequence[str]]], size: int = 100
) -> list[list[tuple[Any, Sequence[str]]]]:
    """Group posts (key, their X post ids) into lookups of at most ``size`` ids without
    splitting a post, so each post's reading is one moment. A post with more than
    ``size`` ids (not possible with 25 parts) gets a batch of its own."""
    batches: list[list[tuple[Any, Sequence[str]]]] = []
    current: list[tuple[Any, Sequence[str]]] = []
    count = 0
    for key, ids in posts:
        if current and count + len(ids) > size:
            batches.append(current)
            current, count = [], 0
        current.append((key, ids))
        count += len(ids)
    if current:
        batches.append(current)
    return batches
