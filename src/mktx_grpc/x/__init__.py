"""The async X (Twitter) API client: OAuth 1.0a / 2.0, retries, breaker, DM budget.

Typical use::

    async with XClient(XConfig(consumer_key=..., consumer_secret=...)) as x:
        user = x.as_user(OAuth1Credentials(token, token_secret), account_key=str(account_id))
        result = await user.send_dm("12345", text="hello")
"""

from __future__ import annotations

from .breaker import BreakerState, CircuitBreaker
from .budget import DmBudget
from .client import AppContext, UserContext, XClient, XConfig
from .credentials import AppBearer, Credentials, OAuth1Credentials, OAuth2Credentials
from .errors import (
    XAuthError,
    XBadRequest,
    XError,
    XForbidden,
    XNotFound,
    XRateLimited,
    XUnavailable,
    XUpstreamError,
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
)
from .oauth1 import OAuth1AccessToken, OAuth1RequestToken, oauth1_authorization_header
from .oauth2 import OAuth2Token, PkcePair, new_pkce, new_state, s256_challenge
from .signatures import crc_response_token, verify_webhook_signature, webhook_signature

__all__ = [
    "AppBearer",
    "AppContext",
    "BreakerState",
    "CircuitBreaker",
    "Credentials",
    "DmBudget",
    "DmEvent",
    "DmEventPage",
    "DmSendResult",
    "MediaUpload",
    "OAuth1AccessToken",
    "OAuth1Credentials",
    "OAuth1RequestToken",
    "OAuth2Credentials",
    "OAuth2Token",
    "PkcePair",
    "Post",
    "ReplayJob",
    "UserContext",
    "Webhook",
    "XAuthError",
    "XBadRequest",
    "XClient",
    "XConfig",
    "XError",
    "XForbidden",
    "XNotFound",
    "XRateLimited",
    "XUnavailable",
    "XUpstreamError",
    "XUser",
    "crc_response_token",
    "new_pkce",
    "new_state",
    "oauth1_authorization_header",
    "s256_challenge",
    "verify_webhook_signature",
    "webhook_signature",
]
