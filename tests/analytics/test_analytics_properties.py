"""Properties of the analytics rules over generated instants, zones and schedules
(hypothesis): buckets tile the period at local midnights, every instant falls in the
bucket its key names, business time is additive and bounded, episodes partition
messages."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mktx_grpc.domain import analytics as d
from mktx_grpc.domain.schedule import Schedule

ZONES = [
    ZoneInfo(z)
    for z in (
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",  # a 30-minute DST shift
        "Asia/Kolkata",
        "Asia/Kathmandu",
        "America/Santiago",  # DST changes at local midnight
        "Pacific/Chatham",
    )
]
instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
zones = st.sampled_from(ZONES)
granularities = st.sampled_from(d.GRANULARITIES)


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    tz = draw(zones)
    spans: dict[int, list[tuple[int, int]]] = {}
    for day in range(1, 8):
        cuts = sorted(draw(st.sets(st.integers(0, 24 * 60), max_size=4)))
        pairs = [(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False) if b > a]
        if pairs:
            spans[day] = pairs
    return Schedule(tz, spans)


@settings(max_examples=100, deadline=None)
@given(instants, st.integers(1, 400 * 24), zones, granularities)
def test_buckets_tile_the_period(start: datetime, hours: int, tz: ZoneInfo, gran: str) -> None:
    end = start + timedelta(hours=hours)
    bs = d.buckets(start, end, gran, tz)
    assert bs[0].start <= start < bs[0].end
    assert bs[-1].start < end <= bs[-1].end
    for a, b in itertools.pairwise(bs):
        assert a.end == b.start and a.key < b.key
    for b in bs:
        assert d.bucket_key(b.start, gran, tz) == b.key
        assert d.bucket_key(b.end - timedelta(microseconds=1), gran, tz) == b.key


@settings(max_examples=150, deadline=None)
@given(instants, zones, granularities)
def test_an_instant_is_in_the_bucket_its_key_names(at: datetime, tz: ZoneInfo, gran: str) -> None:
    key = d.bucket_key(at, gran, tz)
    (b,) = [b for b in d.buckets(at, at + timedelta(microseconds=1), gran, tz)]
    assert b.key == key and b.start <= at < b.end


@settings(max_examples=100, deadline=None)
@given(instants, st.integers(0, 20 * 24 * 60), st.integers(0, 20 * 24 * 60), schedules())
def test_business_time_is_additive_and_bounded(
    start: datetime, m1: int, m2: int, sched: Schedule
) -> None:
    mid = start + timedelta(minutes=m1)
    end = mid + timedelta(minutes=m2)
    whole = d.business_seconds(start, end, sched)
    parts = d.business_seconds(start, mid, sched) + d.business_seconds(mid, end, sched)
    assert whole == pytest.approx(parts, abs=1e-6)
    assert 0 <= whole <= (end - start).total_seconds()
    always = Schedule(sched.tz, {day: [(0, 24 * 60)] for day in range(1, 8)})
    assert d.business_seconds(start, end, always) == (end - start).total_seconds()


authors = st.sampled_from([d.CONTACT, d.HUMAN, d.BOT, d.OTHER])
kinds = st.sampled_from([d.OPENED, d.REOPENED, d.CLOSED, d.ASSIGNED, d.UNASSIGNED, d.ESCALATED])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10_000), authors), max_size=30),
    st.lists(st.tuples(st.integers(0, 10_000), kinds), max_size=12),
    st.sampled_from(["OPEN", "PENDING", "CLOSED"]),
)
def test_episodes_are_ordered_and_their_figures_consistent(
    msgs: list[tuple[int, str]], trans: list[tuple[int, str]], status: str
) -> None:
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    eps = d.episodes(
        created_at=t0,
        status=status,
        closed_at=t0 + timedelta(seconds=20_000) if status == "CLOSED" else None,
        assignee="x",
        transitions=[d.Transition(t0 + timedelta(seconds=s), k, "a") for s, k in trans],
        messages=[d.Message(t0 + timedelta(seconds=s), a) for s, a in msgs],
        schedule=None,
    )
    assert [e.index for e in eps] == list(range(len(eps)))
    assert eps[-1].status == status
    assert all(e.status == "CLOSED" and e.resolved_at is not None for e in eps[:-1])
    for a, b in itertools.pairwise(eps):
        assert a.resolved_at is not None and a.resolved_at <= b.opened_at
    for e in eps:
        if e.first_response_s is not None:
            assert e.first_response_s >= 0 and e.human_replied
            assert e.first_response_bh_s == e.first_response_s  # no schedule: always open
        if e.resolution_s is not None:
            assert e.resolution_s >= 0
        if e.bot_handled_s is not None:
            assert e.bot_handled_s >= 0 and e.bot_replied
        assert not (e.bot_only and e.human_replied)
