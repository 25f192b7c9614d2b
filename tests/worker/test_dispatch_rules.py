"""The campaign engine's rules in domain/campaigns.py, without I/O: whom a campaign
reaches (and WELCOME enrolment of followers), when the dispatcher may send, what
each claimed ledger row gets, the next step of a sequence, unsent rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from mktx_grpc.domain import campaigns as d
from mktx_grpc.domain.templates import TemplateDraft

NOW = datetime(2030, 5, 1, 12, 30, tzinfo=UTC)  # a Wednesday
ACCOUNT, OTHER = uuid.uuid4(), uuid.uuid4()
COND = {"operator": "CONDITION_GROUP_OPERATOR_AND", "nodes": []}


def draft(**kw) -> d.CampaignDraft:
    kw.setdefault("name", "c")
    kw.setdefault("account_id", str(ACCOUNT))
    kw.setdefault("type", d.BULK_DM)
    return d.CampaignDraft(**kw)


def seg(account_id, tag: str) -> d.SegmentRef:
    sid = str(uuid.uuid4())
    return d.SegmentRef(sid, account_id, {**COND, "tag": tag})


def test_audience_ignores_deleted_and_other_accounts_segments():
    mine, shared, foreign = seg(ACCOUNT, "mine"), seg(None, "shared"), seg(OTHER, "foreign")
    excl = seg(ACCOUNT, "excl")
    gone = str(uuid.uuid4())
    segments = {s.id: s for s in (mine, shared, foreign, excl)}
    c = draft(
        segment_ids=[mine.id.upper(), shared.id, foreign.id, gone],
        exclude_segment_ids=[excl.id, gone],
        exclude_campaign_ids=["c1"],
    )
    who = d.audience(c, ACCOUNT, segments)
    assert who is not None
    assert [g["tag"] for g in who.include] == ["mine", "shared"]
    assert [g["tag"] for g in who.exclude] == ["excl"]
    assert who.exclude_campaign_ids == ["c1"]
    # Audience segments named but none applies: nobody, never everybody.
    assert d.audience(draft(segment_ids=[foreign.id, gone]), ACCOUNT, segments) is None
    # No audience segments (WELCOME): every contact of the account.
    assert d.audience(draft(type=d.WELCOME), ACCOUNT, {}) == d.Audience([], [], [])


def test_launch_snapshots_now_plus_the_first_step_except_welcome():
    assert d.launch_due_at(draft(), NOW) == NOW
    steps = [d.Step("t", timedelta(hours=2)), d.Step("u", timedelta(days=1))]
    assert d.launch_due_at(draft(type=d.DRIP, steps=steps), NOW) == NOW + timedelta(hours=2)
    assert d.launch_due_at(draft(type=d.WELCOME), NOW) is None


def test_welcome_enrolment_of_a_new_follower():
    w = draft(type=d.WELCOME, enrol_delay=timedelta(minutes=10))
    assert d.welcome_enrolment(w, status=d.RUNNING, now=NOW) == NOW + timedelta(minutes=10)
    assert d.welcome_enrolment(w, status=d.PAUSED, now=NOW) is None
    assert d.welcome_enrolment(w, status=d.RUNNING, now=NOW, follow_applied=False) is None
    ended = draft(type=d.WELCOME, end_at=NOW)
    assert d.welcome_enrolment(ended, status=d.RUNNING, now=NOW) is None
    later = draft(type=d.WELCOME, end_at=NOW + timedelta(days=1))
    assert d.welcome_enrolment(later, status=d.RUNNING, now=NOW) == NOW
    assert d.welcome_enrolment(draft(), status=d.RUNNING, now=NOW) is None  # not WELCOME


def allowance(c: d.CampaignDraft, **kw):
    args = {
        "account_status": "ACTIVE",
        "budget_left": None,
        "budget_reset_at": None,
        "sent_this_hour": 0,
        "in_flight": 0,
        "batch_size": 500,
        "now": NOW,
    } | kw
    return d.dispatch_allowance(c, d.send_window(c), **args)


def test_dispatch_allowance_waits_and_limits():
    assert allowance(draft()) == 500
    assert allowance(draft(), account_status="ERROR") == d.Wait(
        NOW + timedelta(minutes=1), "account error: reconnect it to send"
    )
    reset = NOW + timedelta(minutes=7)
    assert allowance(draft(), budget_left=0, budget_reset_at=reset) == d.Wait(
        reset, f"waiting for DM budget until {reset.isoformat()}"
    )
    assert allowance(draft(), budget_left=0).until == NOW + timedelta(minutes=1)
    assert allowance(draft(), budget_left=12) == 12
    capped = draft(max_sends_per_hour=100)
    assert allowance(capped, sent_this_hour=60, in_flight=30) == 10
    assert allowance(capped, sent_this_hour=70, in_flight=30) == d.Wait(
        datetime(2030, 5, 1, 13, 0, tzinfo=UTC), "hourly send cap of 100 reached"
    )
    tomorrow_9 = {"days": [{"day": 4, "ranges": [{"start": "09:00", "end": "10:00"}]}]}
    shut = draft(send_window=tomorrow_9)
    assert allowance(shut) == d.Wait(datetime(2030, 5, 2, 9, 0, tzinfo=UTC), "outside send window")
    # With the contacts' own zones the window is decided per row, not here.
    assert allowance(draft(send_window=tomorrow_9, respect_contact_time_zone=True)) == 500


def contact(**kw):
    row = {
        "step": 0,
        "opted_out": False,
        "time_zone": "",
        "username": "ann",
        "display_name": "Ann",
        "x_user_id": "1",
        "attributes": {},
    }
    return row | kw


def test_claim_decision_for_each_row():
    tid = str(uuid.uuid4())
    tpl = {tid: TemplateDraft(name="t", type="TEXT", content="Hi {{contact.display_name}}")}
    c = draft(template_id=tid)

    def decide(campaign=c, row=None, facts=None, templates=tpl):
        return d.claim_decision(
            campaign, d.send_window(campaign), templates, row or contact(), facts, NOW
        )

    assert decide() == d.Send("Hi Ann")
    assert decide(row=contact(opted_out=True)) == d.Skip("opted_out")
    recent = draft(template_id=tid, exclude_messaged_within=timedelta(days=1))
    facts = {"recently_messaged": True, "open_conversation": True}
    assert decide(campaign=recent, facts=facts) == d.Skip("recently_messaged")
    assert decide(facts=facts) == d.Send("Hi Ann")  # the campaign does not exclude them
    open_ = draft(template_id=tid, exclude_open_conversations=True)
    assert decide(campaign=open_, facts=facts) == d.Skip("open_conversation")
    assert decide(templates={}) == d.Skip("template_missing")
    need = {tid: TemplateDraft(name="t", type="TEXT", content="{{contact.attributes.city}}")}
    assert decide(templates=need) == d.Skip("missing_variable:contact.attributes.city")
    blank = {tid: TemplateDraft(name="t", type="TEXT", content="  {{x|}} ")}
    assert decide(templates=blank) == d.Skip("empty_message")
    every_day_9_to_5 = {
        "days": [{"day": n, "ranges": [{"start": "09:00", "end": "17:00"}]} for n in range(1, 8)]
    }
    zoned = draft(template_id=tid, send_window=every_day_9_to_5, respect_contact_time_zone=True)
    assert decide(campaign=zoned, row=contact(time_zone="Etc/GMT")) == d.Send("Hi Ann")
    # 02:30 in Etc/GMT+10: the window opens at 09:00 there (19:00 UTC).
    assert decide(campaign=zoned, row=contact(time_zone="Etc/GMT+10")) == d.Defer(
        datetime(2030, 5, 1, 19, 0, tzinfo=UTC)
    )


def test_sequences_and_unsent_rows():
    steps = [d.Step("A", timedelta(0)), d.Step("B", timedelta(hours=3), {"offer": "10%"})]
    drip = draft(type=d.DRIP, steps=steps)
    assert d.step_template(drip, 1) == ("b", {"offer": "10%"})
    assert d.step_template(drip, 2) is None
    assert d.step_template(draft(template_id="T"), 0) == ("t", {})
    assert d.next_step_due(drip, 0, NOW) == NOW + timedelta(hours=3)
    assert d.next_step_due(drip, 1, NOW) is None
    assert d.next_step_due(draft(), 0, NOW) is None
    assert d.unsent_outcome(d.CANCELLED, 1, 5) == (d.SKIPPED, "campaign_cancelled")
    assert d.unsent_outcome(d.COMPLETED, 1, 5) == (d.SKIPPED, "end_time_passed")
    assert d.unsent_outcome(d.RUNNING, 5, 5) == (
        d.FAILED,
        "x_unavailable: gave up after repeated unclear answers",
    )
    assert d.unsent_outcome(d.RUNNING, 4, 5) is None
