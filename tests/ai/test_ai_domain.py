"""domain/ai.py without I/O: the output schema and its validation, slots, sessions,
escalation rules, keywords, the reply extractor used for streaming, the budget."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from mktx_grpc.domain import ai as d

BOOK = d.IntentDef(
    "book_table",
    slots=(d.SlotDef("date", "date"), d.SlotDef("party_size", "number")),
)
SETTINGS = d.Settings(enabled=True, intents=(BOOK, d.IntentDef("talk")), handoff_intents=("talk",))
NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


def _answer(**kw) -> str:
    base = {
        "intent": "book_table",
        "confidence": 0.9,
        "slots": {"date": None, "party_size": None},
        "missing_slots": [],
        "reply": "Sure!",
        "escalate": False,
    }
    base.update(kw)
    return json.dumps(base)


def test_schema_is_strict_and_answers_validate():
    schema = d.output_schema(SETTINGS)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"])
    assert schema["properties"]["slots"]["required"] == ["date", "party_size"]
    a = d.parse_answer(_answer(slots={"date": "2030-01-02", "party_size": None}), schema)
    assert a.intent == "book_table" and a.slots == {"date": "2030-01-02"}
    assert d.parse_answer(_answer(intent="other"), schema).intent is None


@pytest.mark.parametrize(
    "content",
    [
        None,
        "",
        "{not json",
        _answer(confidence=1.5),
        _answer(intent="unknown_intent"),
        _answer(reply=7),
        _answer(extra="field"),
        _answer(reply="nul\x00"),
        _answer(reply="x" * 10_001),
        json.dumps({"intent": "book_table"}),
    ],
)
def test_malformed_answers_are_refused(content):
    with pytest.raises(d.MalformedOutput):
        d.parse_answer(content, d.output_schema(SETTINGS))


def test_slots_are_typed_and_only_declared_ones_kept():
    merged = d.merge_slots(
        SETTINGS,
        {"date": "2030-01-02"},
        {"party_size": "4", "date": "not a date", "undeclared": "x"},
    )
    assert merged == {"date": "2030-01-02", "party_size": "4"}
    assert d.normalise_slot("date", "2030-02-30") is None
    assert d.normalise_slot("email", "ann@example.com") == "ann@example.com"
    assert d.normalise_slot("order_id", "#4321") == "#4321"
    assert d.normalise_slot("number", "four") is None
    assert d.missing_slots(BOOK, {"date": "2030-01-02"}) == ("party_size",)
    assert d.ask_for(BOOK, "party_size") == "Could you tell me the party size?"


def test_expired_session_starts_fresh_keeping_valid_slots():
    s = d.Session(
        context=(d.ContextItem("user", "hi", NOW),),
        current_intent="book_table",
        missing_slots=("party_size",),
        slots={"date": "2030-01-02", "gone": "x", "party_size": "many"},
        started_at=NOW - timedelta(hours=1),
        expires_at=NOW - timedelta(seconds=1),
    )
    fresh = d.fresh_if_expired(s, SETTINGS, NOW)
    assert fresh.context == () and fresh.current_intent == "" and fresh.started_at == NOW
    assert dict(fresh.slots) == {"date": "2030-01-02"}
    live = d.Session(started_at=NOW, expires_at=NOW + timedelta(minutes=5))
    assert d.fresh_if_expired(live, SETTINGS, NOW) is live


def test_context_is_capped_at_ten_items():
    items = [d.ContextItem("user", str(i), NOW) for i in range(25)]
    assert [i.text for i in d.trim_context(items)] == [str(i) for i in range(15, 25)]
    msgs = d.build_messages(
        SETTINGS, contact={"name": "Ann"}, context=items, text="new", known_slots={}, today=NOW
    )
    assert msgs[0]["role"] == "system" and "<intents>" in msgs[0]["content"]
    assert len(msgs) == 1 + d.MAX_CONTEXT_ITEMS  # system + 9 context items + the new one
    assert msgs[-1] == {"role": "user", "content": "new"}


def test_escalation_rules_in_order():
    a = d.Answer("talk", 0.1, {}, "x", False)
    assert d.decide(SETTINGS, a).reason == d.HUMAN_REQUESTED
    assert d.decide(SETTINGS, d.Answer(None, 0.3, {}, "x", True)).reason == d.LOW_CONFIDENCE
    assert d.decide(SETTINGS, d.Answer("book_table", 0.9, {}, "x", True)).reason == d.CANNOT_ANSWER
    assert d.decide(SETTINGS, d.Answer("book_table", 0.9, {}, "", False)).reason == d.CANNOT_ANSWER
    assert not d.decide(SETTINGS, d.Answer("book_table", 0.6, {}, "ok", False)).escalate
    never = d.Settings(escalation_threshold=0.0)
    assert not d.decide(never, d.Answer("question", 0.0, {}, "ok", False)).escalate


def test_keywords_match_words_case_insensitively():
    s = d.Settings(escalation_keywords=("refund", "speak to manager"))
    assert d.keyword_in(s, "I want a REFUND!") == "refund"
    assert d.keyword_in(s, "can I Speak to Manager please") == "speak to manager"
    assert d.keyword_in(s, "was it refunded?") is None
    assert d.keyword_in(d.Settings(), "refund") is None


def test_slot_answer_continues_the_sessions_intent():
    s = d.Session(current_intent="book_table", missing_slots=("party_size",))
    low = d.Answer(None, 0.05, {"party_size": "4"}, "", False)
    cont = d.continue_intent(s, low, {"party_size": "4"})
    assert cont.intent == "book_table" and cont.confidence >= 0.99
    other = d.Answer("talk", 0.9, {}, "", False)
    assert d.continue_intent(s, other, {"party_size": "4"}) is other


def test_reply_extractor_relays_the_reply_as_it_streams():
    content = json.dumps(
        {"intent": "x", "reply": 'Hi "Ann" \u00e9\\ — ok\nthere', "escalate": False},
        ensure_ascii=True,
    )
    ex = d.ReplyExtractor()
    out = "".join(ex.feed(content[i : i + 3]) for i in range(0, len(content), 3))
    assert out == 'Hi "Ann" \u00e9\\ — ok\nthere'
    assert d.ReplyExtractor().feed('{"intent": "x"}') == ""


def test_budget_and_midnight():
    s = d.Settings(daily_token_budget=100)
    assert not d.budget_spent(s, 99) and d.budget_spent(s, 100)
    assert not d.budget_spent(d.Settings(), 10**9)
    assert d.next_utc_midnight(datetime(2026, 3, 9, 23, 59, tzinfo=UTC)) == datetime(
        2026, 3, 10, tzinfo=UTC
    )


def test_template_summary_is_three_lines():
    text = d.template_summary(
        intent="book_table", confidence=0.4, slots={"date": "2030-01-02"}, text="hm", reason="X_Y"
    )
    assert len(text.splitlines()) == 3 and "date=2030-01-02" in text
    assert d.clean_summary("a\n\nb\nc\nd") == "a\nb\nc"
    assert d.clean_summary("  ") is None
