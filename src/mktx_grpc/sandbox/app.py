"""The sandbox's HTTP surface: X's wire protocol plus an admin API under ``/_sandbox``.

Responses copy X's shapes: ``application/json; charset=utf-8`` bodies,
``application/problem+json`` errors, OAuth2 ``{"error","error_description"}``
bodies at the token endpoints, form-encoded bodies for the OAuth 1.0a endpoints,
a ``location`` header on 201s, and rate-limit headers on every API call (numbers
per endpoint and access tier, ``limits.py``). Every API route can be given
faults (``faults.py``), including ones that act after the request was accepted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header, unescape
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mktx_grpc.x.signatures import crc_response_token

from .admin import admin_routes
from .config import SandboxConfig
from .faults import AFTER_KINDS, FaultRule
from .posts import (
    LONG_POST_LIMIT,
    POST_LIMIT,
    PRIVATE_METRICS,
    TWEET_FIELDS,
    render_post,
    weighted_length,
)
from .state import (
    USER_FIELDS,
    DmRecord,
    FakeUser,
    MediaRecord,
    OAuth1Token,
    OAuth2Code,
    PostRecord,
    Principal,
    SandboxState,
    WebhookRecord,
    iso,
)

__all__ = ["ApiError", "RouteSpec", "create_sandbox_app"]

PROBLEMS = "https://api.x.com/2/problems/"
JSON_TYPE = "application/json; charset=utf-8"
_USER_ID = re.compile(r"^[0-9]{1,19}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_GROUP_ID = re.compile(r"^[0-9]{15,19}$")
Handler = Callable[[Request], Awaitable[Response]]

DM_EVENT_FIELDS = frozenset(
    "attachments created_at dm_conversation_id entities event_type id participant_ids "
    "referenced_tweets sender_id text".split()
)
DM_EXPANSIONS = frozenset(
    "attachments.media_keys participant_ids referenced_tweets.id sender_id".split()
)
POST_EXPANSIONS = frozenset(
    "attachments.media_keys attachments.poll_ids author_id edit_history_tweet_ids "
    "entities.mentions.username in_reply_to_user_id referenced_tweets.id "
    "referenced_tweets.id.author_id".split()
)
USER_EXPANSIONS = frozenset("affiliation.user_id most_recent_tweet_id pinned_tweet_id".split())
MEDIA_FIELDS = frozenset(
    "alt_text duration_ms height media_key preview_image_url public_metrics type url "
    "variants width".split()
)
REPLY_SETTINGS = ("following", "mentionedUsers", "subscribers", "verified")


class XJSON(JSONResponse):
    """JSON as X sends it: ``application/json; charset=utf-8``."""

    media_type = JSON_TYPE


class ApiError(Exception):
    """Raised by handlers; becomes the given status, JSON body and headers."""

    def __init__(
        self,
        status: int,
        body: dict[str, Any] | str,
        *,
        headers: dict[str, str] | None = None,
        media_type: str = "application/problem+json",
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.media_type = media_type

    def response(self) -> Response:
        if isinstance(self.body, str):
            return PlainTextResponse(self.body, self.status, headers=self.headers)
        return JSONResponse(
            self.body, self.status, headers=self.headers, media_type=self.media_type
        )


def problem(
    status: int, title: str, detail: str, ptype: str = "about:blank", **extra: Any
) -> ApiError:
    return ApiError(
        status, {"title": title, "detail": detail, "type": ptype, "status": status, **extra}
    )


def forbidden(detail: str) -> ApiError:
    """X's plain 403: ``{"detail","type":"about:blank","title":"Forbidden","status":403}``."""
    return problem(403, "Forbidden", detail)


def unauthorized(detail: str = "Unauthorized") -> ApiError:
    return problem(401, "Unauthorized", detail)


def invalid_request(
    message: str, *, parameters: dict[str, list[str]] | None = None, **extra: Any
) -> ApiError:
    """X's 400: an ``errors`` list of ``{"parameters","message"}`` under the
    generic "Invalid Request" title (no ``status`` member, as X sends it)."""
    return ApiError(
        400,
        {
            "errors": [{"parameters": parameters or {}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": PROBLEMS + "invalid-request",
            **extra,
        },
    )


def oauth2_error(error: str, description: str, status: int = 400) -> ApiError:
    return ApiError(
        status, {"error": error, "error_description": description}, media_type=JSON_TYPE
    )


def too_many_requests(headers: dict[str, str]) -> ApiError:
    return ApiError(
        429,
        {
            "title": "Too Many Requests",
            "type": "about:blank",
            "status": 429,
            "detail": "Too Many Requests",
        },
        headers=headers,
    )


def client_forbidden(app_id: str, tier: str) -> ApiError:
    """X's answer to an endpoint outside the app's access level."""
    return ApiError(
        403,
        {
            "client_id": app_id,
            "detail": (
                "When authenticating requests to the Twitter API v2 endpoints, you must use "
                "keys and tokens from a Twitter developer App that is attached to a Project. "
                "You can create a project via the developer portal."
            ),
            "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
            "title": "Client Forbidden",
            "required_enrollment": "Appropriate Level of API Access",
            "reason": "client-not-enrolled",
            "type": PROBLEMS + "client-forbidden",
            "sandbox_tier": tier,
        },
    )


def _csv_param(request: Request, name: str, allowed: frozenset[str] | None = None) -> list[str]:
    """A comma-separated query parameter; values outside ``allowed`` are X's 400."""
    raw = request.query_params.get(name)
    if raw is None:
        return []
    values = [v for v in raw.split(",") if v]
    if not values:
        raise invalid_request(
            f"The `{name}` query parameter can not be empty", parameters={name: [raw]}
        )
    if allowed is not None:
        bad = [v for v in values if v not in allowed]
        if bad:
            raise invalid_request(
                f"The `{name}` query parameter value [{bad[0]}] is not one of "
                f"[{','.join(sorted(allowed))}]",
                parameters={name: [bad[0]]},
            )
    return values


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise invalid_request(
            f"The `{name}` query parameter value [{raw}] is not between {low} and {high}",
            parameters={name: [raw]},
        )
    return value


def _encode_cursor(direction: str, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{direction}:{item_id}".encode()).decode().rstrip("=")


def _decode_cursor(token: str | None) -> tuple[str, int] | None:
    """A keyset cursor ("n": older than id, "p": newer than id); 400 if malformed."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        direction, _, item_id = raw.partition(":")
        if direction not in ("n", "p"):
            raise ValueError(direction)
        return direction, int(item_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid_request(
            f"The `pagination_token` query parameter value [{token}] is not valid",
            parameters={"pagination_token": [token]},
        ) from None


def _keyset_page(
    ids: list[int], cursor: tuple[str, int] | None, size: int
) -> tuple[list[int], str | None, str | None]:
    """Page ``ids`` (newest first) by a keyset cursor. Returns the page's ids and
    X's ``next_token`` (older items exist) and ``previous_token`` (not the first
    page)."""
    if cursor is None:
        page = ids[:size]
    elif cursor[0] == "n":
        page = [i for i in ids if i < cursor[1]][:size]
    else:
        newer = [i for i in ids if i > cursor[1]]
        page = newer[-size:]
    if not page:
        return [], None, None
    older = any(i < page[-1] for i in ids)
    newer_exist = any(i > page[0] for i in ids)
    next_token = _encode_cursor("n", str(page[-1])) if older else None
    prev_token = _encode_cursor("p", str(page[0])) if cursor is not None and newer_exist else None
    return page, next_token, prev_token


def _parse_time(name: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise invalid_request(
            f"The `{name}` query parameter value [{value}] is not a valid RFC 3339 time",
            parameters={name: [value]},
        ) from None


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One X API route: ``endpoint`` is X's name for it ("POST /2/tweets"), used
    for its rate limits and by fault rules, as is ``name`` (the handler's name)."""

    method: str
    path: str
    endpoint: str
    name: str
    handler: Handler
    faults: bool = True


class _ConnectionControl:
    """Outermost ASGI layer: lets a handler ask for its connection to be dropped
    without any answer (the ``accept_then_drop`` fault)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        control = {"drop": False}
        scope["sandbox.control"] = control

        async def guarded(message: Message) -> None:
            if not control["drop"]:
                await send(message)

        await self.app(scope, receive, guarded)
        if control["drop"]:
            # uvicorn's send is a bound method of the request cycle that owns the
            # transport; closing it sends FIN with no response bytes at all.
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is None:
                raise RuntimeError("accept_then_drop needs uvicorn's transport")
            transport.close()
            # Let uvicorn see the connection lost, so it does not try a 500.
            for _ in range(3):
                await asyncio.sleep(0)


class SandboxApi:
    """Route handlers bound to one :class:`SandboxState`."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.cfg: SandboxConfig = state.config

    # -- plumbing --------------------------------------------------------------------

    async def pause(self, seconds: float) -> None:
        """Sleep, but give up as soon as the server is stopping."""
        give_up = time.monotonic() + seconds
        while not self.state.stopping.is_set():
            left = give_up - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(0.05, left))

    def endpoint(self, spec: RouteSpec) -> Handler:
        async def wrapper(request: Request) -> Response:
            request.state.rl_headers = {}
            request.state.endpoint = spec.endpoint
            with self.state.lock:
                self.state.request_log.append((request.method, request.url.path))
                latency = self.state.faults.latency
            rule: FaultRule | None = None
            if spec.faults:
                if latency > 0:
                    await self.pause(latency)
                fault = self.state.take_fault()
                if fault is not None:
                    return self._fault_response(fault)
                rule = self.state.take_rule(
                    request.method, spec.endpoint, spec.name, request.url.path
                )
                if rule is not None and rule.kind == "error":
                    return self._fault_response(("5xx", float(rule.status)))
                if rule is not None and rule.kind == "rate_limit":
                    return self._fault_response(("429", rule.reset_after))
                if rule is not None and rule.kind == "timeout":
                    # Read the request first, as X has by then: a client that gives up
                    # meanwhile does not stop X from acting on it afterwards.
                    await request.body()
                    await self.pause(rule.seconds)
            try:
                resp = await spec.handler(request)
            except ApiError as exc:
                resp = exc.response()
            for k, v in request.state.rl_headers.items():
                resp.headers.setdefault(k, v)
            if request.method != "GET":
                self.state.touch()
            if rule is not None and rule.kind in AFTER_KINDS and resp.status_code < 400:
                return await self._after_fault(request, rule, resp)
            return resp

        return wrapper

    async def _after_fault(self, request: Request, rule: FaultRule, resp: Response) -> Response:
        if rule.kind == "accept_then_error":
            return self._fault_response(("5xx", float(rule.status)))
        if rule.kind == "accept_then_drop":
            request.scope["sandbox.control"]["drop"] = True
            return resp
        await self.pause(rule.seconds)  # accept_then_stall
        return resp

    def _fault_response(self, fault: tuple[str, float]) -> Response:
        kind, value = fault
        if kind == "429":
            reset = int(self.state.now() + value + 0.999)
            return too_many_requests(
                {
                    "x-rate-limit-limit": "15",
                    "x-rate-limit-remaining": "0",
                    "x-rate-limit-reset": str(reset),
                }
            ).response()
        status = int(value)
        titles = {500: "Internal Server Error", 502: "Bad Gateway", 504: "Gateway Timeout"}
        title = titles.get(status, "Service Unavailable")
        return problem(status, title, title).response()

    def limit(self, request: Request, p: Principal) -> None:
        """Count this call against the endpoint's windows for the caller; raises
        X's 429 (or 403 client-forbidden outside the tier)."""
        decision = self.state.take(request.state.endpoint, p.user_id)
        if decision.not_in_tier:
            raise client_forbidden(self.cfg.app_id, self.cfg.tier)
        request.state.rl_headers = decision.headers
        if not decision.allowed:
            raise too_many_requests(decision.headers)

    @staticmethod
    def location(request: Request, path: str) -> dict[str, str]:
        """The ``location`` header of a 201: the new resource's URL as the client
        addressed this server (proxy-aware)."""
        return {"location": str(request.base_url).rstrip("/") + path}

    @staticmethod
    async def json_body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise invalid_request("Request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise invalid_request("Request body must be a JSON object")
        return data

    @staticmethod
    async def form_body(request: Request) -> str | None:
        ctype = request.headers.get("content-type", "")
        if ctype.split(";")[0].strip() == "application/x-www-form-urlencoded":
            return (await request.body()).decode()
        return None

    # -- authentication ------------------------------------------------------------------

    async def verify_oauth1(self, request: Request) -> tuple[dict[str, str], OAuth1Token | None]:
        """Check an OAuth 1.0a HMAC-SHA1 request: consumer, timestamp window,
        signature over the URL as the client addressed it, then nonce reuse.
        Returns the oauth params and the token record (None without a token)."""
        header = request.headers.get("authorization", "")
        try:
            oauth = {k: unescape(v) for k, v in parse_authorization_header(header)}
        except (ValueError, IndexError):
            raise unauthorized() from None
        for required in ("oauth_consumer_key", "oauth_signature", "oauth_timestamp", "oauth_nonce"):
            if required not in oauth:
                raise unauthorized()
        if oauth.get("oauth_signature_method") != "HMAC-SHA1":
            raise unauthorized()
        if oauth.get("oauth_version", "1.0") != "1.0":
            raise unauthorized()
        if not hmac.compare_digest(oauth["oauth_consumer_key"], self.cfg.consumer_key):
            raise unauthorized()
        try:
            ts = int(oauth["oauth_timestamp"])
        except ValueError:
            raise unauthorized() from None
        if abs(self.state.now() - ts) > self.cfg.oauth1_timestamp_window:
            raise unauthorized("Timestamp out of bounds.")
        token_rec: OAuth1Token | None = None
        token_secret = ""
        token_key = oauth.get("oauth_token", "")
        if token_key:
            with self.state.lock:
                token_rec = self.state.oauth1_tokens.get(token_key)
            if token_rec is None:
                raise unauthorized("Invalid or expired token.")
            token_secret = token_rec.secret
        form = await self.form_body(request)
        url = str(request.url)
        headers = {"Authorization": header}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        oreq = OAuthRequest(url, request.method, body=form, headers=headers)
        oreq.params = oauth_signature.collect_parameters(
            uri_query=urlsplit(url).query, body=form, headers=headers, exclude_oauth_signature=True
        )
        oreq.signature = oauth["oauth_signature"]
        if not oauth_signature.verify_hmac_sha1(oreq, self.cfg.consumer_secret, token_secret):
            raise unauthorized()
        nonce_key = (oauth["oauth_consumer_key"], token_key, oauth["oauth_nonce"], str(ts))
        if not self.state.check_nonce(nonce_key):
            raise unauthorized("Nonce already used.")
        if token_rec is not None and token_rec.revoked:
            raise unauthorized("Invalid or expired token.")
        return oauth, token_rec

    async def authenticate(self, request: Request, *, allow: tuple[str, ...]) -> Principal:
        """Who is calling: OAuth 1.0a user, OAuth 2.0 user or app bearer.
        Kinds outside ``allow`` get X's 403 unsupported-authentication problem."""
        header = request.headers.get("authorization", "")
        principal: Principal
        if header.startswith("OAuth "):
            _, tok = await self.verify_oauth1(request)
            if tok is None or tok.kind != "access" or tok.user_id is None:
                raise unauthorized()
            principal = Principal("oauth1", tok.user_id, tok.token[:8])
        elif header.startswith("Bearer "):
            bearer = header[7:].strip()
            with self.state.lock:
                is_app = bearer in self.state.app_bearers
                grant = self.state.oauth2_grants.get(bearer)
            if is_app:
                principal = Principal("app", None, bearer[:8])
            elif grant is None or grant.kind != "access" or grant.revoked:
                raise unauthorized("Invalid or expired token.")
            elif grant.expires_at is not None and self.state.now() >= grant.expires_at:
                raise unauthorized("Access token expired.")
            else:
                principal = Principal("oauth2", grant.user_id, bearer[:8])
        else:
            raise unauthorized()
        if principal.kind not in allow:
            raise problem(
                403,
                "Unsupported Authentication",
                f"Authenticating with {principal.kind} is forbidden for this endpoint.",
                PROBLEMS + "unsupported-authentication",
            )
        return principal

    async def user_principal(self, request: Request) -> Principal:
        """A user-context caller, counted against this endpoint's limits."""
        p = await self.authenticate(request, allow=("oauth1", "oauth2"))
        assert p.user_id is not None
        self.limit(request, p)
        return p

    async def app_principal(self, request: Request) -> Principal:
        """An app-only (bearer) caller, counted against this endpoint's limits."""
        p = await self.authenticate(request, allow=("app",))
        self.limit(request, p)
        return p

    async def any_principal(self, request: Request) -> Principal:
        """A user-context or app-only caller, counted against the matching limits."""
        p = await self.authenticate(request, allow=("oauth1", "oauth2", "app"))
        self.limit(request, p)
        return p

    def _client_auth(self, request: Request, form: dict[str, str]) -> str:
        """OAuth2 client authentication: HTTP Basic (confidential) or client_id in
        the form (public). Returns the client id."""
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise oauth2_error("invalid_client", "Invalid client credentials.", 401) from None
            if cid != self.cfg.oauth2_client_id or not hmac.compare_digest(
                secret, self.cfg.oauth2_client_secret
            ):
                raise oauth2_error("invalid_client", "Invalid client credentials.", 401)
            return cid
        cid = form.get("client_id", "")
        if cid != self.cfg.oauth2_client_id or not self.cfg.allow_public_oauth2_client:
            raise oauth2_error("invalid_request", "Missing valid authorization header")
        return cid

    # -- OAuth 1.0a ------------------------------------------------------------------------

    async def request_token(self, request: Request) -> Response:
        oauth, tok = await self.verify_oauth1(request)
        if tok is not None:
            raise unauthorized()
        callback = oauth.get("oauth_callback")
        if not callback:
            raise ApiError(
                400,
                {
                    "errors": [
                        {
                            "code": 417,
                            "message": (
                                "Desktop applications only support the oauth_callback value 'oob'"
                            ),
                        }
                    ]
                },
                media_type=JSON_TYPE,
            )
        rt = self.state.new_request_token(callback)
        body = urlencode(
            {
                "oauth_token": rt.token,
                "oauth_token_secret": rt.secret,
                "oauth_callback_confirmed": "true",
            }
        )
        return PlainTextResponse(body, media_type="text/html")

    async def oauth1_authorize(self, request: Request) -> Response:
        q = request.query_params
        with self.state.lock:
            rt = self.state.oauth1_tokens.get(q.get("oauth_token", ""))
        if rt is None or rt.kind != "request" or rt.verifier is not None:
            return PlainTextResponse("This page is no longer valid.", 400)
        if q.get("sandbox_deny"):
            return RedirectResponse(_add_query(rt.callback or "", {"denied": rt.token}), 302)
        user = self.state.consent_user(q.get("sandbox_user_id"))
        if user is None:
            return PlainTextResponse("No sandbox user to log in as.", 400)
        with self.state.lock:
            rt.user_id = user.id
            rt.verifier = secrets.token_urlsafe(24)
        if rt.callback == "oob":
            return PlainTextResponse(rt.verifier)
        return RedirectResponse(
            _add_query(rt.callback or "", {"oauth_token": rt.token, "oauth_verifier": rt.verifier}),
            302,
        )

    async def access_token(self, request: Request) -> Response:
        oauth, rt = await self.verify_oauth1(request)
        form = await self.form_body(request)
        extra = dict(parse_qsl(request.url.query)) | dict(parse_qsl(form or ""))
        verifier = oauth.get("oauth_verifier") or extra.get("oauth_verifier")
        if rt is None or rt.kind != "request":
            raise unauthorized("Invalid request token.")
        with self.state.lock:
            ok = (
                rt.verifier is not None
                and verifier is not None
                and hmac.compare_digest(rt.verifier, verifier)
            )
            if ok:
                # A request token is exchanged once.
                del self.state.oauth1_tokens[rt.token]
        if not ok or rt.user_id is None:
            raise ApiError(
                401, "Error processing your OAuth request: Invalid oauth_verifier parameter"
            )
        at = self.state.new_access_token(rt.user_id)
        user = self.state.users[rt.user_id]
        body = urlencode(
            {
                "oauth_token": at.token,
                "oauth_token_secret": at.secret,
                "user_id": user.id,
                "screen_name": user.username,
            }
        )
        return PlainTextResponse(body, media_type="text/html")

    # -- OAuth 2.0 ---------------------------------------------------------------------------

    async def oauth2_authorize(self, request: Request) -> Response:
        q = request.query_params
        redirect_uri = q.get("redirect_uri", "")
        if q.get("client_id") != self.cfg.oauth2_client_id or not redirect_uri:
            return PlainTextResponse("Something went wrong: unknown client or redirect_uri.", 400)
        state = q.get("state", "")
        if q.get("response_type") != "code" or not state or len(state) > 500:
            return RedirectResponse(
                _add_query(redirect_uri, {"error": "invalid_request", "state": state}), 302
            )
        method = q.get("code_challenge_method", "plain")
        challenge = q.get("code_challenge", "")
        if method not in ("S256", "plain") or not challenge:
            return RedirectResponse(
                _add_query(redirect_uri, {"error": "invalid_request", "state": state}), 302
            )
        if q.get("sandbox_deny"):
            return RedirectResponse(
                _add_query(redirect_uri, {"error": "access_denied", "state": state}), 302
            )
        user = self.state.consent_user(q.get("sandbox_user_id"))
        if user is None:
            return PlainTextResponse("No sandbox user to log in as.", 400)
        code = OAuth2Code(
            code=secrets.token_urlsafe(32),
            client_id=self.cfg.oauth2_client_id,
            redirect_uri=redirect_uri,
            challenge=challenge,
            method=method,
            user_id=user.id,
            scopes=tuple(q.get("scope", "").split()),
            expires_at=self.state.now() + self.cfg.code_ttl,
        )
        with self.state.lock:
            self.state.oauth2_codes[code.code] = code
        return RedirectResponse(_add_query(redirect_uri, {"state": state, "code": code.code}), 302)

    async def oauth2_token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        client_id = self._client_auth(request, form)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._exchange_code(form, client_id)
        if grant == "refresh_token":
            return self._refresh(form, client_id)
        raise oauth2_error("invalid_request", "Value passed for the grant type was invalid.")

    def _exchange_code(self, form: dict[str, str], client_id: str) -> Response:
        bad = oauth2_error(
            "invalid_request", "Value passed for the authorization code was invalid."
        )
        with self.state.lock:
            code = self.state.oauth2_codes.get(form.get("code", ""))
            if code is None or code.used or self.state.now() >= code.expires_at:
                raise bad
            # Single use: burnt even when the rest of the exchange is wrong.
            code.used = True
        if code.client_id != client_id or code.redirect_uri != form.get("redirect_uri"):
            raise bad
        verifier = form.get("code_verifier", "")
        expected = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
            if code.method == "S256"
            else verifier
        )
        if not verifier or not hmac.compare_digest(expected, code.challenge):
            raise oauth2_error("invalid_request", "Value passed for the code verifier was invalid.")
        return self._token_response(code.user_id, client_id, code.scopes)

    def _refresh(self, form: dict[str, str], client_id: str) -> Response:
        with self.state.lock:
            g = self.state.oauth2_grants.get(form.get("refresh_token", ""))
            if g is None or g.kind != "refresh" or g.used or g.revoked or g.client_id != client_id:
                raise oauth2_error("invalid_request", "Value passed for the token was invalid.")
            g.used = True  # rotation: a refresh token works once
        return self._token_response(g.user_id, client_id, g.scopes)

    def _token_response(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> Response:
        access, refresh = self.state.issue_oauth2(user_id, client_id, scopes)
        body: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": self.cfg.access_token_ttl,
            "access_token": access.token,
            "scope": " ".join(scopes),
        }
        if refresh is not None:
            body["refresh_token"] = refresh.token
        return XJSON(body)

    async def oauth2_revoke(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        self._client_auth(request, form)
        with self.state.lock:
            g = self.state.oauth2_grants.get(form.get("token", ""))
            if g is not None:
                g.revoked = True
        return XJSON({"revoked": True})

    async def client_credentials(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        form = dict(parse_qsl((await request.body()).decode()))
        try:
            key, _, secret = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            key, secret = "", ""
        if key != self.cfg.consumer_key or not hmac.compare_digest(
            secret, self.cfg.consumer_secret
        ):
            raise ApiError(
                403,
                {
                    "errors": [
                        {
                            "code": 99,
                            "label": "authenticity_token_error",
                            "message": "Unable to verify your credentials",
                        }
                    ]
                },
                media_type=JSON_TYPE,
            )
        if form.get("grant_type") != "client_credentials":
            raise ApiError(
                400,
                {"errors": [{"code": 170, "message": "Missing required parameter: grant_type"}]},
                media_type=JSON_TYPE,
            )
        return XJSON({"token_type": "bearer", "access_token": self.cfg.app_bearer_token})

    # -- users ----------------------------------------------------------------------------

    def _user_fields(self, request: Request) -> list[str]:
        _csv_param(request, "expansions", USER_EXPANSIONS)
        return _csv_param(request, "user.fields", USER_FIELDS)

    def _users_body(
        self, found: list[FakeUser], errors: list[dict[str, Any]], fields: list[str]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if found:
            out["data"] = [u.v2(fields) for u in found]
        if errors:
            out["errors"] = errors
        return out

    async def users_me(self, request: Request) -> Response:
        p = await self.user_principal(request)
        assert p.user_id is not None
        fields = self._user_fields(request)
        with self.state.lock:
            return XJSON({"data": self.state.users[p.user_id].v2(fields)})

    async def user_by_id(self, request: Request) -> Response:
        await self.any_principal(request)
        uid = request.path_params["id"]
        if not _USER_ID.match(uid):
            raise invalid_request(
                f"The `id` query parameter value [{uid}] is not valid", parameters={"id": [uid]}
            )
        fields = self._user_fields(request)
        with self.state.lock:
            user = self.state.users.get(uid)
            if user is None:
                return XJSON({"errors": [_not_found("user", "id", uid)]})
            return XJSON({"data": user.v2(fields)})

    async def user_by_username(self, request: Request) -> Response:
        await self.any_principal(request)
        name = request.path_params["username"]
        if not _USERNAME.match(name):
            raise invalid_request(
                f"The `username` query parameter value [{name}] is not valid",
                parameters={"username": [name]},
            )
        fields = self._user_fields(request)
        user = self.state.user_by_username(name)
        if user is None:
            return XJSON({"errors": [_not_found("user", "username", name)]})
        with self.state.lock:
            return XJSON({"data": user.v2(fields)})

    async def users_by_ids(self, request: Request) -> Response:
        await self.any_principal(request)
        ids = _csv_param(request, "ids")
        if not 1 <= len(ids) <= 100:
            raise invalid_request(
                "The `ids` query parameter must hold 1 to 100 user ids",
                parameters={"ids": [request.query_params.get("ids", "")]},
            )
        for uid in ids:
            if not _USER_ID.match(uid):
                raise invalid_request(
                    f"The `ids` query parameter value [{uid}] is not valid",
                    parameters={"ids": [uid]},
                )
        fields = self._user_fields(request)
        found, errors = [], []
        with self.state.lock:
            for uid in ids:
                user = self.state.users.get(uid)
                if user is None:
                    errors.append(_not_found("user", "ids", uid))
                else:
                    found.append(user)
            return XJSON(self._users_body(found, errors, fields))

    async def users_by_usernames(self, request: Request) -> Response:
        await self.any_principal(request)
        names = _csv_param(request, "usernames")
        if not 1 <= len(names) <= 100:
            raise invalid_request(
                "The `usernames` query parameter must hold 1 to 100 usernames",
                parameters={"usernames": [request.query_params.get("usernames", "")]},
            )
        for name in names:
            if not _USERNAME.match(name):
                raise invalid_request(
                    f"The `usernames` query parameter value [{name}] is not valid",
                    parameters={"usernames": [name]},
                )
        fields = self._user_fields(request)
        found, errors = [], []
        for name in names:
            user = self.state.user_by_username(name)
            if user is None:
                errors.append(_not_found("user", "usernames", name))
            else:
                found.append(user)
        with self.state.lock:
            return XJSON(self._users_body(found, errors, fields))

    # -- DMs ---------------------------------------------------------------------------------

    async def dm_with(self, request: Request) -> Response:
        p = await self.authenticate(request, allow=("oauth1", "oauth2"))
        pid = request.path_params["participant_id"]
        if not _USER_ID.match(pid):
            raise invalid_request(
                f"The `participant_id` path parameter value [{pid}] is not valid",
                parameters={"participant_id": [pid]},
            )
        self.limit(request, p)
        body = await self.json_body(request)
        return await self._send_dm(request, p, body, recipient=pid)

    async def dm_in_conversation(self, request: Request) -> Response:
        p = await self.authenticate(request, allow=("oauth1", "oauth2"))
        assert p.user_id is not None
        cid = request.path_params["conversation_id"]
        members = self.state.participants(cid)
        if members is None or not all(_USER_ID.match(x) for x in members):
            raise invalid_request(
                f"The `dm_conversation_id` value [{cid}] is not valid",
                parameters={"dm_conversation_id": [cid]},
            )
        if p.user_id not in members:
            raise forbidden("You are not a participant in this conversation.")
        self.limit(request, p)
        body = await self.json_body(request)
        if cid in self.state.conversations:
            return await self._send_dm(request, p, body, conversation=cid)
        other = members[1] if members[0] == p.user_id else members[0]
        return await self._send_dm(request, p, body, recipient=other)

    async def dm_create_group(self, request: Request) -> Response:
        p = await self.authenticate(request, allow=("oauth1", "oauth2"))
        assert p.user_id is not None
        self.limit(request, p)
        body = await self.json_body(request)
        if body.get("conversation_type") != "Group":
            raise invalid_request(
                "conversation_type must be Group",
                parameters={"conversation_type": [str(body.get("conversation_type"))]},
            )
        ids = body.get("participant_ids")
        if (
            not isinstance(ids, list)
            or not 2 <= len(ids) <= 49
            or not all(isinstance(i, str) and _USER_ID.match(i) for i in ids)
        ):
            raise invalid_request(
                "participant_ids must hold 2 to 49 user ids",
                parameters={"participant_ids": [json.dumps(ids)]},
            )
        message = body.get("message")
        if not isinstance(message, dict):
            raise invalid_request("message is required", parameters={"message": []})
        with self.state.lock:
            unknown = [i for i in ids if i not in self.state.users]
        if unknown:
            raise invalid_request(
                f"Could not find the participant [{unknown[0]}]",
                parameters={"participant_ids": [unknown[0]]},
            )
        text, media_id = self._dm_content(p, message)
        conv = self.state.new_group(p.user_id, [str(i) for i in ids])
        rec = self.state.add_dm(
            p.user_id, None, text, media_id, source="api", principal=p, conversation_id=conv.id
        )
        return XJSON(
            {"data": {"dm_conversation_id": conv.id, "dm_event_id": rec.id}},
            201,
            headers=self.location(request, f"/2/dm_events/{rec.id}"),
        )

    def _dm_content(self, p: Principal, body: dict[str, Any]) -> tuple[str | None, str | None]:
        """Validate a message's ``text``/``attachments``; returns (text, media id)."""
        text = body.get("text")
        attachments = body.get("attachments")
        if text is not None and (not isinstance(text, str) or not 1 <= len(text) <= 10000):
            raise invalid_request(
                "text must be 1 to 10000 characters", parameters={"text": [str(text)[:50]]}
            )
        media_id: str | None = None
        if attachments is not None:
            if not isinstance(attachments, list) or len(attachments) != 1:
                raise invalid_request("Only one attachment is allowed per message")
            media_id = str((attachments[0] or {}).get("media_id", ""))
            with self.state.lock:
                m = self.state.media.get(media_id)
            if (
                m is None
                or m.owner_id != p.user_id
                or m.state != "succeeded"
                or self.state.now() - m.created_at > 86400
            ):
                raise invalid_request(
                    f"Media id {media_id} is not valid for this user",
                    parameters={"attachments.media_id": [media_id]},
                )
        if not text and media_id is None:
            raise invalid_request("One of text or attachments is required")
        return text, media_id

    async def _send_dm(
        self,
        request: Request,
        p: Principal,
        body: dict[str, Any],
        *,
        recipient: str | None = None,
        conversation: str | None = None,
    ) -> Response:
        assert p.user_id is not None
        text, media_id = self._dm_content(p, body)
        if recipient is not None:
            with self.state.lock:
                target = self.state.users.get(recipient)
            if target is None:
                raise invalid_request(
                    f"Could not find the recipient [{recipient}]",
                    parameters={"participant_id": [recipient]},
                )
            if not target.accepts_dms and recipient != p.user_id:
                raise problem(
                    403,
                    "Forbidden",
                    "You cannot send messages to this user.",
                    PROBLEMS + "dm-not-allowed",
                )
        rec = self.state.add_dm(
            p.user_id,
            recipient,
            text,
            media_id,
            source="api",
            principal=p,
            conversation_id=conversation,
        )
        return XJSON(
            {"data": {"dm_conversation_id": rec.conversation_id, "dm_event_id": rec.id}},
            201,
            headers=self.location(request, f"/2/dm_events/{rec.id}"),
        )

    async def dm_events(self, request: Request) -> Response:
        return await self._dm_lookup(request)

    async def dm_event(self, request: Request) -> Response:
        """``GET /2/dm_events/:id``: one event the caller can see (the URL a DM
        send's ``location`` header names)."""
        p = await self.user_principal(request)
        assert p.user_id is not None
        eid = request.path_params["id"]
        if not _USER_ID.match(eid):
            raise invalid_request(
                f"The `id` path parameter value [{eid}] is not valid", parameters={"id": [eid]}
            )
        wanted = set(_csv_param(request, "dm_event.fields", DM_EVENT_FIELDS))
        _csv_param(request, "expansions", DM_EXPANSIONS)
        _csv_param(request, "user.fields", USER_FIELDS)
        events = self.state.dms_visible_to(p.user_id, None, self.state.now() - 30 * 86400)
        found = next((d for d in events if d.id == eid), None)
        if found is None:
            return XJSON({"errors": [_not_found("dm_event", "id", eid)]})
        return XJSON({"data": self._dm_json(found, wanted | {"id", "event_type", "text"})})

    def _dm_json(self, d: DmRecord, fields: set[str]) -> dict[str, Any]:
        full: dict[str, Any] = {
            "id": d.id,
            "event_type": "MessageCreate",
            "text": d.text or "",
            "sender_id": d.sender_id,
            "dm_conversation_id": d.conversation_id,
            "created_at": iso(d.created_at),
        }
        if d.media_id:
            full["attachments"] = {"media_keys": [self._media_key(d.media_id)]}
        return {k: v for k, v in full.items() if k in fields}

    async def dm_events_with(self, request: Request) -> Response:
        pid = request.path_params["participant_id"]
        if not _USER_ID.match(pid):
            raise invalid_request(
                f"The `participant_id` value [{pid}] is not valid",
                parameters={"participant_id": [pid]},
            )
        return await self._dm_lookup(request, participant=pid)

    async def dm_events_in_conversation(self, request: Request) -> Response:
        cid = request.path_params["conversation_id"]
        one_to_one = re.fullmatch(r"[0-9]{1,19}-[0-9]{1,19}", cid)
        if not one_to_one and not _GROUP_ID.match(cid):
            raise invalid_request(f"The `id` value [{cid}] is not valid", parameters={"id": [cid]})
        return await self._dm_lookup(request, conversation=cid)

    async def _dm_lookup(
        self, request: Request, *, participant: str | None = None, conversation: str | None = None
    ) -> Response:
        p = await self.user_principal(request)
        assert p.user_id is not None
        max_results = _int_param(request, "max_results", 100, 1, 100)
        wanted = set(_csv_param(request, "dm_event.fields", DM_EVENT_FIELDS))
        expansions = set(_csv_param(request, "expansions", DM_EXPANSIONS))
        user_fields = _csv_param(request, "user.fields", USER_FIELDS)
        media_fields = set(_csv_param(request, "media.fields", MEDIA_FIELDS))
        types = _csv_param(
            request,
            "event_types",
            frozenset({"MessageCreate", "ParticipantsJoin", "ParticipantsLeave"}),
        )
        cursor = _decode_cursor(request.query_params.get("pagination_token"))
        if conversation is not None:
            members = self.state.participants(conversation)
            if members is not None and p.user_id not in members:
                raise forbidden("You are not a participant in this conversation.")
        fields = wanted | {"id", "event_type", "text"}
        events = []
        if not types or "MessageCreate" in types:
            events = self.state.dms_visible_to(
                p.user_id, participant, self.state.now() - 30 * 86400, conversation_id=conversation
            )
        by_id = {int(d.id): d for d in events}
        page_ids, next_token, prev_token = _keyset_page(list(by_id), cursor, max_results)
        data, user_ids, media_ids = [], [], []
        for i in page_ids:
            d = by_id[i]
            if d.media_id:
                media_ids.append(d.media_id)
            data.append(self._dm_json(d, fields))
            user_ids.append(d.sender_id)
        out: dict[str, Any] = {}
        if data:
            out["data"] = data
        includes: dict[str, Any] = {}
        if "sender_id" in expansions and user_ids:
            with self.state.lock:
                users = [
                    self.state.users[u].v2(user_fields)
                    for u in dict.fromkeys(user_ids)
                    if u in self.state.users
                ]
            if users:
                includes["users"] = users
        if "attachments.media_keys" in expansions and media_ids:
            includes["media"] = [
                self._media_object(m, media_fields) for m in dict.fromkeys(media_ids)
            ]
        if includes:
            out["includes"] = includes
        meta: dict[str, Any] = {"result_count": len(data)}
        if next_token:
            meta["next_token"] = next_token
        if prev_token:
            meta["previous_token"] = prev_token
        out["meta"] = meta
        return XJSON(out)

    def _media_key(self, media_id: str) -> str:
        with self.state.lock:
            m = self.state.media.get(media_id)
        return m.media_key if m else f"3_{media_id}"

    def _media_object(self, media_id: str, fields: set[str]) -> dict[str, Any]:
        with self.state.lock:
            m = self.state.media.get(media_id)
        if m is None:
            return {"media_key": f"3_{media_id}", "type": "photo"}
        kind = (
            "video" if "video" in m.category else "animated_gif" if "gif" in m.category else "photo"
        )
        out: dict[str, Any] = {"media_key": m.media_key, "type": kind}
        if "alt_text" in fields and m.alt_text:
            out["alt_text"] = m.alt_text
        if "url" in fields and kind == "photo":
            out["url"] = f"https://pbs.twimg.com/media/{m.id}.jpg"
        return out

    # -- media -----------------------------------------------------------------------------

    def _new_media(self, owner: str, media_type: str, category: str, total: int) -> MediaRecord:
        mid = self.state.snowflake()
        prefix = "7" if "video" in category else "16" if "gif" in category else "3"
        rec = MediaRecord(
            id=mid,
            media_key=f"{prefix}_{mid}",
            owner_id=owner,
            media_type=media_type,
            category=category,
            total_bytes=total,
            created_at=self.state.now(),
        )
        with self.state.lock:
            self.state.media[mid] = rec
        return rec

    def _media_json(self, m: MediaRecord) -> dict[str, Any]:
        """The upload resource; ``processing_info`` for media that is processed
        (video and GIF), with ``check_after_secs`` while not done."""
        out: dict[str, Any] = {
            "id": m.id,
            "media_key": m.media_key,
            "size": m.size,
            "expires_after_secs": max(0, int(m.created_at + 86400 - self.state.now())),
        }
        if m.steps_total:
            done = m.steps_total - m.steps_left
            info: dict[str, Any] = {"state": m.state}
            if m.state in ("pending", "in_progress"):
                info["check_after_secs"] = self.cfg.media_check_after_secs
            info["progress_percent"] = (
                100 if m.state == "succeeded" else int(100 * done / m.steps_total)
            )
            if m.state == "failed":
                info["error"] = {
                    "code": 1,
                    "name": "InvalidMedia",
                    "message": "Unsupported video format",
                }
            out["processing_info"] = info
        return out

    async def media_upload(self, request: Request) -> Response:
        p = await self.user_principal(request)
        assert p.user_id is not None
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/"):
            form = await request.form()
            upload = form.get("media")
            if not isinstance(upload, UploadFile):
                raise invalid_request("media is required", parameters={"media": []})
            data = await upload.read()
            category = str(form.get("media_category") or "tweet_image")
            media_type = str(form.get("media_type") or upload.content_type or "image/jpeg")
        else:
            body = await self.json_body(request)
            try:
                data = base64.b64decode(str(body.get("media", "")), validate=True)
            except binascii.Error:
                raise invalid_request("media must be base64", parameters={"media": []}) from None
            category = str(body.get("media_category") or "tweet_image")
            media_type = str(body.get("media_type") or "image/jpeg")
        if not category.endswith("_image"):
            raise invalid_request("One-shot upload supports images only; use chunked upload")
        if not data or len(data) > 5 * 1024 * 1024:
            raise invalid_request("Images must be between 1 byte and 5 MB")
        m = self._new_media(p.user_id, media_type, category, len(data))
        with self.state.lock:
            m.chunks[0] = len(data)
            m.finalized = True
            m.state = "succeeded"
            body_out = self._media_json(m)
        return XJSON({"data": body_out})

    async def media_initialize(self, request: Request) -> Response:
        p = await self.user_principal(request)
        assert p.user_id is not None
        body = await self.json_body(request)
        category = str(body.get("media_category", ""))
        total = body.get("total_bytes")
        media_type = str(body.get("media_type", ""))
        valid = {"tweet_image", "tweet_video", "tweet_gif", "dm_image", "dm_video", "dm_gif"}
        if category not in valid or not isinstance(total, int) or total <= 0 or not media_type:
            raise invalid_request("media_type, total_bytes and a valid media_category are required")
        cap = 5 if category.endswith("image") else 15 if category.endswith("gif") else 512
        if total > cap * 1024 * 1024:
            raise invalid_request(f"total_bytes exceeds the {cap} MB limit for {category}")
        m = self._new_media(p.user_id, media_type, category, total)
        return XJSON({"data": {"id": m.id, "media_key": m.media_key, "expires_after_secs": 86400}})

    def _owned_media(self, p: Principal, media_id: str) -> MediaRecord:
        with self.state.lock:
            m = self.state.media.get(media_id)
        if m is None or m.owner_id != p.user_id:
            raise problem(
                404,
                "Not Found Error",
                f"Media {media_id} not found",
                PROBLEMS + "resource-not-found",
            )
        return m

    async def media_append(self, request: Request) -> Response:
        p = await self.user_principal(request)
        m = self._owned_media(p, request.path_params["id"])
        form = await request.form()
        chunk = form.get("media")
        try:
            index = int(str(form.get("segment_index", "")))
        except ValueError:
            raise invalid_request("segment_index is required") from None
        if not isinstance(chunk, UploadFile) or not 0 <= index <= 999 or m.finalized:
            raise invalid_request("media chunk and a segment_index within 0..999 are required")
        data = await chunk.read()
        if len(data) > 5 * 1024 * 1024:
            raise invalid_request("A segment may not exceed 5 MB")
        with self.state.lock:
            m.chunks[index] = len(data)
        return XJSON({"data": {"expires_at": int(self.state.now()) + 86400}})

    async def media_finalize(self, request: Request) -> Response:
        p = await self.user_principal(request)
        m = self._owned_media(p, request.path_params["id"])
        with self.state.lock:
            indexes = sorted(m.chunks)
            if indexes != list(range(len(indexes))) or m.size != m.total_bytes:
                raise invalid_request(
                    f"Segments do not add up to total_bytes ({m.size} != {m.total_bytes})"
                )
            m.finalized = True
            if m.category.endswith("_image"):
                m.state = "succeeded"  # images need no processing
            else:
                m.state = "pending"
                m.steps_total = m.steps_left = max(1, self.cfg.media_processing_steps)
                m.last_check = self.state.now()
                if self.state.media_fail_next > 0:
                    self.state.media_fail_next -= 1
                    m.fail_processing = True
            body = self._media_json(m)
        return XJSON({"data": body})

    async def media_status(self, request: Request) -> Response:
        p = await self.user_principal(request)
        q = request.query_params
        if q.get("command") != "STATUS":
            raise invalid_request(
                "command must be STATUS", parameters={"command": [q.get("command", "")]}
            )
        m = self._owned_media(p, q.get("media_id", ""))
        wait = self.cfg.media_check_after_secs
        with self.state.lock:
            now = self.state.now()
            m.status_polls.append(now)
            # Progress only once the advertised wait has passed: polling early
            # (ignoring check_after_secs) just sees the same state again.
            if m.steps_left > 0 and now - m.last_check >= wait - 0.01:
                m.steps_left -= 1
                m.last_check = now
                if m.steps_left > 0:
                    m.state = "in_progress"
                else:
                    m.state = "failed" if m.fail_processing else "succeeded"
            body = self._media_json(m)
        return XJSON({"data": body})

    async def media_get(self, request: Request) -> Response:
        if request.query_params.get("command") == "STATUS":
            return await self.media_status(request)
        raise invalid_request(
            "command must be STATUS",
            parameters={"command": [request.query_params.get("command", "")]},
        )

    async def media_metadata(self, request: Request) -> Response:
        p = await self.user_principal(request)
        body = await self.json_body(request)
        mid = str(body.get("id", ""))
        if not _USER_ID.match(mid):
            raise invalid_request(f"The `id` value [{mid}] is not valid", parameters={"id": [mid]})
        alt = ((body.get("metadata") or {}).get("alt_text") or {}).get("text")
        if not isinstance(alt, str) or not 1 <= len(alt) <= 1000:
            raise invalid_request(
                "metadata.alt_text.text must be 1 to 1000 characters",
                parameters={"metadata.alt_text.text": [str(alt)[:50]]},
            )
        m = self._owned_media(p, mid)
        with self.state.lock:
            m.alt_text = alt
        return XJSON({"data": {"id": m.id, "associated_metadata": {"alt_text": {"text": alt}}}})

    # -- posts --------------------------------------------------------------------------------

    def _check_media(self, p: Principal, media: Any) -> tuple[list[str], list[str]]:
        """``media.media_ids`` (+ ``tagged_user_ids``) of a new post: 1 to 4 of the
        author's own, processed, unexpired media, at most one video or GIF."""
        if not isinstance(media, dict):
            raise invalid_request("media must be an object", parameters={"media": []})
        ids = media.get("media_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 4:
            raise invalid_request(
                "media.media_ids must hold 1 to 4 ids",
                parameters={"media.media_ids": [json.dumps(ids)]},
            )
        media_ids = [str(x) for x in ids]
        records = []
        for mid in media_ids:
            with self.state.lock:
                m = self.state.media.get(mid)
            if (
                m is None
                or m.owner_id != p.user_id
                or m.state != "succeeded"
                or self.state.now() - m.created_at > 86400
            ):
                raise invalid_request(
                    "Your media IDs are invalid.", parameters={"media.media_ids": [mid]}
                )
            records.append(m)
        moving = [m for m in records if not m.category.endswith("_image")]
        if moving and len(records) > 1:
            raise invalid_request(
                "Your media IDs are invalid.",
                parameters={"media.media_ids": [moving[0].id]},
            )
        tagged = media.get("tagged_user_ids") or []
        if not isinstance(tagged, list) or len(tagged) > 10:
            raise invalid_request(
                "media.tagged_user_ids must hold at most 10 user ids",
                parameters={"media.tagged_user_ids": [json.dumps(tagged)]},
            )
        with self.state.lock:
            unknown = [str(t) for t in tagged if str(t) not in self.state.users]
        if unknown:
            raise invalid_request(
                f"Could not find the tagged user [{unknown[0]}]",
                parameters={"media.tagged_user_ids": [unknown[0]]},
            )
        return media_ids, [str(t) for t in tagged]

    def _check_poll(self, poll: Any) -> dict[str, Any]:
        if not isinstance(poll, dict):
            raise invalid_request("poll must be an object", parameters={"poll": []})
        opts = poll.get("options")
        dur = poll.get("duration_minutes")
        if (
            not isinstance(opts, list)
            or not 2 <= len(opts) <= 4
            or not all(isinstance(o, str) and 1 <= len(o) <= 25 for o in opts)
        ):
            raise invalid_request(
                "poll.options must hold 2 to 4 options of 1 to 25 characters",
                parameters={"poll.options": [json.dumps(opts)]},
            )
        if not isinstance(dur, int) or isinstance(dur, bool) or not 5 <= dur <= 10080:
            raise invalid_request(
                "poll.duration_minutes must be between 5 and 10080",
                parameters={"poll.duration_minutes": [str(dur)]},
            )
        now = self.state.now()
        return {
            "id": self.state.snowflake(),
            "options": [{"position": i + 1, "label": o, "votes": 0} for i, o in enumerate(opts)],
            "duration_minutes": dur,
            "end_datetime": iso(now + dur * 60),
            "voting_status": "open",
        }

    def _visible_post(self, post_id: Any) -> PostRecord | None:
        with self.state.lock:
            post = self.state.posts.get(str(post_id))
        return None if post is None or post.deleted else post

    async def create_post(self, request: Request) -> Response:
        p = await self.user_principal(request)
        assert p.user_id is not None
        body = await self.json_body(request)
        text = body.get("text")
        media, poll = body.get("media"), body.get("poll")
        quote = body.get("quote_tweet_id")
        reply = body.get("reply")
        if text is not None and not isinstance(text, str):
            raise invalid_request("text must be a string", parameters={"text": [str(text)]})
        present = [k for k, v in (("media", media), ("poll", poll), ("quote_tweet_id", quote)) if v]
        if len(present) > 1:
            # X's 400 for this is confirmed, its message is not: ours names the fields.
            raise invalid_request(
                "Only one of media, poll and quote_tweet_id may be given "
                f"(got {', '.join(present)})",
                parameters={k: [] for k in present},
            )
        if not text and media is None:
            raise invalid_request(
                "You must provide text or media to create a Tweet", parameters={"text": []}
            )
        settings = body.get("reply_settings")
        if settings is not None and settings not in REPLY_SETTINGS:
            raise invalid_request(
                f"The `reply_settings` value [{settings}] is not one of "
                f"[{','.join(REPLY_SETTINGS)}]",
                parameters={"reply_settings": [str(settings)]},
            )
        poll_rec = self._check_poll(poll) if poll is not None else None
        with self.state.lock:
            author = self.state.users[p.user_id]
            cap = LONG_POST_LIMIT if author.long_post else POST_LIMIT
        if text and weighted_length(text) > cap:
            # Unconfirmed body: X answers a 403 (v1.1 said code 186); the detail is ours.
            raise forbidden(
                "Your Tweet text is too long. For more information on how X determines "
                "text length see https://github.com/twitter/twitter-text."
            )
        media_ids, tagged = self._check_media(p, media) if media is not None else ([], [])
        reply_to: str | None = None
        parent: PostRecord | None = None
        if reply is not None:
            if not isinstance(reply, dict) or not reply.get("in_reply_to_tweet_id"):
                raise invalid_request(
                    "reply.in_reply_to_tweet_id is required",
                    parameters={"reply.in_reply_to_tweet_id": []},
                )
            reply_to = str(reply["in_reply_to_tweet_id"])
            parent = self._visible_post(reply_to)
            if parent is None:
                raise forbidden(
                    "You attempted to reply to a Tweet that is deleted or not visible to you."
                )
        if quote is not None and self._visible_post(quote) is None:
            # Unconfirmed: modelled on the reply refusal just above (v1.1 code 385).
            raise forbidden("You attempted to quote a Tweet that is deleted or not visible to you.")
        if text:
            horizon = self.state.now() - self.cfg.duplicate_post_window
            with self.state.lock:
                duplicate = any(
                    q.author_id == p.user_id
                    and not q.deleted
                    and q.text == text
                    and q.created_at >= horizon
                    for q in self.state.posts.values()
                )
            if duplicate:
                raise forbidden("You are not allowed to create a Tweet with duplicate content.")
        post_id = self.state.snowflake()
        post = PostRecord(
            id=post_id,
            author_id=p.user_id,
            text=text or "",
            created_at=self.state.now(),
            media_ids=media_ids,
            reply_to=reply_to,
            quote_tweet_id=str(quote) if quote else None,
            poll=poll_rec,
            reply_settings=settings,
            principal=p,
            conversation_id=(parent.conversation_id or parent.id) if parent else post_id,
            in_reply_to_user_id=parent.author_id if parent else None,
            tagged_user_ids=tagged,
        )
        self.state.add_post(post)
        return XJSON(
            {"data": {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}},
            201,
            headers=self.location(request, f"/2/tweets/{post.id}"),
        )

    async def delete_post(self, request: Request) -> Response:
        p = await self.user_principal(request)
        pid = request.path_params["id"]
        if not _USER_ID.match(pid):
            raise invalid_request(
                f"The `id` path parameter value [{pid}] is not valid", parameters={"id": [pid]}
            )
        with self.state.lock:
            post = self.state.posts.get(pid)
            if post is None or post.deleted:
                return XJSON({"data": {"deleted": False}})
            if post.author_id != p.user_id:
                # Unconfirmed wording; X refuses with a 403.
                raise forbidden("You are not allowed to delete a Tweet that is not yours.")
            post.deleted = True
            author = self.state.users.get(post.author_id)
            if author is not None:
                author.tweet_count = max(0, author.tweet_count - 1)
        return XJSON({"data": {"deleted": True}})

    def _render_posts(
        self,
        request: Request,
        p: Principal,
        posts: list[PostRecord],
        errors: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """``data``/``includes``/``errors`` for posts, honouring ``tweet.fields``,
        ``expansions``, ``user.fields`` and ``media.fields``. Private metrics go
        only to the author in user context within 30 days; others get X's
        field-authorization error per post and field."""
        fields = _csv_param(request, "tweet.fields", TWEET_FIELDS)
        expansions = set(_csv_param(request, "expansions", POST_EXPANSIONS))
        user_fields = _csv_param(request, "user.fields", USER_FIELDS)
        media_fields = set(_csv_param(request, "media.fields", MEDIA_FIELDS))
        _csv_param(request, "poll.fields")
        now = self.state.now()
        data = []
        for post in posts:
            private_ok = (
                p.kind != "app"
                and post.author_id == p.user_id
                and now - post.created_at < 30 * 86400
            )
            keys = [self._media_key(m) for m in post.media_ids]
            data.append(render_post(post, fields, media_keys=keys, private_ok=private_ok))
            if not private_ok:
                errors.extend(_field_error(post.id, f) for f in PRIVATE_METRICS if f in fields)
        out: dict[str, Any] = {}
        if data:
            out["data"] = data
        includes: dict[str, Any] = {}
        user_ids: list[str] = []
        if "author_id" in expansions:
            user_ids += [q.author_id for q in posts]
        if "in_reply_to_user_id" in expansions:
            user_ids += [q.in_reply_to_user_id for q in posts if q.in_reply_to_user_id]
        if user_ids:
            with self.state.lock:
                includes["users"] = [
                    self.state.users[u].v2(user_fields)
                    for u in dict.fromkeys(user_ids)
                    if u in self.state.users
                ]
        if "attachments.media_keys" in expansions:
            media = [m for q in posts for m in q.media_ids]
            if media:
                includes["media"] = [
                    self._media_object(m, media_fields) for m in dict.fromkeys(media)
                ]
        if "attachments.poll_ids" in expansions:
            polls = [q.poll for q in posts if q.poll]
            if polls:
                includes["polls"] = [{k: poll[k] for k in ("id", "options")} for poll in polls]
        if "referenced_tweets.id" in expansions:
            refs = [r for q in posts for r in (q.reply_to, q.quote_tweet_id) if r]
            found = [r for r in (self._visible_post(i) for i in dict.fromkeys(refs)) if r]
            if found:
                includes["tweets"] = [
                    render_post(
                        r,
                        fields,
                        media_keys=[self._media_key(m) for m in r.media_ids],
                        private_ok=False,
                    )
                    for r in found
                ]
        if includes:
            out["includes"] = includes
        if errors:
            out["errors"] = errors
        return out

    async def lookup_posts(self, request: Request) -> Response:
        p = await self.any_principal(request)
        ids = _csv_param(request, "ids")
        if not 1 <= len(ids) <= 100:
            raise invalid_request(
                "The `ids` query parameter must hold 1 to 100 post ids",
                parameters={"ids": [request.query_params.get("ids", "")]},
            )
        for i in ids:
            if not _USER_ID.match(i):
                raise invalid_request(
                    f"The `ids` query parameter value [{i}] is not valid", parameters={"ids": [i]}
                )
        found, errors = [], []
        for i in ids:
            post = self._visible_post(i)
            if post is None:
                errors.append(_not_found("tweet", "ids", i))
            else:
                found.append(post)
        return XJSON(self._render_posts(request, p, found, errors))

    async def lookup_post(self, request: Request) -> Response:
        p = await self.any_principal(request)
        pid = request.path_params["id"]
        if not _USER_ID.match(pid):
            raise invalid_request(
                f"The `id` query parameter value [{pid}] is not valid", parameters={"id": [pid]}
            )
        post = self._visible_post(pid)
        if post is None:
            return XJSON({"errors": [_not_found("tweet", "id", pid)]})
        body = self._render_posts(request, p, [post], [])
        body["data"] = body["data"][0]
        return XJSON(body)

    async def user_timeline(self, request: Request) -> Response:
        p = await self.any_principal(request)
        uid = request.path_params["id"]
        if not _USER_ID.match(uid):
            raise invalid_request(
                f"The `id` query parameter value [{uid}] is not valid", parameters={"id": [uid]}
            )
        max_results = _int_param(request, "max_results", 10, 5, 100)
        cursor = _decode_cursor(request.query_params.get("pagination_token"))
        exclude = set(_csv_param(request, "exclude", frozenset({"replies", "retweets"})))
        q = request.query_params
        since_id, until_id = q.get("since_id"), q.get("until_id")
        for name, value in (("since_id", since_id), ("until_id", until_id)):
            if value is not None and not _USER_ID.match(value):
                raise invalid_request(
                    f"The `{name}` query parameter value [{value}] is not valid",
                    parameters={name: [value]},
                )
        start = _parse_time("start_time", q.get("start_time"))
        end = _parse_time("end_time", q.get("end_time"))
        with self.state.lock:
            if uid not in self.state.users:
                return XJSON({"errors": [_not_found("user", "id", uid)]})
            posts = [
                post
                for post in self.state.posts.values()
                if post.author_id == uid
                and not post.deleted
                and not ("replies" in exclude and post.reply_to)
                and (since_id is None or int(post.id) > int(since_id))
                and (until_id is None or int(post.id) < int(until_id))
                and (start is None or post.created_at >= start)
                and (end is None or post.created_at <= end)
            ]
        by_id = {int(post.id): post for post in posts}
        ordered = sorted(by_id, reverse=True)
        page_ids, next_token, prev_token = _keyset_page(ordered, cursor, max_results)
        page = [by_id[i] for i in page_ids]
        out = self._render_posts(request, p, page, [])
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta["newest_id"] = page[0].id
            meta["oldest_id"] = page[-1].id
        if next_token:
            meta["next_token"] = next_token
        if prev_token:
            meta["previous_token"] = prev_token
        out["meta"] = meta
        return XJSON(out)

    # -- webhooks --------------------------------------------------------------------------

    async def _crc(self, url: str) -> bool:
        token = secrets.token_urlsafe(24)
        expected = crc_response_token(self.cfg.consumer_secret, token)
        try:
            async with httpx.AsyncClient(timeout=self.cfg.crc_timeout) as http:
                resp = await http.get(url, params={"crc_token": token})
            if resp.status_code != 200:
                return False
            got = resp.json().get("response_token")
        except (httpx.HTTPError, ValueError, AttributeError):
            return False
        return isinstance(got, str) and hmac.compare_digest(got, expected)

    @staticmethod
    def _webhook_error(reason: str, message: str) -> ApiError:
        return invalid_request(message, reason=reason)

    async def create_webhook(self, request: Request) -> Response:
        await self.app_principal(request)
        body = await self.json_body(request)
        url = body.get("url")
        if (
            not isinstance(url, str)
            or urlsplit(url).scheme not in ("http", "https")
            or not urlsplit(url).netloc
        ):
            raise self._webhook_error("UrlValidationFailed", "The url is not valid")
        with self.state.lock:
            if any(w.url == url for w in self.state.webhooks.values()):
                raise self._webhook_error("DuplicateUrlFailed", "The url is already registered")
            if len(self.state.webhooks) >= self.cfg.max_webhooks:
                raise self._webhook_error("WebhookLimitExceeded", "Too many webhooks")
        if not await self._crc(url):
            raise self._webhook_error("CrcValidationFailed", "The webhook failed the CRC check")
        hook = WebhookRecord(self.state.snowflake(), url, True, self.state.now())
        with self.state.lock:
            self.state.webhooks[hook.id] = hook
            self.state.subscriptions.setdefault(hook.id, set())
        return XJSON({"data": hook.as_json()})

    async def list_webhooks(self, request: Request) -> Response:
        await self.app_principal(request)
        with self.state.lock:
            hooks = [w.as_json() for w in self.state.webhooks.values()]
        body: dict[str, Any] = {"meta": {"result_count": len(hooks)}}
        if hooks:
            body["data"] = hooks
        return XJSON(body)

    def _hook(self, wid: str) -> WebhookRecord:
        with self.state.lock:
            hook = self.state.webhooks.get(wid)
        if hook is None:
            raise problem(
                404, "Not Found Error", f"Webhook {wid} not found", PROBLEMS + "resource-not-found"
            )
        return hook

    async def revalidate_webhook(self, request: Request) -> Response:
        await self.app_principal(request)
        hook = self._hook(request.path_params["id"])
        ok = await self._crc(hook.url)
        with self.state.lock:
            hook.valid = ok
        if not ok:
            raise self._webhook_error("CrcValidationFailed", "The webhook failed the CRC check")
        return XJSON({"data": {"valid": True}})

    async def delete_webhook(self, request: Request) -> Response:
        await self.app_principal(request)
        hook = self._hook(request.path_params["id"])
        with self.state.lock:
            self.state.webhooks.pop(hook.id, None)
            self.state.subscriptions.pop(hook.id, None)
        return XJSON({"data": {"deleted": True}})

    async def subscription(self, request: Request) -> Response:
        p = await self.user_principal(request)
        assert p.user_id is not None
        hook = self._hook(request.path_params["id"])
        with self.state.lock:
            subs = self.state.subscriptions.setdefault(hook.id, set())
            if request.method == "POST":
                if not hook.valid:
                    raise invalid_request("Webhook is not valid; re-run the CRC")
                subs.add(p.user_id)
            subscribed = p.user_id in subs
        return XJSON({"data": {"subscribed": subscribed}})

    async def unsubscribe(self, request: Request) -> Response:
        await self.app_principal(request)
        hook = self._hook(request.path_params["id"])
        with self.state.lock:
            self.state.subscriptions.setdefault(hook.id, set()).discard(
                request.path_params["user_id"]
            )
        return XJSON({"data": {"subscribed": False}})

    async def replay(self, request: Request) -> Response:
        await self.app_principal(request)
        hook = self._hook(request.path_params["id"])
        q = request.query_params
        try:
            start = _parse_minute(q.get("from_date", ""))
            end = _parse_minute(q.get("to_date", "")) + 59.999
        except ValueError:
            raise invalid_request("from_date and to_date must be yyyymmddhhmm") from None
        now = self.state.now()
        if start > end or start < now - 86400 - 60:
            raise invalid_request("Replay window must be within the last 24 hours")
        self.state.replay(hook.id, start, min(end, now))
        return XJSON({"data": {"job_id": self.state.snowflake(), "created_at": iso(now)}})

    # -- routing ------------------------------------------------------------------------------

    def specs(self) -> list[RouteSpec]:
        """Every X API route, most specific paths first (Starlette matches in order)."""

        def r(
            method: str, path: str, endpoint: str, fn: Handler, *, faults: bool = True
        ) -> RouteSpec:
            return RouteSpec(method, path, endpoint, fn.__name__, fn, faults)

        return [
            r("POST", "/oauth/request_token", "POST /oauth/request_token", self.request_token),
            r(
                "GET",
                "/oauth/authorize",
                "GET /oauth/authorize",
                self.oauth1_authorize,
                faults=False,
            ),
            r(
                "GET",
                "/oauth/authenticate",
                "GET /oauth/authenticate",
                self.oauth1_authorize,
                faults=False,
            ),
            r("POST", "/oauth/access_token", "POST /oauth/access_token", self.access_token),
            r("POST", "/oauth2/token", "POST /oauth2/token", self.client_credentials),
            r(
                "GET",
                "/i/oauth2/authorize",
                "GET /i/oauth2/authorize",
                self.oauth2_authorize,
                faults=False,
            ),
            r("POST", "/2/oauth2/token", "POST /2/oauth2/token", self.oauth2_token),
            r("POST", "/2/oauth2/revoke", "POST /2/oauth2/revoke", self.oauth2_revoke),
            r("GET", "/2/users/me", "GET /2/users/me", self.users_me),
            r("GET", "/2/users/by", "GET /2/users/by", self.users_by_usernames),
            r(
                "GET",
                "/2/users/by/username/{username}",
                "GET /2/users/by/username/:username",
                self.user_by_username,
            ),
            r("GET", "/2/users", "GET /2/users", self.users_by_ids),
            r("GET", "/2/users/{id}/tweets", "GET /2/users/:id/tweets", self.user_timeline),
            r("GET", "/2/users/{id}", "GET /2/users/:id", self.user_by_id),
            r(
                "POST",
                "/2/dm_conversations/with/{participant_id}/messages",
                "POST /2/dm_conversations/with/:participant_id/messages",
                self.dm_with,
            ),
            r(
                "GET",
                "/2/dm_conversations/with/{participant_id}/dm_events",
                "GET /2/dm_conversations/with/:participant_id/dm_events",
                self.dm_events_with,
            ),
            r(
                "POST",
                "/2/dm_conversations/{conversation_id}/messages",
                "POST /2/dm_conversations/:dm_conversation_id/messages",
                self.dm_in_conversation,
            ),
            r(
                "GET",
                "/2/dm_conversations/{conversation_id}/dm_events",
                "GET /2/dm_conversations/:dm_conversation_id/dm_events",
                self.dm_events_in_conversation,
            ),
            r("POST", "/2/dm_conversations", "POST /2/dm_conversations", self.dm_create_group),
            r("GET", "/2/dm_events", "GET /2/dm_events", self.dm_events),
            r("GET", "/2/dm_events/{id}", "GET /2/dm_events/:id", self.dm_event),
            r("GET", "/2/media/upload", "GET /2/media/upload", self.media_get),
            r("POST", "/2/media/upload", "POST /2/media/upload", self.media_upload),
            r(
                "POST",
                "/2/media/upload/initialize",
                "POST /2/media/upload/initialize",
                self.media_initialize,
            ),
            r(
                "POST",
                "/2/media/upload/{id}/append",
                "POST /2/media/upload/:id/append",
                self.media_append,
            ),
            r(
                "POST",
                "/2/media/upload/{id}/finalize",
                "POST /2/media/upload/:id/finalize",
                self.media_finalize,
            ),
            r("POST", "/2/media/metadata", "POST /2/media/metadata", self.media_metadata),
            r("POST", "/2/tweets", "POST /2/tweets", self.create_post),
            r("GET", "/2/tweets", "GET /2/tweets", self.lookup_posts),
            r("GET", "/2/tweets/{id}", "GET /2/tweets/:id", self.lookup_post),
            r("DELETE", "/2/tweets/{id}", "DELETE /2/tweets/:id", self.delete_post),
            r("POST", "/2/webhooks", "POST /2/webhooks", self.create_webhook),
            r("GET", "/2/webhooks", "GET /2/webhooks", self.list_webhooks),
            r("PUT", "/2/webhooks/{id}", "PUT /2/webhooks/:webhook_id", self.revalidate_webhook),
            r("DELETE", "/2/webhooks/{id}", "DELETE /2/webhooks/:webhook_id", self.delete_webhook),
            r(
                "GET",
                "/2/account_activity/webhooks/{id}/subscriptions/all",
                "GET /2/account_activity/webhooks/:webhook_id/subscriptions/all",
                self.subscription,
            ),
            r(
                "POST",
                "/2/account_activity/webhooks/{id}/subscriptions/all",
                "POST /2/account_activity/webhooks/:webhook_id/subscriptions/all",
                self.subscription,
            ),
            r(
                "DELETE",
                "/2/account_activity/webhooks/{id}/subscriptions/{user_id}/all",
                "DELETE /2/account_activity/webhooks/:webhook_id/subscriptions/:user_id/all",
                self.unsubscribe,
            ),
            r(
                "POST",
                "/2/account_activity/replay/webhooks/{id}/subscriptions/all",
                "POST /2/account_activity/replay/webhooks/:webhook_id/subscriptions/all",
                self.replay,
            ),
        ]

    def routes(self) -> list[Route]:
        return [
            Route(s.path, self.endpoint(s), methods=[s.method], name=f"{s.method} {s.path}")
            for s in self.specs()
        ]


def _not_found(resource: str, parameter: str, value: str) -> dict[str, Any]:
    return {
        "value": value,
        "detail": f"Could not find {resource} with {parameter}: [{value}].",
        "title": "Not Found Error",
        "resource_type": resource,
        "parameter": parameter,
        "resource_id": value,
        "type": PROBLEMS + "resource-not-found",
    }


def _field_error(post_id: str, field: str) -> dict[str, Any]:
    """X's error entry for a private metrics field the caller may not see."""
    return {
        "value": post_id,
        "detail": (
            f"Sorry, you are not authorized to access '{field}' on the Tweet with ids: {post_id}."
        ),
        "title": "Field Authorization Error",
        "resource_type": "tweet",
        "parameter": field,
        "section": "data",
        "field": field,
        "resource_id": post_id,
        "type": PROBLEMS + "not-authorized-for-field",
    }


def _add_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit(parts._replace(query=query))


def _parse_minute(value: str) -> float:
    return datetime.strptime(value, "%Y%m%d%H%M").replace(tzinfo=UTC).timestamp()


async def _not_found_route(request: Request, exc: Exception) -> Response:
    return problem(
        404, "Not Found Error", f"No route for {request.url.path}", PROBLEMS + "resource-not-found"
    ).response()


def create_sandbox_app(
    config: SandboxConfig | None = None, *, state: SandboxState | None = None
) -> ASGIApp:
    """Build the sandbox ASGI app. The state is reachable as ``app.state.sandbox``
    on the inner Starlette app and as ``.sandbox`` on the returned app.

    Webhook deliveries are only sent when a deliverer is attached to the state
    (``SandboxServer`` does that); otherwise they are recorded but not POSTed.
    """
    st = state or SandboxState(config or SandboxConfig())
    api = SandboxApi(st)
    app = Starlette(routes=[*api.routes(), *admin_routes(st, api.specs())])
    app.state.sandbox = st
    app.add_exception_handler(404, _not_found_route)
    outer = _ConnectionControl(app)
    outer.sandbox = st  # type: ignore[attr-defined]
    return outer
