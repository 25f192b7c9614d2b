"""The sandbox admin API (JSON, under ``/_sandbox``): fake users, consent,
injected account activity, read-back of what the sandbox received, faults and
limits. It needs no authentication: the sandbox only listens on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .state import SandboxState

__all__ = ["admin_routes"]

Handler = Callable[[Request], Awaitable[Response]]


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise AdminError(400, "body is not JSON") from None
    if not isinstance(data, dict):
        raise AdminError(400, "body must be a JSON object")
    return data


def _req(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None or value == "":
        raise AdminError(400, f"{key} is required")
    return str(value)


def admin_routes(state: SandboxState) -> list[Route]:
    def known(uid: str) -> str:
        with state.lock:
            if uid not in state.users:
                raise AdminError(404, f"no sandbox user {uid}")
        return uid

    def wrap(fn: Callable[[Request], Awaitable[Any]], status: int = 200) -> Handler:
        async def handler(request: Request) -> Response:
            try:
                return JSONResponse(await fn(request), status)
            except AdminError as exc:
                return JSONResponse({"error": exc.message}, exc.status)

        return handler

    async def health(request: Request) -> Any:
        return {"ok": True}

    async def create_user(request: Request) -> Any:
        b = await _body(request)
        username = _req(b, "username")
        if state.user_by_username(username) is not None:
            raise AdminError(409, f"username {username} exists")
        extra = {k: b[k] for k in ("accepts_dms", "followers_count", "verified") if k in b}
        user = state.add_user(b.get("id"), username, b.get("name"), **extra)
        return user.v2()

    async def list_users(request: Request) -> Any:
        with state.lock:
            return {"data": [u.v2() for u in state.users.values()]}

    async def update_user(request: Request) -> Any:
        uid = known(request.path_params["id"])
        b = await _body(request)
        with state.lock:
            user = state.users[uid]
            for key in ("name", "accepts_dms", "followers_count", "verified"):
                if key in b:
                    setattr(user, key, b[key])
            return user.v2()

    async def consent(request: Request) -> Any:
        b = await _body(request)
        uid = b.get("user_id")
        with state.lock:
            state.next_consent_user_id = known(str(uid)) if uid else None
        return {"user_id": uid}

    async def inbound_dm(request: Request) -> Any:
        b = await _body(request)
        sender, recipient = known(_req(b, "sender_id")), known(_req(b, "recipient_id"))
        text, media_id = b.get("text"), b.get("media_id")
        if not text and not media_id:
            raise AdminError(400, "text or media_id is required")
        rec = state.add_dm(sender, recipient, text, media_id, source="inbound", principal=None)
        return {"dm_event_id": rec.id, "dm_conversation_id": rec.conversation_id}

    async def list_dms(request: Request) -> Any:
        sender = request.query_params.get("sender_id")
        return {"data": [d.as_dict() for d in state.sent_dms(sender)]}

    async def follow(request: Request) -> Any:
        b = await _body(request)
        kind = str(b.get("type", "follow"))
        if kind not in ("follow", "unfollow"):
            raise AdminError(400, "type is follow or unfollow")
        state.inject_follow(
            known(_req(b, "source_user_id")), known(_req(b, "target_user_id")), kind
        )
        return {"ok": True}

    async def mention(request: Request) -> Any:
        b = await _body(request)
        post = state.inject_mention(
            known(_req(b, "author_id")),
            known(_req(b, "mentioned_user_id")),
            str(b.get("text", "")),
            b.get("in_reply_to"),
        )
        return {"id": post.id, "text": post.text}

    async def read_receipt(request: Request) -> Any:
        b = await _body(request)
        state.inject_read_receipt(
            known(_req(b, "reader_id")),
            known(_req(b, "for_user_id")),
            _req(b, "last_read_event_id"),
        )
        return {"ok": True}

    async def revoke(request: Request) -> Any:
        uid = known(request.path_params["id"])
        b = await _body(request)
        if b.get("notify", True):
            n = state.inject_revoke(uid)
        else:
            n = state.revoke_user_tokens(uid)
        return {"revoked_tokens": n}

    async def list_posts(request: Request) -> Any:
        return {"data": [p.as_dict() for p in state.iter_posts()]}

    async def post_metrics(request: Request) -> Any:
        b = await _body(request)
        with state.lock:
            post = state.posts.get(request.path_params["id"])
            if post is None:
                raise AdminError(404, "no such post")
            post.public_metrics.update(b.get("public_metrics") or {})
            post.non_public_metrics.update(b.get("non_public_metrics") or {})
            return {
                "public_metrics": post.public_metrics,
                "non_public_metrics": post.non_public_metrics,
            }

    async def media(request: Request) -> Any:
        with state.lock:
            m = state.media.get(request.path_params["id"])
            if m is None:
                raise AdminError(404, "no such media")
            return {"id": m.id, "state": m.state, "size": m.size, "status_polls": m.status_polls}

    async def deliveries(request: Request) -> Any:
        q = request.query_params
        items = state.deliveries_for(q.get("for_user_id"), q.get("kind"))
        with state.lock:
            return {"data": [d.as_dict() for d in items]}

    async def set_faults(request: Request) -> Any:
        b = await _body(request)
        with state.lock:
            f = state.faults
            f.rate_limit_next = int(b.get("rate_limit_next", f.rate_limit_next))
            f.rate_limit_reset_after = float(
                b.get("rate_limit_reset_after", f.rate_limit_reset_after)
            )
            f.error_next = int(b.get("error_next", f.error_next))
            f.error_status = int(b.get("error_status", f.error_status))
            f.latency = float(b.get("latency_ms", f.latency * 1000)) / 1000
            return {
                "rate_limit_next": f.rate_limit_next,
                "rate_limit_reset_after": f.rate_limit_reset_after,
                "error_next": f.error_next,
                "error_status": f.error_status,
                "latency_ms": f.latency * 1000,
            }

    async def clear_faults(request: Request) -> Any:
        with state.lock:
            f = state.faults
            f.rate_limit_next = f.error_next = 0
            f.latency = 0.0
        return {"ok": True}

    async def set_limits(request: Request) -> Any:
        b = await _body(request)
        cfg = state.config
        with state.lock:
            if "enabled" in b:
                cfg.rate_limits_enabled = bool(b["enabled"])
            for key in (
                "dm_limit_15min",
                "dm_limit_24h",
                "post_limit_15min",
                "default_limit_15min",
            ):
                if key in b:
                    setattr(cfg, key, int(b[key]))
            return {
                "enabled": cfg.rate_limits_enabled,
                "dm_limit_15min": cfg.dm_limit_15min,
                "dm_limit_24h": cfg.dm_limit_24h,
                "post_limit_15min": cfg.post_limit_15min,
                "default_limit_15min": cfg.default_limit_15min,
            }

    async def reset_limits(request: Request) -> Any:
        state.reset_limits()
        return {"ok": True}

    async def advance_clock(request: Request) -> Any:
        b = await _body(request)
        state.advance(float(b.get("seconds", 0)))
        return {"now": state.now()}

    async def echo(request: Request) -> Any:
        b = await _body(request)
        with state.lock:
            state.config.echo_dm_to_webhook = bool(b.get("enabled", True))
        return {"enabled": state.config.echo_dm_to_webhook}

    p = "/_sandbox"
    return [
        Route(f"{p}/health", wrap(health), methods=["GET"]),
        Route(f"{p}/users", wrap(create_user, 201), methods=["POST"]),
        Route(f"{p}/users", wrap(list_users), methods=["GET"]),
        Route(p + "/users/{id}", wrap(update_user), methods=["PATCH"]),
        Route(p + "/users/{id}/revoke", wrap(revoke), methods=["POST"]),
        Route(f"{p}/consent", wrap(consent), methods=["POST"]),
        Route(f"{p}/dms/inbound", wrap(inbound_dm, 201), methods=["POST"]),
        Route(f"{p}/dms", wrap(list_dms), methods=["GET"]),
        Route(f"{p}/follows", wrap(follow), methods=["POST"]),
        Route(f"{p}/mentions", wrap(mention, 201), methods=["POST"]),
        Route(f"{p}/read_receipts", wrap(read_receipt), methods=["POST"]),
        Route(f"{p}/posts", wrap(list_posts), methods=["GET"]),
        Route(p + "/posts/{id}/metrics", wrap(post_metrics), methods=["POST"]),
        Route(p + "/media/{id}", wrap(media), methods=["GET"]),
        Route(f"{p}/deliveries", wrap(deliveries), methods=["GET"]),
        Route(f"{p}/faults", wrap(set_faults), methods=["POST"]),
        Route(f"{p}/faults", wrap(clear_faults), methods=["DELETE"]),
        Route(f"{p}/limits", wrap(set_limits), methods=["POST"]),
        Route(f"{p}/limits/reset", wrap(reset_limits), methods=["POST"]),
        Route(f"{p}/clock/advance", wrap(advance_clock), methods=["POST"]),
        Route(f"{p}/echo", wrap(echo), methods=["POST"]),
    ]
