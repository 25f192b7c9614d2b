"""Intent routing and slot extraction with no script: the convention in
mktx_grpc.ai_standin.intents, driven over HTTP as the AI client will drive it."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openai import AsyncOpenAI
from standin_fixtures import Admin

from mktx_grpc.ai_standin.intents import SlotSpec, extract_slots, parse_context, similarity

INTENTS = [
    {
        "name": "order_status",
        "description": "Customer asks where their order is",
        "examples": ["where is my order", "has my parcel shipped yet", "track my order"],
        "slots": [{"name": "order_id", "type": "order_id"}],
    },
    {
        "name": "refund",
        "description": "Customer wants their money back",
        "examples": ["I want a refund", "can I get my money back", "return this for a refund"],
        "slots": [
            {"name": "order_id", "type": "order_id"},
            {"name": "reason", "type": "text"},
            {"name": "email", "type": "email", "required": False},
        ],
    },
    {
        "name": "book_table",
        "examples": ["book a table for four", "reserve a table tomorrow"],
        "slots": [
            {"name": "party_size", "type": "number"},
            {"name": "date", "type": "date"},
            {"name": "phone", "type": "phone", "required": False},
        ],
    },
    {"name": "talk_to_human", "examples": ["can I speak to a person", "get me a human agent"]},
]
SYSTEM = (
    "You are the shop's assistant.\n"
    f"<intents>{json.dumps(INTENTS)}</intents>\n"
    '<handoff_intents>["talk_to_human"]</handoff_intents>\n'
    "<today>2025-03-14</today>"
)
RESULT = {
    "type": "object",
    "properties": {
        "intent": {"type": ["string", "null"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "slots": {"type": "object"},
        "missing_slots": {"type": "array", "items": {"type": "string"}},
        "reply": {"type": "string"},
        "escalate": {"type": "boolean"},
        "summary": {"type": "string"},
    },
    "required": ["intent", "confidence", "slots", "missing_slots", "reply", "escalate", "summary"],
    "additionalProperties": False,
}


async def route(client: AsyncOpenAI, *turns: str, system: str = SYSTEM) -> dict[str, Any]:
    messages: list[Any] = [{"role": "system", "content": system}]
    for i, text in enumerate(turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    resp = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        response_format={
            "type": "json_schema",
            # Not strict: strict mode forbids the free-form "slots" object used here.
            "json_schema": {"name": "routing", "schema": RESULT},
        },
    )
    value = json.loads(resp.choices[0].message.content or "")
    assert Draft202012Validator(RESULT).is_valid(value)
    return value


@pytest.mark.parametrize(
    ("message", "intent"),
    [
        ("Where is my order #1234?", "order_status"),
        ("hi, has my parcel shipped yet? it's A-5521", "order_status"),
        ("Can I get my money back? Order #9981 arrived broken", "refund"),
        ("Please book a table for 4 tomorrow", "book_table"),
        ("Can I speak to a real person please", "talk_to_human"),
    ],
)
async def test_messages_route_to_their_intent(
    client: AsyncOpenAI, message: str, intent: str
) -> None:
    result = await route(client, message)
    assert result["intent"] == intent
    assert result["confidence"] >= 0.5


async def test_near_copy_of_an_example_is_confident(client: AsyncOpenAI) -> None:
    result = await route(client, "Where is my order?")
    assert result["confidence"] > 0.9


@pytest.mark.parametrize(
    "message", ["What's the weather like in Paris?", "I love your new logo", "banana"]
)
async def test_unrelated_text_is_low_confidence_and_escalates(
    client: AsyncOpenAI, message: str
) -> None:
    result = await route(client, message)
    assert result["confidence"] < 0.2
    assert result["intent"] is None
    assert result["escalate"] is True


async def test_handoff_intent_escalates(client: AsyncOpenAI) -> None:
    result = await route(client, "get me a human agent now")
    assert (result["intent"], result["escalate"]) == ("talk_to_human", True)


async def test_missing_required_slot_is_asked_for(client: AsyncOpenAI) -> None:
    result = await route(client, "where is my order")
    assert result["escalate"] is False
    assert result["missing_slots"] == ["order_id"]
    assert result["reply"] == "Could you tell me the order id?"


async def test_complete_slots_are_confirmed(client: AsyncOpenAI) -> None:
    result = await route(
        client, "book a table for 6 people on March 20, call me on +44 7700 900123"
    )
    assert result["intent"] == "book_table"
    assert result["slots"] == {"party_size": 6, "date": "2025-03-20", "phone": "+447700900123"}
    assert result["missing_slots"] == []
    assert result["reply"].startswith("Thanks")


async def test_an_answer_to_the_assistants_question_continues_the_intent(
    client: AsyncOpenAI,
) -> None:
    result = await route(
        client,
        "I want a refund for #4321",
        "Could you tell me the reason?",
        "It was the wrong size",
    )
    assert result["intent"] == "refund"
    assert result["slots"] == {"order_id": "#4321", "reason": "It was the wrong size"}
    assert result["missing_slots"] == []


async def test_known_slots_block_fills_gaps(client: AsyncOpenAI) -> None:
    system = SYSTEM + '\n<slots>{"order_id": "#2222", "email": "ann@example.com"}</slots>'
    result = await route(client, "I want a refund because it is too small", system=system)
    assert result["slots"] == {
        "order_id": "#2222",
        "reason": "it is too small",
        "email": "ann@example.com",
    }


async def test_plain_text_reply_without_a_schema(client: AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "where's my order?"},
        ],
    )
    assert resp.choices[0].message.content == "Could you tell me the order id?"


async def test_summarize_marker_returns_a_short_handoff_summary(client: AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": SYSTEM + "\n<summarize/> Summarise for the agent."},
            {"role": "user", "content": "I want a refund for order #77"},
            {"role": "assistant", "content": "Could you tell me the reason?"},
            {"role": "user", "content": "it arrived broken, and I want to talk to a person"},
        ],
    )
    lines = (resp.choices[0].message.content or "").splitlines()
    assert 2 <= len(lines) <= 3
    assert lines[0].startswith("Customer intent:")
    assert "#77" in resp.choices[0].message.content  # type: ignore[operator]
    assert "talk to a person" in lines[-1]


async def test_malformed_block_is_logged_and_answered(client: AsyncOpenAI, admin: Admin) -> None:
    result = await route(client, "where is my order", system="<intents>[{not json</intents>")
    assert result["intent"] is None
    (entry,) = admin("GET", "/requests?route=chat")["data"]
    assert entry["analysis"]["reason"] == "no_intents"
    assert entry["problems"] and entry["problems"][0].startswith("<intents> is not valid JSON")


# -- the pure pieces -------------------------------------------------------------------

TODAY = date(2025, 3, 14)  # a Friday


@pytest.mark.parametrize(
    ("text", "slots", "expected"),
    [
        ("order #1234 please", [SlotSpec("id", "order_id")], {"id": "#1234"}),
        ("it's a-5521", [SlotSpec("id", "order_id")], {"id": "A-5521"}),
        ("order number 998877", [SlotSpec("id", "order_id")], {"id": "998877"}),
        (
            "mail me at Ann.Lee+x@shop.co.uk",
            [SlotSpec("e", "email")],
            {"e": "Ann.Lee+x@shop.co.uk"},
        ),
        ("call +1 (555) 010-9999 now", [SlotSpec("p", "phone")], {"p": "+15550109999"}),
        ("on 2025-04-01", [SlotSpec("d", "date")], {"d": "2025-04-01"}),
        ("on 3/4/2025", [SlotSpec("d", "date")], {"d": "2025-03-04"}),
        ("on 25/4/2025", [SlotSpec("d", "date")], {"d": "2025-04-25"}),
        ("the 5th of May", [SlotSpec("d", "date")], {"d": "2025-05-05"}),
        ("tomorrow", [SlotSpec("d", "date")], {"d": "2025-03-15"}),
        ("next monday", [SlotSpec("d", "date")], {"d": "2025-03-17"}),
        ("on Feb 31", [SlotSpec("d", "date")], {}),
        ("for three people", [SlotSpec("n", "number")], {"n": 3}),
        ("2.5 kg", [SlotSpec("n", "number")], {"n": 2.5}),
        # An order id's digits are not a number slot's value.
        (
            "#4455 x 2",
            [SlotSpec("id", "order_id"), SlotSpec("q", "number")],
            {"id": "#4455", "q": 2},
        ),
        (
            "from 2025-01-02 to 2025-01-09",
            [SlotSpec("a", "date"), SlotSpec("b", "date")],
            {"a": "2025-01-02", "b": "2025-01-09"},
        ),
        (
            "in Large please",
            [SlotSpec("size", "choice", values=("Small", "Large"))],
            {"size": "Large"},
        ),
        (
            "refund because the zip broke. thanks",
            [SlotSpec("reason", "text")],
            {"reason": "the zip broke"},
        ),
        ("my reason is: too big", [SlotSpec("reason", "text")], {"reason": "too big"}),
        (
            "gift note: happy birthday!",
            [SlotSpec("note", "text", cues=("gift note",))],
            {"note": "happy birthday"},
        ),
        ("nothing here", [SlotSpec("n", "number"), SlotSpec("e", "email")], {}),
    ],
)
def test_slot_extractors(text: str, slots: list[SlotSpec], expected: dict[str, Any]) -> None:
    assert extract_slots(text, slots, today=TODAY) == expected


def test_similarity_bounds() -> None:
    assert similarity("Where is my order?", "where is my order") == pytest.approx(1.0)
    assert similarity("where is my order", "the weather in Paris") < 0.1
    assert similarity("", "anything") == 0.0
    assert 0.0 <= similarity("order refund parcel", "parcel") <= 1.0


def test_parse_context_tolerates_bad_blocks() -> None:
    ctx = parse_context(
        '<INTENTS>[{"name": "a", "slots": [{"type": "number"}, "qty"]}, {}]</INTENTS>'
        "<confidence_floor>high</confidence_floor><today>soon</today><handoff_intents>{</handoff_intents>"
    )
    assert [i.name for i in ctx.intents] == ["a"]
    assert [s.name for s in ctx.intents[0].slots] == ["qty"]
    assert len(ctx.problems) == 5
    assert ctx.floor == 0.4 and ctx.today is None and not ctx.summarize
