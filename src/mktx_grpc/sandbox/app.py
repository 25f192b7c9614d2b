"""The sandbox's HTTP surface: X's wire protocol plus an admin API under ``/_sandbox``.

Responses copy X's shapes: ``application/problem+json`` errors, OAuth2
``{"error","error_description"}`` bodies at the token endpoints, form-encoded
bodies for the OAuth 1.0a endpoints, and rate-limit headers on every API call.
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
from collections.abc import Awaitable, Callable
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

from mktx_grpc.x.signatures import crc_response_token

from .admin import admin_routes
from .config import SandboxConfig
from .state import (
    MediaRecord,
    OAuth1Token,
    OAuth2Code,
    PostRecord,
    Principal,
    SandboxState,
    WebhookRecord,
    iso,
)

__all__ = ["ApiError", "create_sandbox_app"]

PROBLEMS = "https://api.x.com/2/problems/"
_USER_ID = re.compile(r"^[0-9]{1,19}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_URL = re.compile(r"https?://\S+")
Handler = Callable[[Request], Awaitable[Response]]


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


def unauthorized(detail: str = "Unauthorized") -> ApiError:
    return problem(401, "Unauthorized", detail)


def invalid_request(message: str, **extra: Any) -> ApiError:
    return problem(
        400,
        "Invalid Request",
        "One or more parameters to your request was invalid.",
        PROBLEMS + "invalid-request",
        errors=[{"message": message, "parameters": {}}],
        **extra,
    )


def oauth2_error(error: str, description: str, status: int = 400) -> ApiError:
    return ApiError(
        status, {"error": error, "error_description": description}, media_type="application/json"
    )


def _weighted_length(text: str) -> int:
    """twitter-text v3 weighting: URLs count 23, most non-Latin characters 2."""
    length = 0
    for part in _URL.split(text):
        for ch in part:
            cp = ord(ch)
            light = cp <= 4351 or 8192 <= cp <= 8205 or 8208 <= cp <= 8223 or 8242 <= cp <= 8247
            length += 1 if light else 2
    return length + 23 * len(_URL.findall(text))


class SandboxApi:
    """Route handlers bound to one :class:`SandboxState`."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.cfg: SandboxConfig = state.config

    # -- plumbing --------------------------------------------------------------------

    def endpoint(self, fn: Handler, *, faults: bool = True) -> Handler:
        async def wrapper(request: Request) -> Response:
            request.state.rl_headers = {}
            with self.state.lock:
                self.state.request_log.append((request.method, request.url.path))
                latency = self.state.faults.latency
            if faults:
                if latency > 0:
                    await asyncio.sleep(latency)
                fault = self.state.take_fault()
                if fault is not None:
                    return self._fault_response(fault)
            try:
                resp = await fn(request)
            except ApiError as exc:
                resp = exc.response()
            for k, v in request.state.rl_headers.items():
                resp.headers.setdefault(k, v)
            return resp

        return wrapper

    def _fault_response(self, fault: tuple[str, float]) -> Response:
        kind, value = fault
        if kind == "429":
            reset = int(self.state.now() + value + 0.999)
            return ApiError(
                429,
                {
                    "title": "Too Many Requests",
                    "type": "about:blank",
                    "status": 429,
                    "detail": "Too Many Requests",
                },
                headers={
                    "x-rate-limit-limit": "15",
                    "x-rate-limit-remaining": "0",
                    "x-rate-limit-reset": str(reset),
                },
            ).response()
        status = int(value)
        return problem(status, "Service Unavailable", "Service Unavailable").response()

    def limit(self, request: Request, who: str, bucket: str = "default") -> None:
        allowed, headers = self.state.take(who, bucket)
        request.state.rl_headers = headers
        if not allowed:
            raise ApiError(
                429,
                {
                    "title": "Too Many Requests",
                    "type": "about:blank",
                    "status": 429,
                    "detail": "Too Many Requests",
                },
                headers=headers,
            )

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

    async def user_principal(self, request: Request, bucket: str = "default") -> Principal:
        p = await self.authenticate(request, allow=("oauth1", "oauth2"))
        assert p.user_id is not None
        self.limit(request, p.user_id, bucket)
        return p

    async def app_principal(self, request: Request) -> Principal:
        p = await self.authenticate(request, allow=("app",))
        self.limit(request, "app", "default")
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
                media_type="application/json",
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
        return JSONResponse(body)

    async def oauth2_revoke(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        self._client_auth(request, form)
        with self.state.lock:
            g = self.state.oauth2_grants.get(form.get("token", ""))
            if g is not None:
                g.revoked = True
        return JSONResponse({"revoked": True})

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
                media_type="application/json",
            )
        if form.get("grant_type") != "client_credentials":
            raise ApiError(
                400,
                {"errors": [{"code": 170, "message": "Missing required parameter: grant_type"}]},
                media_type="application/json",
            )
        return JSONResponse({"token_type": "bearer", "access_token": self.cfg.app_bearer_token})

    # -- users ----------------------------------------------------------------------------

    def _user_json(self, uid: str) -> dict[str, Any]:
        with self.state.lock:
            return self.state.users[uid].v2()

    async def users_me(self, request: Request) -> Response:
        p = await self.user_principal(request)
        assert p.user_id is not None
        return JSONResponse({"data": self._user_json(p.user_id)})

    async def user_by_id(self, request: Request) -> Response:
        await self.user_principal(request)
        uid = request.path_params["id"]
        if not _USER_ID.match(uid):
            raise invalid_request(f"The `id` query parameter value [{uid}] is not valid")
        with self.state.lock:
            user = self.state.users.get(uid)
        if user is None:
            return JSONResponse({"errors": [_not_found("user", "id", uid)]})
        return JSONResponse({"data": user.v2()})

    async def user_by_username(self, request: Request) -> Response:
        await self.user_principal(request)
        name = request.path_params["username"]
        if not _USERNAME.match(name):
            raise invalid_request(f"The `username` query parameter value [{name}] is not valid")
        user = self.state.user_by_username(name)
        if user is None:
            return JSONResponse({"errors": [_not_found("user", "username", name)]})
        return JSONResponse({"data": user.v2()})

    # -- DMs ---------------------------------------------------------------------------------

    async def dm_with(self, request: Request) -> Response:
        p = await self.authenticate(request, allow=("oauth1", "oauth2"))
        pid = request.path_params["participant_id"]
        if not _USER_ID.match(pid):
            raise invalid_request(f"The `participant_id` path parameter value [{pid}] is not valid")
        return await self._send_dm(request, p, pid)

    async def dm_in_conversation(self, request: Request) -> Response:
        p = await self.authenticate(request, allow=("oauth1", "oauth2"))
        assert p.user_id is not None
        cid = request.path_params["conversation_id"]
        parts = cid.split("-")
        if len(parts) != 2 or not all(_USER_ID.match(x) for x in parts):
            raise invalid_request(f"The `dm_conversation_id` value [{cid}] is not valid")
        if p.user_id not in parts:
            raise problem(403, "Forbidden", "You are not a participant in this conversation.")
        other = parts[1] if parts[0] == p.user_id else parts[0]
        return await self._send_dm(request, p, other)

    async def _send_dm(self, request: Request, p: Principal, recipient: str) -> Response:
        assert p.user_id is not None
        self.limit(request, p.user_id, "dm_send")
        body = await self.json_body(request)
        text = body.get("text")
        attachments = body.get("attachments")
        if text is not None and (not isinstance(text, str) or not 1 <= len(text) <= 10000):
            raise invalid_request("text must be 1 to 10000 characters")
        media_id: str | None = None
        if attachments is not None:
            if not isinstance(attachments, list) or len(attachments) != 1:
                raise invalid_request("Only one attachment is allowed per message")
            media_id = str(attachments[0].get("media_id", ""))
            with self.state.lock:
                m = self.state.media.get(media_id)
            if (
                m is None
                or m.owner_id != p.user_id
                or m.state != "succeeded"
                or self.state.now() - m.created_at > 86400
            ):
                raise invalid_request(f"Media id {media_id} is not valid for this user")
        if not text and media_id is None:
            raise invalid_request("One of text or attachments is required")
        with self.state.lock:
            target = self.state.users.get(recipient)
        if target is None:
            raise invalid_request(f"Could not find the recipient [{recipient}]")
        if not target.accepts_dms and recipient != p.user_id:
            raise problem(
                403,
                "Forbidden",
                "You cannot send messages to this user.",
                PROBLEMS + "dm-not-allowed",
            )
        rec = self.state.add_dm(p.user_id, recipient, text, media_id, source="api", principal=p)
        return JSONResponse(
            {"data": {"dm_conversation_id": rec.conversation_id, "dm_event_id": rec.id}}, 201
        )

    async def dm_events(self, request: Request) -> Response:
        return await self._dm_lookup(request, None)

    async def dm_events_with(self, request: Request) -> Response:
        pid = request.path_params["participant_id"]
        if not _USER_ID.match(pid):
            raise invalid_request(f"The `participant_id` value [{pid}] is not valid")
        return await self._dm_lookup(request, pid)

    async def _dm_lookup(self, request: Request, participant: str | None) -> Response:
        p = await self.user_principal(request)
        assert p.user_id is not None
        q = request.query_params
        try:
            max_results = int(q.get("max_results", "100"))
        except ValueError:
            raise invalid_request("max_results must be a number") from None
        if not 1 <= max_results <= 100:
            raise invalid_request("max_results must be between 1 and 100")
        fields = set((q.get("dm_event.fields") or "").split(",")) | {"id", "event_type", "text"}
        events = self.state.dms_visible_to(p.user_id, participant, self.state.now() - 30 * 86400)
        start = _decode_token(q.get("pagination_token"))
        page = events[start : start + max_results]
        data = []
        for d in page:
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
            data.append({k: v for k, v in full.items() if k in fields})
        meta: dict[str, Any] = {"result_count": len(data)}
        if start + max_results < len(events):
            meta["next_token"] = _encode_token(start + max_results)
        return JSONResponse({"data": data, "meta": meta} if data else {"meta": meta})

    def _media_key(self, media_id: str) -> str:
        with self.state.lock:
            m = self.state.media.get(media_id)
        return m.media_key if m else f"3_{media_id}"

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

    @staticmethod
    def _media_json(m: MediaRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": m.id,
            "media_key": m.media_key,
            "size": m.size,
            "expires_after_secs": 86400,
        }
        if m.state != "succeeded" or m.steps_left or m.status_polls:
            info: dict[str, Any] = {"state": m.state}
            if m.state in ("pending", "in_progress"):
                info["check_after_secs"] = 0
            if m.state == "failed":
                info["error"] = {"code": 1, "name": "InvalidMedia", "message": "Unsupported media"}
            out["processing_info"] = info
        return out

    async def media_upload(self, request: Request) -> Response:
        if request.method == "GET":
            return await self.media_status(request)
        p = await self.user_principal(request, "media")
        assert p.user_id is not None
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/"):
            form = await request.form()
            upload = form.get("media")
            if not isinstance(upload, UploadFile):
                raise invalid_request("media is required")
            data = await upload.read()
            category = str(form.get("media_category") or "tweet_image")
            media_type = str(form.get("media_type") or upload.content_type or "image/jpeg")
        else:
            body = await self.json_body(request)
            try:
                data = base64.b64decode(str(body.get("media", "")), validate=True)
            except binascii.Error:
                raise invalid_request("media must be base64") from None
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
        return JSONResponse({"data": self._media_json(m)})

    async def media_initialize(self, request: Request) -> Response:
        p = await self.user_principal(request, "media")
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
        return JSONResponse(
            {"data": {"id": m.id, "media_key": m.media_key, "expires_after_secs": 86400}}
        )

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
        p = await self.user_principal(request, "media")
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
        return JSONResponse({"data": {"expires_at": int(self.state.now()) + 86400}})

    async def media_finalize(self, request: Request) -> Response:
        p = await self.user_principal(request, "media")
        m = self._owned_media(p, request.path_params["id"])
        with self.state.lock:
            indexes = sorted(m.chunks)
            if indexes != list(range(len(indexes))) or m.size != m.total_bytes:
                raise invalid_request(
                    f"Segments do not add up to total_bytes ({m.size} != {m.total_bytes})"
                )
            m.finalized = True
            if m.category.endswith("_image"):
                m.state = "succeeded"
            else:
                m.state = "pending"
                m.steps_left = max(1, self.cfg.media_processing_steps)
                m.last_check = self.state.now()
            body = self._media_json(m)
            if "processing_info" in body and m.state == "pending":
                body["processing_info"]["check_after_secs"] = self.cfg.media_check_after_secs
        return JSONResponse({"data": body})

    async def media_status(self, request: Request) -> Response:
        p = await self.user_principal(request, "media")
        q = request.query_params
        if q.get("command") != "STATUS":
            raise invalid_request("command must be STATUS")
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
                m.state = "in_progress" if m.steps_left > 0 else "succeeded"
            body = self._media_json(m)
            if m.state in ("pending", "in_progress"):
                body["processing_info"]["check_after_secs"] = wait
                body["processing_info"]["progress_percent"] = 50
            elif m.state == "succeeded" and "processing_info" in body:
                body["processing_info"]["progress_percent"] = 100
        return JSONResponse({"data": body})

    # -- posts --------------------------------------------------------------------------------

    async def create_post(self, request: Request) -> Response:
        p = await self.user_principal(request, "post_create")
        assert p.user_id is not None
        body = await self.json_body(request)
        text = body.get("text")
        media = body.get("media")
        poll = body.get("poll")
        quote = body.get("quote_tweet_id")
        if sum(x is not None for x in (media, poll, quote)) > 1:
            raise invalid_request("media, poll and quote_tweet_id are mutually exclusive")
        if text is not None and not isinstance(text, str):
            raise invalid_request("text must be a string")
        if not text and media is None:
            raise invalid_request("text or media is required")
        if text and _weighted_length(text) > 280:
            raise problem(
                403, "Forbidden", "Your Tweet text is too long.", PROBLEMS + "tweet-too-long"
            )
        media_ids: list[str] = []
        if media is not None:
            media_ids = [str(x) for x in (media.get("media_ids") or [])]
            if not 1 <= len(media_ids) <= 4:
                raise invalid_request("media_ids must hold 1 to 4 ids")
            for mid in media_ids:
                with self.state.lock:
                    m = self.state.media.get(mid)
                if m is None or m.owner_id != p.user_id or m.state != "succeeded":
                    raise invalid_request(f"Your media IDs are invalid: {mid}")
        if poll is not None:
            opts = poll.get("options") or []
            dur = poll.get("duration_minutes")
            if not 2 <= len(opts) <= 4 or not all(
                isinstance(o, str) and 1 <= len(o) <= 25 for o in opts
            ):
                raise invalid_request("poll needs 2 to 4 options of 1 to 25 characters")
            if not isinstance(dur, int) or not 5 <= dur <= 10080:
                raise invalid_request("poll duration_minutes must be 5..10080")
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        for ref in (reply_to, quote):
            if ref is not None:
                with self.state.lock:
                    target = self.state.posts.get(str(ref))
                if target is None or target.deleted:
                    raise problem(
                        403,
                        "Forbidden",
                        "You attempted to reply to a Tweet that is deleted or not visible to you.",
                    )
        settings = body.get("reply_settings")
        if settings is not None and settings not in (
            "following",
            "mentionedUsers",
            "subscribers",
            "verified",
        ):
            raise invalid_request("reply_settings is not valid")
        post = PostRecord(
            id=self.state.snowflake(),
            author_id=p.user_id,
            text=text or "",
            created_at=self.state.now(),
            media_ids=media_ids,
            reply_to=str(reply_to) if reply_to else None,
            quote_tweet_id=str(quote) if quote else None,
            poll=poll,
            reply_settings=settings,
            principal=p,
        )
        with self.state.lock:
            self.state.posts[post.id] = post
            self.state.users[p.user_id].tweet_count += 1
        return JSONResponse(
            {"data": {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}}, 201
        )

    async def delete_post(self, request: Request) -> Response:
        p = await self.user_principal(request)
        pid = request.path_params["id"]
        with self.state.lock:
            post = self.state.posts.get(pid)
            if post is None or post.deleted:
                return JSONResponse({"data": {"deleted": False}})
            if post.author_id != p.user_id:
                raise problem(
                    403, "Forbidden", "You are not allowed to delete a Tweet that is not yours."
                )
            post.deleted = True
        return JSONResponse({"data": {"deleted": True}})

    async def lookup_posts(self, request: Request) -> Response:
        p = await self.user_principal(request)
        q = request.query_params
        ids = [i for i in (q.get("ids") or "").split(",") if i]
        if not 1 <= len(ids) <= 100 or not all(_USER_ID.match(i) for i in ids):
            raise invalid_request("ids must be 1 to 100 numeric ids")
        fields = set((q.get("tweet.fields") or "").split(","))
        data, errors = [], []
        for i in ids:
            with self.state.lock:
                post = self.state.posts.get(i)
            if post is None or post.deleted:
                errors.append(_not_found("tweet", "ids", i))
                continue
            item: dict[str, Any] = {
                "id": post.id,
                "text": post.text,
                "edit_history_tweet_ids": [post.id],
            }
            if "author_id" in fields:
                item["author_id"] = post.author_id
            if "created_at" in fields:
                item["created_at"] = iso(post.created_at)
            if "public_metrics" in fields:
                item["public_metrics"] = dict(post.public_metrics)
            own_recent = (
                post.author_id == p.user_id and self.state.now() - post.created_at < 30 * 86400
            )
            for private in ("non_public_metrics", "organic_metrics"):
                if private not in fields:
                    continue
                if own_recent:
                    item[private] = dict(post.non_public_metrics)
                else:
                    errors.append(
                        {
                            "value": post.id,
                            "detail": (
                                f"Sorry, you are not authorized to access '{private}'"
                                f" on the Tweet with ids: {post.id}."
                            ),
                            "title": "Field Authorization Error",
                            "resource_type": "tweet",
                            "parameter": private,
                            "section": "data",
                            "field": private,
                            "type": PROBLEMS + "not-authorized-for-field",
                        }
                    )
            data.append(item)
        out: dict[str, Any] = {}
        if data:
            out["data"] = data
        if errors:
            out["errors"] = errors
        return JSONResponse(out)

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
        return JSONResponse({"data": hook.as_json()})

    async def list_webhooks(self, request: Request) -> Response:
        await self.app_principal(request)
        with self.state.lock:
            hooks = [w.as_json() for w in self.state.webhooks.values()]
        body: dict[str, Any] = {"meta": {"result_count": len(hooks)}}
        if hooks:
            body["data"] = hooks
        return JSONResponse(body)

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
        return JSONResponse({"data": {"valid": True}})

    async def delete_webhook(self, request: Request) -> Response:
        await self.app_principal(request)
        hook = self._hook(request.path_params["id"])
        with self.state.lock:
            self.state.webhooks.pop(hook.id, None)
            self.state.subscriptions.pop(hook.id, None)
        return JSONResponse({"data": {"deleted": True}})

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
        return JSONResponse({"data": {"subscribed": subscribed}})

    async def unsubscribe(self, request: Request) -> Response:
        await self.app_principal(request)
        hook = self._hook(request.path_params["id"])
        with self.state.lock:
            self.state.subscriptions.setdefault(hook.id, set()).discard(
                request.path_params["user_id"]
            )
        return JSONResponse({"data": {"subscribed": False}})

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
        return JSONResponse({"data": {"job_id": self.state.snowflake(), "created_at": iso(now)}})

    # -- routing ------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        e = self.endpoint
        return [
            Route("/oauth/request_token", e(self.request_token), methods=["POST"]),
            Route("/oauth/authorize", e(self.oauth1_authorize, faults=False), methods=["GET"]),
            Route("/oauth/authenticate", e(self.oauth1_authorize, faults=False), methods=["GET"]),
            Route("/oauth/access_token", e(self.access_token), methods=["POST"]),
            Route("/oauth2/token", e(self.client_credentials), methods=["POST"]),
            Route("/i/oauth2/authorize", e(self.oauth2_authorize, faults=False), methods=["GET"]),
            Route("/2/oauth2/token", e(self.oauth2_token), methods=["POST"]),
            Route("/2/oauth2/revoke", e(self.oauth2_revoke), methods=["POST"]),
            Route("/2/users/me", e(self.users_me), methods=["GET"]),
            Route("/2/users/by/username/{username}", e(self.user_by_username), methods=["GET"]),
            Route("/2/users/{id}", e(self.user_by_id), methods=["GET"]),
            Route(
                "/2/dm_conversations/with/{participant_id}/messages",
                e(self.dm_with),
                methods=["POST"],
            ),
            Route(
                "/2/dm_conversations/with/{participant_id}/dm_events",
                e(self.dm_events_with),
                methods=["GET"],
            ),
            Route(
                "/2/dm_conversations/{conversation_id}/messages",
                e(self.dm_in_conversation),
                methods=["POST"],
            ),
            Route("/2/dm_events", e(self.dm_events), methods=["GET"]),
            Route("/2/media/upload", e(self.media_upload), methods=["GET", "POST"]),
            Route("/2/media/upload/initialize", e(self.media_initialize), methods=["POST"]),
            Route("/2/media/upload/{id}/append", e(self.media_append), methods=["POST"]),
            Route("/2/media/upload/{id}/finalize", e(self.media_finalize), methods=["POST"]),
            Route("/2/tweets", e(self.create_post), methods=["POST"]),
            Route("/2/tweets", e(self.lookup_posts), methods=["GET"]),
            Route("/2/tweets/{id}", e(self.delete_post), methods=["DELETE"]),
            Route("/2/webhooks", e(self.create_webhook), methods=["POST"]),
            Route("/2/webhooks", e(self.list_webhooks), methods=["GET"]),
            Route("/2/webhooks/{id}", e(self.revalidate_webhook), methods=["PUT"]),
            Route("/2/webhooks/{id}", e(self.delete_webhook), methods=["DELETE"]),
            Route(
                "/2/account_activity/webhooks/{id}/subscriptions/all",
                e(self.subscription),
                methods=["GET", "POST"],
            ),
            Route(
                "/2/account_activity/webhooks/{id}/subscriptions/{user_id}/all",
                e(self.unsubscribe),
                methods=["DELETE"],
            ),
            Route(
                "/2/account_activity/replay/webhooks/{id}/subscriptions/all",
                e(self.replay),
                methods=["POST"],
            ),
        ]


def _not_found(resource: str, parameter: str, value: str) -> dict[str, Any]:
    label = "tweet" if resource == "tweet" else resource
    return {
        "value": value,
        "detail": f"Could not find {label} with {parameter}: [{value}].",
        "title": "Not Found Error",
        "resource_type": resource,
        "parameter": parameter,
        "resource_id": value,
        "type": PROBLEMS + "resource-not-found",
    }


def _add_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit(parts._replace(query=query))


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        return max(0, int(raw.removeprefix("o:")))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid_request("pagination_token is not valid") from None


def _parse_minute(value: str) -> float:
    return datetime.strptime(value, "%Y%m%d%H%M").replace(tzinfo=UTC).timestamp()


async def _not_found_route(request: Request, exc: Exception) -> Response:
    return problem(
        404, "Not Found Error", f"No route for {request.url.path}", PROBLEMS + "resource-not-found"
    ).response()


def create_sandbox_app(
    config: SandboxConfig | None = None, *, state: SandboxState | None = None
) -> Starlette:
    """Build the sandbox ASGI app. The state is reachable as ``app.state.sandbox``.

    Webhook deliveries are only sent when a deliverer is attached to the state
    (``SandboxServer`` does that); otherwise they are recorded but not POSTed.
    """
    st = state or SandboxState(config or SandboxConfig())
    api = SandboxApi(st)
    app = Starlette(routes=[*api.routes(), *admin_routes(st)])
    app.state.sandbox = st
    app.add_exception_handler(404, _not_found_route)
    return app
