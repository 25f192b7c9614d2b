"""SSE streaming: the same answer as without streaming, split into several chunks."""

from __future__ import annotations

import json

import httpx
from openai import AsyncOpenAI
from standin_fixtures import Admin, user

from mktx_grpc.ai_standin import AIStandinServer

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up an order",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    },
}


async def test_stream_deltas_reassemble_to_the_plain_answer(client: AsyncOpenAI) -> None:
    messages = user("tell me something about your opening hours")
    plain = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(contents) >= 3
    assert "".join(contents) == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert all(c.usage is None for c in chunks)


async def test_include_usage_adds_a_last_chunk_with_usage(client: AsyncOpenAI) -> None:
    messages = user("hello")
    plain = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    *body, last = chunks
    assert last.choices == []
    assert last.usage == plain.usage
    assert all(c.usage is None for c in body)


async def test_streamed_tool_call_arguments_reassemble(client: AsyncOpenAI) -> None:
    messages = user("please look up order #5521")
    plain = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        tools=[TOOL],
        tool_choice="required",  # type: ignore[list-item]
    )
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        tools=[TOOL],  # type: ignore[list-item]
        tool_choice="required",
        stream=True,
    )
    name = ""
    pieces: list[str] = []
    ids = set()
    finish = None
    async for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for call in choice.delta.tool_calls or ():
            assert call.index == 0
            if call.id:
                ids.add(call.id)
            if call.function and call.function.name:
                name += call.function.name
            if call.function and call.function.arguments:
                pieces.append(call.function.arguments)
    assert finish == "tool_calls"
    assert name == "lookup_order"
    assert len(pieces) > 1
    args = json.loads("".join(pieces))
    assert args == {"order_id": "#5521"}
    (plain_call,) = plain.choices[0].message.tool_calls or []
    assert json.loads(plain_call.function.arguments) == args  # type: ignore[union-attr]
    assert len(ids) == 1


async def test_wire_format_is_sse_data_lines_ending_in_done(standin: AIStandinServer) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{standin.openai_base_url}/chat/completions",
            json={"model": "gpt-4o-mini", "messages": user("hi"), "stream": True},
            headers={"Authorization": f"Bearer {standin.api_key}"},
        )
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = [e for e in resp.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    for e in events[:-1]:
        assert json.loads(e.removeprefix("data: "))["object"] == "chat.completion.chunk"


async def test_scripted_answers_stream_too(client: AsyncOpenAI, admin: Admin) -> None:
    admin("POST", "/scripts", {"reply": {"content": "Your order #12 ships on Monday."}})
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=user("when?"), stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Your order #12 ships on Monday."
