"""Acting on X as a connected account: credentials, budget, error mapping.

Everything that calls X for an account goes through :class:`XAccess`. It decrypts
the account's tokens (refreshing OAuth 2.0 tokens shortly before they expire),
draws from the account's DM budget before every DM (through the X client's budget
hook), and turns X client errors into domain errors:

- ``XRateLimited`` (X's 429 or the budget) → ``QuotaExceeded`` (RESOURCE_EXHAUSTED,
  reason RATE_LIMIT_EXCEEDED, with the reset time for RetryInfo);
- ``XAuthError`` (revoked or invalid token) → the account is marked ERROR (in its own
  transaction, so it sticks even when the caller rolls back) and
  ``FailedPrecondition`` reason ACCOUNT_AUTH_REVOKED. An OAuth 2.0 401 that is not
  a revocation first gets one refresh and one retry;
- ``XForbidden`` → ``FailedPrecondition`` reason TWITTER_FORBIDDEN (for example, the
  recipient does not accept DMs);
- ``XBadRequest`` / ``XNotFound`` → ``FailedPrecondition`` reason TWITTER_REJECTED;
- ``XUnavailable`` / ``XUpstreamError`` → ``UpstreamError`` (UNAVAILABLE, reason
  TWITTER_API_ERROR), refined for requests that are not idempotent: ``XNotSent``
  (open breaker, unreachable: X was not called) → :class:`UpstreamNotSent`, safe to
  send again, with ``retry_at`` and ErrorInfo metadata ``x_outcome=not_sent``;
  ``XOutcomeUnknown`` (a 5xx, a timeout or a dropped connection after the request
  left) → :class:`UpstreamOutcomeUnknown`, metadata ``x_outcome=unknown``: X may
  have acted; look it up before sending again.

An OAuth 2.0 refresh is not idempotent either (a refresh token works once). When its
answer is lost the account is not marked revoked: the refresh fails with
``UpstreamOutcomeUnknown`` and is tried again later with the tokens we hold; a call
meanwhile goes on with the current access token while it has not expired. If X did
rotate the pair, the next refresh is refused and the account must be reconnected:
the new refresh token was in the lost answer, and nothing else can recover it.

Methods never hold the caller's transaction open while waiting on X. The one
exception to "no transaction across an X call" is the OAuth 2.0 refresh itself: it
runs under the account's row lock, because X's refresh tokens work once and two
processes refreshing at the same time would lock the account out.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

import httpx
from psycopg_pool import AsyncConnectionPool

from ..core.config import Settings
from ..core.crypto import TokenCipher
from ..core.db import use_connection
from ..core.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    QuotaExceeded,
    UpstreamError,
)
from ..store import Row
from ..store import accounts as accounts_store
from ..store.budget import DbDmBudget, budget_key
from . import (
    OAuth1Credentials,
    OAuth2Credentials,
    UserContext,
    XAuthError,
    XBadRequest,
    XClient,
    XConfig,
    XError,
    XForbidden,
    XNotFound,
    XNotSent,
    XOutcomeUnknown,
    XRateLimited,
)
from .models import DmEvent, DmEventPage

log = logging.getLogger(__name__)
T = TypeVar("T")

#: OAuth 2.0 access tokens are refreshed when they expire within this many seconds.
REFRESH_MARGIN_SECONDS = 300.0

#: X's DM media limits by content type: (media category, maximum bytes).
DM_MEDIA = {
    "image/jpeg": ("dm_image", 5 * 1024 * 1024),
    "image/png": ("dm_image", 5 * 1024 * 1024),
    "image/webp": ("dm_image", 5 * 1024 * 1024),
    "image/gif": ("dm_gif", 15 * 1024 * 1024),
    "video/mp4": ("dm_video", 512 * 1024 * 1024),
}


def make_x_client(settings: Settings, budget: DbDmBudget | None) -> XClient:
    """The process's X client, pointed at X or at the sandbox by the settings."""
    api = settings.x_api_base.rstrip("/")
    config = XConfig(
        consumer_key=settings.x_consumer_key,
        consumer_secret=settings.x_consumer_secret,
        oauth2_client_id=settings.x_client_id or None,
        oauth2_client_secret=settings.x_client_secret or None,
        app_bearer_token=settings.x_bearer_token or None,
        api_base_url=api,
        oauth1_authorize_url=f"{api}/oauth/authorize",
        oauth2_authorize_url=f"{settings.x_authorize_base.rstrip('/')}/i/oauth2/authorize",
        request_timeout=settings.x_request_timeout,
        default_deadline=settings.x_default_deadline,
        backoff_base=settings.x_backoff_base,
    )
    return XClient(config, dm_budget=budget)


def token_purpose(account_id: UUID, kind: str) -> bytes:
    """Associated data binding a ciphertext to its account and column."""
    return f"account:{account_id}:{kind}".encode()


class UpstreamNotSent(UpstreamError):
    """X was not called (its breaker is open, or it could not be reached): whatever
    was asked certainly did not happen, and may be asked again from ``retry_at``."""

    def __init__(self, message: str, *, retry_at: datetime | None = None, cause: str = "") -> None:
        metadata = {"x_outcome": "not_sent"}
        if retry_at is not None:
            metadata["retry_at"] = retry_at.isoformat()
        super().__init__(message, reason="TWITTER_API_ERROR", metadata=metadata)
        self.retry_at = retry_at
        #: XNotSent's reason: BREAKER_OPEN, UNREACHABLE or DEADLINE_EXHAUSTED.
        self.cause = cause


class UpstreamOutcomeUnknown(UpstreamError):
    """X may have acted on a request that is not idempotent (a DM, a post, a token
    refresh), but its answer was lost. Reconcile with X before asking again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="TWITTER_API_ERROR", metadata={"x_outcome": "unknown"})


def to_domain_error(exc: XError) -> DomainError:
    """Map an X client error that needs no account side effect to a domain error."""
    if isinstance(exc, XRateLimited):
        reason = "DM_BUDGET_SPENT" if exc.reason == "DM_BUDGET_SPENT" else "RATE_LIMIT_EXCEEDED"
        return QuotaExceeded(
            "X rate limit reached"
            if reason == "RATE_LIMIT_EXCEEDED"
            else "the account's DM budget is spent",
            retry_at=exc.reset_at,
            reason=reason,
            metadata={"reset_at": exc.reset_at.isoformat()} if exc.reset_at else None,
        )
    if isinstance(exc, XForbidden):
        return FailedPrecondition(
            f"X refused the request: {exc.detail or exc.title or 'forbidden'}",
            reason="TWITTER_FORBIDDEN",
        )
    if isinstance(exc, (XBadRequest, XNotFound)):
        return FailedPrecondition(
            f"X rejected the request: {exc.detail or exc.title or 'rejected'}",
            reason="TWITTER_REJECTED",
        )
    if isinstance(exc, XNotSent):
        return UpstreamNotSent(
            "X is unavailable; nothing was sent, try again later",
            retry_at=exc.retry_at,
            cause=exc.reason or "",
        )
    if isinstance(exc, XOutcomeUnknown):
        return UpstreamOutcomeUnknown("X's answer was lost; it may have acted on the request")
    return UpstreamError("X is unavailable; try again later", reason="TWITTER_API_ERROR")


@dataclass(frozen=True)
class SentDm:
    dm_event_id: str
    dm_conversation_id: str


class XAccess:
    """X calls made as one connected account. See the module docstring."""

    def __init__(
        self,
        x: XClient,
        cipher: TokenCipher,
        pool: AsyncConnectionPool,
        *,
        media_http: httpx.AsyncClient | None = None,
        max_media_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.x = x
        self._cipher = cipher
        self._pool = pool
        self._media_http = media_http
        self._max_media_bytes = max_media_bytes

    # ------------------------------------------------------------------ credentials

    def credentials(self, account: Row) -> OAuth1Credentials | OAuth2Credentials:
        """Decrypt the account's credentials. FailedPrecondition when it has none."""
        if account["access_token_enc"] is None:
            raise FailedPrecondition(
                "the account holds no credentials; reconnect it", reason="ACCOUNT_NOT_ACTIVE"
            )
        access = self._cipher.decrypt(
            account["access_token_enc"], token_purpose(account["id"], "access")
        )
        if account["auth_method"] == "OAUTH1":
            secret = self._cipher.decrypt(
                account["token_secret_enc"], token_purpose(account["id"], "secret")
            )
            return OAuth1Credentials(token=access, token_secret=secret)
        return OAuth2Credentials(access_token=access)

    def encrypt_tokens(
        self,
        account_id: UUID,
        *,
        access: str,
        secret: str | None = None,
        refresh: str | None = None,
    ) -> dict[str, bytes | None]:
        return {
            "access_token_enc": self._cipher.encrypt(access, token_purpose(account_id, "access")),
            "token_secret_enc": (
                self._cipher.encrypt(secret, token_purpose(account_id, "secret"))
                if secret
                else None
            ),
            "refresh_token_enc": (
                self._cipher.encrypt(refresh, token_purpose(account_id, "refresh"))
                if refresh
                else None
            ),
        }

    def user(self, account: Row) -> UserContext:
        return self.x.as_user(
            self.credentials(account), account_key=budget_key(account["merchant_id"], account["id"])
        )

    # ------------------------------------------------------------------ calls

    async def call(self, account: Row, fn: Callable[[UserContext], Awaitable[T]]) -> T:
        """Run ``fn`` as the account with the error policy of the module docstring."""
        if account["status"] != "ACTIVE":
            raise FailedPrecondition(
                f"the account is {account['status'].lower()}",
                reason="ACCOUNT_NOT_ACTIVE",
                metadata={"account_id": str(account["id"])},
            )
        if self._needs_refresh(account):
            try:
                account = await self.refresh(account)
            except UpstreamError:
                # X could not refresh now (or its answer was lost): the current access
                # token still works until it expires, and the refresh is retried later.
                expires = account["token_expires_at"]
                if expires is None or expires <= datetime.now(UTC):
                    raise
                log.warning(
                    "token refresh failed; using the current token until it expires",
                    extra={"account_id": str(account["id"])},
                )
        try:
            return await fn(self.user(account))
        except XAuthError as exc:
            if account["auth_method"] == "OAUTH2" and not exc.revoked:
                account = await self.refresh(account, force=True)
                try:
                    return await fn(self.user(account))
                except XAuthError as again:
                    await self._revoked(account, again)
            await self._revoked(account, exc)
        except XError as exc:
            raise to_domain_error(exc) from None
        raise AssertionError("unreachable")

    async def send_dm(
        self, account: Row, participant_id: str, *, text: str = "", media_id: str | None = None
    ) -> SentDm:
        """Send one DM from ``account`` to X user ``participant_id``, drawing one unit
        from the account's DM budget. Raises the domain errors of the module docstring."""
        result = await self.call(
            account, lambda u: u.send_dm(participant_id, text=text or None, media_id=media_id)
        )
        return SentDm(result.dm_event_id, result.dm_conversation_id)

    async def find_sent_dm(
        self,
        account: Row,
        recipient_x_user_id: str,
        text: str,
        since: datetime,
        exclude_event_ids: Collection[str] = (),
        *,
        max_pages: int = 5,
    ) -> DmEvent | None:
        """Look up at X a DM ``account`` sent to ``recipient_x_user_id`` with ``text``
        (compared without surrounding whitespace) no earlier than ``since``, other
        than the events in ``exclude_event_ids`` (DMs already accounted for). Returns
        the newest match, or None when there is none in what was read. This is how a
        send whose outcome is unknown (a timeout, a 5xx, a crash) is resolved before
        anything is sent again; :meth:`find_sent_dms` resolves several at once.

        Raises the domain errors of the module docstring: ``FailedPrecondition`` when
        the account can no longer read (the lookup can never be answered), and
        ``QuotaExceeded`` / ``UpstreamError`` when X cannot answer now."""
        found = await self.find_sent_dms(
            account, recipient_x_user_id, [(text, since)], exclude_event_ids, max_pages=max_pages
        )
        return found[0]

    async def find_sent_dms(
        self,
        account: Row,
        recipient_x_user_id: str,
        wanted: Sequence[tuple[str, datetime]],
        exclude_event_ids: Collection[str] = (),
        *,
        max_pages: int = 5,
    ) -> list[DmEvent | None]:
        """Resolve several DMs to one recipient with one read of the conversation.

        ``wanted`` holds, per DM, its text and the earliest time X may have taken it.
        The 1:1 conversation is read newest first, up to ``max_pages`` pages of 100,
        stopping at the first page that reaches back before the earliest of those
        times (X's DM lookups are scarce: 15 per 15 minutes per user on pro). Each DM
        of our account there with a wanted text, sent no earlier than the wanted
        time and not in ``exclude_event_ids``, is given to at most one entry: entries
        are served latest time first, each taking the newest event left, so entries
        with identical texts never share one event. Returns, in ``wanted`` order,
        each entry's event or None. Raises as :meth:`find_sent_dm`."""
        if not wanted:
            return []
        me = str(account["x_user_id"])
        texts = {t.strip() for t, _ in wanted}
        earliest = min(s for _, s in wanted)
        token: str | None = None
        candidates: list[DmEvent] = []  # newest first, as X returns them

        async def lookup(u: UserContext) -> DmEventPage:
            return await u.dm_events(
                participant_id=recipient_x_user_id, max_results=100, pagination_token=token
            )

        for _ in range(max_pages):
            page = await self.call(account, lookup)
            for ev in page.events:
                if (
                    ev.sender_id == me
                    and ev.id not in exclude_event_ids
                    and (ev.text or "").strip() in texts
                    and (ev.created_at is None or ev.created_at >= earliest)
                ):
                    candidates.append(ev)
            oldest = page.events[-1].created_at if page.events else None
            if not page.next_token or (oldest is not None and oldest < earliest):
                break
            token = page.next_token
        out: list[DmEvent | None] = [None] * len(wanted)
        taken: set[str] = set()
        for i in sorted(range(len(wanted)), key=lambda i: wanted[i][1], reverse=True):
            text, since = wanted[i][0].strip(), wanted[i][1]
            for ev in candidates:
                if (
                    ev.id not in taken
                    and (ev.text or "").strip() == text
                    and (ev.created_at is None or ev.created_at >= since)
                ):
                    out[i] = ev
                    taken.add(ev.id)
                    break
        return out

    @asynccontextmanager
    async def dm_batch(self, account: Row, sends: int) -> AsyncIterator[None]:
        """Announce about ``sends`` :meth:`send_dm` calls from ``account`` in this
        block, so the DM budget reserves units for them in batches (one database
        round trip per batch instead of per DM); units left unused are handed back
        when the block ends. Without a database budget this does nothing."""
        budget = self.x.dm_budget
        if not isinstance(budget, DbDmBudget) or sends <= 1:
            yield
            return
        async with budget.planned(budget_key(account["merchant_id"], account["id"]), sends):
            yield

    async def upload_media_from_url(self, account: Row, url: str, field: str = "url") -> str:
        """Fetch ``url`` and upload it to X as the account; returns the X media id.

        Only https is fetched. The content type must be one X takes in DMs (JPEG, PNG,
        WebP, GIF, MP4) and the size within X's limit for it (and this server's
        ``max_media_bytes``). Raises InvalidArgument naming ``field`` otherwise.
        """
        if not url.startswith("https://"):
            raise InvalidArgument.single(field, "media must be fetched over https")
        data, content_type = await self._fetch_media(url, field)
        category, _ = DM_MEDIA[content_type]
        media = await self.call(
            account,
            lambda u: u.upload_media(data, media_type=content_type, media_category=category),
        )
        return media.id

    async def _fetch_media(self, url: str, field: str) -> tuple[bytes, str]:
        http = self._media_http or httpx.AsyncClient(timeout=30.0, follow_redirects=False)
        try:
            async with http.stream("GET", url) as resp:
                if resp.status_code != 200:
                    raise InvalidArgument.single(
                        field, f"fetching the media returned HTTP {resp.status_code}"
                    )
                content_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                if content_type not in DM_MEDIA:
                    raise InvalidArgument.single(
                        field, f"unsupported media type {content_type or 'unknown'!r}"
                    )
                limit = min(DM_MEDIA[content_type][1], self._max_media_bytes)
                declared = int(resp.headers.get("content-length") or 0)
                if declared > limit:
                    raise InvalidArgument.single(field, f"media is larger than {limit} bytes")
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise InvalidArgument.single(field, f"media is larger than {limit} bytes")
                    chunks.append(chunk)
        except httpx.HTTPError:
            raise InvalidArgument.single(field, "the media URL could not be fetched") from None
        finally:
            if self._media_http is None:
                await http.aclose()
        if size == 0:
            raise InvalidArgument.single(field, "the media is empty")
        return b"".join(chunks), content_type

    # ------------------------------------------------------------------ token upkeep

    @staticmethod
    def _needs_refresh(account: Row) -> bool:
        expires = account["token_expires_at"]
        return (
            account["auth_method"] == "OAUTH2"
            and expires is not None
            and expires - datetime.now(UTC) < timedelta(seconds=REFRESH_MARGIN_SECONDS)
        )

    async def refresh(self, account: Row, *, force: bool = False) -> Row:
        """Refresh an OAuth 2.0 account's tokens and store the rotated pair atomically.

        Serialised per account by its row lock; a caller that finds the tokens
        already refreshed by someone else uses those. A refresh token X refuses marks
        the account ERROR (FailedPrecondition ACCOUNT_AUTH_REVOKED). OAuth 1.0a
        tokens do not expire and are returned unchanged.
        """
        if account["auth_method"] != "OAUTH2":
            return account
        merchant_id, account_id = account["merchant_id"], account["id"]
        rejected: XError | None = None
        async with use_connection(self._pool, transaction=True):
            current = await accounts_store.get(merchant_id, account_id, for_update=True)
            if current is None or current["status"] != "ACTIVE":
                raise FailedPrecondition("the account is not active", reason="ACCOUNT_NOT_ACTIVE")
            rotated_elsewhere = current["version"] != account["version"]
            if not (force and not rotated_elsewhere) and not self._needs_refresh(current):
                return current
            if current["refresh_token_enc"] is None:
                rejected = XAuthError("no refresh token", revoked=True)
            else:
                refresh_token = self._cipher.decrypt(
                    current["refresh_token_enc"], token_purpose(account_id, "refresh")
                )
                try:
                    token = await self.x.oauth2_refresh(refresh_token)
                except (XAuthError, XBadRequest) as exc:
                    rejected = exc
                except XError as exc:
                    raise to_domain_error(exc) from None
                else:
                    enc = self.encrypt_tokens(
                        account_id,
                        access=token.access_token,
                        refresh=token.refresh_token or refresh_token,
                    )
                    return await accounts_store.store_refreshed_tokens(
                        merchant_id,
                        account_id,
                        access_token_enc=enc["access_token_enc"],
                        refresh_token_enc=enc["refresh_token_enc"],
                        token_expires_at=_expiry(token.expires_at),
                        scopes=list(token.scope) or current["scopes"],
                    )
        await self._revoked(account, rejected)
        raise AssertionError("unreachable")

    async def _revoked(self, account: Row, exc: XError) -> None:
        reason = "X refused the account's tokens (revoked or invalid); reconnect the account"
        async with use_connection(self._pool, transaction=True):
            await accounts_store.mark_error(account["merchant_id"], account["id"], reason)
        log.warning(
            "account marked ERROR: tokens refused by X",
            extra={"account_id": str(account["id"]), "x_status": exc.status},
        )
        raise FailedPrecondition(
            reason, reason="ACCOUNT_AUTH_REVOKED", metadata={"account_id": str(account["id"])}
        )


def _expiry(expires_at: float | None) -> datetime | None:
    return datetime.fromtimestamp(expires_at, UTC) if expires_at else None
