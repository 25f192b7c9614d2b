"""Analytics rules without I/O: report periods, local-time buckets, business-hours
durations, conversation episodes (first response, bot hand-off, resolution) and
summary statistics. The definitions here are the ones analytics.proto documents.

- **Periods** are half-open ``[start, end)``, end after start, at most
  :data:`MAX_PERIOD` (400 days).
- **Buckets** (day, ISO week starting Monday, month) are cut at local midnight in
  the merchant's zone with :mod:`zoneinfo`, so a 23-hour or 25-hour DST day is one
  day. A bucket is keyed by its first local date.
- **Episodes**: a conversation is measured per episode: from its opening to its
  first close, then from each reopening (CLOSED -> OPEN) to the next close. Waking a
  PENDING or SNOOZED conversation does not start an episode. A message belongs to
  the episode that ends at or after it (messages after the last close belong to the
  next episode, if any): the inbound message that reopened a conversation is the
  start of the reopened episode's first response. A conversation created closed (a
  campaign's DM to a contact without one: "a campaign never opens support work")
  has no episode until it is reopened; its first episode starts at the reopening.
- **First response** (human): from the episode's first inbound message to its first
  outbound message written by a person (origin AGENT, or EXTERNAL: the account
  itself from another X client), minus any time the bot was handling it: when the
  bot (origin AI or AUTOMATION, or ``is_from_bot``) replied first, the clock starts
  at the *hand-off*: the earliest escalation or assignment after the bot's first
  reply, else the contact's first message after the bot's last reply, else the
  bot's last reply. The time from the first inbound message to the hand-off is
  reported separately as bot-handled time (for a bot-only episode, to its close).
- **Business-hours variant**: the same interval counted only inside the account's
  weekly business hours (its own zone); no schedule means always open.
- **Resolution**: from the episode's opening (or reopening) to its close.

An episode also keeps the state a new message needs to update it without its
earlier messages (:func:`extend_episode`): its latest message, the bot's latest
reply before the human one, and the contact's first message after that reply.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .schedule import Schedule

DAY = "DAY"
WEEK = "WEEK"
MONTH = "MONTH"
GRANULARITIES = (DAY, WEEK, MONTH)

MAX_PERIOD = timedelta(days=400)

# Who wrote a message, as far as response times are concerned.
CONTACT = "CONTACT"
HUMAN = "HUMAN"
BOT = "BOT"
OTHER = "OTHER"  # campaign sends: not a response

# Conversation history transitions (from the outbox).
OPENED = "opened"
REOPENED = "reopened"
CLOSED = "closed"
ASSIGNED = "assigned"
UNASSIGNED = "unassigned"
ESCALATED = "escalated"

#: Outbox event type -> transition kind. ``conversation.reopened`` is also written
#: when a PENDING or SNOOZED conversation is set OPEN; only one following a close
#: starts an episode.
TRANSITION_FOR_EVENT = {
    "conversation.opened": OPENED,
    "conversation.reopened": REOPENED,
    "conversation.woken": REOPENED,
    "conversation.closed": CLOSED,
    "conversation.assigned": ASSIGNED,
    "conversation.unassigned": UNASSIGNED,
    "conversation.escalated": ESCALATED,
}


def period_violations(start: datetime | None, end: datetime | None) -> list[tuple[str, str]]:
    """(field, problem) pairs for a report period; empty when it is valid."""
    v: list[tuple[str, str]] = []
    if start is None:
        v.append(("period.start_time", "is required"))
    if end is None:
        v.append(("period.end_time", "is required"))
    if start is not None and end is not None:
        if end <= start:
            v.append(("period.end_time", "must be after period.start_time"))
        elif end - start > MAX_PERIOD:
            v.append(("period.end_time", "the period may span at most 400 days"))
    return v


def message_author(direction: str, origin: str, is_from_bot: bool) -> str:
    """CONTACT, HUMAN, BOT or OTHER for a stored message."""
    if direction == "INBOUND":
        return CONTACT
    if is_from_bot or origin in ("AI", "AUTOMATION"):
        return BOT
    if origin in ("AGENT", "EXTERNAL"):
        return HUMAN
    return OTHER


# ------------------------------------------------------------------ buckets


def bucket_key(at: datetime, granularity: str, tz: ZoneInfo) -> date:
    """The first local date of the bucket holding instant ``at``."""
    d = at.astimezone(tz).date()
    if granularity == DAY:
        return d
    if granularity == WEEK:
        return d - timedelta(days=d.weekday())
    if granularity == MONTH:
        return d.replace(day=1)
    raise ValueError(f"unknown granularity {granularity!r}")


def next_key(key: date, granularity: str) -> date:
    if granularity == DAY:
        return key + timedelta(days=1)
    if granularity == WEEK:
        return key + timedelta(days=7)
    if granularity == MONTH:
        return date(key.year + key.month // 12, key.month % 12 + 1, 1)
    raise ValueError(f"unknown granularity {granularity!r}")


def local_midnight(d: date, tz: ZoneInfo) -> datetime:
    """The UTC instant of local midnight starting date ``d`` in ``tz``."""
    return datetime.combine(d, time(0), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One local day, week or month: ``[start, end)`` in UTC, keyed by its first
    local date."""

    key: date
    start: datetime
    end: datetime


def buckets(start: datetime, end: datetime, granularity: str, tz: ZoneInfo) -> list[Bucket]:
    """Every bucket that overlaps ``[start, end)``, in order (whole buckets: the
    first may begin before ``start`` and the last end after ``end``; reports count
    only what falls inside the period)."""
    out: list[Bucket] = []
    key = bucket_key(start, granularity, tz)
    while True:
        b_start = local_midnight(key, tz)
        if b_start >= end:
            break
        nxt = next_key(key, granularity)
        out.append(Bucket(key, b_start, local_midnight(nxt, tz)))
        key = nxt
    return out


# ------------------------------------------------------------------ business hours


def _local_instant(d: date, minute: int, tz: ZoneInfo) -> datetime:
    if minute >= 24 * 60:
        return local_midnight(d + timedelta(days=1), tz)
    return datetime.combine(d, time(minute // 60, minute % 60), tzinfo=tz).astimezone(UTC)


def business_seconds(start: datetime, end: datetime, schedule: Schedule | None) -> float:
    """Seconds of ``[start, end)`` inside ``schedule``'s open spans (local wall times
    in its zone, so correct across DST); the plain duration when ``schedule`` is
    None (no business hours: always open); 0 when ``end`` is not after ``start``."""
    if end <= start:
        return 0.0
    if schedule is None:
        return (end - start).total_seconds()
    tz = schedule.tz
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date()
    total = timedelta(0)  # exact; converted once
    while day <= last:
        for s, e in schedule.spans.get(day.isoweekday(), ()):
            lo = max(_local_instant(day, s, tz), start)
            hi = min(_local_instant(day, e, tz), end)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total.total_seconds()


# ------------------------------------------------------------------ statistics


@dataclass(frozen=True, slots=True)
class Stats:
    """Count, mean, median and 90th percentile (linear interpolation between
    closest ranks, as PostgreSQL's percentile_cont); zeros when empty."""

    count: int = 0
    mean: float = 0.0
    median: float = 0.0
    p90: float = 0.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def stats(values: Iterable[float]) -> Stats:
    vs = sorted(values)
    if not vs:
        return Stats()
    return Stats(len(vs), sum(vs) / len(vs), percentile(vs, 0.5), percentile(vs, 0.9))


# ------------------------------------------------------------------ episodes


@dataclass(frozen=True, slots=True)
class Message:
    at: datetime
    author: str  # CONTACT, HUMAN, BOT, OTHER


@dataclass(frozen=True, slots=True)
class Transition:
    at: datetime
    kind: str
    assignee: str = ""


@dataclass(slots=True)
class Episode:
    """One episode's facts (see the module docstring for the definitions)."""

    index: int
    opened_at: datetime
    status: str = "CLOSED"
    assignee: str = ""
    resolved_at: datetime | None = None
    first_inbound_at: datetime | None = None
    first_bot_reply_at: datetime | None = None
    handoff_at: datetime | None = None
    first_human_reply_at: datetime | None = None
    first_response_s: float | None = None
    first_response_bh_s: float | None = None
    bot_response_s: float | None = None
    bot_handled_s: float | None = None
    resolution_s: float | None = None
    resolution_bh_s: float | None = None
    bot_replied: bool = False
    human_replied: bool = False
    escalated: bool = False
    bot_only: bool = False
    #: The bot's latest reply between the first inbound and the first human reply.
    last_bot_reply_at: datetime | None = None
    #: The contact's first message after ``last_bot_reply_at`` (before the human reply).
    contact_after_bot_at: datetime | None = None
    #: The episode's latest message (any author).
    last_message_at: datetime | None = None
    messages: list[Message] = field(default_factory=list, repr=False)
    transitions: list[Transition] = field(default_factory=list, repr=False)


def episodes(
    *,
    created_at: datetime,
    status: str,
    closed_at: datetime | None,
    assignee: str,
    transitions: Sequence[Transition],
    messages: Sequence[Message],
    schedule: Schedule | None,
    created_closed: bool = False,
) -> list[Episode]:
    """Split one conversation's history into episodes and measure each.

    ``transitions`` and ``messages`` may come in any order; ties keep their given
    order. ``status``/``closed_at``/``assignee`` are the conversation's current
    values: they close or keep open the last episode when the history lacks the
    event (a history purged or never written). A conversation ``created_closed`` (a
    campaign's DM to a contact without one) is not support work until it reopens: its
    first episode starts at the first reopening (or, with the reopening missing from
    the history while the conversation is live now, at its creation), and it has none
    while it stays closed."""
    trans = sorted(transitions, key=lambda t: t.at)
    msgs = sorted(messages, key=lambda m: m.at)
    eps: list[Episode] = []
    is_closed = created_closed
    if not created_closed:
        eps.append(Episode(0, created_at))
    current_assignee = ""
    for t in trans:
        # eps[-1] is read only while live: a conversation created closed has no
        # episode until its first reopening appends one.
        if t.kind == CLOSED and not is_closed:
            ep = eps[-1]
            ep.resolved_at = max(t.at, ep.opened_at)
            ep.assignee = current_assignee
            is_closed = True
        elif t.kind in (REOPENED, OPENED) and is_closed:
            eps.append(Episode(len(eps), t.at))
            is_closed = False
        elif t.kind == ASSIGNED:
            current_assignee = t.assignee
            if not is_closed:
                eps[-1].transitions.append(t)
        elif t.kind == UNASSIGNED:
            current_assignee = ""
        elif t.kind == ESCALATED and not is_closed:
            eps[-1].transitions.append(t)
    if not eps:
        if status == "CLOSED":
            return []
        # Live now, though no reopening is in the history (it cleared closed_at).
        eps.append(Episode(0, created_at, status=status))
    last = eps[-1]
    last.status = status
    if status == "CLOSED" and last.resolved_at is None:
        last.resolved_at = max(closed_at or last.opened_at, last.opened_at)
    elif status != "CLOSED" and last.resolved_at is not None:
        # History says closed but the conversation is live: a reopen we did not see.
        last.status = "CLOSED"
        eps.append(Episode(len(eps), last.resolved_at, status=status))
        last = eps[-1]
    last.assignee = assignee
    # Messages: each belongs to the first episode that ends at or after it.
    i = 0
    for m in msgs:
        while i < len(eps) - 1 and _ended_before(eps[i], m.at):
            i += 1
        ep = eps[i]
        if _ended_before(ep, m.at):
            continue  # after the last close: belongs to no episode
        ep.messages.append(m)
    for ep in eps:
        _measure(ep, schedule)
        ep.messages.clear()
        ep.transitions.clear()
    return eps


def _ended_before(ep: Episode, at: datetime) -> bool:
    return ep.resolved_at is not None and at > ep.resolved_at


def _measure(ep: Episode, schedule: Schedule | None) -> None:
    if ep.messages:
        ep.last_message_at = ep.messages[-1].at
    if ep.resolved_at is not None:
        ep.resolution_s = (ep.resolved_at - ep.opened_at).total_seconds()
        ep.resolution_bh_s = business_seconds(ep.opened_at, ep.resolved_at, schedule)
    first_in = next((m.at for m in ep.messages if m.author == CONTACT), None)
    ep.first_inbound_at = first_in
    if first_in is None:
        return
    after = [m for m in ep.messages if m.at >= first_in]
    human = next((m.at for m in after if m.author == HUMAN), None)
    before_human = [m for m in after if human is None or m.at < human]
    bots = [m.at for m in before_human if m.author == BOT]
    ep.first_human_reply_at = human
    ep.human_replied = human is not None
    ep.escalated = any(t.kind == ESCALATED for t in ep.transitions)
    if bots:
        ep.bot_replied = True
        ep.first_bot_reply_at = bots[0]
        ep.last_bot_reply_at = bots[-1]
        ep.bot_response_s = (bots[0] - first_in).total_seconds()
        later = [m.at for m in before_human if m.author == CONTACT and m.at > bots[-1]]
        ep.contact_after_bot_at = later[0] if later else None
        if human is not None:
            ep.escalated = True
            marks = [
                t.at
                for t in ep.transitions
                if t.kind in (ESCALATED, ASSIGNED) and bots[0] <= t.at <= human
            ]
            if marks:
                handoff = min(marks)
            else:
                handoff = later[0] if later else bots[-1]
            ep.handoff_at = handoff
            ep.bot_handled_s = (handoff - first_in).total_seconds()
        elif ep.resolved_at is not None:
            ep.bot_only = True
            ep.bot_handled_s = (ep.resolved_at - first_in).total_seconds()
    if human is not None:
        clock = ep.handoff_at or first_in
        ep.first_response_s = (human - clock).total_seconds()
        ep.first_response_bh_s = business_seconds(clock, human, schedule)


def extend_episode(
    ep: Episode, messages: Sequence[Message], schedule: Schedule | None
) -> Episode | None:
    """``ep`` (a conversation's live, not closed, last episode, as measured from its
    messages so far) updated with ``messages``, all newer than its latest message:
    the same figures :func:`episodes` gives from every message, without the earlier
    ones. None when these messages need the whole history: the episode has no
    message yet, a message is not strictly newer than the one before it (a late,
    duplicated or simultaneous one: order among equal instants is the store's), the
    episode's first inbound message (its escalation comes from the history), or a
    human reply after the bot's (the hand-off comes from the history).

    The business-hours first response is measured again under ``schedule``, as a
    recomputation would."""
    if ep.resolved_at is not None or ep.last_message_at is None:
        return None
    out = replace(ep, messages=[], transitions=[])
    last = ep.last_message_at
    for m in messages:
        if m.at <= last:
            return None
        last = m.at
        if out.first_inbound_at is None:
            if m.author == CONTACT:
                return None
            continue
        if out.first_human_reply_at is not None:
            continue
        if m.author == BOT:
            if out.first_bot_reply_at is None:
                out.first_bot_reply_at = m.at
                out.bot_replied = True
                out.bot_response_s = (m.at - out.first_inbound_at).total_seconds()
            out.last_bot_reply_at = m.at
            out.contact_after_bot_at = None
        elif m.author == CONTACT:
            if out.last_bot_reply_at is not None and out.contact_after_bot_at is None:
                out.contact_after_bot_at = m.at
        elif m.author == HUMAN:
            if out.first_bot_reply_at is not None:
                return None
            out.first_human_reply_at = m.at
            out.human_replied = True
            out.first_response_s = (m.at - out.first_inbound_at).total_seconds()
    out.last_message_at = last
    if out.first_human_reply_at is not None and out.first_inbound_at is not None:
        clock = out.handoff_at or out.first_inbound_at
        out.first_response_bh_s = business_seconds(clock, out.first_human_reply_at, schedule)
    return out
