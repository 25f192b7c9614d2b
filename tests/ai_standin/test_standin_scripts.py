"""Scripted answers, the admin index and reset."""

from __future__ import annotations

import asyncio
import json

import httpx
from openai import AsyncOpenAI
from standin_fixtures import Admin, user

from mktx_grpc.ai_standin import AIStandinServer


async def test_scripts_answer_in_order_then_fall_back(client: AsyncOpenAI, admin: Admin) -> None:
    admin(
        "POST",
        "/scripts",
        {"scripts": [{"reply": {"content": "first"}}, {"reply": {"content": "second"}}]},
    )
    answers = [
        (await client.chat.completions.create(model="gpt-4o-mini", messages=user("x")))
        .choices[0]
        .message.content
        for _ in range(3)
    ]
    assert answers == ["first", "second", 'Stand-in reply to: "x"']
    assert admin("GET", "/scripts")["data"] == []


async def test_scripts_match_by_substring_and_model(client: AsyncOpenAI, admin: Admin) -> None:
    admin(
        "POST", "/scripts", {"match": {"contains": "REFUND"}, "reply": {"content": "refund script"}}
    )
    admin(
        "POST",
        "/scripts",
        {"match": {"model": "gpt-4o"}, "reply": {"content": "big model"}, "repeat": True},
    )

    async def ask(model: str, text: str) -> str | None:
        resp = await client.chat.completions.create(model=model, messages=user(text))
        return resp.choices[0].message.content

    assert await ask("gpt-4o-mini", "hello") == 'Stand-in reply to: "hello"'
    assert await ask("gpt-4o-mini", "I want a refund please") == "refund script"
    assert await ask("gpt-4o-mini", "another refund") == 'Stand-in reply to: "another refund"'
    assert await ask("gpt-4o", "a") == "big model"
    assert await ask("gpt-4o", "b") == "big model"  # repeat: never used up
    (pending,) = admin("GET", "/scripts")["data"]
    assert pending["used"] == 2 and pending["remaining"] is None


async def test_matching_uses_the_last_user_message_only(client: AsyncOpenAI, admin: Admin) -> None:
    admin("POST", "/scripts", {"match": {"contains": "cancel"}, "reply": {"content": "cancelled"}})
    resp = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "cancel my order"},
            {"role": "assistant", "content": "Which one?"},
            {"role": "user", "content": "the blue one"},
        ],
    )
    assert resp.choices[0].message.content != "cancelled"


async def test_scripted_json_tool_calls_usage_and_times(client: AsyncOpenAI, admin: Admin) -> None:
    admin("POST", "/scripts", {"reply": {"json": {"intent": "refund", "confidence": 0.9}}})
    admin(
        "POST",
        "/scripts",
        {
            "times": 2,
            "reply": {
                "tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "#1"}}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 50},
            },
        },
    )
    first = await client.chat.completions.create(model="gpt-4o-mini", messages=user("x"))
    assert json.loads(first.choices[0].message.content or "") == {
        "intent": "refund",
        "confidence": 0.9,
    }
    for _ in range(2):
        resp = await client.chat.completions.create(model="gpt-4o-mini", messages=user("x"))
        assert resp.choices[0].finish_reason == "tool_calls"
        (call,) = resp.choices[0].message.tool_calls or []
        assert call.function.name == "lookup_order"  # type: ignore[union-attr]
        assert json.loads(call.function.arguments) == {"order_id": "#1"}  # type: ignore[union-attr]
        assert resp.usage is not None
        assert (
            resp.usage.prompt_tokens,
            resp.usage.completion_tokens,
            resp.usage.total_tokens,
        ) == (1000, 50, 1050)
    log = admin("GET", "/requests?route=chat")["data"]
    assert [e["script_id"] is not None for e in log] == [True, True, True]


async def test_scripted_refusal_and_finish_reason(client: AsyncOpenAI, admin: Admin) -> None:
    admin(
        "POST",
        "/scripts",
        {"reply": {"refusal": "I can't help with that.", "finish_reason": "content_filter"}},
    )
    resp = await client.chat.completions.create(model="gpt-4o-mini", messages=user("x"))
    assert resp.choices[0].message.refusal == "I can't help with that."
    assert resp.choices[0].message.content is None
    assert resp.choices[0].finish_reason == "content_filter"


async def test_scripted_latency_holds_only_that_answer(client: AsyncOpenAI, admin: Admin) -> None:
    admin(
        "POST",
        "/scripts",
        {"match": {"contains": "slow"}, "reply": {"content": "late", "latency_ms": 1500}},
    )
    slow = asyncio.ensure_future(
        client.chat.completions.create(model="gpt-4o-mini", messages=user("slow one"))
    )
    fast = await client.chat.completions.create(model="gpt-4o-mini", messages=user("fast one"))
    assert not slow.done()  # the fast answer came back while the slow one was held
    assert (await slow).choices[0].message.content == "late"
    assert fast.choices[0].message.content == 'Stand-in reply to: "fast one"'


async def test_bad_scripts_are_rejected_and_nothing_is_queued(admin: Admin) -> None:
    admin("POST", "/scripts", {"reply": {}}, expect=400)
    admin("POST", "/scripts", {"reply": {"content": 5}}, expect=400)
    admin("POST", "/scripts", {"reply": {"content": "a", "json": {}}}, expect=400)
    admin("POST", "/scripts", {"reply": {"contents": "typo"}}, expect=400)
    admin("POST", "/scripts", {"reply": {"tool_calls": [{"arguments": {}}]}}, expect=400)
    admin("POST", "/scripts", {"route": "images", "reply": {"content": "a"}}, expect=400)
    admin("POST", "/scripts", {"match": {"regex": "a"}, "reply": {"content": "a"}}, expect=400)
    admin(
        "POST", "/scripts", {"scripts": [{"reply": {"content": "ok"}}, {"reply": {}}]}, expect=400
    )
    assert admin("GET", "/scripts")["data"] == []


async def test_admin_index_lists_itself(standin: AIStandinServer) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.get(f"{standin.base_url}/_standin")
    assert resp.status_code == 200
    routes = {(r["method"], r["path"]) for r in resp.json()["routes"]}
    for expected in [
        ("GET", "/_standin"),
        ("POST", "/_standin/scripts"),
        ("POST", "/_standin/faults"),
        ("GET", "/_standin/requests"),
        ("POST", "/_standin/config"),
        ("POST", "/_standin/reset"),
    ]:
        assert expected in routes
    assert all(r["description"] for r in resp.json()["routes"])


async def test_reset_clears_scripts_faults_log_and_config(
    client: AsyncOpenAI, admin: Admin
) -> None:
    admin("POST", "/scripts", {"reply": {"content": "scripted"}})
    admin("POST", "/faults", {"kind": "latency", "latency_ms": 5})
    admin("POST", "/config", {"models": [{"id": "temp-model"}]})
    await client.chat.completions.create(model="gpt-4o-mini", messages=user("x"))
    admin("POST", "/reset")
    assert admin("GET", "/scripts")["data"] == []
    assert admin("GET", "/faults")["data"] == []
    assert admin("GET", "/requests")["data"] == []
    assert "temp-model" not in [m["id"] for m in admin("GET", "/config")["models"]]
    resp = await client.chat.completions.create(model="gpt-4o-mini", messages=user("x"))
    assert resp.choices[0].message.content == 'Stand-in reply to: "x"'
