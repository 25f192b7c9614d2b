"""Connecting X accounts: the AccountsService operations that talk to X.

StartConnection / CompleteConnection (OAuth 1.0a three-legged or OAuth 2.0 PKCE),
RefreshAccountTokens, RegisterWebhook and DisconnectAccount. None of them holds a
database connection or transaction while waiting on X: each reads, calls X, then
writes in short transactions of its own (``use_connection``), so a slow X never
pins a pooled connection and a failure at X leaves nothing half-written.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from mktx.v1 import accounts_pb2

from ..core.db import use_connection
from ..core.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    UpstreamError,
)
from ..deps import Deps
from ..mapping.accounts import AUTH_TO_DB
from ..mapping.common import ts
from ..store import Row, audit
from ..store import accounts as store
from ..x import (
    OAuth1Credentials,
    OAuth1RequestToken,
    OAuth2Credentials,
    XAuthError,
    XBadRequest,
    XError,
    XUser,
    new_pkce,
    new_state,
)
from ..x.access import to_domain_error, token_purpose

log = logging.getLogger(__name__)

#: The method the audit row of a disconnect names.
DISCONNECT_METHOD = "/mktx.v1.AccountsService/DisconnectAccount"


async def load_account(deps: Deps, merchant_id: UUID, account_id: str) -> Row:
    """The merchant's account, or NotFound (another merchant's account too)."""
    async with use_connection(deps.pool):
        row = await store.get(merchant_id, UUID(account_id))
    if row is None:
        raise NotFound("account", account_id)
    return row


#: OAuth 2.0 scopes requested when StartConnection names none.
DEFAULT_SCOPES = (
    "tweet.read",
    "tweet.write",
    "users.read",
    "dm.read",
    "dm.write",
    "media.write",
    "offline.access",
    "follows.read",
)
#: How long a started connection may be completed.
PENDING_TTL = timedelta(minutes=15)


class AccountConnections:
    """StartConnection / CompleteConnection / RefreshAccountTokens / RegisterWebhook /
    Disconnect's revocation: the AccountsService RPCs that talk to X.

    None of them holds a connection while waiting on X (the methods are declared
    ``calls_out`` in the method table); they open short transactions themselves.
    """

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._xa = deps.xaccess
        self._cipher = deps.cipher

    async def start(
        self, merchant: UUID, req: accounts_pb2.StartConnectionRequest
    ) -> accounts_pb2.StartConnectionResponse:
        method = AUTH_TO_DB[req.auth_method]
        state = new_state()
        expires = datetime.now(UTC) + PENDING_TTL
        pending: dict[str, Any] = {
            "state": state,
            "merchant_id": merchant,
            "auth_method": method,
            "callback_uri": req.callback_uri,
            "scopes": [],
            "request_token": None,
            "request_secret_enc": None,
            "code_verifier_enc": None,
            "expires_at": expires,
        }
        purpose = f"pending:{state}".encode()
        try:
            if method == "OAUTH1":
                rt = await self._xa.x.oauth1_request_token(req.callback_uri)
                url = self._xa.x.oauth1_authorize_url(rt)
                pending["request_token"] = rt.token
                pending["request_secret_enc"] = self._cipher.encrypt(rt.token_secret, purpose)
            else:
                scopes = list(req.scopes) or list(DEFAULT_SCOPES)
                pkce = new_pkce()
                url = self._xa.x.oauth2_authorize_url(
                    redirect_uri=req.callback_uri,
                    scopes=scopes,
                    state=state,
                    code_challenge=pkce.challenge,
                )
                pending["scopes"] = scopes
                pending["code_verifier_enc"] = self._cipher.encrypt(pkce.verifier, purpose)
        except XError as exc:
            raise _connect_error(exc) from None
        async with use_connection(self._deps.pool, transaction=True):
            await store.insert_pending_connection(**pending)
        return accounts_pb2.StartConnectionResponse(
            authorization_url=url, state=state, expire_time=ts(expires)
        )

    async def complete(self, merchant: UUID, req: accounts_pb2.CompleteConnectionRequest) -> Row:
        async with use_connection(self._deps.pool, transaction=True):
            pending = await store.claim_pending_connection(merchant, req.state)
        if pending is None or pending["expires_at"] < datetime.now(UTC):
            raise InvalidArgument.single("state", "unknown or expired connection; start it again")
        try:
            return await self._complete(merchant, pending, req)
        except UpstreamError:
            # X could not be reached: the attempt may be retried with the same state.
            async with use_connection(self._deps.pool, transaction=True):
                await store.restore_pending_connection(pending)
            raise

    async def _complete(
        self, merchant: UUID, pending: Row, req: accounts_pb2.CompleteConnectionRequest
    ) -> Row:
        purpose = f"pending:{pending['state']}".encode()
        x = self._xa.x
        account_id = uuid4()
        try:
            if pending["auth_method"] == "OAUTH1":
                if not req.oauth_verifier:
                    raise InvalidArgument.single("oauth_verifier", "is required for OAuth 1.0a")
                if req.oauth_token and req.oauth_token != pending["request_token"]:
                    raise InvalidArgument.single(
                        "oauth_token", "does not match the started connection"
                    )
                rt = OAuth1RequestToken(
                    token=pending["request_token"],
                    token_secret=self._cipher.decrypt(pending["request_secret_enc"], purpose),
                    callback_confirmed=True,
                )
                at = await x.oauth1_access_token(rt, req.oauth_verifier)
                creds: Any = OAuth1Credentials(token=at.token, token_secret=at.token_secret)
                tokens = self._xa.encrypt_tokens(
                    account_id, access=at.token, secret=at.token_secret
                )
                scopes: list[str] = []
                expires = None
            else:
                if not req.code:
                    raise InvalidArgument.single("code", "is required for OAuth 2.0")
                tok = await x.oauth2_exchange_code(
                    code=req.code,
                    redirect_uri=pending["callback_uri"],
                    code_verifier=self._cipher.decrypt(pending["code_verifier_enc"], purpose),
                )
                creds = OAuth2Credentials(access_token=tok.access_token)
                tokens = self._xa.encrypt_tokens(
                    account_id, access=tok.access_token, refresh=tok.refresh_token
                )
                scopes = list(tok.scope) or list(pending["scopes"])
                expires = datetime.fromtimestamp(tok.expires_at, UTC) if tok.expires_at else None
            me = await x.as_user(creds).me()
        except (XAuthError, XBadRequest):
            field = "oauth_verifier" if pending["auth_method"] == "OAUTH1" else "code"
            raise InvalidArgument.single(
                field, "X refused it (wrong, expired or already used)"
            ) from None
        except XError as exc:
            raise _connect_error(exc) from None
        account = await self._store_account(
            merchant, account_id, pending["auth_method"], me, tokens, scopes, expires
        )
        if self._deps.settings.auto_register_webhook and self._deps.settings.default_webhook_url:
            account = await self._auto_register(account)
        return account

    async def _auto_register(self, account: Row) -> Row:
        """Register the default webhook for a just-connected account. Best effort: the
        account is connected either way; a failure is logged and the account returned
        as it is (``webhook.subscribed`` false), for RegisterWebhook to retry."""
        try:
            return await self.register_webhook(account, "")
        except DomainError as exc:
            log.warning(
                "automatic webhook registration failed",
                extra={"account_id": str(account["id"]), "reason": exc.reason},
            )
            return account

    async def _store_account(
        self,
        merchant: UUID,
        account_id: UUID,
        method: str,
        me: XUser,
        tokens: dict[str, bytes | None],
        scopes: list[str],
        expires: datetime | None,
    ) -> Row:
        profile = {
            "username": me.username,
            "display_name": me.name,
            "profile_image_url": me.profile_image_url or "",
            "followers_count": int(me.public_metrics.get("followers_count", 0)),
            "auth_method": method,
            "scopes": scopes,
            "token_expires_at": expires,
        }
        async with use_connection(self._deps.pool, transaction=True):
            existing = await store.find_live_by_x_user(me.id)
            if existing is None:
                return await store.insert(
                    merchant, id=account_id, x_user_id=me.id, **profile, **tokens
                )
            if existing["merchant_id"] != merchant or existing["status"] == "ACTIVE":
                raise AlreadyExists(f"X account @{me.username} is already connected")
            # The merchant's own account in ERROR/INACTIVE/PENDING: reconnect it in place.
            plain = _plain_tokens(self._cipher, account_id, tokens)
            tokens = self._xa.encrypt_tokens(
                existing["id"],
                access=plain["access"] or "",
                secret=plain["secret"],
                refresh=plain["refresh"],
            )
            return await store.reconnect(merchant, existing["id"], **profile, **tokens)

    async def refresh(self, account: Row) -> Row:
        if account["status"] == "DISCONNECTED":
            raise FailedPrecondition("the account is disconnected", reason="ACCOUNT_NOT_ACTIVE")
        if account["auth_method"] == "OAUTH2":
            return await self._xa.refresh(account, force=True)
        # OAuth 1.0a tokens do not expire: verify them instead (a revocation marks ERROR).
        await self._xa.call(account, lambda u: u.me())
        return account

    async def register_webhook(self, account: Row, url: str) -> Row:
        """Register ``url`` (default: ``Settings.default_webhook_url``, which with X a
        local sandbox is the sidecar's own) with X and subscribe the account."""
        url = url or self._deps.settings.default_webhook_url
        if not url:
            raise InvalidArgument.single(
                "url", "is required: no MKTX_PUBLIC_WEBHOOK_URL is configured"
            )
        if not url.startswith("https://") and not self._deps.settings.x_sandbox:
            raise InvalidArgument.single("url", "X only delivers to https URLs")
        if account["status"] != "ACTIVE":
            raise FailedPrecondition("the account is not active", reason="ACCOUNT_NOT_ACTIVE")
        app = self._xa.x.as_app()
        try:
            hooks = await app.list_webhooks()
            hook = next((h for h in hooks if h.url == url), None)
            if hook is None:
                hook = await app.register_webhook(url)
            elif not hook.valid:
                await app.revalidate_webhook(hook.id)
        except XBadRequest as exc:
            if exc.reason == "CrcValidationFailed":
                raise FailedPrecondition(
                    "X's CRC check against the webhook URL failed; is the sidecar reachable there?",
                    reason="WEBHOOK_CRC_FAILED",
                ) from None
            raise to_domain_error(exc) from None
        except XError as exc:
            raise to_domain_error(exc) from None
        await self._xa.call(account, lambda u: u.subscribe(hook.id))
        async with use_connection(self._deps.pool, transaction=True):
            return await store.set_webhook(
                account["merchant_id"],
                account["id"],
                webhook_id=hook.id,
                webhook_url=url,
                subscribed=True,
                validated_at=datetime.now(UTC),
            )

    async def disconnect(self, account: Row) -> Row:
        """Revoke the account's tokens at X (best effort), then erase them and mark the
        account DISCONNECTED. Disconnecting a disconnected account changes nothing."""
        if account["status"] == "DISCONNECTED":
            return account
        await self.revoke_at_x(account)
        async with use_connection(self._deps.pool, transaction=True):
            row = await store.disconnect(account["merchant_id"], account["id"])
            await audit.record(DISCONNECT_METHOD, str(account["id"]))
            return row

    async def revoke_at_x(self, account: Row) -> None:
        """Best effort: revoke OAuth 2.0 tokens at X. Failures are logged, not raised;
        the tokens are erased locally either way. (X's v2 API has no revocation for
        OAuth 1.0a user tokens; the merchant can revoke the app in X's settings.)"""
        if account["auth_method"] != "OAUTH2" or account["access_token_enc"] is None:
            return
        for kind, column in (("refresh", "refresh_token_enc"), ("access", "access_token_enc")):
            if account[column] is None:
                continue
            try:
                token = self._cipher.decrypt(account[column], token_purpose(account["id"], kind))
            except ValueError:
                log.warning(
                    "stored %s token does not decrypt; erasing it unrevoked",
                    kind,
                    extra={"account_id": str(account["id"])},
                )
                continue
            try:
                await self._xa.x.oauth2_revoke(token, token_type_hint=f"{kind}_token")
            except XError as exc:
                log.warning(
                    "revoking %s token at X failed",
                    kind,
                    extra={"account_id": str(account["id"]), "x_status": exc.status},
                )


def _plain_tokens(
    cipher: Any, account_id: UUID, tokens: dict[str, bytes | None]
) -> dict[str, str | None]:
    def dec(column: str, kind: str) -> str | None:
        blob = tokens[column]
        return cipher.decrypt(blob, token_purpose(account_id, kind)) if blob else None

    return {
        "access": dec("access_token_enc", "access") or "",
        "secret": dec("token_secret_enc", "secret"),
        "refresh": dec("refresh_token_enc", "refresh"),
    }


def _connect_error(exc: XError) -> DomainError:
    if isinstance(exc, (XAuthError, XBadRequest)):
        # The app credentials themselves were refused: nothing the caller can fix.
        return UpstreamError("X refused the app's credentials", reason="TWITTER_API_ERROR")
    return to_domain_error(exc)
