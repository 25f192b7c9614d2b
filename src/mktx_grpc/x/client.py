"""The async X API client, composed from one module per concern.

One :class:`XClient` per process holds the app's configuration, the shared HTTP
connection pools and one circuit breaker per host. Calls are made through a
context bound to credentials: ``client.as_user(creds)`` (OAuth 1.0a or OAuth 2.0
user context) or ``client.as_app()`` (app-only bearer). The OAuth flows live on
the client itself because they run before any user credentials exist.

Every call has a deadline (seconds, per call; ``XConfig.default_deadline`` when
not given) that bounds retries, back-off and rate-limit waits together.

How it is put together: each concern is a mixin over one shared call path, and the
client and the contexts are just the list of mixins they offer.

- ``transport`` (:class:`Transport`): the request loop, retries, back-off,
  rate-limit waits, breakers, signing. The retry rules and what an unknown outcome
  looks like are written there once; every other module refers to them.
- ``oauth_flows`` (:class:`OAuthFlows`): on the client.
- ``context`` (:class:`CallContext`): credentials bound to the client; every
  context mixin extends it and calls ``self._call``.
- ``users``, ``dms``, ``media``, ``posts``, ``webhooks``: the calls themselves,
  each module stating its own failure modes.

A new capability (timelines, publishing's threads and metrics) is a new mixin
module added to a context's bases, not new lines here.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import httpx

from .budget import DmBudget
from .config import XConfig
from .context import CallContext
from .credentials import AppBearer, OAuth1Credentials, OAuth2Credentials
from .dms import DirectMessages
from .media import MediaUploads
from .oauth_flows import OAuthFlows
from .posts import Posts
from .transport import Transport
from .users import UserLookups
from .webhooks import Subscriptions, WebhookAdmin

__all__ = ["AppContext", "UserContext", "XClient", "XConfig"]


class XClient(OAuthFlows, Transport):
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
        super().__init__(config, http, clock=clock, wall_clock=wall_clock, sleep=sleep, rng=rng)
        self.dm_budget = dm_budget

    async def __aenter__(self) -> XClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

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


class UserContext(UserLookups, DirectMessages, MediaUploads, Posts, Subscriptions, CallContext):
    """Calls made on behalf of one connected X user (OAuth 1.0a or OAuth 2.0)."""

    def __init__(
        self, client: XClient, creds: OAuth1Credentials | OAuth2Credentials, account_key: str
    ) -> None:
        super().__init__(client, creds)
        self.account_key = account_key

    def __repr__(self) -> str:
        return f"UserContext(account_key={self.account_key!r})"


class AppContext(WebhookAdmin, CallContext):
    """App-only calls: webhook management, unsubscribing users, replay."""

    def __repr__(self) -> str:
        return "AppContext()"
