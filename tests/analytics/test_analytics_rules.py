"""domain/analytics.py: periods, local buckets across DST, business hours, episodes
and statistics. Pure: no database."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mktx_grpc.domain import analytics as d
from mktx_grpc.domain.schedule import Schedule

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS_9_TO_5 = {day: [(9 * 60, 17 * 60)] for day in range(1, 6)}


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def local(tz: ZoneInfo, *a: int) -> datetime:
    return datetime(*a, tzinfo=tz).astimezone(UTC)


# ------------------------------------------------------------------ periods


def test_period_rules() -> None:
    s = utc(2026, 1, 1)
    assert d.period_violations(s, s + timedelta(days=400)) == []
    assert d.period_violations(s, s + timedelta(days=400, seconds=1)) == [
        ("period.end_time", "the period may span at most 400 days")
    ]
    assert d.period_violations(s, s) == [("period.end_time", "must be after period.start_time")]
    assert d.period_violations(s, s - timedelta(hours=1))[0][0] == "period.end_time"
    assert d.period_violations(None, None) == [
        ("period.start_time", "is required"),
        ("period.end_time", "is required"),
    ]


# ------------------------------------------------------------------ buckets across DST


@pytest.mark.parametrize(
    ("tz", "spring", "autumn"),
    [
        (BERLIN, date(2026, 3, 29), date(2026, 10, 25)),
        (NEW_YORK, date(2026, 3, 8), date(2026, 11, 1)),
    ],
)
def test_days_are_cut_at_local_midnight_across_dst(
    tz: ZoneInfo, spring: date, autumn: date
) -> None:
    for day, hours in ((spring, 23), (autumn, 25)):
        start = local(tz, day.year, day.month, day.day) - timedelta(days=1)
        after = day + timedelta(days=2)
        end = local(tz, after.year, after.month, after.day)
        bs = d.buckets(start, end, d.DAY, tz)
        assert [b.key for b in bs] == [day - timedelta(days=1), day, day + timedelta(days=1)]
        lengths = [(b.end - b.start) / timedelta(hours=1) for b in bs]
        assert lengths == [24, hours, 24]
        for b in bs:
            assert b.start.astimezone(tz).hour == 0 and b.end.astimezone(tz).hour == 0
        # An instant an hour before local midnight ending the DST day is still in it.
        late = bs[1].end - timedelta(minutes=30)
        assert d.bucket_key(late, d.DAY, tz) == day
        assert d.bucket_key(bs[1].end, d.DAY, tz) == day + timedelta(days=1)


def test_iso_weeks_start_on_monday_and_months_on_the_first() -> None:
    # 2026-03-29 is a Sunday (the DST change in Berlin): its week began Monday the 23rd.
    assert d.bucket_key(local(BERLIN, 2026, 3, 29, 12), d.WEEK, BERLIN) == date(2026, 3, 23)
    assert d.bucket_key(local(BERLIN, 2026, 3, 30, 0, 0), d.WEEK, BERLIN) == date(2026, 3, 30)
    weeks = d.buckets(local(BERLIN, 2026, 3, 25), local(BERLIN, 2026, 4, 2), d.WEEK, BERLIN)
    assert [w.key for w in weeks] == [date(2026, 3, 23), date(2026, 3, 30)]
    assert (weeks[0].end - weeks[0].start) == timedelta(days=7, hours=-1)
    # A week across the year boundary (ISO week 1 of 2027 starts 2027-01-04).
    assert d.bucket_key(utc(2027, 1, 2, 12), d.WEEK, ZoneInfo("UTC")) == date(2026, 12, 28)
    months = d.buckets(utc(2026, 11, 15), utc(2027, 2, 1), d.MONTH, NEW_YORK)
    # The period ends 2027-02-01 00:00 UTC, still January 31 in New York: no February.
    assert [m.key for m in months] == [date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)]
    assert months[0].start == local(NEW_YORK, 2026, 11, 1)
    # November in New York has 30 days and one extra hour (DST ends on the 1st).
    assert months[0].end - months[0].start == timedelta(days=30, hours=1)
    # 31 January 19:00 New York is 1 February 00:00 UTC: still January locally.
    assert d.bucket_key(utc(2027, 2, 1, 0, 0), d.MONTH, NEW_YORK) == date(2027, 1, 1)


def test_buckets_in_a_half_hour_zone() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    bs = d.buckets(utc(2026, 5, 1), utc(2026, 5, 2), d.DAY, kolkata)
    assert bs[0].start == utc(2026, 4, 30, 18, 30)
    assert [b.key for b in bs] == [date(2026, 5, 1), date(2026, 5, 2)]


# ------------------------------------------------------------------ business hours


def test_weekend_dm_answered_monday_counts_five_minutes() -> None:
    sched = Schedule(BERLIN, WEEKDAYS_9_TO_5)
    # Friday 2026-03-06 23:00 -> Monday 2026-03-09 09:05, Berlin.
    start, end = local(BERLIN, 2026, 3, 6, 23), local(BERLIN, 2026, 3, 9, 9, 5)
    assert d.business_seconds(start, end, sched) == 300
    assert d.business_seconds(start, end, None) == (end - start).total_seconds()
    assert (end - start) > timedelta(hours=58)


def test_business_hours_across_dst_and_zones() -> None:
    # Open every day 00:00-24:00 Berlin: a DST Sunday has 23 open hours.
    always = Schedule(BERLIN, {day: [(0, 24 * 60)] for day in range(1, 8)})
    s, e = local(BERLIN, 2026, 3, 29), local(BERLIN, 2026, 3, 30)
    assert d.business_seconds(s, e, always) == 23 * 3600
    # Open 01:00-04:00 local: on the spring-forward night 02:00-03:00 does not exist.
    night = Schedule(BERLIN, {7: [(60, 4 * 60)]})
    assert d.business_seconds(s, e, night) == 2 * 3600
    # A schedule in New York measured for an instant pair given in UTC.
    ny = Schedule(NEW_YORK, WEEKDAYS_9_TO_5)
    assert (
        d.business_seconds(utc(2026, 3, 9, 12), utc(2026, 3, 9, 14), ny) == 3600
    )  # opens 13:00 UTC
    assert d.business_seconds(utc(2026, 3, 9, 14), utc(2026, 3, 9, 12), ny) == 0
    # Two spans in a day, and a never-open schedule.
    split = Schedule(BERLIN, {1: [(9 * 60, 12 * 60), (13 * 60, 17 * 60)]})
    assert (
        d.business_seconds(local(BERLIN, 2026, 3, 9, 8), local(BERLIN, 2026, 3, 10), split)
        == 7 * 3600
    )
    assert d.business_seconds(s, e + timedelta(days=30), Schedule(BERLIN, {})) == 0


# ------------------------------------------------------------------ statistics


def test_stats_match_percentile_cont() -> None:
    vals = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    st = d.stats(vals)
    assert st.count == 6
    assert st.mean == pytest.approx(statistics.fmean(vals))
    assert st.median == pytest.approx(statistics.median(vals))
    # percentile_cont(0.9) over 1,2,3,5,7,9: position 4.5 -> 7 + 0.5 * 2 = 8.
    assert st.p90 == pytest.approx(8.0)
    assert d.stats([]) == d.Stats()
    assert d.stats([4.0]) == d.Stats(1, 4.0, 4.0, 4.0)


# ------------------------------------------------------------------ episodes

T0 = utc(2026, 3, 2, 10)  # a Monday


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def msg(minutes: float, author: str) -> d.Message:
    return d.Message(at(minutes), author)


def test_first_response_and_resolution() -> None:
    (ep,) = d.episodes(
        created_at=at(0),
        status="CLOSED",
        closed_at=at(120),
        assignee="alice",
        transitions=[d.Transition(at(120), d.CLOSED)],
        messages=[msg(0, d.CONTACT), msg(2, d.CONTACT), msg(30, d.HUMAN), msg(31, d.HUMAN)],
        schedule=None,
    )
    assert ep.first_response_s == 30 * 60
    assert ep.resolution_s == 120 * 60
    assert not ep.bot_replied and ep.human_replied and not ep.bot_only
    assert ep.assignee == "alice" and ep.status == "CLOSED"


def test_campaign_messages_are_not_responses_and_outbound_first_waits_for_inbound() -> None:
    (ep,) = d.episodes(
        created_at=at(0),
        status="OPEN",
        closed_at=None,
        assignee="",
        transitions=[],
        messages=[
            msg(0, d.OTHER),
            msg(10, d.HUMAN),
            msg(20, d.CONTACT),
            msg(25, d.OTHER),
            msg(50, d.HUMAN),
        ],
        schedule=None,
    )
    assert ep.first_inbound_at == at(20)
    assert ep.first_response_s == 30 * 60
    assert ep.resolved_at is None and ep.resolution_s is None


def test_reopened_conversation_measures_from_the_reopening_message() -> None:
    eps = d.episodes(
        created_at=at(0),
        status="CLOSED",
        closed_at=at(600),
        assignee="bob",
        transitions=[
            d.Transition(at(0), d.OPENED),
            d.Transition(at(100), d.CLOSED),
            # A pending/snoozed wake while closed cannot happen; a reopen starts episode 2.
            d.Transition(at(500), d.REOPENED),
            d.Transition(at(600), d.CLOSED),
        ],
        messages=[
            msg(0, d.CONTACT),
            msg(10, d.HUMAN),
            msg(499.5, d.CONTACT),  # the message that reopened it (just before the event)
            msg(540, d.HUMAN),
        ],
        schedule=None,
    )
    assert [e.index for e in eps] == [0, 1]
    assert eps[0].first_response_s == 600 and eps[0].resolution_s == 100 * 60
    assert eps[1].opened_at == at(500)
    assert eps[1].first_inbound_at == at(499.5)
    assert eps[1].first_response_s == 40.5 * 60
    assert eps[1].resolution_s == 100 * 60
    assert eps[1].assignee == "bob"


def test_a_conversation_a_campaign_created_is_no_episode_until_it_reopens() -> None:
    # The campaign's DM opened it closed: not support work, not a 0 s resolution.
    assert (
        d.episodes(
            created_at=at(0),
            status="CLOSED",
            closed_at=at(0),
            assignee="",
            transitions=[],
            messages=[msg(0, d.OTHER)],
            schedule=None,
            created_closed=True,
        )
        == []
    )
    # The contact answers; the reply reopens it: the episode starts there, and an
    # assignment made while it was closed is still the assignee.
    (ep,) = d.episodes(
        created_at=at(0),
        status="CLOSED",
        closed_at=at(90),
        assignee="cy",
        transitions=[
            d.Transition(at(1), d.ASSIGNED, "cy"),
            d.Transition(at(60), d.REOPENED),
            d.Transition(at(90), d.CLOSED),
        ],
        messages=[msg(0, d.OTHER), msg(59.5, d.CONTACT), msg(70, d.HUMAN)],
        schedule=None,
        created_closed=True,
    )
    assert (ep.index, ep.opened_at, ep.first_inbound_at) == (0, at(60), at(59.5))
    assert ep.first_response_s == 10.5 * 60 and ep.resolution_s == 30 * 60
    assert ep.assignee == "cy" and ep.status == "CLOSED"
    # Live now, with the reopening missing from the history: one open episode.
    (live,) = d.episodes(
        created_at=at(0),
        status="OPEN",
        closed_at=None,
        assignee="",
        transitions=[],
        messages=[msg(0, d.OTHER), msg(5, d.CONTACT)],
        schedule=None,
        created_closed=True,
    )
    assert live.status == "OPEN" and live.resolved_at is None and live.first_inbound_at == at(5)
    # Not created closed: the same history is an episode from the creation.
    (normal,) = d.episodes(
        created_at=at(0),
        status="CLOSED",
        closed_at=at(0),
        assignee="",
        transitions=[],
        messages=[msg(0, d.OTHER)],
        schedule=None,
    )
    assert normal.opened_at == at(0) and normal.resolution_s == 0


def test_waking_a_pending_conversation_is_not_a_new_episode() -> None:
    eps = d.episodes(
        created_at=at(0),
        status="OPEN",
        closed_at=None,
        assignee="",
        transitions=[d.Transition(at(5), d.REOPENED), d.Transition(at(6), d.REOPENED)],
        messages=[msg(0, d.CONTACT), msg(7, d.HUMAN)],
        schedule=None,
    )
    assert len(eps) == 1 and eps[0].first_response_s == 7 * 60 and eps[0].status == "OPEN"


def test_bot_handled_then_human() -> None:
    (ep,) = d.episodes(
        created_at=at(0),
        status="OPEN",
        closed_at=None,
        assignee="carol",
        transitions=[],
        messages=[
            msg(0, d.CONTACT),
            msg(0.5, d.BOT),
            msg(3, d.CONTACT),
            msg(3.2, d.BOT),
            msg(10, d.CONTACT),  # unanswered by the bot: the hand-off
            msg(25, d.HUMAN),
        ],
        schedule=None,
    )
    assert ep.bot_replied and ep.human_replied and ep.escalated
    assert ep.bot_response_s == 30
    assert ep.handoff_at == at(10)
    assert ep.bot_handled_s == 10 * 60
    assert ep.first_response_s == 15 * 60  # not 25 minutes: the bot's time is excluded


def test_escalation_or_assignment_marks_the_hand_off() -> None:
    (ep,) = d.episodes(
        created_at=at(0),
        status="OPEN",
        closed_at=None,
        assignee="dave",
        transitions=[
            d.Transition(at(4), d.ASSIGNED, "dave"),
            d.Transition(at(2), d.ESCALATED),
        ],
        messages=[msg(0, d.CONTACT), msg(1, d.BOT), msg(6, d.CONTACT), msg(12, d.HUMAN)],
        schedule=None,
    )
    assert ep.handoff_at == at(2)
    assert ep.first_response_s == 10 * 60 and ep.bot_handled_s == 2 * 60


def test_bot_alone_is_bot_only_and_has_no_human_figure() -> None:
    (ep,) = d.episodes(
        created_at=at(0),
        status="CLOSED",
        closed_at=at(30),
        assignee="",
        transitions=[d.Transition(at(30), d.CLOSED)],
        messages=[msg(0, d.CONTACT), msg(0.1, d.BOT)],
        schedule=None,
    )
    assert ep.bot_only and not ep.escalated
    assert ep.first_response_s is None and ep.first_human_reply_at is None
    assert ep.bot_handled_s == 30 * 60


def test_business_hours_figures_of_an_episode() -> None:
    sched = Schedule(BERLIN, WEEKDAYS_9_TO_5)
    fri = local(BERLIN, 2026, 3, 6, 23)
    mon = local(BERLIN, 2026, 3, 9, 9, 5)
    (ep,) = d.episodes(
        created_at=fri,
        status="CLOSED",
        closed_at=mon + timedelta(minutes=10),
        assignee="",
        transitions=[],
        messages=[d.Message(fri, d.CONTACT), d.Message(mon, d.HUMAN)],
        schedule=sched,
    )
    assert ep.first_response_bh_s == 300
    assert ep.first_response_s == (mon - fri).total_seconds()
    assert ep.resolution_bh_s == 15 * 60


def test_history_missing_events_still_closes_or_reopens() -> None:
    (ep,) = d.episodes(
        created_at=at(0),
        status="CLOSED",
        closed_at=at(50),
        assignee="",
        transitions=[],
        messages=[msg(0, d.CONTACT)],
        schedule=None,
    )
    assert ep.resolved_at == at(50)
    eps = d.episodes(
        created_at=at(0),
        status="OPEN",
        closed_at=None,
        assignee="",
        transitions=[d.Transition(at(50), d.CLOSED)],
        messages=[msg(0, d.CONTACT), msg(60, d.CONTACT), msg(61, d.HUMAN)],
        schedule=None,
    )
    assert len(eps) == 2 and eps[1].status == "OPEN" and eps[1].first_response_s == 60


def test_message_author() -> None:
    assert d.message_author("INBOUND", "CONTACT", False) == d.CONTACT
    assert d.message_author("OUTBOUND", "AGENT", False) == d.HUMAN
    assert d.message_author("OUTBOUND", "EXTERNAL", False) == d.HUMAN
    assert d.message_author("OUTBOUND", "AGENT", True) == d.BOT
    assert d.message_author("OUTBOUND", "AI", False) == d.BOT
    assert d.message_author("OUTBOUND", "AUTOMATION", False) == d.BOT
    assert d.message_author("OUTBOUND", "CAMPAIGN", False) == d.OTHER
