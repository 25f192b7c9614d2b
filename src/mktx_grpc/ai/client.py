"""The model client: ``openai.AsyncOpenAI`` with the configured base URL, key,
timeout and retries, behind a circuit breaker (``x/breaker.py``, the same breaker
the X client uses).

Failures are typed domain errors, so RPCs map them to statuses and the auto-reply
loop turns them into escalations:

- :class:`ModelUnavailable` (UNAVAILABLE, ``AI_SERVICE_ERROR``): the provider
  failed (5xx, a broken body, no connection) or the breaker is open. Counts
  against the breaker (an open breaker's fast failure does not).
- :class:`ModelTimeout` (DEADLINE_EXCEEDED): no answer within the timeout. Counts.
- ``QuotaExceeded`` (RESOURCE_EXHAUSTED, ``RATE_LIMIT_EXCEEDED``, with the
  provider's ``retry-after``): the provider's rate limit or quota. Does not count:
  a busy provider is not a broken one.
- A 4xx other than 429 is our bug or a bad setting (an unknown model):
  ``ModelUnavailable`` too, counted.

Nothing here logs or returns the API key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
import orjson
from google.rpc import code_pb2
from httpx_aiohttp.httpx2 import AiohttpTransport
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ..core.config import Settings
from ..core.errors import DomainError, QuotaExceeded, UpstreamError
from ..x.breaker import CircuitBreaker

log = logging.getLogger(__name__)


class ModelUnavailable(UpstreamError):
    reason = "AI_SERVICE_ERROR"


class ModelTimeout(DomainError):
    code = code_pb2.DEADLINE_EXCEEDED
    reason = "AI_SERVICE_ERROR"


@dataclass(frozen=True)
class Completion:
    """One model answer: its text content and what it cost."""

    content: str | None
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency: float


@dataclass(frozen=True)
class StreamDelta:
    """A piece of the model's raw content, as it arrived."""

    text: str


class ModelClient:
    """Chat completions with a JSON schema, their streaming form, and moderation."""

    def __init__(
        self,
        client: AsyncOpenAI,
        *,
        default_model: str,
        breaker: CircuitBreaker,
        moderation: bool = True,
    ) -> None:
        self._client = client
        self.default_model = default_model
        self.breaker = breaker
        self.moderation = moderation
        self._moderations = ModerationBatcher(self._moderate)

    async def aclose(self) -> None:
        await self._client.close()

    def _chat_body(
        self,
        model: str,
        messages: Sequence[dict[str, str]],
        schema: dict[str, Any] | None,
        temperature: float,
        max_tokens: int,
    ) -> dict[str, Any]:
        """The request body, as plain JSON. Sent with the client's ``post`` (its
        retries, timeout, auth and error types) rather than ``create``: ``create``
        walks every message and the schema through the openai package's TypedDict
        transforms on each call (~5 ms of CPU per call here, more than the rest of
        the message), and these messages are plain strings that need none."""
        body: dict[str, Any] = {
            "model": model or self.default_model,
            "messages": list(messages),
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if schema is not None:
            body["response_format"] = _response_format(schema)
        return body

    def _admit(self) -> None:
        if not self.breaker.allow():
            raise ModelUnavailable(
                "the AI model is unavailable (circuit breaker open)",
                metadata={"retry_in_seconds": f"{self.breaker.retry_in():.1f}"},
            )

    def _failed(self, exc: Exception) -> DomainError:
        """Record ``exc`` with the breaker and return the domain error for it."""
        if isinstance(exc, openai.RateLimitError):
            self.breaker.release_probe()
            retry = _retry_after(exc.response.headers) if exc.response is not None else None
            return QuotaExceeded(
                "the AI provider's rate limit is reached", retry_after_seconds=retry or 1.0
            )
        self.breaker.record_failure()
        if isinstance(exc, openai.APITimeoutError):
            return ModelTimeout("the AI model did not answer in time")
        status = getattr(exc, "status_code", None)
        log.warning(
            "model call failed",
            extra={"error": type(exc).__name__, "status": status},
        )
        return ModelUnavailable(
            "the AI model failed or is unreachable",
            metadata={"status": str(status)} if status else None,
        )

    async def complete(
        self,
        *,
        model: str,
        messages: Sequence[dict[str, str]],
        schema: dict[str, Any] | None = None,
        temperature: float = 0.3,
        max_tokens: int = 512,
    ) -> Completion:
        """One chat completion (``response_format`` json_schema when ``schema``).
        Raises the errors in the module docstring."""
        self._admit()
        started = time.perf_counter()
        body = self._chat_body(model, messages, schema, temperature, max_tokens)
        try:
            resp = await self._client.post(
                "/chat/completions",
                cast_to=httpx2.Response,
                content=_encode(body),
                options=_OPTIONS,
            )
            data = _json_object(resp)
        except (openai.APIError, ValueError) as exc:
            raise self._failed(exc) from None
        self.breaker.record_success()
        choices = data.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        answered = data.get("model")
        return Completion(
            content=content if isinstance(content, str) else None,
            model=answered if isinstance(answered, str) and answered else model,
            prompt_tokens=_count(usage.get("prompt_tokens")),
            completion_tokens=_count(usage.get("completion_tokens")),
            latency=time.perf_counter() - started,
        )

    async def stream(
        self,
        *,
        model: str,
        messages: Sequence[dict[str, str]],
        schema: dict[str, Any] | None = None,
        temperature: float = 0.3,
        max_tokens: int = 512,
    ) -> AsyncIterator[StreamDelta | Completion]:
        """As :meth:`complete`, streamed (server-sent events): each piece of content
        as a :class:`StreamDelta` as it arrives, then one :class:`Completion` with the
        whole content and the usage. An error mid-stream raises after the deltas."""
        self._admit()
        started = time.perf_counter()
        body = self._chat_body(model, messages, schema, temperature, max_tokens)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        parts: list[str] = []
        prompt_tokens = completion_tokens = 0
        answered_model = model
        try:
            stream = await self._client.post(
                "/chat/completions",
                cast_to=ChatCompletion,
                body=body,
                options=_OPTIONS,
                stream=True,
                stream_cls=AsyncStream[ChatCompletionChunk],
            )
            async for chunk in stream:
                answered_model = chunk.model or answered_model
                if chunk.usage is not None:
                    prompt_tokens = chunk.usage.prompt_tokens
                    completion_tokens = chunk.usage.completion_tokens
                for choice in chunk.choices:
                    piece = choice.delta.content
                    if piece:
                        parts.append(piece)
                        yield StreamDelta(piece)
        except (openai.APIError, ValueError) as exc:
            raise self._failed(exc) from None
        self.breaker.record_success()
        yield Completion(
            content="".join(parts),
            model=answered_model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency=time.perf_counter() - started,
        )

    async def flagged(self, text: str) -> bool:
        """Whether the provider's moderation flags ``text`` (False when moderation
        is off in the configuration). Errors as :meth:`complete`. Texts asked for at
        about the same time share a request (:class:`ModerationBatcher`)."""
        if not self.moderation:
            return False
        self._admit()
        return await self._moderations.flagged(text)

    async def _moderate(self, texts: list[str]) -> list[bool]:
        """Whether each of ``texts`` is flagged, in order: one request (a list
        ``input`` when there are several, as OpenAI's endpoint takes). A provider
        that refuses a list (400 or 422) is asked one text per request from then on,
        these texts included."""
        if len(texts) > 1 and self._moderations.batch > 1:
            try:
                return await self._moderation_request(texts)
            except _ListRefused:
                log.warning("the provider's moderation refused a list input: one text per request")
                self._moderations.batch = 1
        singles = await asyncio.gather(*(self._moderation_request([t]) for t in texts))
        return [flagged for (flagged,) in singles]

    async def _moderation_request(self, texts: list[str]) -> list[bool]:
        try:
            resp = await self._client.post(
                "/moderations",
                cast_to=httpx2.Response,
                content=_encode({"input": texts if len(texts) > 1 else texts[0]}),
                options=_OPTIONS,
            )
            results = _json_object(resp).get("results")
            if not isinstance(results, list) or len(results) != len(texts):
                raise ValueError("a moderation without one result per input")
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            if len(texts) > 1:
                raise _ListRefused from exc
            raise self._failed(exc) from None
        except (openai.APIError, ValueError) as exc:
            raise self._failed(exc) from None
        self.breaker.record_success()
        return [isinstance(r, dict) and r.get("flagged") is True for r in results]


class _ListRefused(Exception):
    """The provider's moderation refused a list ``input``."""


#: A moderation asked for while another is in flight waits for company at most this
#: share of a moderation's recent latency ...
MODERATION_LINGER_SHARE = 0.1
#: ... and at most this long (seconds).
MODERATION_LINGER_MAX = 0.025
#: Most texts in one moderation request.
MODERATION_BATCH = 32


class ModerationBatcher:
    """Moderations asked for at about the same time, sent as one request (at most
    :attr:`batch` texts: 1 once the provider refused a list).

    A text asked for while no moderation is in flight goes out at once, alone: a
    quiet service waits for nothing. One asked for while others are in flight waits
    for company at most :data:`MODERATION_LINGER_SHARE` of a moderation's recent
    latency (a moving average), capped at :data:`MODERATION_LINGER_MAX`, or until
    :data:`MODERATION_BATCH` texts wait; they then go out as one request and each
    caller gets its own verdict, or the request's error. The wait is hidden beside
    the model's answer, asked for at the same time and slower than a moderation.
    Under load that is one request for several messages, where a request costs this
    process more CPU than the rest of a moderated message's model work."""

    def __init__(self, send: Callable[[list[str]], Awaitable[list[bool]]]) -> None:
        self._send = send
        self.batch = MODERATION_BATCH
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[tuple[str, asyncio.Future[bool]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight = 0
        #: Seconds, a moving average of the requests' latency (0 before the first).
        self.latency = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    async def flagged(self, text: str) -> bool:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests): nothing of the old one
            self._loop, self._waiting, self._timer, self._in_flight = loop, [], None, 0
        verdict: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((text, verdict))
        if self._in_flight == 0 or len(self._waiting) >= self.batch:
            self._flush()
        elif self._timer is None:
            linger = min(MODERATION_LINGER_MAX, MODERATION_LINGER_SHARE * self.latency)
            self._timer = loop.call_later(linger, self._flush)
        return await verdict

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = [(t, v) for t, v in self._waiting if not v.done()]  # callers gone: dropped
        self._waiting = []
        if not batch:
            return
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[str, asyncio.Future[bool]]]) -> None:
        started = time.perf_counter()
        try:
            results = await self._send([t for t, _ in batch])
        except Exception as exc:
            for _, verdict in batch:
                if not verdict.done():
                    verdict.set_exception(exc)
        except BaseException:
            for _, verdict in batch:
                verdict.cancel()
            raise
        else:
            for (_, verdict), flagged in zip(batch, results, strict=True):
                if not verdict.done():
                    verdict.set_result(flagged)
        finally:
            self._in_flight -= 1
            took = time.perf_counter() - started
            self.latency = took if not self.latency else 0.8 * self.latency + 0.2 * took


#: What ``create`` sends besides the body: the API key as a bearer token.
_OPTIONS: Any = {"security": {"bearer_auth": True}}


def _json_object(resp: httpx2.Response) -> dict[str, Any]:
    """The body of a successful response as a JSON object; ValueError when it is not
    one (the provider's broken body: ModelUnavailable).

    The client's ``post`` is given ``cast_to=httpx2.Response`` and the few fields
    used are read from the plain JSON: building the openai package's pydantic
    models for every answer (``ChatCompletion``: choices, message, usage and their
    optional parts) cost more CPU than the rest of reading the response."""
    try:
        data = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        # What orjson refuses (NaN, integers past 64 bits, lone surrogates, not JSON)
        # json.loads decides: the same values and errors as json.loads alone.
        data = json.loads(resp.content)
    if not isinstance(data, dict):
        raise ValueError("the response body is not a JSON object")
    return data


def _encode(body: dict[str, Any]) -> bytes:
    """The request body as JSON bytes, which the client's ``post`` sends as they are
    (``content``, under its ``application/json`` header). orjson writes the same
    compact UTF-8 JSON as the openai package's own encoder (``separators=(",",
    ":")``, ``ensure_ascii=False``) for these plain dicts, strings and numbers, at a
    fraction of its CPU."""
    return orjson.dumps(body)


def _count(value: Any) -> int:
    """A token count from the provider's usage (0 when absent or not a count)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _response_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": "assistant_answer", "strict": True, "schema": schema},
    }


def _retry_after(headers: Any) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw:
            try:
                return max(0.0, float(raw) * scale)
            except ValueError:
                continue
    return None


class _CountedStream(httpx2.AsyncByteStream):
    """A response body that tells its pool's count when it is closed (its
    connection is free again then)."""

    def __init__(self, stream: httpx2.AsyncByteStream, done: Callable[[], None]) -> None:
        self._stream = stream
        self._done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done()


class ShardedTransport(httpx2.AsyncBaseTransport):
    """``shards`` connection pools of at most ``per_shard`` connections each (the
    openai package's HTTP library, httpx2), every request on the least busy pool.

    A pool walks all the connections it holds each time a request starts or ends,
    asking every idle one whether the server closed it (a ``getpeername`` and a
    poll per connection): with 100 model calls in flight on one pool that walk was
    a quarter of the service's CPU per message (bench/results/ai.md). In pools of
    16 it is short; 8 of them hold the 128 connections one pool of the openai
    client's default limits would use for 128 calls at once."""

    def __init__(self, *, shards: int = 8, per_shard: int = 16) -> None:
        limits = httpx2.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        self._pools = [httpx2.AsyncHTTPTransport(limits=limits) for _ in range(shards)]
        self._busy = [0] * shards

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        busy = self._busy
        i = busy.index(min(busy))
        busy[i] += 1

        def done() -> None:
            busy[i] -= 1

        try:
            resp = await self._pools[i].handle_async_request(request)
        except BaseException:
            done()
            raise
        assert isinstance(resp.stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            status_code=resp.status_code,
            headers=resp.headers,
            stream=_CountedStream(resp.stream, done),
            extensions=resp.extensions,
        )

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


def model_transport(kind: str) -> httpx2.AsyncBaseTransport:
    """The model client's HTTP transport: "aiohttp" (the default) is the openai
    package's own aiohttp backend (``httpx-aiohttp``, what ``openai.DefaultAioHttpClient``
    uses): keep-alive HTTP/1.1 with aiohttp's C parser, the least CPU per model call
    (bench/results/ai.md); "default" is a :class:`ShardedTransport` of httpx2's own
    pools, for a provider reached through a proxy or over HTTP/2."""
    if kind == "default":
        return ShardedTransport()
    # No cap on connections in use (the callers' concurrency is the cap); up to 256
    # kept for the next calls.
    return AiohttpTransport(
        limits=httpx2.Limits(max_connections=None, max_keepalive_connections=256)
    )


def make_model_client(settings: Settings, *, base_url: str = "", api_key: str = "") -> ModelClient:
    """The process's model client from ``settings`` (``base_url``/``api_key``
    override them: ``serve`` passes its built-in stand-in's): one ``AsyncOpenAI``
    for the process, on :func:`model_transport` (``ai_http``)."""
    transport = model_transport(settings.ai_http)
    client = AsyncOpenAI(
        base_url=base_url or settings.ai_base_url or None,
        api_key=api_key or settings.ai_api_key or "unset",
        timeout=settings.ai_timeout,
        max_retries=settings.ai_max_retries,
        http_client=openai.DefaultAsyncHttpxClient(transport=transport),
    )
    return ModelClient(
        client,
        default_model=settings.ai_default_model,
        breaker=CircuitBreaker(
            failure_threshold=settings.ai_breaker_failures,
            reset_timeout=settings.ai_breaker_reset,
        ),
        moderation=settings.ai_moderation,
    )
