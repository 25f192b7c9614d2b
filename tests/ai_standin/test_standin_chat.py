"""Chat completions: the response shape, usage, limits and OpenAI's 400/404 errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from standin_fixtures import Admin, user

from mktx_grpc.ai_standin import AIStandinServer
from mktx_grpc.ai_standin.tokens import count_message_tokens, count_tokens


async def test_plain_completion_has_openai_shape_and_deterministic_usage(
    client: AsyncOpenAI,
) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Hello there, shop!"},
    ]
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, temperature=0.2, user="merchant-7"
    )
    resp = raw.parse()
    assert resp.object == "chat.completion"
    assert resp.id.startswith("chatcmpl-")
    assert resp.model == "gpt-4o-mini"
    assert resp.created > 0
    (choice,) = resp.choices
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == 'Stand-in reply to: "Hello there, shop!"'
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == count_message_tokens(messages)
    assert resp.usage.completion_tokens == count_tokens(choice.message.content)
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["x-ratelimit-remaining-requests"]) > 0
    again = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert again.usage == resp.usage
    assert again.choices[0].message.content == choice.message.content


async def test_content_parts_and_developer_role_are_accepted(client: AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            },
        ],
    )
    assert resp.choices[0].message.content == 'Stand-in reply to: "What is this?"'


async def test_max_tokens_truncates_with_finish_reason_length(client: AsyncOpenAI) -> None:
    for param in ("max_tokens", "max_completion_tokens"):
        resp = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=user("please repeat this rather long sentence back to me"),
            **{param: 3},  # type: ignore[arg-type]
        )
        assert resp.choices[0].finish_reason == "length"
        assert resp.usage is not None and resp.usage.completion_tokens == 3
        assert resp.choices[0].message.content == "Stand-in"  # Stand, -, in


async def test_stop_sequence_cuts_the_content(client: AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(
        model="gpt-4o-mini", messages=user("alpha beta"), stop=[" beta"]
    )
    assert resp.choices[0].message.content == 'Stand-in reply to: "alpha'
    assert resp.choices[0].finish_reason == "stop"


async def test_n_other_than_one_is_rejected(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"), n=2)
    assert err.value.status_code == 400
    assert err.value.param == "n"
    assert err.value.code == "unsupported_value"
    assert err.value.type == "invalid_request_error"
    ok = await client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"), n=1)
    assert len(ok.choices) == 1


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model", "missing_required_parameter"),
        ({"model": "gpt-4o-mini"}, "messages", "missing_required_parameter"),
        ({"model": "gpt-4o-mini", "messages": []}, "messages", "empty_array"),
        ({"model": "gpt-4o-mini", "messages": "hi"}, "messages", "invalid_type"),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
            "invalid_value",
        ),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "user"}]},
            "messages[0].content",
            "missing_required_parameter",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "temperature": 3,
            },
            "temperature",
            "decimal_above_max_value",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "temperature": "hot",
            },
            "temperature",
            "invalid_type",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "max_tokens": 0,
            },
            "max_tokens",
            "integer_below_min_value",
        ),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "bogus": 1},
            "bogus",
            None,
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "stream_options": {"include_usage": True},
            },
            "stream_options",
            None,
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "tool", "tool_call_id": "call_1", "content": "42"},
                ],
            },
            "messages[1].role",
            None,
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ],
                    },
                    {"role": "user", "content": "and?"},
                ],
            },
            "messages[1].role",
            None,
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_object"},
            },
            "messages",
            None,
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "x"}],
                "tool_choice": "auto",
            },
            "tool_choice",
            None,
        ),
    ],
)
async def test_bad_requests_get_400_naming_the_param(
    standin: AIStandinServer, body: dict[str, Any], param: str, code: str | None
) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{standin.openai_base_url}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {standin.api_key}"},
        )
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] == code
    assert error["message"]


async def test_body_that_is_not_json_is_a_400(standin: AIStandinServer) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{standin.openai_base_url}/chat/completions",
            content=b"{not json",
            headers={"Authorization": f"Bearer {standin.api_key}"},
        )
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"


async def test_unknown_model_is_404_model_not_found(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        await client.chat.completions.create(model="gpt-9-turbo", messages=user("hi"))
    assert err.value.code == "model_not_found"
    assert "gpt-9-turbo" in err.value.message
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="text-embedding-3-small", messages=user("hi"))


async def test_json_object_mode_answers_json(client: AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": "hello"},
        ],
        response_format={"type": "json_object"},
    )
    body = json.loads(resp.choices[0].message.content or "")
    assert isinstance(body, dict)
    assert body["reply"] == 'Stand-in reply to: "hello"'
    assert body["escalate"] is False


async def test_models_list_and_get(client: AsyncOpenAI, admin: Admin) -> None:
    ids = [m.id async for m in client.models.list()]
    assert {"gpt-4o-mini", "text-embedding-3-small", "omni-moderation-latest"} <= set(ids)
    model = await client.models.retrieve("gpt-4o")
    assert (model.id, model.object) == ("gpt-4o", "model")
    with pytest.raises(openai.NotFoundError) as err:
        await client.models.retrieve("nope")
    assert err.value.code == "model_not_found"
    admin("POST", "/config", {"models": [{"id": "merchant-tuned", "kind": "chat"}]})
    resp = await client.chat.completions.create(model="merchant-tuned", messages=user("hi"))
    assert resp.model == "merchant-tuned"
    assert "merchant-tuned" in [m.id async for m in client.models.list()]


async def test_request_log_records_the_prompt_but_not_the_key(
    client: AsyncOpenAI, admin: Admin, standin: AIStandinServer
) -> None:
    await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You are the shop assistant."},
            {"role": "user", "content": "where is my parcel"},
        ],
        user="customer-42",
    )
    (entry,) = admin("GET", "/requests?route=chat")["data"]
    assert entry["status"] == 200
    assert entry["model"] == "gpt-4o-mini"
    assert entry["user"] == "customer-42"
    assert entry["body"]["messages"][0]["content"] == "You are the shop assistant."
    assert standin.api_key not in str(entry)
    admin("DELETE", "/requests")
    assert admin("GET", "/requests")["data"] == []
