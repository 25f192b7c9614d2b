"""Sending one logical request to X: signing, retries, back-off, rate-limit waits, breaker.

:class:`Transport` owns the HTTP connection pools and one circuit breaker per host.
Its :meth:`Transport.request` is the only place that talks HTTP to X; every other
module of the client builds a path and a body and goes through it. The helpers
:func:`response_json` and :func:`response_data` turn a successful response into
the part X puts its answer in.

The rules of :meth:`Transport.request`, for every call the client makes:

- **Deadline.** Each call has one budget in seconds (``deadline``, or
  ``XConfig.default_deadline``) covering every attempt, back-off and rate-limit
  wait together. Each attempt's timeout is ``min(request_timeout, time left)``.
  A spent budget raises :class:`XUnavailable` (:class:`XNotSent` when no attempt
  may have reached X).
- **Signing.** Each attempt is built and signed afresh (OAuth 1.0a nonces and
  timestamps are single-use), so a retry is never a replay of the same bytes.
- **Idempotent requests** (GET, HEAD, PUT, DELETE, OPTIONS, and POSTs the caller
  declares safe to repeat with ``idempotent=True``: request tokens, the app bearer,
  media uploads) are retried after a 5xx and after any transport error, up to
  ``max_attempts`` in all, with "equal jitter" exponential back-off
  (``backoff_base`` doubling, capped at ``backoff_max`` and at the deadline).
- **Other requests** (a DM, a post, an OAuth code exchange or token refresh, a
  subscription) are retried only after errors that prove the request never left
  (``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``). A 5xx, a read or write
  timeout, a dropped connection or a protocol error may come *after* X acted on it
  (X answers 5xx after storing a DM), so they raise :class:`XOutcomeUnknown` at
  once and are never retried: sending again could deliver a DM or a post twice.
- **Rate limits.** A 429 is waited out until ``x-rate-limit-reset`` (plus a small
  margin) when that falls within the deadline, at most ``max_rate_limit_waits``
  times per call; a wait does not count as a failed attempt. Otherwise it raises
  :class:`XRateLimited` with ``reset_at``. X did not act on a 429.
- **Breaker.** Transport errors and 5xx count as failures of the host; any other
  answer (2xx–4xx, 429 included) proves it up. While the host's breaker is open a
  call fails fast with :class:`XNotSent` (reason ``BREAKER_OPEN``, ``retry_at``
  when it lets a probe through) and sends nothing.
- **Other 4xx** raise the typed error at once (:class:`XAuthError`,
  :class:`XForbidden`, :class:`XNotFound`, :class:`XBadRequest`): X refused the
  request as sent and did not act on it.

**What a caller of a non-idempotent request can tell.** :class:`XNotSent`,
:class:`XRateLimited` and the 4xx errors: X did not act; sending again is safe.
:class:`XOutcomeUnknown`: X may have acted; a caller that must not act twice
reconciles with X before trying again (the send ledger, ``worker/ledger.py``, looks
the DM up in the conversation's DM events; the agent's send path does the same
before it answers). An :class:`XUpstreamError` about an unreadable body ("response
is not JSON", "response has no data") came with a success status: X most likely
acted.

Secrets never reach a log line or an error message: logs name the method, path,
status and attempt; errors carry only what X said.

**Metrics.** Every attempt is counted by endpoint (method and path with ids as
``:id``) and outcome, with its duration; 429s separately; and each host's breaker
state after each call (``core.metrics``).
"""

from __future__ import annotations

import asyncio
import base64
import json as jsonlib
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..core import metrics as core_metrics
from .breaker import BreakerState, CircuitBreaker
from .config import XConfig
from .credentials import AppBearer, Credentials, OAuth1Credentials, OAuth2Credentials
from .errors import (
    XBadRequest,
    XNotFound,
    XNotSent,
    XOutcomeUnknown,
    XRateLimited,
    XUnavailable,
    XUpstreamError,
    error_from_response,
)
from .oauth1 import FORM_CONTENT_TYPE, encode_form, oauth1_authorization_header

__all__ = [
    "Auth",
    "BasicAuth",
    "OAuth1FlowAuth",
    "Transport",
    "response_data",
    "response_json",
]

log = logging.getLogger("mktx_grpc.x")


@dataclass(frozen=True, slots=True)
class OAuth1FlowAuth:
    """Signing material for the 3-legged flow's own requests."""

    token: str | None = field(default=None, repr=False)
    token_secret: str | None = field(default=None, repr=False)
    callback_uri: str | None = None
    verifier: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP Basic credentials (app key/secret, or OAuth 2.0 client id/secret)."""

    username: str = field(repr=False)
    password: str = field(repr=False)


#: What a request is authorized with; None sends no Authorization header.
Auth = Credentials | OAuth1FlowAuth | BasicAuth | None

# Errors after which the request provably never left: any request may retry them.
# Every other transport error may come after X acted on the request.
_SAFE_TO_RETRY_ANY_METHOD = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

# Path segments that are ids (users, DM events, conversations "a-b", webhooks, media);
# not the API version ("/2").
_ID_SEGMENT = re.compile(r"/[0-9][0-9-]{2,}(?=/|$)")
_BREAKER_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


def endpoint_of(method: str, path: str) -> str:
    """The metric label of a request: ``POST /2/dm_conversations/with/:id/messages``."""
    return f"{method} {_ID_SEGMENT.sub('/:id', path.split('?', 1)[0])}"


class _XMetrics:
    """The transport's metric children, looked up once per label set."""

    def __init__(self) -> None:
        m = core_metrics.get()
        self._m = m
        self._requests: dict[tuple[str, str], Any] = {}
        self._durations: dict[str, Any] = {}
        self._breakers: dict[str, tuple[Any, int]] = {}

    def attempt(self, endpoint: str, outcome: str, seconds: float | None) -> None:
        child = self._requests.get((endpoint, outcome))
        if child is None:
            child = self._requests[(endpoint, outcome)] = self._m.x_requests.labels(
                endpoint, outcome
            )
        child.inc()
        if seconds is not None:
            hist = self._durations.get(endpoint)
            if hist is None:
                hist = self._durations[endpoint] = self._m.x_duration.labels(endpoint)
            hist.observe(seconds)
        if outcome == "rate_limited":
            self._m.x_rate_limited.labels(endpoint).inc()

    def breaker(self, host: str, breaker: CircuitBreaker) -> None:
        value = _BREAKER_VALUE[breaker.state]
        known = self._breakers.get(host)
        if known is None or known[1] != value:
            child = known[0] if known else self._m.x_breaker.labels(host)
            child.set(value)
            self._breakers[host] = (child, value)


def _outcome(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


class Transport:
    """The HTTP side of the client: connection pools, breakers, :meth:`request`.

    ``http`` may be shared with other code; pools built here are closed by
    :meth:`aclose`, one passed in is not. ``clock`` (monotonic seconds),
    ``wall_clock`` (epoch seconds), ``sleep`` and ``rng`` are injectable for tests.
    """

    def __init__(
        self,
        config: XConfig,
        http: httpx.AsyncClient | None = None,
        *,
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
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._rng = rng
        self._breakers: dict[str, CircuitBreaker] = {}
        self._metrics = _XMetrics()

    async def aclose(self) -> None:
        """Close the connection pools this transport built (not a shared ``http``)."""
        if self._owns_http:
            for shard in self._shards:
                await shard.aclose()

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

    async def request(
        self,
        method: str,
        path: str,
        *,
        auth: Auth,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        multipart_data: Mapping[str, str] | None = None,
        base_url: str | None = None,
        deadline: float | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one logical request and return its successful (< 400) response.

        ``idempotent`` says whether sending the request twice does no harm (default:
        by the method; POSTs are not). Idempotent requests are retried after 5xx and
        transport errors; others only after errors proving the request never left.
        Waits out a 429 until ``x-rate-limit-reset`` when that is within the
        deadline. Each attempt is signed afresh (OAuth 1.0a nonces are single-use).
        The module docstring has the full rules.

        Raises: XAuthError, XForbidden, XNotFound, XBadRequest for 4xx;
        XRateLimited for a 429 that cannot be waited out; XNotSent when nothing
        reached X (open breaker, deadline spent before any attempt, unreachable);
        XOutcomeUnknown when a non-idempotent request may have been acted on (5xx,
        timeout, dropped connection); for idempotent requests XUpstreamError for
        5xx after retries and XUnavailable for transport failures after retries or
        an exhausted deadline.
        """
        cfg = self.config
        budget = cfg.default_deadline if deadline is None else deadline
        deadline_at = self._clock() + budget
        url = (base_url or cfg.api_base_url).rstrip("/") + path
        host = urlsplit(url).netloc
        breaker = self.breaker(host)
        method = method.upper()
        safe = method in _IDEMPOTENT if idempotent is None else idempotent
        endpoint = endpoint_of(method, path)
        metrics = self._metrics
        content: str | None = encode_form(form) if form is not None else None
        attempt = 0
        waits_429 = 0
        while True:
            remaining = deadline_at - self._clock()
            if remaining <= 0:
                message = f"deadline of {budget:.1f}s exhausted for {method} {path}"
                if safe:
                    raise XUnavailable(message)
                # Every earlier attempt provably never left (or was a 429): not sent.
                raise XNotSent(message, reason="DEADLINE_EXHAUSTED")
            if not breaker.allow():
                metrics.attempt(endpoint, "breaker_open", None)
                metrics.breaker(host, breaker)
                retry_in = breaker.retry_in()
                raise XNotSent(
                    f"circuit open for {host}; nothing was sent",
                    reason="BREAKER_OPEN",
                    retry_at=datetime.fromtimestamp(self._wall() + retry_in, UTC),
                )
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
                metrics.attempt(endpoint, "transport_error", self._clock() - started)
                metrics.breaker(host, breaker)
                log.warning(
                    "x %s %s transport error %s (attempt %d/%d)",
                    method,
                    path,
                    type(exc).__name__,
                    attempt,
                    cfg.max_attempts,
                )
                never_left = isinstance(exc, _SAFE_TO_RETRY_ANY_METHOD)
                if not (safe or never_left):
                    raise XOutcomeUnknown(
                        f"{method} {path}: {type(exc).__name__} after the request left;"
                        " X may have acted on it"
                    ) from None
                if attempt >= cfg.max_attempts:
                    message = (
                        f"{method} {path} failed: {type(exc).__name__} after {attempt} attempt(s)"
                    )
                    if safe:
                        raise XUnavailable(message) from None
                    raise XNotSent(message, reason="UNREACHABLE") from None
                await self._backoff(attempt, deadline_at)
                continue
            except asyncio.CancelledError:
                breaker.release_probe()  # a cancelled half-open probe must not block the host
                raise
            log.debug(
                "x %s %s -> %d in %.3fs (attempt %d)",
                method,
                path,
                resp.status_code,
                self._clock() - started,
                attempt,
            )
            metrics.attempt(endpoint, _outcome(resp.status_code), self._clock() - started)
            if resp.status_code >= 500:
                breaker.record_failure()
                metrics.breaker(host, breaker)
                err = error_from_response(resp.status_code, resp.content, resp.headers)
                if not safe:
                    raise XOutcomeUnknown(
                        f"{method} {path}: X answered {resp.status_code} and may have acted on it",
                        status=err.status,
                        title=err.title,
                        detail=err.detail,
                        problem_type=err.problem_type,
                        reason=err.reason,
                    )
                if attempt >= cfg.max_attempts:
                    raise err
                await self._backoff(attempt, deadline_at)
                continue
            # Any non-5xx answer proves the host is up, including 4xx and 429.
            breaker.record_success()
            metrics.breaker(host, breaker)
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
        auth: Auth,
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
        self, method: str, url: str, auth: Auth, form_body: str | None
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
        if isinstance(auth, OAuth1FlowAuth):
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


def response_json(resp: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object.

    Raises XUpstreamError when it is not JSON or not an object.
    """
    try:
        data = jsonlib.loads(resp.content)
    except ValueError:
        raise XUpstreamError("response is not JSON", status=resp.status_code) from None
    if not isinstance(data, dict):
        raise XUpstreamError("response is not a JSON object", status=resp.status_code)
    return data


def response_data(resp: httpx.Response) -> Any:
    """The ``data`` member, or the typed error when X answered 200 with only errors.

    Raises XNotFound for a resource-not-found problem, XBadRequest for any other
    problem X named, XUpstreamError for a body with neither ``data`` nor errors (or
    one that is not a JSON object).
    """
    body = response_json(resp)
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
