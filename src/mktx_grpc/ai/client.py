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

import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import openai
from google.rpc import code_pb2
from openai import AsyncOpenAI

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

    async def aclose(self) -> None:
        await self._client.close()

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
        kwargs: dict[str, Any] = {}
        if schema is not None:
            # Sent as extra_body: the openai client otherwise walks the whole schema
            # through its TypedDict transforms on every call (~15 ms per call here).
            kwargs["extra_body"] = {"response_format": _response_format(schema)}
        try:
            resp = await self._client.chat.completions.create(
                model=model or self.default_model,
                messages=list(messages),  # type: ignore[arg-type]
                temperature=temperature,
                max_tokens=max_tokens,
                **kwargs,
            )
        except (openai.APIError, ValueError) as exc:
            raise self._failed(exc) from None
        self.breaker.record_success()
        choice = resp.choices[0] if resp.choices else None
        usage = resp.usage
        return Completion(
            content=choice.message.content if choice is not None else None,
            model=resp.model or model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
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
        kwargs: dict[str, Any] = {}
        if schema is not None:
            # Sent as extra_body: the openai client otherwise walks the whole schema
            # through its TypedDict transforms on every call (~15 ms per call here).
            kwargs["extra_body"] = {"response_format": _response_format(schema)}
        parts: list[str] = []
        prompt_tokens = completion_tokens = 0
        answered_model = model
        try:
            stream = await self._client.chat.completions.create(  # type: ignore[call-overload]
                model=model or self.default_model,
                messages=list(messages),
                temperature=temperature,
                max_tokens=max_tokens,
                stream=True,
                stream_options={"include_usage": True},
                **kwargs,
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
        is off in the configuration). Errors as :meth:`complete`."""
        if not self.moderation:
            return False
        self._admit()
        try:
            resp = await self._client.moderations.create(input=text)
        except (openai.APIError, ValueError) as exc:
            raise self._failed(exc) from None
        self.breaker.record_success()
        return any(r.flagged for r in resp.results)


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


def make_model_client(settings: Settings, *, base_url: str = "", api_key: str = "") -> ModelClient:
    """The process's model client from ``settings`` (``base_url``/``api_key``
    override them: ``serve`` passes its built-in stand-in's)."""
    client = AsyncOpenAI(
        base_url=base_url or settings.ai_base_url or None,
        api_key=api_key or settings.ai_api_key or "unset",
        timeout=settings.ai_timeout,
        max_retries=settings.ai_max_retries,
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
