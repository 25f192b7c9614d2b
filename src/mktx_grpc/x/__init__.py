"""The async X (Twitter) API client: OAuth 1.0a / 2.0, retries, breaker, DM budget.

Typical use::

    async with XClient(XConfig(consumer_key=..., consumer_secret=...)) as x:
        user = x.as_user(OAuth1Credentials(token, token_secret), account_key=str(account_id))
        result = await user.send_dm("12345", text="hello")

``__all__`` below is the public API; import from here. The modules, one per concern:

- ``client``: :class:`XClient`, :class:`UserContext`, :class:`AppContext`, composed
  from the mixins below; ``config``: :class:`XConfig`.
- ``transport``: the request loop (deadline, retries, back-off, rate-limit waits,
  breaker, signing). Its docstring holds the retry rules and what a caller sees
  when an outcome is unknown.
- ``oauth_flows``: OAuth 1.0a three-legged, OAuth 2.0 PKCE, the app-only bearer.
- ``context``: credentials bound to the client, the base of the calls below.
- ``users``, ``dms``, ``media``, ``posts``, ``webhooks`` (Account Activity:
  webhooks, subscriptions, replay): the calls.
- ``errors``, ``models``, ``credentials``, ``breaker``, ``budget``, ``oauth1``,
  ``oauth2``, ``signatures``: the pieces those use; ``access``: acting as a stored
  account (decryption, refresh, domain errors).
"""

from __future__ import annotations

from .breaker import BreakerState, CircuitBreaker
from .budget import DmBudget
from .client import AppContext, UserContext, XClient
from .config import XConfig
from .credentials import AppBearer, Credentials, OAuth1Credentials, OAuth2Credentials
from .errors import (
    XAuthError,
    XBadRequest,
    XError,
    XForbidden,
    XNotFound,
    XNotSent,
    XOutcomeUnknown,
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
    "XNotSent",
    "XOutcomeUnknown",
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
