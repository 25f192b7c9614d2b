"""The async X API client.

One :class:`XClient` per process holds the app's configuration, the shared
``httpx.AsyncClient`` and one circuit breaker per host. Calls are made through a
context bound to credentials: ``client.as_user(creds)`` (OAuth 1.0a or OAuth 2.0
user context) or ``client.as_app()`` (app-only bearer). The OAuth flows live on
the client itself because they run before any user credentials exist.

Every call has a deadline (seconds, per call; ``XConfig.default_deadline`` when
not given) that bounds retries, back-off and rate-limit waits together.
"""

from __future__ import annotations

import asyncio
import base64
import json as jsonlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from .breaker import CircuitBreaker
from .budget import DmBudget
from .credentials import AppBearer, Credentials, OAuth1Credentials, OAuth2Credentials
from .errors import (
    XBadRequest,
    XNotFound,
    XRateLimited,
    XUnavailable,
    XUpstreamError,
    error_from_response,
)
from .models import (
    DmEvent,
    DmEventPage,
    DmSendResult,
    MediaUpload,
    Post,
    ReplayJob,
    Webhook,
    XUser,
    parse_time,
)
from .oauth1 import (
    FORM_CONTENT_TYPE,
    OAuth1AccessToken,
    OAuth1RequestToken,
    encode_form,
    oauth1_authorization_header,
)
from .oauth2 import OAuth2Token

__all__ = ["AppContext", "UserContext", "XClient", "XConfig"]

log = logging.getLogger("mktx_grpc.x")

DEFAULT_USER_FIELDS = "id,name,username,profile_image_url,verified,public_metrics"
DEFAULT_DM_EVENT_FIELDS = "id,event_type,text,sender_id,dm_conversation_id,created_at,attachments"
# One-shot upload is for images; anything bigger or moving goes through chunks.
ONE_SHOT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class XConfig:
    """App credentials, endpoints and resilience knobs.

    Base URLs are configurable so the same client talks to X or to the sandbox.
    ``oauth2_client_secret`` set means a confidential client (HTTP Basic at the
    token endpoint); unset means a public client (``client_id`` in the form).
    """

    consumer_key: str = field(repr=False)
    consumer_secret: str = field(repr=False)
    oauth2_client_id: str | None = None
    oauth2_client_secret: str | None = field(default=None, repr=False)
    app_bearer_token: str | None = field(default=None, repr=False)
    api_base_url: str = "https://api.x.com"
    upload_base_url: str | None = None  # None: same as api_base_url (v2 media upload)
    oauth1_authorize_url: str = "https://api.x.com/oauth/authorize"
    oauth2_authorize_url: str = "https://x.com/i/oauth2/authorize"
    request_timeout: float = 10.0
    default_deadline: float = 30.0
    max_attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_rate_limit_waits: int = 3
    breaker_failure_threshold: int = 5
    breaker_reset_timeout: float = 60.0
    media_poll_max_wait: float = 300.0
    user_agent: str = "mktx-grpc/0.1"
    #: Connection pools the client spreads requests over (see XClient.__init__).
    http_shards: int = 8

    @property
    def upload_base(self) -> str:
        return (self.upload_base_url or self.api_base_url).rstrip("/")


@dataclass(frozen=True, slots=True)
class _OAuth1Flow:
    """Signing material for the 3-legged flow's own requests."""

    token: str | None = field(default=None, repr=False)
    token_secret: str | None = field(default=None, repr=False)
    callback_uri: str | None = None
    verifier: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class _Basic:
    username: str = field(repr=False)
    password: str = field(repr=False)


_Auth = Credentials | _OAuth1Flow | _Basic | None

# Errors after which the request may already have reached X: retrying a POST then
# could send a DM twice, so only idempotent methods retry them.
_SAFE_TO_RETRY_ANY_METHOD = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class XClient:
    """Async X API client. Use as an async context manager or call :meth:`aclose`.

    ``http`` may be shared with other code; a client built here is closed by
    :meth:`aclose`, one passed in is not. ``dm_budget`` is awaited before every DM
    send. ``clock`` (monotonic seconds), ``wall_clock`` (epoch seconds), ``sleep``
    and ``rng`` are injectable for tests.
    """

    def __init__(
        self,
        config: XConfig,
        http: httpx.AsyncClient | None = None,
        *,
        dm_budget: DmBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self._owns_http = http is None
        if http is not None:
            self._shards = [http]
        else:
            # Several small connection pools instead of one large one: httpcore's pool
            # does work proportional to its connections times its waiting requests on
            # every request, which dominated the client's CPU at campaign send rates.
            # Requests are spread round-robin; each shard keeps its own keep-alives.
            n = max(1, config.http_shards)
            self._shards = [
                httpx.AsyncClient(
                    headers={"User-Agent": config.user_agent},
                    limits=httpx.Limits(
                        max_connections=max(2, 100 // n),
                        max_keepalive_connections=max(2, 20 // n),
                    ),
                )
                for _ in range(n)
            ]
        self._http = self._shards[0]
        self._next_shard = 0
        self.dm_budget = dm_budget
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._rng = rng
        self._breakers: dict[str, CircuitBreaker] = {}

    async def __aenter__(self) -> XClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            for shard in self._shards:
                await shard.aclose()

    # -- contexts ---------------------------------------------------------------

    def as_user(
        self, creds: OAuth1Credentials | OAuth2Credentials, *, account_key: str | None = None
    ) -> UserContext:
        """Bind user credentials. ``account_key`` names the account for the DM
        budget; it defaults to the credentials' non-secret fingerprint."""
        return UserContext(self, creds, account_key or creds.fingerprint)

    def as_app(self, bearer: AppBearer | None = None) -> AppContext:
        """Bind the app-only bearer token (given, or ``XConfig.app_bearer_token``).

        Raises ``ValueError`` when neither is available (see :meth:`fetch_app_bearer`).
        """
        if bearer is None:
            if not self.config.app_bearer_token:
                raise ValueError("no app bearer token configured")
            bearer = AppBearer(self.config.app_bearer_token)
        return AppContext(self, bearer)

    def breaker(self, host: str) -> CircuitBreaker:
        """The circuit breaker for ``host`` (created on first use)."""
        b = self._breakers.get(host)
        if b is None:
            b = CircuitBreaker(
                failure_threshold=self.config.breaker_failure_threshold,
                reset_timeout=self.config.breaker_reset_timeout,
                clock=self._clock,
            )
            self._breakers[host] = b
        return b

    # -- OAuth 1.0a three-legged flow -------------------------------------------

    async def oauth1_request_token(
        self, callback_url: str, *, deadline: float | None = None
    ) -> OAuth1RequestToken:
        """Step 1: ``POST /oauth/request_token``. Raises XAuthError on bad app keys."""
        resp = await self.request(
            "POST",
            "/oauth/request_token",
            auth=_OAuth1Flow(callback_uri=callback_url),
            deadline=deadline,
        )
        values = dict(parse_qsl(resp.text))
        try:
            return OAuth1RequestToken(
                token=values["oauth_token"],
                token_secret=values["oauth_token_secret"],
                callback_confirmed=values.get("oauth_callback_confirmed") == "true",
            )
        except KeyError:
            raise XUpstreamError(
                "malformed request_token response", status=resp.status_code
            ) from None

    def oauth1_authorize_url(self, request_token: OAuth1RequestToken | str) -> str:
        """Step 2: where to send the user's browser."""
        token = request_token if isinstance(request_token, str) else request_token.token
        return f"{self.config.oauth1_authorize_url}?{urlencode({'oauth_token': token})}"

    async def oauth1_access_token(
        self, request_token: OAuth1RequestToken, verifier: str, *, deadline: float | None = None
    ) -> OAuth1AccessToken:
        """Step 3: exchange the request token and ``oauth_verifier`` for the user's
        access token. A wrong or reused verifier raises XAuthError or XBadRequest
        (X answers 401 for these)."""
        resp = await self.request(
            "POST",
            "/oauth/access_token",
            auth=_OAuth1Flow(
                token=request_token.token,
                token_secret=request_token.token_secret,
                verifier=verifier,
            ),
            deadline=deadline,
        )
        values = dict(parse_qsl(resp.text))
        try:
            return OAuth1AccessToken(
                token=values["oauth_token"],
                token_secret=values["oauth_token_secret"],
                user_id=values["user_id"],
                screen_name=values["screen_name"],
            )
        except KeyError:
            raise XUpstreamError(
                "malformed access_token response", status=resp.status_code
            ) from None

    # -- OAuth 2.0 PKCE ----------------------------------------------------------

    def oauth2_authorize_url(
        self, *, redirect_uri: str, scopes: Sequence[str], state: str, code_challenge: str
    ) -> str:
        """The consent URL (S256 challenge). Raises ValueError without a client id
        or when ``state`` is longer than X's 500 characters."""
        if not self.config.oauth2_client_id:
            raise ValueError("oauth2_client_id is not configured")
        if len(state) > 500:
            raise ValueError("state longer than 500 characters")
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.oauth2_client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(scopes),
                "state": state,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{self.config.oauth2_authorize_url}?{query}"

    async def oauth2_exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str, deadline: float | None = None
    ) -> OAuth2Token:
        """Exchange an authorization code. A bad, expired or reused code, or a wrong
        verifier, raises XBadRequest (OAuth2 ``invalid_request``/``invalid_grant``)."""
        return await self._token_call(
            {
                "code": code,
                "grant_type": "authorization_code",
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
            deadline,
        )

    async def oauth2_refresh(
        self, refresh_token: str, *, deadline: float | None = None
    ) -> OAuth2Token:
        """Refresh. The returned pair replaces the old one, which stops working:
        persist both tokens atomically before using them. A used or revoked refresh
        token raises XBadRequest."""
        return await self._token_call(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, deadline
        )

    async def oauth2_revoke(
        self, token: str, *, token_type_hint: str | None = None, deadline: float | None = None
    ) -> None:
        """Revoke an access or refresh token (``POST /2/oauth2/revoke``)."""
        form = {"token": token}
        if token_type_hint:
            form["token_type_hint"] = token_type_hint
        await self._oauth2_client_call("/2/oauth2/revoke", form, deadline)

    async def fetch_app_bearer(self, *, deadline: float | None = None) -> AppBearer:
        """Get an app-only bearer token with the consumer key/secret
        (``POST /oauth2/token`` ``grant_type=client_credentials``)."""
        resp = await self.request(
            "POST",
            "/oauth2/token",
            auth=_Basic(self.config.consumer_key, self.config.consumer_secret),
            form={"grant_type": "client_credentials"},
            deadline=deadline,
        )
        data = _json(resp)
        if "access_token" not in data:
            raise XUpstreamError("malformed client_credentials response", status=resp.status_code)
        return AppBearer(str(data["access_token"]))

    async def _token_call(self, form: dict[str, str], deadline: float | None) -> OAuth2Token:
        resp = await self._oauth2_client_call("/2/oauth2/token", form, deadline)
        try:
            return OAuth2Token.from_json(_json(resp), now=self._wall())
        except (KeyError, TypeError, ValueError):
            raise XUpstreamError("malformed token response", status=resp.status_code) from None

    async def _oauth2_client_call(
        self, path: str, form: dict[str, str], deadline: float | None
    ) -> httpx.Response:
        cid = self.config.oauth2_client_id
        if not cid:
            raise ValueError("oauth2_client_id is not configured")
        auth: _Auth = None
        if self.config.oauth2_client_secret:
            auth = _Basic(cid, self.config.oauth2_client_secret)
        else:
            form = {**form, "client_id": cid}
        return await self.request("POST", path, auth=auth, form=form, deadline=deadline)

    # -- transport -------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        auth: _Auth,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        multipart_data: Mapping[str, str] | None = None,
        base_url: str | None = None,
        deadline: float | None = None,
    ) -> httpx.Response:
        """Send one logical request and return its successful (< 400) response.

        Retries connect errors, timeouts and 5xx up to ``max_attempts`` with
        exponential back-off and jitter (POSTs are retried after a timeout only if
        the request provably never left). Waits out a 429 until
        ``x-rate-limit-reset`` when that is within the deadline. Each attempt is
        signed afresh (OAuth 1.0a nonces are single-use).

        Raises: XAuthError, XForbidden, XNotFound, XBadRequest for 4xx;
        XRateLimited for a 429 that cannot be waited out; XUpstreamError for 5xx
        after retries; XUnavailable for transport failures after retries, an
        exhausted deadline or an open breaker.
        """
        cfg = self.config
        budget = cfg.default_deadline if deadline is None else deadline
        deadline_at = self._clock() + budget
        url = (base_url or cfg.api_base_url).rstrip("/") + path
        host = urlsplit(url).netloc
        breaker = self.breaker(host)
        method = method.upper()
        content: str | None = encode_form(form) if form is not None else None
        attempt = 0
        waits_429 = 0
        while True:
            remaining = deadline_at - self._clock()
            if remaining <= 0:
                raise XUnavailable(f"deadline of {budget:.1f}s exhausted for {method} {path}")
            if not breaker.allow():
                raise XUnavailable(f"circuit open for {host}")
            request = self._build(method, url, auth, params, json, content, files, multipart_data)
            timeout = min(cfg.request_timeout, remaining)
            request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
            attempt += 1
            started = self._clock()
            try:
                self._next_shard = (self._next_shard + 1) % len(self._shards)
                resp = await self._shards[self._next_shard].send(request)
                await resp.aread()
            except httpx.TransportError as exc:
                breaker.record_failure()
                log.warning(
                    "x %s %s transport error %s (attempt %d/%d)",
                    method,
                    path,
                    type(exc).__name__,
                    attempt,
                    cfg.max_attempts,
                )
                retryable = method in _IDEMPOTENT or isinstance(exc, _SAFE_TO_RETRY_ANY_METHOD)
                if not retryable or attempt >= cfg.max_attempts:
                    raise XUnavailable(
                        f"{method} {path} failed: {type(exc).__name__} after {attempt} attempt(s)"
                    ) from None
                await self._backoff(attempt, deadline_at)
                continue
            log.debug(
                "x %s %s -> %d in %.3fs (attempt %d)",
                method,
                path,
                resp.status_code,
                self._clock() - started,
                attempt,
            )
            if resp.status_code >= 500:
                breaker.record_failure()
                if attempt >= cfg.max_attempts:
                    raise error_from_response(resp.status_code, resp.content, resp.headers)
                await self._backoff(attempt, deadline_at)
                continue
            # Any non-5xx answer proves the host is up, including 4xx and 429.
            breaker.record_success()
            if resp.status_code == 429:
                err = error_from_response(429, resp.content, resp.headers)
                assert isinstance(err, XRateLimited)
                wait = self._rate_limit_wait(resp.headers)
                if (
                    wait is not None
                    and waits_429 < cfg.max_rate_limit_waits
                    and self._clock() + wait < deadline_at
                ):
                    waits_429 += 1
                    log.info("x %s %s rate limited; waiting %.2fs for reset", method, path, wait)
                    await self._sleep(wait)
                    attempt = 0  # a rate-limit wait is not a failed attempt
                    continue
                raise err
            if resp.status_code >= 400:
                raise error_from_response(resp.status_code, resp.content, resp.headers)
            return resp

    def _rate_limit_wait(self, headers: httpx.Headers) -> float | None:
        raw = headers.get("x-rate-limit-reset")
        if raw is None:
            return None
        try:
            reset = float(raw)
        except ValueError:
            return None
        # The reset is whole epoch seconds; a small margin avoids arriving early.
        return max(0.0, reset - self._wall()) + 0.05

    async def _backoff(self, attempt: int, deadline_at: float) -> None:
        cap = min(self.config.backoff_max, self.config.backoff_base * 2 ** (attempt - 1))
        delay = cap / 2 + self._rng() * cap / 2  # "equal jitter": never zero, never herded
        if self._clock() + delay >= deadline_at:
            delay = max(0.0, deadline_at - self._clock())
        if delay > 0:
            await self._sleep(delay)

    def _build(
        self,
        method: str,
        url: str,
        auth: _Auth,
        params: Mapping[str, str] | None,
        json: Any,
        content: str | None,
        files: Mapping[str, tuple[str, bytes, str]] | None,
        multipart_data: Mapping[str, str] | None,
    ) -> httpx.Request:
        headers: dict[str, str] = {}
        if content is not None:
            headers["Content-Type"] = FORM_CONTENT_TYPE
        request = self._http.build_request(
            method,
            url,
            params=dict(params) if params else None,
            content=content,
            json=json,
            files=dict(files) if files else None,
            data=dict(multipart_data) if multipart_data else None,
            headers=headers,
        )
        authorization = self._authorization(method, str(request.url), auth, content)
        if authorization is not None:
            request.headers["Authorization"] = authorization
        return request

    def _authorization(
        self, method: str, url: str, auth: _Auth, form_body: str | None
    ) -> str | None:
        cfg = self.config
        if auth is None:
            return None
        if isinstance(auth, OAuth1Credentials):
            return oauth1_authorization_header(
                method,
                url,
                consumer_key=auth.consumer_key or cfg.consumer_key,
                consumer_secret=auth.consumer_secret or cfg.consumer_secret,
                token=auth.token,
                token_secret=auth.token_secret,
                form_body=form_body,
            )
        if isinstance(auth, _OAuth1Flow):
            return oauth1_authorization_header(
                method,
                url,
                consumer_key=cfg.consumer_key,
                consumer_secret=cfg.consumer_secret,
                token=auth.token,
                token_secret=auth.token_secret,
                callback_uri=auth.callback_uri,
                verifier=auth.verifier,
                form_body=form_body,
            )
        if isinstance(auth, OAuth2Credentials):
            return f"Bearer {auth.access_token}"
        if isinstance(auth, AppBearer):
            return f"Bearer {auth.bearer_token}"
        raw = f"{auth.username}:{auth.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = jsonlib.loads(resp.content)
    except ValueError:
        raise XUpstreamError("response is not JSON", status=resp.status_code) from None
    if not isinstance(data, dict):
        raise XUpstreamError("response is not a JSON object", status=resp.status_code)
    return data


def _data(resp: httpx.Response) -> Any:
    """The ``data`` member, or the typed error when X answered 200 with only errors."""
    body = _json(resp)
    if "data" in body:
        return body["data"]
    errors = body.get("errors") or []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    ptype = str(first.get("type", ""))
    detail = first.get("detail") or first.get("message")
    title = first.get("title")
    msg = f"X API {resp.status_code}: {title or 'error'}" + (f" - {detail}" if detail else "")
    if "resource-not-found" in ptype:
        raise XNotFound(msg, status=404, title=title, detail=detail, problem_type=ptype)
    if first:
        raise XBadRequest(
            msg, status=resp.status_code, title=title, detail=detail, problem_type=ptype
        )
    raise XUpstreamError("response has no data", status=resp.status_code)


class _Context:
    def __init__(self, client: XClient, auth: Credentials) -> None:
        self._client = client
        self._auth = auth

    async def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return await self._client.request(method, path, auth=self._auth, **kw)


class UserContext(_Context):
    """Calls made on behalf of one connected X user (OAuth 1.0a or OAuth 2.0)."""

    def __init__(
        self, client: XClient, creds: OAuth1Credentials | OAuth2Credentials, account_key: str
    ) -> None:
        super().__init__(client, creds)
        self.account_key = account_key

    def __repr__(self) -> str:
        return f"UserContext(account_key={self.account_key!r})"

    # users
    async def me(self, *, deadline: float | None = None) -> XUser:
        """``GET /2/users/me``. A revoked token raises XAuthError(revoked=True)."""
        resp = await self._call(
            "GET", "/2/users/me", params={"user.fields": DEFAULT_USER_FIELDS}, deadline=deadline
        )
        return XUser.from_json(_data(resp))

    async def user(self, user_id: str, *, deadline: float | None = None) -> XUser:
        """``GET /2/users/:id``. Unknown id raises XNotFound."""
        resp = await self._call(
            "GET",
            f"/2/users/{user_id}",
            params={"user.fields": DEFAULT_USER_FIELDS},
            deadline=deadline,
        )
        return XUser.from_json(_data(resp))

    async def user_by_username(self, username: str, *, deadline: float | None = None) -> XUser:
        """``GET /2/users/by/username/:username``. Unknown name raises XNotFound."""
        resp = await self._call(
            "GET",
            f"/2/users/by/username/{username}",
            params={"user.fields": DEFAULT_USER_FIELDS},
            deadline=deadline,
        )
        return XUser.from_json(_data(resp))

    # direct messages
    async def send_dm(
        self,
        participant_id: str | None = None,
        *,
        conversation_id: str | None = None,
        text: str | None = None,
        media_id: str | None = None,
        deadline: float | None = None,
    ) -> DmSendResult:
        """Send a DM to a user (1:1, created if needed) or into a conversation.

        Exactly one of ``participant_id``/``conversation_id``; at least one of
        ``text``/``media_id``. The DM budget, if any, is acquired first and its
        XRateLimited propagates without a request being made. Raises ValueError on
        bad arguments, XForbidden when the recipient does not accept the DM,
        XRateLimited on X's per-user limits.
        """
        if (participant_id is None) == (conversation_id is None):
            raise ValueError("give exactly one of participant_id or conversation_id")
        if not text and not media_id:
            raise ValueError("a DM needs text or a media_id")
        body: dict[str, Any] = {}
        if text:
            body["text"] = text
        if media_id:
            body["attachments"] = [{"media_id": media_id}]
        if participant_id is not None:
            if not participant_id.isdigit():
                raise ValueError("participant_id must be a numeric user id")
            path = f"/2/dm_conversations/with/{participant_id}/messages"
        else:
            path = f"/2/dm_conversations/{conversation_id}/messages"
        if self._client.dm_budget is not None:
            await self._client.dm_budget.acquire(self.account_key)
        resp = await self._call("POST", path, json=body, deadline=deadline)
        data = _data(resp)
        return DmSendResult(str(data["dm_conversation_id"]), str(data["dm_event_id"]))

    async def dm_events(
        self,
        *,
        participant_id: str | None = None,
        max_results: int = 100,
        pagination_token: str | None = None,
        deadline: float | None = None,
    ) -> DmEventPage:
        """One page of DM events (last 30 days, newest first): all conversations
        (``GET /2/dm_events``) or one 1:1 (``.../with/{participant_id}/dm_events``)."""
        params = {
            "max_results": str(max(1, min(100, max_results))),
            "event_types": "MessageCreate",
            "dm_event.fields": DEFAULT_DM_EVENT_FIELDS,
        }
        if pagination_token:
            params["pagination_token"] = pagination_token
        path = (
            f"/2/dm_conversations/with/{participant_id}/dm_events"
            if participant_id
            else "/2/dm_events"
        )
        body = _json(await self._call("GET", path, params=params, deadline=deadline))
        meta = body.get("meta") or {}
        events = [DmEvent.from_json(e) for e in body.get("data") or []]
        return DmEventPage(
            events, meta.get("next_token"), int(meta.get("result_count", len(events)))
        )

    # media
    async def upload_media(
        self,
        data: bytes,
        *,
        media_type: str,
        media_category: str,
        chunk_size: int = DEFAULT_CHUNK_BYTES,
        deadline: float | None = None,
    ) -> MediaUpload:
        """Upload media and wait until it is usable. Small images go one-shot;
        everything else is chunked. Raises XBadRequest if processing failed."""
        if media_category.endswith("_image") and len(data) <= ONE_SHOT_MAX_BYTES:
            return await self.upload_media_simple(
                data, media_type=media_type, media_category=media_category, deadline=deadline
            )
        return await self.upload_media_chunked(
            data,
            media_type=media_type,
            media_category=media_category,
            chunk_size=chunk_size,
            deadline=deadline,
        )

    async def upload_media_simple(
        self, data: bytes, *, media_type: str, media_category: str, deadline: float | None = None
    ) -> MediaUpload:
        """One-shot multipart ``POST /2/media/upload`` (images up to 5 MB)."""
        resp = await self._call(
            "POST",
            "/2/media/upload",
            files={"media": ("media", data, media_type)},
            multipart_data={"media_category": media_category, "media_type": media_type},
            base_url=self._client.config.upload_base,
            deadline=deadline,
        )
        return MediaUpload.from_json(_data(resp))

    async def upload_media_chunked(
        self,
        data: bytes,
        *,
        media_type: str,
        media_category: str,
        chunk_size: int = DEFAULT_CHUNK_BYTES,
        deadline: float | None = None,
    ) -> MediaUpload:
        """INITIALIZE, APPEND each chunk, FINALIZE, then poll STATUS honouring
        ``check_after_secs`` until ``succeeded``. The deadline covers one request;
        polling is bounded by ``XConfig.media_poll_max_wait``. Raises XBadRequest
        when processing ends ``failed``, XUnavailable when polling times out."""
        if not 0 < chunk_size <= 5 * 1024 * 1024:
            raise ValueError("chunk_size must be within 1 byte and 5 MB")
        base = self._client.config.upload_base
        init = _data(
            await self._call(
                "POST",
                "/2/media/upload/initialize",
                json={
                    "media_type": media_type,
                    "total_bytes": len(data),
                    "media_category": media_category,
                },
                base_url=base,
                deadline=deadline,
            )
        )
        media_id = str(init["id"])
        for index, start in enumerate(range(0, len(data), chunk_size)):
            await self._call(
                "POST",
                f"/2/media/upload/{media_id}/append",
                files={
                    "media": ("chunk", data[start : start + chunk_size], "application/octet-stream")
                },
                multipart_data={"segment_index": str(index)},
                base_url=base,
                deadline=deadline,
            )
        media = MediaUpload.from_json(
            _data(
                await self._call(
                    "POST", f"/2/media/upload/{media_id}/finalize", base_url=base, deadline=deadline
                )
            )
        )
        return await self._await_processing(media, deadline)

    async def media_status(self, media_id: str, *, deadline: float | None = None) -> MediaUpload:
        """``GET /2/media/upload?command=STATUS&media_id=``."""
        resp = await self._call(
            "GET",
            "/2/media/upload",
            params={"command": "STATUS", "media_id": media_id},
            base_url=self._client.config.upload_base,
            deadline=deadline,
        )
        return MediaUpload.from_json(_data(resp))

    async def _await_processing(self, media: MediaUpload, deadline: float | None) -> MediaUpload:
        client = self._client
        give_up_at = client._clock() + client.config.media_poll_max_wait
        while media.state in ("pending", "in_progress"):
            info = media.raw.get("processing_info") or {}
            wait = float(info.get("check_after_secs", 1))
            if client._clock() + wait > give_up_at:
                raise XUnavailable(f"media {media.id} still processing after the poll budget")
            await client._sleep(wait)
            media = await self.media_status(media.id, deadline=deadline)
        if media.state != "succeeded":
            info = media.raw.get("processing_info") or {}
            err = info.get("error") or {}
            raise XBadRequest(
                f"media {media.id} processing {media.state}: {err.get('message', 'unknown')}",
                detail=err.get("message"),
            )
        return media

    # posts
    async def create_post(
        self,
        text: str | None = None,
        *,
        media_ids: Sequence[str] | None = None,
        reply_to: str | None = None,
        quote_tweet_id: str | None = None,
        poll_options: Sequence[str] | None = None,
        poll_duration_minutes: int | None = None,
        reply_settings: str | None = None,
        deadline: float | None = None,
    ) -> Post:
        """``POST /2/tweets``. Media, poll and quote exclude each other (ValueError)."""
        if sum(x is not None for x in (media_ids, poll_options, quote_tweet_id)) > 1:
            raise ValueError("media, poll and quote_tweet_id are mutually exclusive")
        body: dict[str, Any] = {}
        if text is not None:
            body["text"] = text
        if media_ids is not None:
            body["media"] = {"media_ids": list(media_ids)}
        if reply_to is not None:
            body["reply"] = {"in_reply_to_tweet_id": reply_to}
        if quote_tweet_id is not None:
            body["quote_tweet_id"] = quote_tweet_id
        if poll_options is not None:
            body["poll"] = {
                "options": list(poll_options),
                "duration_minutes": poll_duration_minutes or 1440,
            }
        if reply_settings is not None:
            body["reply_settings"] = reply_settings
        data = _data(await self._call("POST", "/2/tweets", json=body, deadline=deadline))
        return Post(id=str(data["id"]), text=str(data.get("text", "")))

    async def delete_post(self, post_id: str, *, deadline: float | None = None) -> bool:
        """``DELETE /2/tweets/:id``; True when X reports it deleted."""
        data = _data(await self._call("DELETE", f"/2/tweets/{post_id}", deadline=deadline))
        return bool(data.get("deleted"))

    async def get_posts(
        self, ids: Sequence[str], *, non_public_metrics: bool = False, deadline: float | None = None
    ) -> list[Post]:
        """``GET /2/tweets?ids=`` with public metrics (and non-public ones, which X
        gives only for the user's own recent posts). Missing ids are left out."""
        if not 1 <= len(ids) <= 100:
            raise ValueError("between 1 and 100 ids")
        fields = "public_metrics,author_id,created_at"
        if non_public_metrics:
            fields += ",non_public_metrics,organic_metrics"
        body = _json(
            await self._call(
                "GET",
                "/2/tweets",
                params={"ids": ",".join(ids), "tweet.fields": fields},
                deadline=deadline,
            )
        )
        return [Post.from_json(p) for p in body.get("data") or []]

    # account activity
    async def subscribe(self, webhook_id: str, *, deadline: float | None = None) -> bool:
        """Subscribe this user's activity to a webhook (user context)."""
        data = _data(
            await self._call(
                "POST",
                f"/2/account_activity/webhooks/{webhook_id}/subscriptions/all",
                deadline=deadline,
            )
        )
        return bool(data.get("subscribed"))

    async def is_subscribed(self, webhook_id: str, *, deadline: float | None = None) -> bool:
        """Whether this user is subscribed to the webhook."""
        data = _data(
            await self._call(
                "GET",
                f"/2/account_activity/webhooks/{webhook_id}/subscriptions/all",
                deadline=deadline,
            )
        )
        return bool(data.get("subscribed"))


class AppContext(_Context):
    """App-only calls: webhook management, unsubscribing users, replay."""

    def __repr__(self) -> str:
        return "AppContext()"

    async def register_webhook(self, url: str, *, deadline: float | None = None) -> Webhook:
        """``POST /2/webhooks``; X runs the CRC first. A failed CRC raises
        XBadRequest with ``reason == "CrcValidationFailed"``."""
        data = _data(await self._call("POST", "/2/webhooks", json={"url": url}, deadline=deadline))
        return Webhook.from_json(data)

    async def list_webhooks(self, *, deadline: float | None = None) -> list[Webhook]:
        body = _json(await self._call("GET", "/2/webhooks", deadline=deadline))
        return [Webhook.from_json(w) for w in body.get("data") or []]

    async def revalidate_webhook(self, webhook_id: str, *, deadline: float | None = None) -> bool:
        """``PUT /2/webhooks/:id`` re-runs the CRC; returns the resulting validity.
        A failed CRC raises XBadRequest (``CrcValidationFailed``)."""
        data = _data(await self._call("PUT", f"/2/webhooks/{webhook_id}", deadline=deadline))
        return bool(data.get("valid", data.get("attempted", False)))

    async def delete_webhook(self, webhook_id: str, *, deadline: float | None = None) -> bool:
        data = _data(await self._call("DELETE", f"/2/webhooks/{webhook_id}", deadline=deadline))
        return bool(data.get("deleted"))

    async def unsubscribe(
        self, webhook_id: str, user_id: str, *, deadline: float | None = None
    ) -> bool:
        """Remove a user's subscription; True when no longer subscribed."""
        data = _data(
            await self._call(
                "DELETE",
                f"/2/account_activity/webhooks/{webhook_id}/subscriptions/{user_id}/all",
                deadline=deadline,
            )
        )
        return not bool(data.get("subscribed", False))

    async def replay(
        self,
        webhook_id: str,
        from_time: datetime,
        to_time: datetime,
        *,
        deadline: float | None = None,
    ) -> ReplayJob:
        """Ask X to re-deliver the activity of ``[from_time, to_time]`` (last 24 h,
        minute precision, UTC) to the webhook."""

        def fmt(dt: datetime) -> str:
            return dt.astimezone(UTC).strftime("%Y%m%d%H%M")

        data = _data(
            await self._call(
                "POST",
                f"/2/account_activity/replay/webhooks/{webhook_id}/subscriptions/all",
                params={"from_date": fmt(from_time), "to_date": fmt(to_time)},
                deadline=deadline,
            )
        )
        return ReplayJob(job_id=str(data["job_id"]), created_at=parse_time(data.get("created_at")))
