"""Structured output and tool calls: answers validate against the caller's schema."""

from __future__ import annotations

import json
from typing import Any, Literal

import openai
import pytest
from jsonschema import Draft202012Validator
from openai import AsyncOpenAI
from pydantic import BaseModel
from standin_fixtures import user

INTENTS_PROMPT = """You route customer messages.
<intents>
[{"name": "order_status", "examples": ["where is my order", "has my parcel shipped"],
  "slots": [{"name": "order_id", "type": "order_id"}]},
 {"name": "refund", "examples": ["I want a refund", "can I get my money back"],
  "slots": [{"name": "order_id", "type": "order_id"}, {"name": "reason", "type": "text"}]}]
</intents>"""


class Slot(BaseModel):
    name: str
    value: str | None


class Triage(BaseModel):
    intent: Literal["order_status", "refund", "unknown"]
    confidence: float
    slots: list[Slot]
    reply: str
    escalate: bool
    priority: int
    note: str | None


async def test_parse_with_a_pydantic_model(client: AsyncOpenAI) -> None:
    resp = await client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": INTENTS_PROMPT},
            {"role": "user", "content": "where is my order #1234?"},
        ],
        response_format=Triage,
    )
    triage = resp.choices[0].message.parsed
    assert triage is not None
    assert triage.intent == "order_status"
    assert triage.confidence > 0.8
    assert triage.slots == [Slot(name="order_id", value="#1234")]
    assert triage.escalate is False
    assert "order status" in triage.reply
    assert triage.note is None
    assert triage.priority == 0


SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": ["refund", "other"]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "order_id": {"type": ["string", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "count": {"type": "integer", "minimum": 3, "maximum": 9},
            "when": {"type": "string", "format": "date"},
            "code": {"type": "string", "minLength": 4, "maxLength": 6},
            "choice": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]},
            "fixed": {"const": "v1"},
        },
        "required": [
            "intent",
            "confidence",
            "order_id",
            "tags",
            "count",
            "when",
            "code",
            "choice",
            "fixed",
        ],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["label", "children"],
                "additionalProperties": False,
            }
        },
        "properties": {"tree": {"$ref": "#/$defs/node"}, "summary": {"type": "string"}},
        "required": ["tree", "summary"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "escalate": {"type": "boolean"},
            "slots": {
                "type": "object",
                "properties": {
                    "order_id": {"type": "string"},
                    "reason": {"type": ["string", "null"]},
                },
                "required": ["order_id", "reason"],
                "additionalProperties": False,
            },
            "meta": {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
                ]
            },
        },
        "required": ["escalate", "slots", "meta"],
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
async def test_json_schema_answers_validate(client: AsyncOpenAI, schema: dict[str, Any]) -> None:
    resp = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": INTENTS_PROMPT},
            {"role": "user", "content": "I want a refund for order #777 because it broke"},
        ],
        response_format={"type": "json_schema", "json_schema": {"name": "out", "schema": schema}},
    )
    value = json.loads(resp.choices[0].message.content or "")
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
    assert errors == []
    if "intent" in value:
        assert value["intent"] == "refund"
    if "slots" in value:
        assert value["slots"] == {"order_id": "#777", "reason": "it broke"}
    if "order_id" in value:
        assert value["order_id"] == "#777"


async def test_strict_schema_rules_are_enforced(client: AsyncOpenAI) -> None:
    loose = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=user("hi"),
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "loose", "schema": loose, "strict": True},
            },
        )
    assert err.value.param == "response_format"
    assert "Missing 'b'" in err.value.message
    open_object = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    with pytest.raises(openai.BadRequestError) as err2:
        await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=user("hi"),
            tools=[
                {
                    "type": "function",
                    "function": {"name": "f", "parameters": open_object, "strict": True},
                }
            ],
        )
    assert err2.value.param == "tools[0].function.parameters"
    assert "additionalProperties" in err2.value.message
    # Without strict the same schemas are accepted.
    ok = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("hi"),
        response_format={"type": "json_schema", "json_schema": {"name": "loose", "schema": loose}},
    )
    assert Draft202012Validator(loose).is_valid(json.loads(ok.choices[0].message.content or ""))


async def test_schema_verdicts_follow_the_schema_content(client: AsyncOpenAI) -> None:
    """Schema checks are remembered per schema content: a refused schema is refused
    again, and a schema with other content gets its own verdict."""

    def schema(first: str, second: str) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {first: {"type": "string"}, second: {"type": "string"}},
            "required": [first],
            "additionalProperties": False,
        }

    async def complaint(value: dict[str, Any]) -> str:
        with pytest.raises(openai.BadRequestError) as err:
            await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=user("hi"),
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "s", "schema": value, "strict": True},
                },
            )
        return err.value.message

    assert "Missing 'b'" in await complaint(schema("a", "b"))
    assert "Missing 'b'" in await complaint(schema("a", "b"))
    assert "Missing 'a'" in await complaint(schema("b", "a"))
    fixed = {**schema("a", "b"), "required": ["a", "b"]}
    ok = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("hi"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "s", "schema": fixed, "strict": True},
        },
    )
    assert Draft202012Validator(fixed).is_valid(json.loads(ok.choices[0].message.content or ""))


async def test_invalid_schema_and_name_are_400(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=user("hi"),
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "objekt"}},
            },
        )
    assert err.value.param == "response_format"
    with pytest.raises(openai.BadRequestError) as err2:
        await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=user("hi"),
            response_format={"type": "json_schema", "json_schema": {"name": "has space"}},
        )
    assert err2.value.param == "response_format.json_schema.name"


BOOK = {
    "type": "function",
    "function": {
        "name": "book_table",
        "description": "Reserve a table at the restaurant",
        "parameters": {
            "type": "object",
            "properties": {
                "party_size": {"type": "integer", "minimum": 1},
                "date": {"type": "string"},
                "notes": {"type": ["string", "null"]},
            },
            "required": ["party_size", "date", "notes"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
BOOKING_PROMPT = """<today>2025-03-14</today><intents>[{"name": "book_table",
"examples": ["book a table", "reserve a table for dinner"],
"slots": [{"name": "party_size", "type": "number"}, {"name": "date", "type": "date"}]}]</intents>"""


async def test_auto_tool_choice_calls_the_fitting_tool_with_valid_arguments(
    client: AsyncOpenAI,
) -> None:
    resp = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": BOOKING_PROMPT},
            {"role": "user", "content": "Can you book a table for 4 tomorrow?"},
        ],
        tools=[WEATHER, BOOK],  # type: ignore[list-item]
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call")
    assert call.function.name == "book_table"  # type: ignore[union-attr]
    args = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert Draft202012Validator(BOOK["function"]["parameters"]).is_valid(args)  # type: ignore[index]
    assert args == {"party_size": 4, "date": "2025-03-15", "notes": None}


async def test_auto_tool_choice_answers_in_text_when_no_tool_fits(client: AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("I love your logo"),
        tools=[WEATHER, BOOK],  # type: ignore[list-item]
    )
    assert resp.choices[0].finish_reason == "stop"
    assert resp.choices[0].message.tool_calls is None
    assert resp.choices[0].message.content


async def test_named_required_and_none_tool_choice(client: AsyncOpenAI) -> None:
    named = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("I love your logo"),
        tools=[WEATHER, BOOK],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    (call,) = named.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert Draft202012Validator(WEATHER["function"]["parameters"]).is_valid(  # type: ignore[index]
        json.loads(call.function.arguments)  # type: ignore[union-attr]
    )
    required = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("I love your logo"),
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
    )
    assert required.choices[0].finish_reason == "tool_calls"
    none = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("book a table for two"),
        tools=[BOOK],  # type: ignore[list-item]
        tool_choice="none",
    )
    assert none.choices[0].message.tool_calls is None
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=user("hi"),
            tools=[BOOK],  # type: ignore[list-item]
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )
    assert err.value.param == "tool_choice"


async def test_after_a_tool_result_the_answer_is_text(client: AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "book a table for two"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "book_table", "arguments": '{"party_size": 2}'},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "content": '{"booked": true, "ref": "T-19"}',
            },
        ],
        tools=[BOOK],  # type: ignore[list-item]
    )
    assert resp.choices[0].finish_reason == "stop"
    assert resp.choices[0].message.content == 'book_table returned: {"booked": true, "ref": "T-19"}'
