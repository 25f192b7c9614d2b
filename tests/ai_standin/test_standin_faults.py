"""Fault modes: 5xx, 429 with OpenAI's headers, timeouts, malformed JSON, schema
mismatches, slow streams and latency that does not block other requests."""

from __future__ import annotations

import asyncio
import json
import time

import httpx2
import openai
import pytest
from jsonschema import Draft202012Validator
from openai import AsyncOpenAI
from standin_fixtures import Admin, user

from mktx_grpc.ai_standin import AIStandinServer

SCHEMA = {
    "type": "object",
    "properties": {"intent": {"type": "string"}, "escalate": {"type": "boolean"}},
    "required": ["intent", "escalate"],
    "additionalProperties": False,
}


async def test_error_fault_fails_count_times_then_recovers(
    client: AsyncOpenAI, admin: Admin
) -> None:
    admin("POST", "/faults", {"kind": "error", "count": 2, "status": 503})
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as err:
            await client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
        assert err.value.status_code == 503
        assert err.value.type == "server_error"
    ok = await client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
    assert ok.choices[0].message.content
    (rule,) = admin("GET", "/faults")["data"]
    assert rule["fired"] == 2


async def test_openai_client_retries_through_a_500(standin: AIStandinServer, admin: Admin) -> None:
    admin("POST", "/faults", {"kind": "error", "count": 1})
    async with standin.client(max_retries=2) as retrying:
        ok = await retrying.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
    assert ok.choices[0].finish_reason == "stop"
    statuses = [e["status"] for e in admin("GET", "/requests?route=chat")["data"]]
    assert statuses == [500, 200]


async def test_rate_limit_fault_carries_retry_after_and_ratelimit_headers(
    client: AsyncOpenAI, admin: Admin
) -> None:
    admin("POST", "/faults", {"kind": "rate_limit", "count": 1, "retry_after": 7})
    with pytest.raises(openai.RateLimitError) as err:
        await client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
    assert err.value.status_code == 429
    assert err.value.code == "rate_limit_exceeded"
    headers = err.value.response.headers
    assert headers["retry-after"] == "7"
    assert headers["retry-after-ms"] == "7000"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "7s"
    assert int(headers["x-ratelimit-limit-requests"]) > 0
    assert "x-ratelimit-limit-tokens" in headers
    admin("POST", "/faults", {"kind": "rate_limit", "count": 1, "quota": True})
    with pytest.raises(openai.RateLimitError) as quota:
        await client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
    assert quota.value.code == "insufficient_quota"


async def test_faults_can_target_one_route(client: AsyncOpenAI, admin: Admin) -> None:
    admin("POST", "/faults", {"kind": "error", "route": "embeddings"})
    assert (await client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))).id
    assert (await client.moderations.create(input="hello")).results
    for _ in range(3):  # no count: every time
        with pytest.raises(openai.InternalServerError):
            await client.embeddings.create(model="text-embedding-3-small", input="hi")
    admin("DELETE", "/faults")
    assert (await client.embeddings.create(model="text-embedding-3-small", input="hi")).data


async def test_probability_faults_are_seeded_and_repeatable(
    client: AsyncOpenAI, admin: Admin
) -> None:
    async def run() -> list[bool]:
        admin("POST", "/faults", {"kind": "error", "probability": 0.5})
        outcomes = []
        for _ in range(20):
            try:
                await client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
                outcomes.append(True)
            except openai.InternalServerError:
                outcomes.append(False)
        admin("POST", "/reset")
        return outcomes

    first = await run()
    assert 0 < first.count(False) < 20
    assert await run() == first


async def test_timeout_fault_hangs_past_the_client_timeout(
    standin: AIStandinServer, admin: Admin
) -> None:
    admin("POST", "/faults", {"kind": "timeout", "count": 1})
    async with standin.client(timeout=0.5) as impatient:
        with pytest.raises(openai.APITimeoutError):
            await impatient.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
        # The hung request let go when the client did; the next one is answered.
        ok = await impatient.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
    assert ok.choices[0].message.content
    # The stand-in notices the disconnect on its next poll (every 50 ms); under load
    # the second answer can come first, so allow it a bounded moment to let go.
    give_up = time.monotonic() + 5.0
    while admin("GET", "/stats")["in_flight"] != 0 and time.monotonic() < give_up:
        await asyncio.sleep(0.05)
    assert admin("GET", "/stats")["in_flight"] == 0


async def test_malformed_json_body(client: AsyncOpenAI, admin: Admin) -> None:
    admin("POST", "/faults", {"kind": "malformed_json", "count": 1, "route": "chat"})
    with pytest.raises(json.JSONDecodeError):
        await client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
    admin("POST", "/faults", {"kind": "malformed_json", "count": 1})
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=user("hi"), stream=True
    )
    with pytest.raises(json.JSONDecodeError):
        async for _ in stream:
            pass
    admin("POST", "/faults", {"kind": "malformed_json", "count": 1})
    with pytest.raises(json.JSONDecodeError):
        await client.embeddings.create(model="text-embedding-3-small", input="hi")
    ok = await client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
    assert ok.choices[0].message.content


async def test_schema_mismatch_fault_breaks_structured_output(
    client: AsyncOpenAI, admin: Admin
) -> None:
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "triage", "schema": SCHEMA, "strict": True},
    }
    good = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("hi"),
        response_format=fmt,  # type: ignore[arg-type]
    )
    assert Draft202012Validator(SCHEMA).is_valid(json.loads(good.choices[0].message.content or ""))
    admin("POST", "/faults", {"kind": "schema_mismatch", "count": 1})
    bad = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("hi"),
        response_format=fmt,  # type: ignore[arg-type]
    )
    value = json.loads(bad.choices[0].message.content or "")  # still JSON
    assert not Draft202012Validator(SCHEMA).is_valid(value)
    admin("POST", "/faults", {"kind": "schema_mismatch", "count": 1})
    tool = {"type": "function", "function": {"name": "triage", "parameters": SCHEMA}}
    call = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("hi"),
        tools=[tool],  # type: ignore[list-item]
        tool_choice="required",
    )
    args = json.loads((call.choices[0].message.tool_calls or [])[0].function.arguments)  # type: ignore[union-attr]
    assert not Draft202012Validator(SCHEMA).is_valid(args)


async def test_slow_stream_trips_a_per_read_timeout(standin: AIStandinServer, admin: Admin) -> None:
    # The openai package's own HTTP library (httpx2) takes its own Timeout type.
    timeout = httpx2.Timeout(5.0, read=0.5)
    async with standin.client(timeout=timeout) as c:
        fast = await c.chat.completions.create(
            model="gpt-4o-mini", messages=user("hi"), stream=True
        )
        assert len([chunk async for chunk in fast]) > 3
        admin("POST", "/faults", {"kind": "slow_stream", "delay_ms": 3000, "count": 1})
        # A plain request does not use up the slow-stream fault.
        assert (await c.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))).id
        slow = await c.chat.completions.create(
            model="gpt-4o-mini", messages=user("hi"), stream=True
        )
        with pytest.raises(openai.APITimeoutError):
            async for _ in slow:
                pass
    assert admin("GET", "/faults")["data"][0]["fired"] == 1


async def test_latency_does_not_block_concurrent_requests(
    client: AsyncOpenAI, admin: Admin
) -> None:
    admin("POST", "/faults", {"kind": "latency", "latency_ms": 1000})
    await asyncio.gather(
        *(
            client.chat.completions.create(model="gpt-4o-mini", messages=user(f"n{i}"))
            for i in range(4)
        )
    )
    log = admin("GET", "/requests?route=chat")["data"]
    assert len(log) == 4
    # Every request started before any finished: they overlapped, none waited on another.
    assert max(e["started"] for e in log) < min(e["finished"] for e in log)
    assert admin("GET", "/stats")["max_in_flight"] == 4


async def test_bad_fault_definitions_are_rejected(admin: Admin) -> None:
    admin("POST", "/faults", {"kind": "explode"}, expect=400)
    admin("POST", "/faults", {"kind": "error", "status": 404}, expect=400)
    admin("POST", "/faults", {"kind": "error", "route": "images"}, expect=400)
    admin("POST", "/faults", {"kind": "error", "probability": 2}, expect=400)
    admin("POST", "/faults", {"kind": "error", "count": 0}, expect=400)
    assert admin("GET", "/faults")["data"] == []
