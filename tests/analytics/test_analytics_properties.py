"""Properties of the analytics rules over generated instants, zones and schedules
(hypothesis): buckets tile the period at local midnights, every instant falls in the
bucket its key names, business time is additive and bounded, episodes partition
messages."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, given, settings
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


def _figures(ep: d.Episode) -> dict[str, object]:
    out = dataclasses.asdict(ep)
    out.pop("messages")
    out.pop("transitions")
    return out


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10_000), authors, st.booleans()), max_size=30),
    st.lists(st.tuples(st.integers(0, 10_000), kinds), max_size=12),
    st.sampled_from(["OPEN", "PENDING", "CLOSED"]),
    st.one_of(st.none(), schedules()),
)
def test_extending_the_live_episode_equals_recomputing_it(
    msgs: list[tuple[int, str, bool]],
    trans: list[tuple[int, str]],
    status: str,
    schedule: Schedule | None,
) -> None:
    """The consumer's shortcut (extend_episode): the messages flagged new, added to
    the episodes measured without them, give exactly the episodes measured from all
    messages whenever the shortcut answers at all; the earlier episodes do not change."""
    t0 = datetime(2026, 1, 5, tzinfo=UTC)

    def measure(ms: list[tuple[int, str, bool]]) -> list[d.Episode]:
        return d.episodes(
            created_at=t0,
            status=status,
            closed_at=t0 + timedelta(seconds=20_000) if status == "CLOSED" else None,
            assignee="x",
            transitions=[d.Transition(t0 + timedelta(seconds=s), k, "a") for s, k in trans],
            messages=[d.Message(t0 + timedelta(seconds=s), a) for s, a, _ in ms],
            schedule=schedule,
        )

    before = measure([m for m in msgs if not m[2]])
    after = measure(msgs)
    new = sorted(
        (d.Message(t0 + timedelta(seconds=s), a) for s, a, is_new in msgs if is_new),
        key=lambda m: m.at,
    )
    extended = d.extend_episode(before[-1], new, schedule)
    event("shortcut taken" if extended is not None else "recomputed")
    if extended is None:
        return
    assert [_figures(e) for e in before[:-1]] == [_figures(e) for e in after[:-1]]
    assert len(before) == len(after)
    assert _figures(extended) == _figures(after[-1])


def test_extending_takes_the_shortcut_where_it_applies() -> None:
    """Contact messages, a bot reply, the contact again and then a person's reply to a
    conversation with no bot: each extension answers, and equals the recomputation."""
    t0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
    sched = Schedule(ZoneInfo("Europe/Berlin"), {d_: [(9 * 60, 17 * 60)] for d_ in range(1, 6)})

    def measure(ms: list[d.Message]) -> d.Episode:
        (ep,) = d.episodes(
            created_at=t0,
            status="OPEN",
            closed_at=None,
            assignee="",
            transitions=[],
            messages=ms,
            schedule=sched,
        )
        return ep

    at = [t0 + timedelta(minutes=n) for n in range(6)]
    ms = [d.Message(at[0], d.CONTACT)]
    ep = measure(ms)
    for m in (
        d.Message(at[1], d.CONTACT),
        d.Message(at[2], d.BOT),
        d.Message(at[3], d.CONTACT),
        d.Message(at[4], d.CONTACT),
    ):
        ms.append(m)
        nxt = d.extend_episode(ep, [m], sched)
        assert nxt is not None and _figures(nxt) == _figures(measure(ms))
        ep = nxt
    assert ep.last_bot_reply_at == at[2] and ep.contact_after_bot_at == at[3]
    # A person's reply after the bot's needs the history (the hand-off): no shortcut.
    assert d.extend_episode(ep, [d.Message(at[5], d.HUMAN)], sched) is None
    # Nor a message no newer than the latest one, nor an episode without a message.
    assert d.extend_episode(ep, [d.Message(at[4], d.CONTACT)], sched) is None
    assert d.extend_episode(d.Episode(0, t0, status="OPEN"), [ms[0]], sched) is None
    # Without a bot, a person's first reply is measured from the first inbound.
    solo = measure(ms[:2])
    human = d.extend_episode(solo, [d.Message(at[5], d.HUMAN)], sched)
    assert human is not None and human.first_response_s == 300.0
    assert _figures(human) == _figures(measure([*ms[:2], d.Message(at[5], d.HUMAN)]))
