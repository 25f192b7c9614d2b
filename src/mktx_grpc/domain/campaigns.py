"""Campaign rules that need no I/O: the lifecycle state machine, validation, what a
campaign lacks to start, who is in a campaign's audience and when (including the
WELCOME enrolment of new followers), when the dispatcher may send and what each
ledger row gets (per-contact rendering, send windows, exclusions), and metric
buckets.

Lifecycle (``proto/mktx/v1/campaigns.proto``)::

    DRAFT     -> SCHEDULED (start, future start_time) | RUNNING (start)
    SCHEDULED -> RUNNING (start_time reached) | CANCELLED (cancel)
    RUNNING   -> PAUSED (pause) | CANCELLED (cancel) | COMPLETED (settled / ended)
    PAUSED    -> RUNNING (resume) | CANCELLED (cancel) | COMPLETED (ended)

Anything else raises ``FailedPrecondition`` with reason INVALID_STATE_TRANSITION.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from google.protobuf import json_format

from mktx.v1 import common_pb2

from ..core.errors import FailedPrecondition, FieldViolation
from .schedule import Schedule, schedule_from_proto, validate_weekly_schedule, zone
from .templates import MissingVariables, TemplateDraft, contact_variables, render

DRAFT, SCHEDULED, RUNNING, PAUSED, COMPLETED, CANCELLED = (
    "DRAFT",
    "SCHEDULED",
    "RUNNING",
    "PAUSED",
    "COMPLETED",
    "CANCELLED",
)
LIVE = (SCHEDULED, RUNNING, PAUSED)
EDITABLE = (DRAFT, SCHEDULED)
DELETABLE = (DRAFT, COMPLETED, CANCELLED)

BULK_DM, WELCOME, FOLLOW_UP, DRIP, BROADCAST = (
    "BULK_DM",
    "WELCOME",
    "FOLLOW_UP",
    "DRIP",
    "BROADCAST",
)
STEP_TYPES = (FOLLOW_UP, DRIP)

# Ledger row states.
QUEUED, SENDING, SENT, DELIVERED, READ, REPLIED, FAILED, SKIPPED = (
    "QUEUED",
    "SENDING",
    "SENT",
    "DELIVERED",
    "READ",
    "REPLIED",
    "FAILED",
    "SKIPPED",
)

MAX_NAME = 200
MAX_DESCRIPTION = 1_000
MAX_SEGMENTS = 20
MAX_STEPS = 10
MAX_VARIABLES = 100
MAX_VARIABLE_VALUE = 1_000
MAX_STEP_DELAY = timedelta(days=90)
MAX_ENROL_DELAY = timedelta(days=7)
MAX_MESSAGED_WITHIN = timedelta(days=90)
MIN_ATTRIBUTION = timedelta(hours=1)
MAX_ATTRIBUTION = timedelta(days=30)
DEFAULT_ATTRIBUTION = timedelta(days=3)
MAX_BUCKETS = 1_000

#: action -> {from status: to status}
_TRANSITIONS: dict[str, dict[str, str]] = {
    "start": {DRAFT: RUNNING},
    "schedule": {DRAFT: SCHEDULED},
    "launch": {SCHEDULED: RUNNING},
    "pause": {RUNNING: PAUSED},
    "resume": {PAUSED: RUNNING},
    "cancel": {SCHEDULED: CANCELLED, RUNNING: CANCELLED, PAUSED: CANCELLED},
    "complete": {RUNNING: COMPLETED, PAUSED: COMPLETED},
}


def transition(status: str, action: str) -> str:
    """The status after ``action``; FailedPrecondition INVALID_STATE_TRANSITION when
    the action is not allowed from ``status``."""
    to = _TRANSITIONS[action].get(status)
    if to is None:
        allowed = ", ".join(sorted(_TRANSITIONS[action]))
        raise FailedPrecondition(
            f"cannot {action} a {status.lower()} campaign (allowed from: {allowed.lower()})",
            reason="INVALID_STATE_TRANSITION",
            metadata={"status": status, "action": action},
        )
    return to


def check_editable(status: str) -> None:
    if status not in EDITABLE:
        raise FailedPrecondition(
            f"a {status.lower()} campaign cannot be changed (only draft or scheduled)",
            reason="INVALID_STATE_TRANSITION",
            metadata={"status": status},
        )


def check_deletable(status: str) -> None:
    if status not in DELETABLE:
        raise FailedPrecondition(
            f"a {status.lower()} campaign cannot be deleted; cancel it first",
            reason="INVALID_STATE_TRANSITION",
            metadata={"status": status},
        )


@dataclass
class Step:
    template_id: str = ""
    delay: timedelta = timedelta(0)
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class CampaignDraft:
    """The editable part of a campaign, as validated and stored."""

    name: str
    account_id: str
    type: str
    description: str = ""
    template_id: str = ""
    segment_ids: list[str] = field(default_factory=list)
    exclude_segment_ids: list[str] = field(default_factory=list)
    exclude_messaged_within: timedelta = timedelta(0)
    exclude_campaign_ids: list[str] = field(default_factory=list)
    exclude_open_conversations: bool = False
    variables: dict[str, str] = field(default_factory=dict)
    start_at: datetime | None = None
    end_at: datetime | None = None
    time_zone: str = "UTC"
    #: JSON of a ``mktx.v1.WeeklySchedule``; None means any time.
    send_window: dict[str, Any] | None = None
    respect_contact_time_zone: bool = False
    enrol_delay: timedelta = timedelta(0)
    steps: list[Step] = field(default_factory=list)
    stop_on_reply: bool = True
    attribution_window: timedelta = DEFAULT_ATTRIBUTION
    max_sends_per_hour: int = 0

    def template_ids(self) -> list[str]:
        """Every template the campaign sends (its own and its steps')."""
        ids = [self.template_id] if self.template_id else []
        return ids + [s.template_id for s in self.steps if s.template_id]


def _uuid_ok(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return len(value) in (32, 36)


def _uuid_list(values: list[str], path: str, limit: int) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    if len(values) > limit:
        v.append(FieldViolation(path, f"at most {limit} ids"))
    seen: set[str] = set()
    for i, s in enumerate(values):
        if not _uuid_ok(s):
            v.append(FieldViolation(f"{path}[{i}]", "must be a UUID"))
        elif s.lower() in seen:
            v.append(FieldViolation(f"{path}[{i}]", "appears more than once"))
        seen.add(s.lower())
    return v


def _variables(values: Mapping[str, str], path: str) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    if len(values) > MAX_VARIABLES:
        v.append(FieldViolation(path, f"at most {MAX_VARIABLES} variables"))
    for key, value in values.items():
        if not key or len(key) > 64:
            v.append(FieldViolation(f"{path}.{key[:64]}", "names are 1 to 64 characters"))
        if len(value) > MAX_VARIABLE_VALUE:
            v.append(
                FieldViolation(f"{path}.{key}", f"must be at most {MAX_VARIABLE_VALUE} characters")
            )
    return v


def window_proto(d: CampaignDraft) -> common_pb2.WeeklySchedule | None:
    if d.send_window is None:
        return None
    out = common_pb2.WeeklySchedule()
    json_format.ParseDict(d.send_window, out)
    return out


def validate_campaign(d: CampaignDraft) -> list[FieldViolation]:
    """Every rule a stored campaign satisfies; paths are relative to the campaign.
    Incomplete drafts pass: what Start needs is :func:`missing_for_start`."""
    v: list[FieldViolation] = []
    if not d.name.strip():
        v.append(FieldViolation("name", "is required"))
    elif len(d.name) > MAX_NAME:
        v.append(FieldViolation("name", f"must be at most {MAX_NAME} characters"))
    if len(d.description) > MAX_DESCRIPTION:
        v.append(FieldViolation("description", f"must be at most {MAX_DESCRIPTION} characters"))
    if not d.account_id:
        v.append(FieldViolation("account_id", "is required"))
    elif not _uuid_ok(d.account_id):
        v.append(FieldViolation("account_id", "must be a UUID"))
    if not d.type:
        v.append(FieldViolation("type", "is required"))
    if d.template_id and not _uuid_ok(d.template_id):
        v.append(FieldViolation("template_id", "must be a UUID"))
    if d.type in STEP_TYPES and d.template_id:
        v.append(
            FieldViolation(
                "template_id",
                "must be empty for follow-up and drip campaigns; set each step's template_id",
            )
        )
    v += _uuid_list(d.segment_ids, "segment_ids", MAX_SEGMENTS)
    v += _uuid_list(d.exclude_segment_ids, "exclusion.exclude_segment_ids", MAX_SEGMENTS)
    v += _uuid_list(d.exclude_campaign_ids, "exclusion.exclude_campaign_ids", MAX_SEGMENTS)
    both = {s.lower() for s in d.segment_ids} & {s.lower() for s in d.exclude_segment_ids}
    if both:
        v.append(
            FieldViolation("exclusion.exclude_segment_ids", "must not repeat an audience segment")
        )
    if not timedelta(0) <= d.exclude_messaged_within <= MAX_MESSAGED_WITHIN:
        v.append(FieldViolation("exclusion.exclude_messaged_within", "must be 0 to 90 days"))
    v += _variables(d.variables, "variables")

    if d.steps and d.type not in STEP_TYPES:
        v.append(FieldViolation("steps", "only follow-up and drip campaigns have steps"))
    if len(d.steps) > MAX_STEPS:
        v.append(FieldViolation("steps", f"at most {MAX_STEPS} steps"))
    for i, s in enumerate(d.steps[:MAX_STEPS]):
        if s.template_id and not _uuid_ok(s.template_id):
            v.append(FieldViolation(f"steps[{i}].template_id", "must be a UUID"))
        if not timedelta(0) <= s.delay <= MAX_STEP_DELAY:
            v.append(FieldViolation(f"steps[{i}].delay", "must be 0 to 90 days"))
        v += _variables(s.variables, f"steps[{i}].variables")

    if zone(d.time_zone) is None:
        v.append(FieldViolation("schedule.time_zone", "must be an IANA time zone"))
    if d.start_at and d.end_at and d.end_at <= d.start_at:
        v.append(FieldViolation("schedule.end_time", "must be after start_time"))
    if d.send_window is not None:
        try:
            win = window_proto(d)
        except json_format.ParseError:
            v.append(FieldViolation("schedule.send_window", "is not a weekly schedule"))
        else:
            assert win is not None
            if win.time_zone and win.time_zone != d.time_zone:
                v.append(
                    FieldViolation(
                        "schedule.send_window.time_zone",
                        "must be empty or equal schedule.time_zone",
                    )
                )
            else:
                win.time_zone = d.time_zone if zone(d.time_zone) else "UTC"
                v += validate_weekly_schedule(win, "schedule.send_window")
    if not timedelta(0) <= d.enrol_delay <= MAX_ENROL_DELAY:
        v.append(FieldViolation("schedule.enrol_delay", "must be 0 to 7 days"))
    elif d.enrol_delay and d.type != WELCOME:
        v.append(FieldViolation("schedule.enrol_delay", "only welcome campaigns have one"))
    if not MIN_ATTRIBUTION <= d.attribution_window <= MAX_ATTRIBUTION:
        v.append(FieldViolation("attribution_window", "must be 1 hour to 30 days"))
    if d.max_sends_per_hour < 0:
        v.append(FieldViolation("max_sends_per_hour", "must not be negative"))
    return v


def missing_for_start(
    d: CampaignDraft, *, account_active: bool, templates_found: set[str], now: datetime
) -> list[str]:
    """What Start lacks, in the names the API reports (``template_id``,
    ``segment_ids``, ``steps``, ``steps[1].template_id``, ``account_active``,
    ``end_time_passed``). ``templates_found`` holds the template ids that exist."""
    missing: list[str] = []
    if d.type in STEP_TYPES:
        if not d.steps:
            missing.append("steps")
        for i, s in enumerate(d.steps):
            if not s.template_id or s.template_id.lower() not in templates_found:
                missing.append(f"steps[{i}].template_id")
    elif not d.template_id or d.template_id.lower() not in templates_found:
        missing.append("template_id")
    if d.type != WELCOME and not d.segment_ids:
        missing.append("segment_ids")
    if not account_active:
        missing.append("account_active")
    if d.end_at is not None and d.end_at <= now:
        missing.append("end_time_passed")
    return missing


# ------------------------------------------------------------------ audience


@dataclass(frozen=True)
class SegmentRef:
    """A stored segment, as the audience rule needs it."""

    id: str
    #: None: a segment of every account of the merchant.
    account_id: UUID | None
    #: JSON of a ``mktx.v1.ConditionGroup`` (compiled by ``domain.segments``).
    conditions: dict[str, Any]


@dataclass(frozen=True)
class Audience:
    """Whom a campaign reaches among its account's contacts that have not opted out:
    those matching any of ``include`` (every one of them when it is empty), minus
    those matching any of ``exclude`` and those any of ``exclude_campaign_ids`` sent
    a DM to. Each entry of ``include``/``exclude`` is a segment's conditions."""

    include: list[dict[str, Any]]
    exclude: list[dict[str, Any]]
    exclude_campaign_ids: list[str]


def audience(
    d: CampaignDraft, account_id: UUID, segments: Mapping[str, SegmentRef]
) -> Audience | None:
    """The campaign's audience (see :class:`Audience`) from ``segments`` (the stored
    segments it names, by id). A segment deleted since contributes nobody; a segment
    of another account is ignored, because its contacts cannot be messaged from this
    one. None when the campaign names audience segments and none of them applies: it
    then reaches nobody, never everyone. Without audience segments (WELCOME) it
    reaches every contact of the account, less the exclusions."""

    def applying(ids: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for sid in ids:
            seg = segments.get(sid.lower()) or segments.get(sid)
            if seg is None:
                continue
            if seg.account_id is not None and seg.account_id != account_id:
                continue
            out.append(seg.conditions)
        return out

    include = applying(d.segment_ids)
    if d.segment_ids and not include:
        return None
    return Audience(include, applying(d.exclude_segment_ids), list(d.exclude_campaign_ids))


def launch_due_at(d: CampaignDraft, now: datetime) -> datetime | None:
    """When the audience of a campaign that starts at ``now`` is due: now, plus the
    first step's delay for sequences. None for WELCOME: it snapshots nobody at start
    and enrols each new follower instead (:func:`welcome_enrolment`)."""
    if d.type == WELCOME:
        return None
    return now + (d.steps[0].delay if d.steps else timedelta(0))


def welcome_enrolment(
    d: CampaignDraft, *, status: str, now: datetime, follow_applied: bool = True
) -> datetime | None:
    """When a new follower of the campaign's account enters the campaign: its
    ``enrol_delay`` after ``now``, for a RUNNING welcome campaign not past its end
    time, and only for a follow that changed the recorded follow state
    (``follow_applied``; a follow older than the one recorded, such as a late
    redelivery, enrols nobody). None: the follower does not enter. A follower who
    enters is enrolled only when the campaign's :func:`audience` includes them, and
    never twice (the ledger holds one row per campaign, contact and step)."""
    if d.type != WELCOME or status != RUNNING or not follow_applied:
        return None
    if d.end_at is not None and d.end_at <= now:
        return None
    return now + d.enrol_delay


# ------------------------------------------------------------------ sending


def render_for_contact(
    template: TemplateDraft,
    contact: Mapping[str, Any],
    variables: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
) -> str:
    """The DM text for one contact: campaign variables, then step or test overrides,
    then the contact's own values (``templates.contact_variables``, which always win
    for the names they define: ``first_name``, ``contact.*``, ``attributes.*``, ...).
    Raises ``MissingVariables`` when a placeholder without fallback has no value."""
    values = {**variables, **(overrides or {}), **contact_variables(contact)}
    return render(template, values).content


@dataclass(frozen=True)
class SendWindow:
    """A campaign's send window; None spans means any time."""

    schedule: Schedule | None

    def for_zone(self, tz_name: str) -> Schedule | None:
        if self.schedule is None:
            return None
        tz = zone(tz_name) if tz_name else None
        return Schedule(tz, self.schedule.spans) if tz else self.schedule

    def next_open(self, at: datetime, contact_tz: str = "") -> datetime | None:
        """``at`` when open, else the next opening (None: never open)."""
        sched = self.for_zone(contact_tz)
        if sched is None or sched.is_open(at):
            return at
        return sched.next_open(at)


def send_window(d: CampaignDraft) -> SendWindow:
    win = window_proto(d)
    if win is None:
        return SendWindow(None)
    win.time_zone = d.time_zone
    return SendWindow(schedule_from_proto(win))


def uses_contact_zone(d: CampaignDraft) -> bool:
    return d.respect_contact_time_zone and d.type != BROADCAST


@dataclass(frozen=True)
class Wait:
    """The campaign sends nothing before ``until``; ``reason`` is its status reason."""

    until: datetime
    reason: str


def dispatch_allowance(
    d: CampaignDraft,
    window: SendWindow,
    *,
    account_status: str,
    budget_left: int | None,
    budget_reset_at: datetime | None,
    sent_this_hour: int,
    in_flight: int,
    batch_size: int,
    now: datetime,
) -> int | Wait:
    """How many rows a RUNNING campaign may claim now (at most ``batch_size``), or
    until when it waits: while its account is not ACTIVE (a minute at a time), its
    account's DM budget is spent (``budget_left``; None when unknown, until
    ``budget_reset_at`` or a minute), its hourly send cap is reached (counting
    ``in_flight`` sends) or, unless each contact's own time zone decides, its send
    window is closed (a day at a time when it never opens)."""
    limit = batch_size
    if account_status != "ACTIVE":
        return Wait(
            now + timedelta(minutes=1), f"account {account_status.lower()}: reconnect it to send"
        )
    if budget_left is not None:
        if budget_left <= 0:
            reset = budget_reset_at or now + timedelta(minutes=1)
            return Wait(reset, f"waiting for DM budget until {reset.isoformat()}")
        limit = min(limit, budget_left)
    cap = d.max_sends_per_hour
    if cap:
        left = cap - sent_this_hour - in_flight
        if left <= 0:
            hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            return Wait(hour, f"hourly send cap of {cap} reached")
        limit = min(limit, left)
    if not uses_contact_zone(d):
        opens = window.next_open(now)
        if opens is None:
            return Wait(now + timedelta(days=1), "the send window never opens")
        if opens > now:
            return Wait(opens, "outside send window")
    return limit


def step_template(d: CampaignDraft, step: int) -> tuple[str, dict[str, str]] | None:
    """The template id and step variables ledger row ``step`` sends; None past the
    last step of a sequence."""
    if d.type in STEP_TYPES:
        if step >= len(d.steps):
            return None
        s = d.steps[step]
        return s.template_id.lower(), s.variables
    return d.template_id.lower(), {}


@dataclass(frozen=True)
class Send:
    """Send ``text`` to the row's contact."""

    text: str


@dataclass(frozen=True)
class Skip:
    """Settle the row SKIPPED with ``reason``."""

    reason: str


@dataclass(frozen=True)
class Defer:
    """Leave the row QUEUED until ``until`` (the contact's send window opens)."""

    until: datetime


def claim_decision(
    d: CampaignDraft,
    window: SendWindow,
    templates: Mapping[str, TemplateDraft],
    row: Mapping[str, Any],
    facts: Mapping[str, Any] | None,
    now: datetime,
) -> Send | Skip | Defer:
    """What a due ledger row gets when claimed. ``row`` holds the contact's fields
    (``opted_out``, ``time_zone``, the template values of ``templates.contact_variables``) and
    ``step``; ``facts`` its exclusion facts (``recently_messaged``,
    ``open_conversation``; None when not looked up). Skip reasons: ``opted_out``,
    ``outside_send_window`` (the contact's window never opens), ``recently_messaged``,
    ``open_conversation``, ``template_missing``, ``missing_variable:<names>``,
    ``empty_message``."""
    if row["opted_out"]:
        return Skip("opted_out")
    if uses_contact_zone(d):
        opens = window.next_open(now, row["time_zone"] or "")
        if opens is None:
            return Skip("outside_send_window")
        if opens > now:
            return Defer(opens)
    if facts is not None and d.exclude_messaged_within and facts["recently_messaged"]:
        return Skip("recently_messaged")
    if facts is not None and d.exclude_open_conversations and facts["open_conversation"]:
        return Skip("open_conversation")
    which = step_template(d, row["step"])
    template = templates.get(which[0]) if which is not None else None
    if which is None or template is None:
        return Skip("template_missing")
    try:
        text = render_for_contact(template, row, d.variables, which[1])
    except MissingVariables as missing:
        return Skip(f"missing_variable:{','.join(missing.names)}")
    if not text.strip():
        return Skip("empty_message")
    return Send(text)


def next_step_due(d: CampaignDraft, step: int, sent_at: datetime) -> datetime | None:
    """When the step after ``step`` of a sequence is due once ``step`` was sent at
    ``sent_at``; None when there is none (the last step, or not a sequence)."""
    if d.type not in STEP_TYPES or step + 1 >= len(d.steps):
        return None
    return sent_at + d.steps[step + 1].delay


def unsent_outcome(
    campaign_status: str, attempts: int, max_attempts: int
) -> tuple[str, str] | None:
    """A row whose DM is known not to have reached X: SKIPPED when its campaign has
    ended, FAILED after ``max_attempts``, as ``(state, reason)``; None: queue it
    again."""
    if campaign_status == CANCELLED:
        return SKIPPED, "campaign_cancelled"
    if campaign_status == COMPLETED:
        return SKIPPED, "end_time_passed"
    if attempts >= max_attempts:
        return FAILED, "x_unavailable: gave up after repeated unclear answers"
    return None


# ------------------------------------------------------------------ metrics

HOUR, DAY = "HOUR", "DAY"


def pick_granularity(start: datetime, end: datetime) -> str:
    return HOUR if end - start <= timedelta(days=3) else DAY


def bucket_starts(start: datetime, end: datetime, granularity: str, tz: ZoneInfo) -> list[datetime]:
    """Consecutive bucket starts covering ``[start, end)``: whole UTC hours, or
    calendar days in ``tz``. Raises ValueError past MAX_BUCKETS."""
    out: list[datetime] = []
    if granularity == HOUR:
        cur = start.replace(minute=0, second=0, microsecond=0)
        while cur < end:
            out.append(cur)
            cur += timedelta(hours=1)
            if len(out) > MAX_BUCKETS:
                raise ValueError("too many buckets")
        return out
    local = start.astimezone(tz)
    day = local.date()
    while True:
        begin = datetime(day.year, day.month, day.day, tzinfo=tz)
        if begin >= end:
            break
        out.append(begin)
        day = day + timedelta(days=1)
        if len(out) > MAX_BUCKETS:
            raise ValueError("too many buckets")
    return out


def rate(part: int, whole: int) -> float:
    return min(1.0, part / whole) if whole > 0 else 0.0
