"""Settings of the X sandbox. Defaults behave like X; tests relax them as needed."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_SEED_USERS", "SandboxConfig"]

DEFAULT_SEED_USERS: tuple[tuple[str, str, str], ...] = (
    ("1500000000000000001", "sandbox_merchant", "Sandbox Merchant"),
    ("1500000000000000002", "sandbox_customer", "Sandbox Customer"),
)


@dataclass(slots=True)
class SandboxConfig:
    """App credentials the sandbox accepts, limits and behaviour switches.

    The four app secrets are what an ``XConfig`` pointed at the sandbox must use
    (``SandboxServer.x_config()`` builds one).
    """

    consumer_key: str = "sandbox-consumer-key"
    consumer_secret: str = field(default="sandbox-consumer-secret", repr=False)
    oauth2_client_id: str = "sandbox-client-id"
    oauth2_client_secret: str = field(default="sandbox-client-secret", repr=False)
    # Accept public-client exchanges (client_id in the form, no Basic auth).
    allow_public_oauth2_client: bool = True
    app_bearer_token: str = field(default="sandbox-app-bearer-token", repr=False)
    app_id: str = "29000001"
    app_name: str = "mktx sandbox app"
    access_token_ttl: int = 7200
    code_ttl: float = 30.0
    oauth1_timestamp_window: int = 300
    # Per-user send limits (X: 15 per 15 min, 1440 per 24 h) and others.
    rate_limits_enabled: bool = True
    dm_limit_15min: int = 15
    dm_limit_24h: int = 1440
    post_limit_15min: int = 100
    default_limit_15min: int = 900
    echo_dm_to_webhook: bool = True
    crc_timeout: float = 3.0
    max_webhooks: int = 5
    media_check_after_secs: int = 1
    media_processing_steps: int = 2
    seed_users: tuple[tuple[str, str, str], ...] = DEFAULT_SEED_USERS
