"""The stand-in's HTTP surface: OpenAI's wire protocol under ``/v1`` and the admin
API under ``/_standin``.

Every ``/v1`` request goes: bearer key check (401) → JSON body (400) → failure
faults (500/429/timeout) → the route's own checks (400, 404) → the answer, with
answer faults (malformed JSON, schema mismatch) and latency applied. Each is
written to the request log without its ``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .admin import admin_routes
from .chat import answer_chat, completion_body, parse_chat_request, stream_chunks
from .embeddings import embed_text, embed_tokens, to_base64
from .errors import (
    OpenAIError,
    bad_json_body,
    invalid_request,
    invalid_type,
    missing_param,
    model_not_found,
    rate_limited,
    server_error,
)
from .moderation import moderate_text, scripted_result
from .state import FaultPlan, FaultRule, StandinState
from .tokens import count_tokens

__all__ = ["create_standin_app"]

Handler = Callable[[Request, Any, FaultPlan, dict[str, Any]], Awaitable[Response]]
_MAX_EMBEDDING_INPUTS = 2048


def _parse_json(raw: bytes) -> Any:
    """The request body's JSON, read by orjson (a fraction of json.loads's CPU); a
    body orjson refuses (NaN, integers past 64 bits, lone surrogates, or not JSON at
    all) goes to json.loads, which has the last word: the same values and the same
    errors as json.loads alone."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


class _JSONResponse(JSONResponse):
    """Starlette's JSONResponse written by orjson: the same compact UTF-8 JSON (no
    spaces, non-ASCII as is), for the answers every call gets. What orjson cannot
    write (a non-string key, an integer past 64 bits) goes to Starlette's own."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return super().render(content)


class StandinApi:
    """Route handlers bound to one :class:`StandinState`."""

    def __init__(self, state: StandinState) -> None:
        self.state = state

    # -- plumbing ----------------------------------------------------------------------

    def _check_key(self, request: Request) -> None:
        cfg = self.state.config
        if not cfg.require_auth:
            return
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise OpenAIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if not any(hmac.compare_digest(key.encode(), k.encode()) for k in cfg.api_keys):
            # Never echo the key: it may be a real one pointed here by mistake.
            raise OpenAIError(
                401,
                f"Incorrect API key provided: {key[:3]}{'*' * 8}. You can find your API key "
                "at https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )

    def _rate_headers(self, remaining_requests: int | None = None) -> dict[str, str]:
        cfg = self.state.config
        left = cfg.rate_limit_requests - 1 if remaining_requests is None else remaining_requests
        return {
            "x-ratelimit-limit-requests": str(cfg.rate_limit_requests),
            "x-ratelimit-limit-tokens": str(cfg.rate_limit_tokens),
            "x-ratelimit-remaining-requests": str(left),
            "x-ratelimit-remaining-tokens": str(cfg.rate_limit_tokens),
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-reset-tokens": "0s",
        }

    async def _hang(self, request: Request, seconds: float) -> None:
        """Wait until the client gives up, the server stops, or ``seconds`` pass."""
        give_up = time.monotonic() + seconds
        while time.monotonic() < give_up and not self.state.closing.is_set():
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.05)

    async def _fail(self, request: Request, rule: FaultRule, model: str) -> Response:
        if rule.kind == "timeout":
            seconds = rule.hang_seconds or self.state.config.hang_seconds
            await self._hang(request, seconds)
            return OpenAIError(
                504, "The stand-in's timeout fault held this request.", type="timeout"
            ).response()
        if rule.kind == "rate_limit":
            headers = self._rate_headers(0)
            headers["retry-after"] = str(max(0, math.ceil(rule.retry_after)))
            headers["retry-after-ms"] = str(int(rule.retry_after * 1000))
            headers["x-ratelimit-reset-requests"] = f"{rule.retry_after:g}s"
            limit = self.state.config.rate_limit_requests
            return rate_limited(
                model, limit, rule.retry_after, headers, quota=rule.quota
            ).response()
        return server_error(rule.status).response()

    def endpoint(self, route: str, fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap ``fn`` with the key check, body parsing, faults, latency and logging."""

        async def handler(request: Request) -> Response:
            entry = self.state.begin(route, request.method, request.url.path)
            started = time.monotonic()
            status = 500
            try:
                resp = await self._run(request, fn, route, entry)
                status = resp.status_code
            finally:
                self.state.finish(entry, status)
            resp.headers.setdefault("x-request-id", f"req_{entry['seq']:012d}")
            resp.headers["openai-processing-ms"] = str(int((time.monotonic() - started) * 1000))
            resp.headers["openai-version"] = "2020-10-01"
            return resp

        return handler

    async def _run(
        self, request: Request, fn: Handler, route: str, entry: dict[str, Any]
    ) -> Response:
        try:
            self._check_key(request)
            body: Any = None
            if request.method == "POST":
                raw = await request.body()
                try:
                    body = _parse_json(raw) if raw else None
                except ValueError:
                    entry["body"] = raw.decode("utf-8", "replace")[:10_000]
                    raise bad_json_body() from None
                entry["body"] = body
                if not isinstance(body, dict):
                    raise invalid_request(
                        "The request body must be a JSON object.", None, "invalid_type"
                    )
                entry["model"] = body.get("model")
                entry["user"] = body.get("user")
            streaming = isinstance(body, dict) and body.get("stream") is True
            plan = self.state.plan(route, streaming=streaming)
            entry["faults"] = plan.fired
            if plan.failure is not None:
                return await self._fail(request, plan.failure, str(entry.get("model") or ""))
            resp = await fn(request, body, plan, entry)
            latency = plan.latency + float(entry.pop("_script_latency", 0.0))
            if latency > 0:
                # Only this request waits: the event loop keeps serving the others.
                await asyncio.sleep(latency)
            return resp
        except OpenAIError as exc:
            return exc.response()

    @staticmethod
    def _malformed(body: dict[str, Any], status: int = 200) -> Response:
        text = json.dumps(body)
        return Response(text[: max(1, len(text) // 2)], status, media_type="application/json")

    # -- /v1/chat/completions ----------------------------------------------------------

    async def chat(
        self, request: Request, body: Any, plan: FaultPlan, entry: dict[str, Any]
    ) -> Response:
        state = self.state
        req = parse_chat_request(body, state.config)
        script = state.take_script("chat", req.model.id, req.last_user_text)
        if script is not None:
            entry["script_id"] = script.id
            entry["_script_latency"] = float(script.reply.get("latency_ms", 0)) / 1000
        answer = answer_chat(
            req, script=script, new_id=state.next_id, schema_mismatch=plan.schema_mismatch
        )
        if answer.analysis is not None:
            entry["analysis"] = answer.analysis.as_dict()
        entry["problems"] = answer.problems
        completion_id = state.next_id("chatcmpl")
        created = int(time.time())
        headers = self._rate_headers()
        if not req.stream:
            payload = completion_body(answer, req, completion_id, created)
            if plan.malformed_json:
                return self._malformed(payload)
            return _JSONResponse(payload, headers=headers)
        chunks = stream_chunks(
            answer, req, completion_id, created, state.config.stream_chunk_tokens
        )

        async def events() -> AsyncIterator[str]:
            for i, chunk in enumerate(chunks):
                if i and plan.chunk_delay > 0:
                    await asyncio.sleep(plan.chunk_delay)
                text = json.dumps(chunk)
                if plan.malformed_json and i == 1:
                    text = text[: len(text) // 2]
                yield f"data: {text}\n\n"
            yield "data: [DONE]\n\n"

        headers["cache-control"] = "no-cache"
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    # -- /v1/embeddings ----------------------------------------------------------------

    async def embeddings(
        self, request: Request, body: Any, plan: FaultPlan, entry: dict[str, Any]
    ) -> Response:
        for key in body:
            if key not in ("input", "model", "encoding_format", "dimensions", "user"):
                raise invalid_request(f"Unrecognized request argument supplied: {key}", key)
        model_id = body.get("model")
        if model_id is None:
            raise missing_param("model")
        if not isinstance(model_id, str):
            raise invalid_type("model", "a string", model_id)
        inputs = _embedding_inputs(body.get("input"))
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            raise invalid_request(
                f"Invalid value: '{fmt}'. Supported values are: 'float' and 'base64'.",
                "encoding_format",
                "invalid_value",
            )
        model = self.state.config.model(model_id)
        if model is None:
            raise model_not_found(model_id)
        if model.kind != "embedding":
            raise invalid_request(
                f"The model `{model_id}` does not support embeddings.", "model", "invalid_model"
            )
        dims = model.dimensions or 1536
        if body.get("dimensions") is not None:
            asked = body["dimensions"]
            if isinstance(asked, bool) or not isinstance(asked, int):
                raise invalid_type("dimensions", "an integer", asked)
            if not model.shortenable:
                raise invalid_request(
                    "This model does not support specifying dimensions.", "dimensions"
                )
            if not 1 <= asked <= dims:
                raise invalid_request(
                    f"Invalid 'dimensions': expected a value between 1 and {dims}, "
                    f"but got {asked} instead.",
                    "dimensions",
                    "invalid_value",
                )
            dims = asked
        data: list[dict[str, Any]] = []
        tokens = 0
        for i, item in enumerate(inputs):
            if isinstance(item, str):
                vec = embed_text(item, dims)
                tokens += count_tokens(item)
            else:
                vec = embed_tokens(item, dims)
                tokens += len(item)
            data.append(
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": to_base64(vec) if fmt == "base64" else vec,
                }
            )
        payload = {
            "object": "list",
            "data": data,
            "model": model.id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        if plan.malformed_json:
            return self._malformed(payload)
        return _JSONResponse(payload, headers=self._rate_headers())

    # -- /v1/moderations ---------------------------------------------------------------

    async def moderations(
        self, request: Request, body: Any, plan: FaultPlan, entry: dict[str, Any]
    ) -> Response:
        for key in body:
            if key not in ("input", "model"):
                raise invalid_request(f"Unrecognized request argument supplied: {key}", key)
        model_id = body.get("model") or "omni-moderation-latest"
        if not isinstance(model_id, str):
            raise invalid_type("model", "a string", model_id)
        entry["model"] = model_id
        model = self.state.config.model(model_id)
        if model is None:
            raise model_not_found(model_id)
        if model.kind != "moderation":
            raise invalid_request(
                f"The model `{model_id}` is not a moderation model.", "model", "invalid_model"
            )
        raw = body.get("input")
        if isinstance(raw, list) and raw and all(isinstance(v, str) for v in raw):
            if not self.state.config.moderation_list_input:
                raise invalid_type("input", "a string", raw)
        items = _moderation_inputs(raw)
        words = self.state.config.moderation_words
        results = []
        for text, has_image in items:
            script = self.state.take_script("moderations", model_id, text)
            if script is not None:
                entry["script_id"] = script.id
                results.append(scripted_result(script.reply, text))
            else:
                results.append(moderate_text(text, words, has_image=has_image))
        payload = {"id": self.state.next_id("modr"), "model": model_id, "results": results}
        if plan.malformed_json:
            return self._malformed(payload)
        return _JSONResponse(payload)

    # -- /v1/models --------------------------------------------------------------------

    @staticmethod
    def _model(spec: Any) -> dict[str, Any]:
        return {
            "id": spec.id,
            "object": "model",
            "created": spec.created,
            "owned_by": spec.owned_by,
        }

    async def list_models(
        self, request: Request, body: Any, plan: FaultPlan, entry: dict[str, Any]
    ) -> Response:
        payload = {"object": "list", "data": [self._model(m) for m in self.state.config.models]}
        if plan.malformed_json:
            return self._malformed(payload)
        return JSONResponse(payload)

    async def get_model(
        self, request: Request, body: Any, plan: FaultPlan, entry: dict[str, Any]
    ) -> Response:
        model_id = request.path_params["model"]
        entry["model"] = model_id
        spec = self.state.config.model(model_id)
        if spec is None:
            raise model_not_found(model_id)
        if plan.malformed_json:
            return self._malformed(self._model(spec))
        return JSONResponse(self._model(spec))

    async def not_found(self, request: Request) -> Response:
        return OpenAIError(
            404,
            f"Invalid URL ({request.method} {request.url.path})",
            type="invalid_request_error",
        ).response()


def _embedding_inputs(value: Any) -> list[str | list[int]]:
    if value is None:
        raise missing_param("input")
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        items = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise invalid_type("input", "one of a string or array", value)
    if not items:
        raise invalid_request("[] is too short - 'input'", "input", "empty_array")
    if len(items) > _MAX_EMBEDDING_INPUTS:
        raise invalid_request(
            f"Invalid 'input': array too long. Expected at most {_MAX_EMBEDDING_INPUTS} items.",
            "input",
        )
    for i, item in enumerate(items):
        ok_text = isinstance(item, str) and item != ""
        ok_tokens = (
            isinstance(item, list)
            and item
            and all(isinstance(t, int) and not isinstance(t, bool) for t in item)
        )
        if not (ok_text or ok_tokens):
            raise invalid_request(
                f"'$.input[{i}]' is invalid. Please check the API reference: "
                "https://platform.openai.com/docs/api-reference.",
                "input",
            )
    return items


def _moderation_inputs(value: Any) -> list[tuple[str, bool]]:
    """(text, has_image) per result: one per string, one for a multimodal parts list."""
    if value is None:
        raise missing_param("input")
    if isinstance(value, str):
        return [(value, False)]
    if not isinstance(value, list) or not value:
        raise invalid_type("input", "one of a string, array of strings or array of objects", value)
    if all(isinstance(v, str) for v in value):
        return [(v, False) for v in value]
    if all(isinstance(v, dict) for v in value):
        texts: list[str] = []
        has_image = False
        for j, part in enumerate(value):
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "image_url" and isinstance(
                (part.get("image_url") or {}).get("url"), str
            ):
                has_image = True
            else:
                raise invalid_request(f"Invalid 'input[{j}]'.", f"input[{j}]", "invalid_value")
        return [("\n".join(texts), has_image)]
    raise invalid_type("input", "one of a string, array of strings or array of objects", value)


def create_standin_app(state: StandinState) -> Starlette:
    """The Starlette app serving ``state``: ``/v1`` (OpenAI) and ``/_standin`` (admin)."""
    api = StandinApi(state)
    routes = [
        Route("/v1/chat/completions", api.endpoint("chat", api.chat), methods=["POST"]),
        Route("/v1/embeddings", api.endpoint("embeddings", api.embeddings), methods=["POST"]),
        Route("/v1/moderations", api.endpoint("moderations", api.moderations), methods=["POST"]),
        Route("/v1/models", api.endpoint("models", api.list_models), methods=["GET"]),
        Route("/v1/models/{model:path}", api.endpoint("models", api.get_model), methods=["GET"]),
        *admin_routes(state),
        Route("/v1/{rest:path}", api.not_found, methods=["GET", "POST", "DELETE", "PUT"]),
    ]
    return Starlette(routes=routes)
