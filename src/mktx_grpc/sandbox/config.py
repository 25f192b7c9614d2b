"""Settings of the X sandbox. Defaults behave like X; tests relax them as needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_PORT", "DEFAULT_SEED_USERS", "DEFAULT_TIER", "TIERS", "SandboxConfig"]

#: The port ``mktx-grpc x-sandbox`` listens on unless told otherwise (``--port 0``
#: picks any free port). Chosen outside the common development ports (3000, 5000,
#: 5432, 8000, 8080, 8765, 50051) so a demo can always point at the same URL.
DEFAULT_PORT = 5081

#: X's access tiers, as on its per-tier rate-limit table (see ``limits.py``).
TIERS = ("free", "basic", "pro", "enterprise")
#: Pro is the lowest self-serve tier that has the DM endpoints this project needs.
DEFAULT_TIER = "pro"

DEFAULT_SEED_USERS: tuple[tuple[str, str, str], ...] = (
    ("1500000000000000001", "sandbox_merchant", "Sandbox Merchant"),
    ("1500000000000000002", "sandbox_customer", "Sandbox Customer"),
)


@dataclass(slots=True)
class SandboxConfig:
    """App credentials the sandbox accepts, limits and behaviour switches.

    The four app secrets are what an ``XConfig`` pointed at the sandbox must use
    (``SandboxServer.x_config()`` builds one).

    Rate limits come from X's published table for ``tier`` (``limits.py``). The
    ``*_limit_*`` overrides, when not None, replace the per-user window of that
    length for their endpoints and win over the tier: ``dm_limit_*`` the three DM
    send endpoints, ``post_limit_15min`` ``POST /2/tweets``, ``default_limit_15min``
    every other endpoint's 15-minute window. They may be changed while the sandbox
    runs; the next request sees them.

    ``state_file``, when set, is where the sandbox keeps its world across restarts
    (loaded at start, saved atomically ``save_debounce`` seconds after changes and
    on stop; see ``persistence.py``).
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
    tier: str = DEFAULT_TIER
    rate_limits_enabled: bool = True
    dm_limit_15min: int | None = None
    dm_limit_24h: int | None = None
    post_limit_15min: int | None = None
    default_limit_15min: int | None = None
    echo_dm_to_webhook: bool = True
    crc_timeout: float = 3.0
    max_webhooks: int = 5
    media_check_after_secs: int = 1
    # STATUS polls (each after check_after_secs) until a video or GIF succeeds.
    media_processing_steps: int = 2
    # X refuses a post whose text equals one of the author's posts this recent.
    duplicate_post_window: float = 86400.0
    # Seed of the generator behind probabilistic faults (None: unpredictable).
    fault_seed: int | None = None
    seed_users: tuple[tuple[str, str, str], ...] = DEFAULT_SEED_USERS
    state_file: Path | str | None = None
    save_debounce: float = 0.5

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}, not {self.tier!r}")
