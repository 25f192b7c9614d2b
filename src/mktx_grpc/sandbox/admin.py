"""The sandbox admin API (JSON, under ``/_sandbox``): fake users, consent,
injected account activity, read-back of what the sandbox received, metrics,
faults and limits. It needs no authentication: the sandbox only listens on
loopback.

Every route is declared once in :data:`ADMIN_API` with its description and body
fields; ``GET /_sandbox`` serves that list and ``README.md`` beside this file
carries the same table (a test keeps the two in step).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .config import TIERS
from .faults import FaultRule
from .limits import limits_for
from .state import USER_FIELDS, SandboxState

if TYPE_CHECKING:
    from .app import RouteSpec

__all__ = ["ADMIN_API", "CONSENT_BEHAVIOUR", "AdminRoute", "admin_routes"]

Handler = Callable[[Request], Awaitable[Response]]

CONSENT_BEHAVIOUR = (
    "The OAuth 1.0a (/oauth/authorize) and OAuth 2.0 (/i/oauth2/authorize) consent pages "
    "log in a fake user at once and redirect to the callback: the user named by the "
    "sandbox_user_id query parameter, else the one set with POST /_sandbox/consent, else "
    "the first user (the seeded merchant). sandbox_deny=1 makes the user refuse "
    "(OAuth 1.0a: ?denied=<token>, OAuth 2.0: ?error=access_denied)."
)

_USER_BODY = {
    "id": "optional numeric id (default: a new snowflake)",
    "username": "required, unique",
    "name": "display name (default: the username)",
    "accepts_dms": "bool, default true (false: DMs to them get X's 403)",
    "followers_count": "int",
    "following_count": "int",
    "verified": "bool",
    "long_post": "bool: may post up to 25,000 weighted characters",
    "description": "profile bio",
    "location": "profile location",
    "url": "profile URL",
    "protected": "bool",
}
_EDITABLE = tuple(k for k in _USER_BODY if k not in ("id", "username"))

# Admin names for metric increments -> (public_metrics key, non_public_metrics key)
_METRICS = {
    "impressions": ("impression_count", "impression_count"),
    "likes": ("like_count", None),
    "reposts": ("retweet_count", None),
    "replies": ("reply_count", None),
    "quotes": ("quote_count", None),
    "bookmarks": ("bookmark_count", None),
    "url_clicks": (None, "url_link_clicks"),
    "profile_clicks": (None, "user_profile_clicks"),
}


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class AdminRoute:
    method: str
    path: str
    description: str
    body: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "description": self.description,
            "body": dict(self.body),
        }


def _r(method: str, path: str, description: str, /, **body: str) -> AdminRoute:
    return AdminRoute(method, "/_sandbox" + path, description, body)


#: The admin API, in the order ``GET /_sandbox`` and the README list it.
ADMIN_API: tuple[AdminRoute, ...] = (
    _r("GET", "", "This index: every admin route, the seeded users and the consent behaviour."),
    _r("GET", "/health", "Liveness: {ok: true}."),
    _r("GET", "/routes", "The X API routes: endpoint and handler names (for fault rules), limits."),
    AdminRoute("POST", "/_sandbox/users", "Create a fake X user; returns it.", _USER_BODY),
    _r("GET", "/users", "List every fake user (all user fields)."),
    AdminRoute(
        "PATCH",
        "/_sandbox/users/{id}",
        "Change a user's profile or switches.",
        {k: _USER_BODY[k] for k in _EDITABLE},
    ),
    _r(
        "POST",
        "/users/{id}/revoke",
        "Revoke every token of the user (the user de-authorized the app).",
        notify="bool, default true: first deliver user_event.revoke to their webhooks",
    ),
    _r("GET", "/users/{id}/posts", "The user's posts, newest first, deleted ones included."),
    _r(
        "POST",
        "/consent",
        "Choose who logs in at the consent pages when no sandbox_user_id is given.",
        user_id="user id, or null for the default",
    ),
    _r(
        "POST",
        "/dms/inbound",
        "A customer DMs a user: stored and delivered to the recipient's webhooks.",
        sender_id="required",
        recipient_id="required",
        text="text (text or media_id required)",
        media_id="an uploaded media id",
    ),
    _r("GET", "/dms", "Every DM the sandbox holds (query: sender_id), with the auth used."),
    _r("GET", "/conversations", "The group DM conversations with their participants."),
    _r(
        "POST",
        "/follows",
        "Inject a follow or unfollow (follow_events to the target's webhooks).",
        source_user_id="required",
        target_user_id="required",
        type="follow (default) or unfollow",
    ),
    _r(
        "POST",
        "/mentions",
        "Inject a post mentioning a user (tweet_create_events to their webhooks).",
        author_id="required",
        mentioned_user_id="required",
        text="post text (the @mention is prefixed when missing)",
        in_reply_to="post id it replies to",
    ),
    _r(
        "POST",
        "/read_receipts",
        "Inject a DM read receipt (direct_message_mark_read_events).",
        reader_id="required",
        for_user_id="required",
        last_read_event_id="required",
    ),
    _r(
        "GET",
        "/posts",
        "Every post (query: author_id, include_deleted=false to hide deleted ones).",
    ),
    _r(
        "POST",
        "/posts/{id}/metrics",
        "Set or grow a post's metrics; returns public and non-public metrics.",
        add="{impressions, likes, reposts, replies, quotes, bookmarks, url_clicks, "
        "profile_clicks}: amounts to add",
        public_metrics="object: values to set",
        non_public_metrics="object: values to set",
    ),
    _r("GET", "/media/{id}", "A media item: state, size, STATUS poll times, alt text."),
    _r("POST", "/media/{id}/fail", "Make this media's processing end failed (X's error object)."),
    _r(
        "POST",
        "/media/fail_next",
        "Make the processing of the next finalized videos/GIFs fail.",
        count="how many (default 1)",
    ),
    _r("GET", "/deliveries", "Webhook deliveries and their outcome (query: for_user_id, kind)."),
    _r("GET", "/faults", "The global faults and the per-route fault rules."),
    _r(
        "POST",
        "/faults",
        "Global faults on every API route, before processing.",
        rate_limit_next="next N calls get X's 429",
        rate_limit_reset_after="seconds until the 429's reset",
        error_next="then the next N calls get a 5xx",
        error_status="that 5xx (default 503)",
        latency_ms="sleep before every call",
    ),
    _r(
        "POST",
        "/faults/rules",
        "Add a per-route fault; returns it with its id.",
        route='endpoint ("POST /2/tweets") or handler name ("create_post")',
        path='glob over the request path ("/2/dm_conversations/*"); route or path needed',
        method="only this HTTP method",
        kind="error, rate_limit, timeout (before processing); accept_then_error, "
        "accept_then_drop, accept_then_stall (after storing the DM or post)",
        status="5xx for error kinds (default 503)",
        count="requests it hits (default 1; null: unlimited)",
        probability="chance per matching request (default 1)",
        seconds="sleep for timeout / accept_then_stall (default 30)",
        reset_after="seconds until a rate_limit fault's reset (default 1)",
        after="matching requests let through before it starts hitting (default 0)",
    ),
    _r("DELETE", "/faults/rules/{id}", "Remove one fault rule."),
    _r("DELETE", "/faults", "Clear every fault, global and per route."),
    _r(
        "POST",
        "/limits",
        "Change rate limiting; returns the settings.",
        enabled="bool: false lifts every limit (calls are not counted)",
        tier="free, basic, pro or enterprise",
        dm_limit_15min="per-user override for DM sends (null: the tier's)",
        dm_limit_24h="per-user override for DM sends (null: the tier's)",
        post_limit_15min="per-user override for POST /2/tweets (null: the tier's)",
        default_limit_15min="override for every other endpoint (null: the tier's)",
    ),
    _r("POST", "/limits/reset", "Forget every rate-limit window."),
    _r(
        "POST",
        "/clock/advance",
        "Move the sandbox clock forward (token expiry, rate windows, 30-day rules).",
        seconds="required",
    ),
    _r(
        "POST",
        "/echo",
        "Whether DMs sent through the API are echoed to the sender's webhooks.",
        enabled="bool",
    ),
)


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


def _int(body: dict[str, Any], key: str, default: int | None) -> int | None:
    if key not in body:
        return default
    value = body[key]
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AdminError(400, f"{key} must be an integer") from None


def admin_routes(state: SandboxState, api: Sequence[RouteSpec] = ()) -> list[Route]:
    """The admin routes for ``state``; ``api`` (the X routes) feeds ``/routes``."""

    def known(uid: str) -> str:
        with state.lock:
            if uid not in state.users:
                raise AdminError(404, f"no sandbox user {uid}")
        return uid

    def wrap(fn: Callable[[Request], Awaitable[Any]], status: int = 200) -> Handler:
        async def handler(request: Request) -> Response:
            try:
                result = await fn(request)
            except AdminError as exc:
                return JSONResponse({"error": exc.message}, exc.status)
            if request.method != "GET":
                state.touch()
            return JSONResponse(result, status)

        return handler

    def user_json(uid: str) -> dict[str, Any]:
        with state.lock:
            u = state.users[uid]
            out = u.v2(USER_FIELDS)
            out.update(accepts_dms=u.accepts_dms, long_post=u.long_post)
            return out

    async def index(request: Request) -> Any:
        with state.lock:
            seeds = [user_json(uid) for uid, _, _ in state.config.seed_users if uid in state.users]
        return {
            "admin_api": [r.as_dict() for r in ADMIN_API],
            "seeded_users": seeds,
            "consent": CONSENT_BEHAVIOUR,
            "tier": state.config.tier,
        }

    async def health(request: Request) -> Any:
        return {"ok": True}

    async def routes(request: Request) -> Any:
        cfg = state.config
        out = []
        for spec in api:
            lim = limits_for(
                spec.endpoint,
                cfg.tier,
                dm_15min=cfg.dm_limit_15min,
                dm_24h=cfg.dm_limit_24h,
                post_15min=cfg.post_limit_15min,
                default_15min=cfg.default_limit_15min,
            )
            out.append(
                {
                    "endpoint": spec.endpoint,
                    "name": spec.name,
                    "path": spec.path,
                    "faults": spec.faults,
                    "limits": None
                    if lim is None
                    else {"user": [list(w) for w in lim.user], "app": [list(w) for w in lim.app]},
                }
            )
        return {"tier": cfg.tier, "data": out}

    async def create_user(request: Request) -> Any:
        b = await _body(request)
        username = _req(b, "username")
        if state.user_by_username(username) is not None:
            raise AdminError(409, f"username {username} exists")
        if b.get("id") is not None and not str(b["id"]).isdigit():
            raise AdminError(400, "id must be numeric")
        extra = {k: b[k] for k in _EDITABLE if k in b and k != "name"}
        uid = str(b["id"]) if b.get("id") is not None else None
        user = state.add_user(uid, username, b.get("name"), **extra)
        return user_json(user.id)

    async def list_users(request: Request) -> Any:
        with state.lock:
            return {"data": [user_json(uid) for uid in state.users]}

    async def update_user(request: Request) -> Any:
        uid = known(request.path_params["id"])
        b = await _body(request)
        with state.lock:
            user = state.users[uid]
            for key in _EDITABLE:
                if key in b:
                    setattr(user, key, b[key])
        return user_json(uid)

    async def user_posts(request: Request) -> Any:
        uid = known(request.path_params["id"])
        posts = sorted(state.iter_posts(uid), key=lambda p: int(p.id), reverse=True)
        with state.lock:
            return {"data": [p.as_dict() for p in posts]}

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
        with state.lock:
            return {"data": [d.as_dict() for d in state.sent_dms(sender)]}

    async def conversations(request: Request) -> Any:
        with state.lock:
            return {
                "data": [
                    {
                        "id": c.id,
                        "participant_ids": list(c.participant_ids),
                        "created_by": c.created_by,
                    }
                    for c in state.conversations.values()
                ]
            }

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
        q = request.query_params
        keep_deleted = q.get("include_deleted", "true").lower() != "false"
        posts = [p for p in state.iter_posts(q.get("author_id")) if keep_deleted or not p.deleted]
        with state.lock:
            return {"data": [p.as_dict() for p in posts]}

    async def post_metrics(request: Request) -> Any:
        b = await _body(request)
        add = b.get("add") or {}
        if not isinstance(add, dict) or any(k not in _METRICS for k in add):
            raise AdminError(400, f"add takes {', '.join(_METRICS)}")
        with state.lock:
            post = state.posts.get(request.path_params["id"])
            if post is None:
                raise AdminError(404, "no such post")
            post.public_metrics.update(b.get("public_metrics") or {})
            post.non_public_metrics.update(b.get("non_public_metrics") or {})
            engaged = 0
            for name, amount in add.items():
                n = int(amount)
                if n < 0:
                    raise AdminError(400, f"add.{name} must not be negative")
                public_key, private_key = _METRICS[name]
                if public_key:
                    post.public_metrics[public_key] = post.public_metrics.get(public_key, 0) + n
                if private_key:
                    post.non_public_metrics[private_key] = (
                        post.non_public_metrics.get(private_key, 0) + n
                    )
                if name != "impressions":
                    engaged += n
            post.non_public_metrics["engagements"] = (
                post.non_public_metrics.get("engagements", 0) + engaged
            )
            return {
                "public_metrics": dict(post.public_metrics),
                "non_public_metrics": dict(post.non_public_metrics),
            }

    async def media(request: Request) -> Any:
        with state.lock:
            m = state.media.get(request.path_params["id"])
            if m is None:
                raise AdminError(404, "no such media")
            return {
                "id": m.id,
                "owner_id": m.owner_id,
                "category": m.category,
                "state": m.state,
                "size": m.size,
                "status_polls": m.status_polls,
                "alt_text": m.alt_text,
                "fail_processing": m.fail_processing,
            }

    async def media_fail(request: Request) -> Any:
        with state.lock:
            m = state.media.get(request.path_params["id"])
            if m is None:
                raise AdminError(404, "no such media")
            m.fail_processing = True
            return {"id": m.id, "fail_processing": True}

    async def media_fail_next(request: Request) -> Any:
        b = await _body(request)
        n = _int(b, "count", 1) or 0
        with state.lock:
            state.media_fail_next = max(0, n)
            return {"media_fail_next": state.media_fail_next}

    async def deliveries(request: Request) -> Any:
        q = request.query_params
        items = state.deliveries_for(q.get("for_user_id"), q.get("kind"))
        with state.lock:
            return {"data": [d.as_dict() for d in items]}

    def faults_json() -> dict[str, Any]:
        with state.lock:
            f = state.faults
            return {
                "rate_limit_next": f.rate_limit_next,
                "rate_limit_reset_after": f.rate_limit_reset_after,
                "error_next": f.error_next,
                "error_status": f.error_status,
                "latency_ms": f.latency * 1000,
                "rules": [r.as_dict() for r in state.fault_rules],
            }

    async def get_faults(request: Request) -> Any:
        return faults_json()

    async def set_faults(request: Request) -> Any:
        b = await _body(request)
        try:
            with state.lock:
                f = state.faults
                f.rate_limit_next = int(b.get("rate_limit_next", f.rate_limit_next))
                f.rate_limit_reset_after = float(
                    b.get("rate_limit_reset_after", f.rate_limit_reset_after)
                )
                f.error_next = int(b.get("error_next", f.error_next))
                f.error_status = int(b.get("error_status", f.error_status))
                f.latency = float(b.get("latency_ms", f.latency * 1000)) / 1000
        except (TypeError, ValueError):
            raise AdminError(400, "fault values must be numbers") from None
        return faults_json()

    async def add_rule(request: Request) -> Any:
        b = await _body(request)
        try:
            rule = FaultRule(
                id=secrets.token_hex(4),
                kind=str(b.get("kind", "")),
                route=b.get("route"),
                path=b.get("path"),
                method=b.get("method"),
                status=int(b.get("status", 503)),
                count=_int(b, "count", 1),
                probability=float(b.get("probability", 1.0)),
                seconds=float(b.get("seconds", 30.0)),
                reset_after=float(b.get("reset_after", 1.0)),
                after=int(b.get("after", 0)),
            )
            state.add_fault_rule(rule)
        except (TypeError, ValueError) as exc:
            raise AdminError(400, str(exc)) from None
        return rule.as_dict()

    async def delete_rule(request: Request) -> Any:
        rid = request.path_params["id"]
        with state.lock:
            before = len(state.fault_rules)
            state.fault_rules = [r for r in state.fault_rules if r.id != rid]
            if len(state.fault_rules) == before:
                raise AdminError(404, f"no fault rule {rid}")
        return {"deleted": rid}

    async def clear_faults(request: Request) -> Any:
        state.clear_faults()
        return {"ok": True}

    async def set_limits(request: Request) -> Any:
        b = await _body(request)
        cfg = state.config
        if "tier" in b and b["tier"] not in TIERS:
            raise AdminError(400, f"tier must be one of {', '.join(TIERS)}")
        keys = ("dm_limit_15min", "dm_limit_24h", "post_limit_15min", "default_limit_15min")
        values = {k: _int(b, k, getattr(cfg, k)) for k in keys}
        with state.lock:
            if "enabled" in b:
                cfg.rate_limits_enabled = bool(b["enabled"])
            if "tier" in b:
                cfg.tier = str(b["tier"])
            for key, value in values.items():
                setattr(cfg, key, value)
            return {"enabled": cfg.rate_limits_enabled, "tier": cfg.tier, **values}

    async def reset_limits(request: Request) -> Any:
        state.reset_limits()
        return {"ok": True}

    async def advance_clock(request: Request) -> Any:
        b = await _body(request)
        try:
            state.advance(float(b.get("seconds", 0)))
        except (TypeError, ValueError):
            raise AdminError(400, "seconds must be a number") from None
        return {"now": state.now()}

    async def echo(request: Request) -> Any:
        b = await _body(request)
        with state.lock:
            state.config.echo_dm_to_webhook = bool(b.get("enabled", True))
        return {"enabled": state.config.echo_dm_to_webhook}

    handlers: dict[tuple[str, str], tuple[Callable[[Request], Awaitable[Any]], int]] = {
        ("GET", ""): (index, 200),
        ("GET", "/health"): (health, 200),
        ("GET", "/routes"): (routes, 200),
        ("POST", "/users"): (create_user, 201),
        ("GET", "/users"): (list_users, 200),
        ("PATCH", "/users/{id}"): (update_user, 200),
        ("POST", "/users/{id}/revoke"): (revoke, 200),
        ("GET", "/users/{id}/posts"): (user_posts, 200),
        ("POST", "/consent"): (consent, 200),
        ("POST", "/dms/inbound"): (inbound_dm, 201),
        ("GET", "/dms"): (list_dms, 200),
        ("GET", "/conversations"): (conversations, 200),
        ("POST", "/follows"): (follow, 200),
        ("POST", "/mentions"): (mention, 201),
        ("POST", "/read_receipts"): (read_receipt, 200),
        ("GET", "/posts"): (list_posts, 200),
        ("POST", "/posts/{id}/metrics"): (post_metrics, 200),
        ("GET", "/media/{id}"): (media, 200),
        ("POST", "/media/{id}/fail"): (media_fail, 200),
        ("POST", "/media/fail_next"): (media_fail_next, 200),
        ("GET", "/deliveries"): (deliveries, 200),
        ("GET", "/faults"): (get_faults, 200),
        ("POST", "/faults"): (set_faults, 200),
        ("POST", "/faults/rules"): (add_rule, 201),
        ("DELETE", "/faults/rules/{id}"): (delete_rule, 200),
        ("DELETE", "/faults"): (clear_faults, 200),
        ("POST", "/limits"): (set_limits, 200),
        ("POST", "/limits/reset"): (reset_limits, 200),
        ("POST", "/clock/advance"): (advance_clock, 200),
        ("POST", "/echo"): (echo, 200),
    }
    out = []
    for spec in ADMIN_API:
        fn, status = handlers[(spec.method, spec.path.removeprefix("/_sandbox"))]
        out.append(Route(spec.path, wrap(fn, status), methods=[spec.method]))
    assert len(handlers) == len(ADMIN_API), "every admin handler is declared in ADMIN_API"
    return out
