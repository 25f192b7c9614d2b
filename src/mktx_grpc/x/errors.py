"""Typed errors raised by the X client.

Every failure the client surfaces is an :class:`XError`. Messages carry only
what X said (status, title, detail, reason); request headers, tokens and
secrets are never part of them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "XAuthError",
    "XBadRequest",
    "XError",
    "XForbidden",
    "XNotFound",
    "XNotSent",
    "XOutcomeUnknown",
    "XRateLimited",
    "XUnavailable",
    "XUpstreamError",
    "error_from_response",
]

# X's real 401s are often bare "Unauthorized" for every cause; these phrases are
# the ones that single out a dead token (v1.1 code 89, OAuth2 invalid_token).
_REVOKED_PHRASES = ("invalid or expired token", "revoked", "token is invalid")
_REVOKED_V1_CODES = {89}


class XError(Exception):
    """Base class of every X client error.

    Attributes mirror X's problem+json body when there was one: ``status`` (HTTP
    status or None when no response arrived), ``title``, ``detail``,
    ``problem_type`` and ``reason`` (e.g. ``CrcValidationFailed``).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        title: str | None = None,
        detail: str | None = None,
        problem_type: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.detail = detail
        self.problem_type = problem_type
        self.reason = reason


class XAuthError(XError):
    """401: the credentials were refused.

    ``revoked`` is True when X said the token itself is invalid, expired for good
    or revoked (the account must reconnect). It is False for other 401s, such as a
    bad signature caused by wrong app credentials, where the token may still be
    fine.
    """

    def __init__(self, message: str, *, revoked: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.revoked = revoked


class XForbidden(XError):
    """403: authenticated but not allowed (missing scope, recipient refuses DMs...)."""


class XNotFound(XError):
    """404, or a 200 whose body holds only a resource-not-found error."""


class XBadRequest(XError):
    """400/422: the request was invalid (bad OAuth verifier or code, bad payload)."""


class XRateLimited(XError):
    """429 whose reset falls outside the caller's deadline, or a spent DM budget.

    ``reset_at`` is the aware UTC datetime at which X (or the budget) allows the
    next call, or None when unknown.
    """

    def __init__(self, message: str, *, reset_at: datetime | None = None, **kw: Any) -> None:
        kw.setdefault("status", 429)
        super().__init__(message, **kw)
        self.reset_at = reset_at


class XUpstreamError(XError):
    """5xx after all retries, or a response the client cannot interpret."""


class XUnavailable(XError):
    """No usable response: connect errors or timeouts after retries, the deadline ran
    out, or the circuit breaker for the host is open. The two subclasses below say,
    for a request that is not idempotent, whether X may have acted on it."""


class XNotSent(XUnavailable):
    """The request certainly did not reach X: refused locally (the host's breaker is
    open), the deadline ran out before any attempt, or every attempt failed before
    the request left (connection refused). Safe to send again.

    ``reason`` is ``BREAKER_OPEN``, ``DEADLINE_EXHAUSTED`` or ``UNREACHABLE``;
    ``retry_at`` (aware UTC) is when the breaker lets a call through again, when
    known."""

    def __init__(self, message: str, *, retry_at: datetime | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_at = retry_at


class XOutcomeUnknown(XUnavailable):
    """A request that is not idempotent (a DM, a post, an OAuth token exchange or
    refresh) may have been acted on by X, but its answer was lost: a 5xx (X can fail
    after it stored the DM), a read timeout, a dropped connection. The client never
    retries it. Reconcile with X before sending again (look the DM or post up);
    ``status`` is X's 5xx when there was one."""


def _parse_body(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _reset_at(headers: dict[str, str] | Any) -> datetime | None:
    raw = headers.get("x-rate-limit-reset")
    if raw is None:
        return None
    try:
        return datetime.fromtimestamp(int(raw), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def error_from_response(status: int, body: bytes, headers: Any) -> XError:
    """Build the typed error for an HTTP error response.

    Understands v2 ``application/problem+json`` (``title, detail, type, status``),
    v1.1 ``{"errors":[{"code","message"}]}`` and OAuth2
    ``{"error","error_description"}`` bodies. Unknown shapes still give the right
    class from the status code.
    """
    data = _parse_body(body)
    title: str | None = data.get("title") if isinstance(data.get("title"), str) else None
    detail: str | None = data.get("detail") if isinstance(data.get("detail"), str) else None
    problem_type: str | None = data.get("type") if isinstance(data.get("type"), str) else None
    reason: str | None = data.get("reason") if isinstance(data.get("reason"), str) else None
    codes: set[int] = set()
    errors = data.get("errors")
    if isinstance(errors, list):
        for item in errors:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("code"), int):
                codes.add(item["code"])
            if detail is None and isinstance(item.get("message"), str):
                detail = item["message"]
            if reason is None and isinstance(item.get("reason"), str):
                reason = item["reason"]
    oauth_error = data.get("error") if isinstance(data.get("error"), str) else None
    if oauth_error is not None:
        title = title or oauth_error
        desc = data.get("error_description")
        detail = detail or (desc if isinstance(desc, str) else None)
        reason = reason or oauth_error
    summary = f"X API {status}: {title or 'error'}" + (f" - {detail}" if detail else "")
    kw: dict[str, Any] = {
        "status": status,
        "title": title,
        "detail": detail,
        "problem_type": problem_type,
        "reason": reason,
    }
    if status == 401:
        text = " ".join(filter(None, [title, detail])).lower()
        revoked = (
            bool(codes & _REVOKED_V1_CODES)
            or oauth_error == "invalid_token"
            or any(p in text for p in _REVOKED_PHRASES)
        )
        return XAuthError(summary, revoked=revoked, **kw)
    if status == 403:
        return XForbidden(summary, **kw)
    if status == 404:
        return XNotFound(summary, **kw)
    if status == 429:
        return XRateLimited(summary, reset_at=_reset_at(headers), **kw)
    if status in (400, 409, 422) or (400 <= status < 500 and oauth_error is not None):
        return XBadRequest(summary, **kw)
    return XUpstreamError(summary, **kw)
