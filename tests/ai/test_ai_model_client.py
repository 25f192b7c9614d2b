"""The model client's own paths, through the service against the stand-in over HTTP:
the answer is read from the plain JSON body (not the openai package's models), so a
body that is not a JSON object is the provider failing (UNAVAILABLE, counted by the
breaker) on chat and on moderation alike, and a good answer still carries its
content, model and usage."""

from __future__ import annotations

import asyncio

import grpc
from ai_helpers import enable_ai, flag_nasty
from helpers import expect_error

from mktx.v1 import ai_pb2
from mktx_grpc.ai.client import ModelUnavailable

A = ai_pb2


def _pm(conv, text: str, **kw) -> A.ProcessMessageRequest:
    return A.ProcessMessageRequest(conversation_id=str(conv.conversation_id), text=text, **kw)


async def test_a_broken_chat_body_is_unavailable_and_counts_against_the_breaker(
    api, ai, md, conv, admin
):
    await enable_ai(ai, md, moderation_enabled=False)
    breaker = api.app.deps.model.breaker
    admin("POST", "/faults", {"kind": "malformed_json", "route": "chat", "count": 1})
    await expect_error(
        ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md),
        grpc.StatusCode.UNAVAILABLE,
        "AI_SERVICE_ERROR",
    )
    assert breaker._failures == 1
    # Nothing was written: no session, no usage.
    ctx = await ai.GetConversationContext(
        A.GetConversationContextRequest(conversation_id=str(conv.conversation_id)), metadata=md
    )
    assert len(ctx.session.context_items) == 0
    out = await ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md)
    assert out.intent == "order_status" and out.response_text
    assert out.model == "gpt-4o-mini"
    assert out.usage.prompt_tokens > 0 and out.usage.completion_tokens > 0
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    assert breaker._failures == 0


async def test_a_broken_moderation_body_is_unavailable(api, ai, md, conv, admin):
    await enable_ai(ai, md, moderation_enabled=True)
    admin("POST", "/faults", {"kind": "malformed_json", "route": "moderations", "count": 1})
    await expect_error(
        ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md),
        grpc.StatusCode.UNAVAILABLE,
        "AI_SERVICE_ERROR",
    )
    assert api.app.deps.model.breaker._failures == 1
    # An unmoderated message is not answered: the answer asked for beside the
    # moderation is dropped, and the session holds no turn.
    ctx = await ai.GetConversationContext(
        A.GetConversationContextRequest(conversation_id=str(conv.conversation_id)), metadata=md
    )
    assert len(ctx.session.context_items) == 0
    out = await ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md)
    assert out.intent == "order_status" and not out.requires_escalation


async def test_moderations_asked_together_share_one_request(api, admin):
    """A moderation asked for while none is out goes at once, alone; those asked for
    while one is out go together in one request with a list input, each caller
    getting its own verdict; a request that fails fails each of its callers."""
    model = api.app.deps.model
    flag_nasty(admin)
    admin("POST", "/faults", {"kind": "latency", "route": "moderations", "latency_ms": 300})
    admin("DELETE", "/requests")
    first = asyncio.ensure_future(model.flagged("hello there"))
    await asyncio.sleep(0.05)  # the first is out
    texts = ["where is my order", "you are nasty", "thanks", "nasty again", "ok"]
    later = await asyncio.gather(*(model.flagged(t) for t in texts))
    assert await first is False
    assert later == [False, True, False, True, False]
    inputs = [r["body"]["input"] for r in admin("GET", "/requests?route=moderations")["data"]]
    assert inputs == ["hello there", texts]
    assert model._moderations.latency >= 0.3  # both took the stand-in's 300 ms

    # One out again, then a batch whose request fails: each of its callers gets the
    # provider's failure; the one out before is answered.
    admin("DELETE", "/requests")
    first = asyncio.ensure_future(model.flagged("hello again"))
    await asyncio.sleep(0.05)
    admin("POST", "/faults", {"kind": "error", "route": "moderations", "status": 500, "count": 1})
    failed = await asyncio.gather(
        *(model.flagged(t) for t in ("a", "b", "c")), return_exceptions=True
    )
    assert all(isinstance(e, ModelUnavailable) for e in failed), failed
    assert await first is False
    inputs = [r["body"]["input"] for r in admin("GET", "/requests?route=moderations")["data"]]
    assert inputs == ["hello again", ["a", "b", "c"]]


async def test_a_provider_that_refuses_a_list_is_asked_one_text_at_a_time(api, admin):
    """A provider whose moderation takes one text per request (the stand-in set to
    refuse a list with 400): the batch that met the refusal is asked again one text
    per request, nothing counts against the breaker, and later moderations go one
    per request at once."""
    model = api.app.deps.model
    admin("POST", "/config", {"moderation_list_input": False})
    admin("POST", "/faults", {"kind": "latency", "route": "moderations", "latency_ms": 200})
    admin("DELETE", "/requests")
    first = asyncio.ensure_future(model.flagged("hello"))
    await asyncio.sleep(0.05)
    texts = ["where is my order", "kill you", "thanks"]
    assert await asyncio.gather(*(model.flagged(t) for t in texts)) == [False, True, False]
    assert await first is False
    log = admin("GET", "/requests?route=moderations")["data"]
    assert [(r["body"]["input"], r["status"]) for r in log] == [
        ("hello", 200),
        (texts, 400),
        *[(t, 200) for t in texts],
    ]
    assert model._moderations.batch == 1 and model.breaker._failures == 0
    admin("DELETE", "/requests")
    first = asyncio.ensure_future(model.flagged("one"))
    await asyncio.sleep(0.05)
    assert await asyncio.gather(model.flagged("two"), model.flagged("three")) == [False, False]
    assert await first is False
    log = admin("GET", "/requests?route=moderations")["data"]
    assert sorted(r["body"]["input"] for r in log) == ["one", "three", "two"]
