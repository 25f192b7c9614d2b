"""Acting on X as a connected account: credentials, budget, error mapping.

Everything that calls X for an account goes through :class:`XAccess`. It decrypts
the account's tokens (refreshing OAuth 2.0 tokens shortly before they expire),
draws from the account's DM budget before every DM, and turns X client errors into
domain errors:

- ``XRateLimited`` (X's 429 or the budget) → ``QuotaExceeded`` (RESOURCE_EXHAUSTED,
  reason RATE_LIMIT_EXCEEDED, with the reset time for RetryInfo);
- ``XAuthError`` (revoked or invalid token) → the account is marked ERROR (in its own
  transaction, so it sticks even when the caller rolls back) and
  ``FailedPrecondition`` reason ACCOUNT_AUTH_REVOKED;
- ``XForbidden`` → ``FailedPrecondition`` reason TWITTER_FORBIDDEN (for example, the
  recipient does not accept DMs);
- ``XBadRequest`` / ``XNotFound`` → ``FailedPrecondition`` reason TWITTER_REJECTED;
- ``XUnavailable`` / ``XUpstreamError`` → ``UpstreamError`` (UNAVAILABLE, reason
  TWITTER_API_ERROR).

Methods never hold a database transaction open while waiting on X.
"""

from __future__ import annotations

from dataclasses import dataclass

from .deps import Deps
from .store import Row


@dataclass(frozen=True)
class SentDm:
    dm_event_id: str
    dm_conversation_id: str


class XAccess:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def send_dm(
        self, account: Row, participant_id: str, *, text: str = "", media_id: str | None = None
    ) -> SentDm:
        """Send one DM from ``account`` (an ``accounts`` row) to X user ``participant_id``.

        Raises the domain errors listed in the module docstring; the account must be
        ACTIVE (else FailedPrecondition reason ACCOUNT_NOT_ACTIVE).
        """
        raise NotImplementedError("wired with the X client (issue 3)")

    async def upload_media_from_url(self, account: Row, url: str) -> str:
        """Fetch ``url`` (https only; type and size checked against X's DM limits) and
        upload it to X as ``account``; returns the X media id.

        Raises InvalidArgument (field ``url``) for http, unreachable, or unsupported
        or oversized media, plus the X errors above.
        """
        raise NotImplementedError("wired with the X client (issue 3)")
