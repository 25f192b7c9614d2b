"""The OAuth flows that run before any user credentials exist.

They live on the client itself (:class:`OAuthFlows` is a base of ``XClient``):
OAuth 1.0a three-legged (request token, authorize URL, access token), OAuth 2.0
Authorization Code with PKCE (authorize URL, code exchange, refresh, revoke) and
the app-only bearer (client credentials). The signing primitives are in
:mod:`mktx_grpc.x.oauth1` and :mod:`mktx_grpc.x.oauth2`; this module only makes
the calls.

Failure modes (retry rules in :mod:`mktx_grpc.x.transport`):

- Every call is a POST, retried only on a 5xx or an error proving the request
  never left. A refused credential, code, verifier or token raises
  :class:`XAuthError` or :class:`XBadRequest`; a success body missing the fields X
  promises raises :class:`XUpstreamError`. A missing OAuth 2.0 client id raises
  ``ValueError`` before any request.
- **Unknown outcome.** After an :class:`XUnavailable` or :class:`XUpstreamError`
  the grant may have been consumed at X. A code or verifier works once: the user
  starts the consent again. A refresh token also works once (X rotates the pair),
  so after an unknown refresh outcome the stored refresh token may be dead; trying
  it again gives :class:`XBadRequest` when X did rotate, and the account must then
  reconnect. Callers must therefore persist the returned pair before using it.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode

import httpx

from .credentials import AppBearer
from .errors import XUpstreamError
from .oauth1 import OAuth1AccessToken, OAuth1RequestToken
from .oauth2 import OAuth2Token
from .transport import Auth, BasicAuth, OAuth1FlowAuth, Transport, response_json

__all__ = ["OAuthFlows"]


class OAuthFlows(Transport):
    """OAuth 1.0a and 2.0 authorization flows and the app-only bearer token."""

    # -- OAuth 1.0a three-legged flow -------------------------------------------

    async def oauth1_request_token(
        self, callback_url: str, *, deadline: float | None = None
    ) -> OAuth1RequestToken:
        """Step 1: ``POST /oauth/request_token``. Raises XAuthError on bad app keys."""
        resp = await self.request(
            "POST",
            "/oauth/request_token",
            auth=OAuth1FlowAuth(callback_uri=callback_url),
            deadline=deadline,
            idempotent=True,  # a second request token only leaves the first unused
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
            auth=OAuth1FlowAuth(
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
        await self._oauth2_client_call("/2/oauth2/revoke", form, deadline, idempotent=True)

    async def fetch_app_bearer(self, *, deadline: float | None = None) -> AppBearer:
        """Get an app-only bearer token with the consumer key/secret
        (``POST /oauth2/token`` ``grant_type=client_credentials``)."""
        resp = await self.request(
            "POST",
            "/oauth2/token",
            auth=BasicAuth(self.config.consumer_key, self.config.consumer_secret),
            form={"grant_type": "client_credentials"},
            deadline=deadline,
            idempotent=True,  # X hands out the same app bearer every time
        )
        data = response_json(resp)
        if "access_token" not in data:
            raise XUpstreamError("malformed client_credentials response", status=resp.status_code)
        return AppBearer(str(data["access_token"]))

    async def _token_call(self, form: dict[str, str], deadline: float | None) -> OAuth2Token:
        resp = await self._oauth2_client_call("/2/oauth2/token", form, deadline)
        try:
            return OAuth2Token.from_json(response_json(resp), now=self._wall())
        except (KeyError, TypeError, ValueError):
            raise XUpstreamError("malformed token response", status=resp.status_code) from None

    async def _oauth2_client_call(
        self, path: str, form: dict[str, str], deadline: float | None, *, idempotent: bool = False
    ) -> httpx.Response:
        cid = self.config.oauth2_client_id
        if not cid:
            raise ValueError("oauth2_client_id is not configured")
        auth: Auth = None
        if self.config.oauth2_client_secret:
            auth = BasicAuth(cid, self.config.oauth2_client_secret)
        else:
            form = {**form, "client_id": cid}
        return await self.request(
            "POST", path, auth=auth, form=form, deadline=deadline, idempotent=idempotent
        )
