"""The model client's own paths, through the service against the stand-in over HTTP:
the answer is read from the plain JSON body (not the openai package's models), so a
body that is not a JSON object is the provider failing (UNAVAILABLE, counted by the
breaker) on chat and on moderation alike, and a good answer still carries its
content, model and usage."""

from __future__ import annotations

import grpc
from ai_helpers import enable_ai
from helpers import expect_error

from mktx.v1 import ai_pb2

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
