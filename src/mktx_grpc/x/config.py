"""The X client's configuration: app credentials, endpoints and resilience knobs.

One frozen :class:`XConfig` is read by every part of the client: the transport
(timeouts, retries, back-off, rate-limit waits, breaker, connection shards), the
OAuth flows (client id and secret, authorize URLs) and the media upload (how long
processing is polled). Nothing here does I/O or fails: wrong values show up as
errors of the calls that use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["XConfig"]


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
    #: Connection pools the client spreads requests over (see Transport.__init__).
    http_shards: int = 8

    @property
    def upload_base(self) -> str:
        return (self.upload_base_url or self.api_base_url).rstrip("/")
