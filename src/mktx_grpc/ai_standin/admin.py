"""The stand-in's admin API (JSON, under ``/_standin``): scripted answers, faults,
settings, the request log and reset. It needs no key: the stand-in listens on
loopback. ``GET /_standin`` lists every route with what it does.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .config import MODERATION_CATEGORIES, ModelSpec
from .state import FAULT_KINDS, ROUTES, FaultRule, Script, StandinState

__all__ = ["admin_routes"]

PREFIX = "/_standin"
_CHAT_REPLY_KEYS = frozenset(
    {"content", "json", "tool_calls", "refusal", "finish_reason", "usage", "latency_ms"}
)
_MODERATION_KEYS = frozenset({"categories", "category_scores", "flagged"})
_FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise AdminError(400, "body is not JSON") from None


def _object(value: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AdminError(400, f"{what} must be a JSON object")
    return value


def _opt_str(b: Mapping[str, Any], key: str) -> str | None:
    value = b.get(key)
    if value is not None and not isinstance(value, str):
        raise AdminError(400, f"{key} must be a string")
    return value


def _number(b: Mapping[str, Any], key: str, default: float, lo: float = 0.0) -> float:
    value = b.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < lo:
        raise AdminError(400, f"{key} must be a number >= {lo:g}")
    return float(value)


def _count(b: Mapping[str, Any], key: str, default: int | None) -> int | None:
    value = b.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AdminError(400, f"{key} must be a positive integer or null")
    return value


def _check_chat_reply(reply: dict[str, Any]) -> None:
    unknown = set(reply) - _CHAT_REPLY_KEYS
    if unknown:
        raise AdminError(400, f"unknown reply fields: {', '.join(sorted(unknown))}")
    if "content" in reply and not isinstance(reply["content"], str):
        raise AdminError(400, "reply.content must be a string")
    if "content" in reply and "json" in reply:
        raise AdminError(400, "reply takes content or json, not both")
    for i, call in enumerate(reply.get("tool_calls") or ()):
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise AdminError(400, f"reply.tool_calls[{i}] needs a name")
        if not isinstance(call.get("arguments", {}), dict | str):
            raise AdminError(400, f"reply.tool_calls[{i}].arguments must be an object or string")
    if "tool_calls" in reply and not isinstance(reply["tool_calls"], list):
        raise AdminError(400, "reply.tool_calls must be a list")
    if reply.get("finish_reason") not in (None, *_FINISH_REASONS):
        raise AdminError(400, f"reply.finish_reason must be one of {', '.join(_FINISH_REASONS)}")
    usage = reply.get("usage", {})
    if not isinstance(usage, dict) or not all(
        isinstance(usage.get(k, 0), int) for k in ("prompt_tokens", "completion_tokens")
    ):
        raise AdminError(400, "reply.usage takes integer prompt_tokens and completion_tokens")
    _number(reply, "latency_ms", 0.0)
    if not ({"content", "json", "tool_calls", "refusal"} & set(reply)):
        raise AdminError(400, "reply needs content, json, tool_calls or refusal")


def _check_moderation_result(result: dict[str, Any]) -> None:
    unknown = set(result) - _MODERATION_KEYS
    if unknown:
        raise AdminError(400, f"unknown result fields: {', '.join(sorted(unknown))}")
    raw = result.get("categories") or []
    names = list(raw) if isinstance(raw, dict | list) else None
    if names is None or any(n not in MODERATION_CATEGORIES for n in names):
        raise AdminError(
            400,
            "result.categories lists OpenAI category names: " + ", ".join(MODERATION_CATEGORIES),
        )


def admin_routes(state: StandinState) -> list[Route]:
    """The ``/_standin`` routes over ``state``."""
    docs: list[dict[str, str]] = []

    def wrap(
        fn: Callable[[Request], Awaitable[Any]], status: int = 200
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            try:
                return JSONResponse(await fn(request), status)
            except AdminError as exc:
                return JSONResponse({"error": exc.message}, exc.status)

        return handler

    routes: list[Route] = []

    def route(path: str, method: str, doc: str, status: int = 200) -> Callable[..., Any]:
        def register(
            fn: Callable[[Request], Awaitable[Any]],
        ) -> Callable[[Request], Awaitable[Any]]:
            routes.append(Route(PREFIX + path, wrap(fn, status), methods=[method]))
            docs.append({"method": method, "path": PREFIX + path, "description": doc})
            return fn

        return register

    @route("", "GET", "this list of admin routes")
    async def index(request: Request) -> Any:
        return {"routes": docs}

    @route("/health", "GET", "liveness: {ok: true}")
    async def health(request: Request) -> Any:
        return {"ok": True}

    def make_script(raw: Any) -> Script:
        b = _object(raw, "script")
        kind = b.get("route", "chat")
        if kind not in ("chat", "moderations"):
            raise AdminError(400, "route is chat or moderations")
        match = _object(b.get("match") or {}, "match")
        unknown = set(match) - {"contains", "model"}
        if unknown:
            raise AdminError(400, f"unknown match fields: {', '.join(sorted(unknown))}")
        if kind == "chat":
            reply = _object(b.get("reply"), "reply")
            _check_chat_reply(reply)
        else:
            reply = _object(b.get("result"), "result")
            _check_moderation_result(reply)
        times = None if b.get("repeat") is True else _count(b, "times", 1)
        return Script(
            id=state.next_id("script"),
            route=kind,
            reply=reply,
            contains=_opt_str(match, "contains"),
            model=_opt_str(match, "model"),
            remaining=times,
        )

    @route(
        "/scripts",
        "POST",
        "queue a scripted answer: {route: chat|moderations, match: {contains, model}, "
        "times: n | repeat: true, reply: {content | json | tool_calls: [{name, arguments}] | "
        "refusal, finish_reason, usage: {prompt_tokens, completion_tokens}, latency_ms}} "
        "(chat) or result: {categories, category_scores, flagged} (moderations); "
        "or {scripts: [...]}",
        201,
    )
    async def add_scripts(request: Request) -> Any:
        b = _object(await _body(request))
        if "scripts" in b:
            raw = b["scripts"]
            if not isinstance(raw, list):
                raise AdminError(400, "scripts must be a list")
            made = [make_script(s) for s in raw]  # all checked before any is queued
            return {"data": [state.add_script(s).as_dict() for s in made]}
        return state.add_script(make_script(b)).as_dict()

    @route("/scripts", "GET", "scripted answers not yet used up")
    async def list_scripts(request: Request) -> Any:
        return {"data": state.pending_scripts()}

    @route("/scripts", "DELETE", "drop every scripted answer")
    async def clear_scripts(request: Request) -> Any:
        with state.lock:
            state.scripts.clear()
        return {"ok": True}

    def make_fault(raw: Any) -> FaultRule:
        b = _object(raw, "fault")
        kind = b.get("kind")
        if kind not in FAULT_KINDS:
            raise AdminError(400, f"kind is one of {', '.join(FAULT_KINDS)}")
        where = b.get("route")
        if where is not None and where not in ROUTES:
            raise AdminError(400, f"route is one of {', '.join(ROUTES)} (or null for all)")
        probability = _number(b, "probability", 1.0)
        if probability > 1:
            raise AdminError(400, "probability must be in [0, 1]")
        status = b.get("status", 500)
        if not isinstance(status, int) or not 500 <= status <= 599:
            raise AdminError(400, "status must be a 5xx code")
        hang = b.get("hang_seconds")
        return FaultRule(
            id=state.next_id("fault"),
            kind=kind,
            route=where,
            count=_count(b, "count", None),
            probability=probability,
            status=status,
            retry_after=_number(b, "retry_after", 1.0),
            quota=b.get("quota") is True,
            latency_ms=_number(b, "latency_ms", 0.0),
            delay_ms=_number(b, "delay_ms", 0.0),
            hang_seconds=None if hang is None else _number(b, "hang_seconds", 0.0),
        )

    @route(
        "/faults",
        "POST",
        "add a fault: {kind: error|rate_limit|timeout|malformed_json|schema_mismatch|"
        "slow_stream|latency, route: chat|embeddings|moderations|models|null, count: n|null, "
        "probability: 0..1, status (error), retry_after + quota (rate_limit), hang_seconds "
        "(timeout), delay_ms (slow_stream), latency_ms (latency)}",
        201,
    )
    async def add_fault(request: Request) -> Any:
        return state.add_fault(make_fault(await _body(request))).as_dict()

    @route("/faults", "GET", "fault rules and how often each fired")
    async def list_faults(request: Request) -> Any:
        with state.lock:
            return {"data": [f.as_dict() for f in state.faults]}

    @route("/faults", "DELETE", "drop every fault rule")
    async def clear_faults(request: Request) -> Any:
        with state.lock:
            state.faults.clear()
        return {"ok": True}

    @route("/requests", "GET", "the request log (?route=chat), oldest first, keys never logged")
    async def requests(request: Request) -> Any:
        where = request.query_params.get("route")
        if where is not None and where not in ROUTES:
            raise AdminError(400, f"route is one of {', '.join(ROUTES)}")
        return {"data": state.requests(where)}

    @route("/requests", "DELETE", "clear the request log")
    async def clear_requests(request: Request) -> Any:
        state.clear_log()
        return {"ok": True}

    @route("/stats", "GET", "{requests, in_flight, max_in_flight}")
    async def stats(request: Request) -> Any:
        return dict(state.stats())

    def config_view() -> dict[str, Any]:
        cfg = state.config
        return {
            "require_auth": cfg.require_auth,
            "api_key_count": len(cfg.api_keys),
            "models": [
                {"id": m.id, "kind": m.kind, "dimensions": m.dimensions} for m in cfg.models
            ],
            "moderation_words": {k: list(v) for k, v in cfg.moderation_words.items()},
            "stream_chunk_tokens": cfg.stream_chunk_tokens,
            "hang_seconds": cfg.hang_seconds,
            "moderation_list_input": cfg.moderation_list_input,
        }

    @route("/config", "GET", "settings (keys are counted, never shown)")
    async def get_config(request: Request) -> Any:
        with state.lock:
            return config_view()

    @route(
        "/config",
        "POST",
        "change settings: {api_keys: [..], require_auth, models: [{id, kind, dimensions, "
        "shortenable}] (added or replaced), moderation_words: {category: [phrases]}, "
        "stream_chunk_tokens, hang_seconds, moderation_list_input}",
    )
    async def set_config(request: Request) -> Any:
        b = _object(await _body(request))
        unknown = set(b) - {
            "api_keys",
            "require_auth",
            "models",
            "moderation_words",
            "stream_chunk_tokens",
            "hang_seconds",
            "moderation_list_input",
        }
        if unknown:
            raise AdminError(400, f"unknown settings: {', '.join(sorted(unknown))}")
        with state.lock:
            # Changes land together or not at all: work on a copy.
            cfg = state.config.copy()
            if "api_keys" in b:
                keys = b["api_keys"]
                if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
                    raise AdminError(400, "api_keys must be a list of non-empty strings")
                cfg.api_keys = tuple(keys)
            if "require_auth" in b:
                cfg.require_auth = b["require_auth"] is not False
            if "models" in b:
                models = {m.id: m for m in cfg.models}
                for raw in b["models"] if isinstance(b["models"], list) else [None]:
                    m = _object(raw, "model")
                    if not isinstance(m.get("id"), str) or not m["id"]:
                        raise AdminError(400, "model needs an id")
                    kind = m.get("kind", "chat")
                    if kind not in ("chat", "embedding", "moderation"):
                        raise AdminError(400, "model kind is chat, embedding or moderation")
                    dims = _count(m, "dimensions", 1536 if kind == "embedding" else None)
                    spec = ModelSpec(
                        m["id"], kind, dimensions=dims, shortenable=m.get("shortenable") is True
                    )
                    models[spec.id] = replace(spec, owned_by=str(m.get("owned_by", "system")))
                cfg.models = tuple(models.values())
            if "moderation_words" in b:
                words = _object(b["moderation_words"], "moderation_words")
                for cat, phrases in words.items():
                    if cat not in MODERATION_CATEGORIES:
                        raise AdminError(400, f"unknown moderation category {cat}")
                    if not isinstance(phrases, list) or not all(
                        isinstance(p, str) for p in phrases
                    ):
                        raise AdminError(400, f"moderation_words[{cat}] must list strings")
                    cfg.moderation_words[cat] = tuple(phrases)
            if "stream_chunk_tokens" in b:
                cfg.stream_chunk_tokens = int(_count(b, "stream_chunk_tokens", 2) or 2)
            if "hang_seconds" in b:
                cfg.hang_seconds = _number(b, "hang_seconds", cfg.hang_seconds)
            if "moderation_list_input" in b:
                cfg.moderation_list_input = b["moderation_list_input"] is not False
            state.config = cfg
            return config_view()

    @route("/reset", "POST", "back to the start: initial settings, no scripts, faults or log")
    async def reset(request: Request) -> Any:
        state.reset()
        return {"ok": True}

    return routes
