"""Every setting of the service, read once from the environment.

Defaults run locally with nothing configured: no ``DATABASE_URL`` starts an embedded
PostgreSQL in the data directory, no X credentials select the built-in X sandbox, and
missing secrets (JWT signing key, token encryption key) are generated once into the
data directory so that ``serve`` and ``token`` agree across runs.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

_DEFAULT_DATA_DIR = ".data"
#: The X sandbox's fixed default port (``mktx_grpc.sandbox.config.DEFAULT_PORT``;
#: core does not import the sandbox, a test keeps the two equal).
DEFAULT_SANDBOX_PORT = 5081


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = _env(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name).lower()
    if not raw:
        return default
    return raw in {"1", "true", "yes", "on"}


class MissingSecret(ValueError):
    """A development secret is not in the data directory and may not be created."""


def data_secret(data_dir: Path, name: str, nbytes: int = 32, *, create: bool = True) -> bytes:
    """Return a random secret kept in ``data_dir/name``, creating it on first use.

    The file is written with mode 0600. Used only for development defaults; production
    sets the corresponding environment variable. With ``create=False`` a missing file
    raises :class:`MissingSecret` instead.
    """
    path = data_dir / name
    try:
        return base64.urlsafe_b64decode(path.read_text().strip())
    except FileNotFoundError:
        if not create:
            raise MissingSecret(str(path)) from None
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_bytes(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.urlsafe_b64encode(value))
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return value


@dataclass(frozen=True)
class Settings:
    """Process configuration. Build it with :meth:`from_env`."""

    #: PostgreSQL URL. Empty: start the embedded server in ``data_dir/pg``.
    database_url: str = ""
    #: Directory for the embedded database and generated development secrets.
    data_dir: Path = Path(_DEFAULT_DATA_DIR)
    grpc_host: str = "0.0.0.0"
    grpc_port: int = 50051
    webhook_host: str = "0.0.0.0"
    webhook_port: int = 5000
    #: Largest webhook body accepted (413 above).
    webhook_max_body_bytes: int = 1024 * 1024
    #: An inbound DM reopens a conversation closed less than this many seconds ago;
    #: after it, a new conversation starts.
    webhook_reopen_window: float = 24 * 3600.0
    #: Seconds a webhook client gets to send headers, and then the body, before it
    #: is cut off (``MKTX_WEBHOOK_RECEIVE_TIMEOUT``).
    webhook_receive_timeout: float = 10.0
    #: Most concurrent sidecar connections; beyond it 503 (``MKTX_WEBHOOK_MAX_CONNECTIONS``).
    webhook_max_connections: int = 1000
    #: Public URL X calls for webhooks (RegisterWebhook default). Unset with X a
    #: local sandbox: the sidecar's own loopback URL (see ``default_webhook_url``).
    public_webhook_url: str = ""
    #: Register the webhook and subscribe an account as soon as it connects (on when
    #: ``serve`` starts the built-in sandbox).
    auto_register_webhook: bool = False
    #: Seconds between checks that X still has the webhooks and subscriptions the
    #: accounts claim (0: never).
    webhook_check_interval: float = 900.0
    #: Number of SO_REUSEPORT server processes for ``serve``.
    workers: int = 1
    #: Largest gRPC request message accepted, in bytes (RESOURCE_EXHAUSTED above;
    #: ``MKTX_GRPC_MAX_RECEIVE_BYTES``). 8 MiB covers the largest legitimate
    #: requests: a 25-part post of 50,000-character parts (~5 MB of UTF-8 at worst)
    #: and an ImportContacts message of several hundred contacts with full
    #: attributes (send fewer per message when they are large). Media travels by
    #: URL, never in a request.
    grpc_max_receive_bytes: int = 8 * 1024 * 1024
    pool_min_size: int = 2
    pool_max_size: int = 10
    log_level: str = "INFO"
    #: Seconds in-flight RPCs get to finish on SIGTERM/SIGINT.
    shutdown_grace: float = 10.0
    #: Seconds between SIGTERM and closing the listener: health answers NOT_SERVING
    #: meanwhile (calls are still served), so balancers polling Check take the
    #: instance out before its port goes away (``MKTX_DRAIN_DELAY``; 0: close at once).
    drain_delay: float = 2.0
    #: Longest wait for a pooled database connection, in seconds; a call waits at
    #: most until its own deadline when that is nearer. UNAVAILABLE after it
    #: (``MKTX_DB_WAIT_MAX``).
    db_wait_max: float = 5.0
    #: Seconds between the health probes of the database (``MKTX_HEALTH_INTERVAL``):
    #: health follows the database within about this plus a second, both ways.
    health_interval: float = 0.5
    #: HS256 secret for JWTs; generated into the data dir when unset and no RS256 key.
    jwt_secret: bytes = field(default=b"", repr=False)
    #: PEM public key for RS256 JWTs; takes precedence over the HS256 secret.
    jwt_public_key: str = field(default="", repr=False)
    jwt_issuer: str = ""
    jwt_audience: str = ""
    #: Longest time ahead a token's ``exp`` may lie, in seconds (0: no maximum, for
    #: development tokens). Production sets it (``MKTX_JWT_MAX_LIFETIME``).
    jwt_max_lifetime: int = 0
    #: 32-byte AES-GCM key for tokens at rest (``MKTX_ENCRYPTION_KEY``, base64).
    encryption_key: bytes = field(default=b"", repr=False)
    #: HMAC key for page tokens (derived from the encryption key when unset).
    page_token_key: bytes = field(default=b"", repr=False)
    #: X app credentials; empty selects the in-process X sandbox.
    x_consumer_key: str = field(default="", repr=False)
    x_consumer_secret: str = field(default="", repr=False)
    x_client_id: str = field(default="", repr=False)
    x_client_secret: str = field(default="", repr=False)
    x_bearer_token: str = field(default="", repr=False)
    x_api_base: str = "https://api.x.com"
    x_authorize_base: str = "https://x.com"
    #: Per-request timeout and per-call deadline (retries, backoff, 429 waits) for X.
    x_request_timeout: float = 10.0
    x_default_deadline: float = 30.0
    x_backoff_base: float = 0.5
    #: Largest media fetched for a DM attachment (X allows video up to 512 MB).
    max_media_bytes: int = 64 * 1024 * 1024
    #: True when X is the local sandbox (allows http webhook URLs).
    x_sandbox: bool = False
    #: Port of the in-process X sandbox when no credentials are set (0 = any free);
    #: the default is the sandbox's own (``sandbox.config.DEFAULT_PORT``).
    sandbox_port: int = DEFAULT_SANDBOX_PORT
    #: Host of that sandbox: the address ``serve`` binds it to, and where ``worker``
    #: looks for it (docker compose: the api service binds 0.0.0.0, the worker looks
    #: at ``api``).
    sandbox_host: str = "127.0.0.1"
    #: X access tier whose rate limits the in-process sandbox applies.
    sandbox_tier: str = "pro"
    #: Whether ``serve`` also runs the background worker loops in-process.
    run_worker: bool = True
    #: Count every RPC and pool wait for ``/metrics`` (``MKTX_METRICS``). Off only to
    #: measure what counting costs (``bench/metrics_cost.py``); ``/metrics`` then
    #: lacks the gRPC and pool metrics.
    metrics: bool = True
    #: Port of ``mktx-grpc worker``'s ``/metrics`` (0: none). ``serve`` serves its
    #: metrics on the sidecar port.
    worker_metrics_port: int = 9464
    #: The per-merchant API rate limit when the operator set no override for the
    #: merchant (``mktx-grpc merchant-limits``): sustained requests per minute and
    #: the burst allowed above it.
    rate_limit_per_minute: int = 100
    rate_limit_burst: int = 20
    #: Where the rate limiter counts (``MKTX_RATE_LIMIT_STORAGE``): empty for this
    #: process's memory; a ``redis://`` URL for one limit across replicas and workers.
    rate_limit_storage: str = ""
    #: Seconds the limiter keeps the merchants' rate-limit overrides before reloading.
    rate_limit_cache_seconds: float = 10.0
    #: Answer concurrent GetTemplate/GetContact/GetConversation reads of one merchant
    #: with one query per batch (``store/coalesce.py``; ``MKTX_COALESCE_READS``). Off
    #: by default: measured below the 1.3× that would justify it, and slower for the
    #: two-query reads (``bench/results/grpc.md``).
    coalesce_reads: bool = False
    #: Publishing: a scheduled post more than this many seconds late (the service was
    #: down at its time) fails instead of going out late.
    publish_grace_seconds: float = 3600.0
    #: Posts one worker process publishes at once.
    publish_concurrency: int = 16
    #: Largest post media fetched (X's own limits are lower for images and GIFs).
    post_media_max_bytes: int = 512 * 1024 * 1024
    #: Extra CA certificates (PEM file) trusted when fetching media from merchants.
    media_ca_file: str = ""
    #: The AI model endpoint: any OpenAI-compatible base URL (OpenAI, Azure OpenAI,
    #: vLLM, Ollama, LiteLLM). Empty: ``serve`` starts the built-in stand-in.
    ai_base_url: str = ""
    ai_api_key: str = field(default="", repr=False)
    #: The model used when a merchant's settings name none.
    ai_default_model: str = "gpt-4o-mini"
    #: Per-request timeout and retries (the openai client's own) for model calls.
    ai_timeout: float = 20.0
    ai_max_retries: int = 1
    #: The model's circuit breaker: consecutive failures before it opens, and seconds
    #: before a half-open probe.
    ai_breaker_failures: int = 5
    ai_breaker_reset: float = 30.0
    #: Whether the provider's moderation endpoint is called (when a merchant's
    #: settings ask for it); off for providers without one.
    ai_moderation: bool = True
    #: The model client's HTTP transport (``ai.client.model_transport``): "aiohttp"
    #: (the openai package's aiohttp backend, the least CPU per call) or "default"
    #: (httpx2's own, for a provider reached through a proxy or over HTTP/2).
    ai_http: str = "aiohttp"
    #: Messages the auto-reply loop processes at once (model calls in flight).
    auto_reply_concurrency: int = 32

    @property
    def uses_ai_standin(self) -> bool:
        return not self.ai_base_url

    @property
    def uses_sandbox(self) -> bool:
        return not (self.x_consumer_key or self.x_client_id)

    @property
    def default_webhook_url(self) -> str:
        """The URL RegisterWebhook uses when given none: the configured public URL;
        with X a local sandbox, the sidecar's own (a sandbox on this machine reaches
        it on loopback); otherwise empty (the caller must name one)."""
        if self.public_webhook_url:
            return self.public_webhook_url
        if not self.x_sandbox:
            return ""
        host = self.webhook_host if self.webhook_host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.webhook_port}/webhooks/twitter"

    @classmethod
    def from_env(cls, *, create_secrets: bool = True) -> Settings:
        """Read the environment, generating development secrets where unset.

        With ``create_secrets=False`` (``mktx-grpc token``) nothing is written: a
        missing JWT secret raises :class:`MissingSecret` with what to do, and a
        missing encryption key is left empty. Raises ``ValueError`` naming the
        variable when a value is malformed.
        """
        data_dir = Path(_env("MKTX_DATA_DIR", _DEFAULT_DATA_DIR)).resolve()
        enc_raw = _env("MKTX_ENCRYPTION_KEY")
        if enc_raw:
            enc = base64.urlsafe_b64decode(enc_raw + "=" * (-len(enc_raw) % 4))
            if len(enc) != 32:
                raise ValueError("MKTX_ENCRYPTION_KEY must be 32 bytes, base64-encoded")
        else:
            try:
                enc = data_secret(data_dir, "encryption.key", create=create_secrets)
            except MissingSecret:
                enc = b""
        jwt_public_key = _env("MKTX_JWT_PUBLIC_KEY")
        if jwt_public_key and not jwt_public_key.startswith("-----"):
            jwt_public_key = Path(jwt_public_key).read_text()
        jwt_secret_raw = _env("MKTX_JWT_SECRET")
        if jwt_secret_raw:
            jwt_secret = jwt_secret_raw.encode()
        elif jwt_public_key:
            jwt_secret = b""
        else:
            try:
                jwt_secret = data_secret(data_dir, "jwt.secret", create=create_secrets)
            except MissingSecret:
                raise MissingSecret(
                    f"no JWT secret: MKTX_JWT_SECRET is unset and {data_dir / 'jwt.secret'} "
                    "does not exist. Run this where `mktx-grpc serve` runs (its data "
                    f"directory is MKTX_DATA_DIR, default ./{_DEFAULT_DATA_DIR}), or set "
                    "MKTX_DATA_DIR or MKTX_JWT_SECRET as the server has them."
                ) from None
        for name in ("MKTX_DB_WAIT_MAX", "MKTX_HEALTH_INTERVAL"):
            if _env(name) and _env_float(name, 1.0) <= 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        page_key_raw = _env("MKTX_PAGE_TOKEN_KEY")
        max_lifetime = _env_int("MKTX_JWT_MAX_LIFETIME", 0)
        if max_lifetime < 0:
            raise ValueError("MKTX_JWT_MAX_LIFETIME must be 0 (no maximum) or a number of seconds")
        return cls(
            database_url=_env("DATABASE_URL"),
            data_dir=data_dir,
            grpc_host=_env("MKTX_GRPC_HOST", "0.0.0.0"),
            grpc_port=_env_int("MKTX_GRPC_PORT", 50051),
            webhook_host=_env("MKTX_WEBHOOK_HOST", "0.0.0.0"),
            webhook_port=_env_int("MKTX_WEBHOOK_PORT", 5000),
            public_webhook_url=_env("MKTX_PUBLIC_WEBHOOK_URL"),
            auto_register_webhook=_env_bool("MKTX_AUTO_REGISTER_WEBHOOK", False),
            webhook_check_interval=_env_float("MKTX_WEBHOOK_CHECK_INTERVAL", 900.0),
            webhook_max_body_bytes=_env_int("MKTX_WEBHOOK_MAX_BODY_BYTES", 1024 * 1024),
            webhook_reopen_window=_env_float("MKTX_REOPEN_WINDOW", 24 * 3600.0),
            webhook_receive_timeout=_env_float("MKTX_WEBHOOK_RECEIVE_TIMEOUT", 10.0),
            webhook_max_connections=_env_int("MKTX_WEBHOOK_MAX_CONNECTIONS", 1000),
            workers=max(1, _env_int("MKTX_WORKERS", 1)),
            grpc_max_receive_bytes=_env_int("MKTX_GRPC_MAX_RECEIVE_BYTES", 8 * 1024 * 1024),
            pool_min_size=_env_int("MKTX_POOL_MIN_SIZE", 2),
            pool_max_size=_env_int("MKTX_POOL_MAX_SIZE", 10),
            log_level=_env("MKTX_LOG_LEVEL", "INFO").upper(),
            shutdown_grace=_env_float("MKTX_SHUTDOWN_GRACE", 10.0),
            drain_delay=max(0.0, _env_float("MKTX_DRAIN_DELAY", 2.0)),
            db_wait_max=_env_float("MKTX_DB_WAIT_MAX", 5.0),
            health_interval=_env_float("MKTX_HEALTH_INTERVAL", 0.5),
            jwt_secret=jwt_secret,
            jwt_public_key=jwt_public_key,
            jwt_issuer=_env("MKTX_JWT_ISSUER"),
            jwt_audience=_env("MKTX_JWT_AUDIENCE"),
            jwt_max_lifetime=max_lifetime,
            encryption_key=enc,
            page_token_key=page_key_raw.encode() if page_key_raw else enc[::-1],
            x_consumer_key=_env("X_CONSUMER_KEY"),
            x_consumer_secret=_env("X_CONSUMER_SECRET"),
            x_client_id=_env("X_CLIENT_ID"),
            x_client_secret=_env("X_CLIENT_SECRET"),
            x_bearer_token=_env("X_BEARER_TOKEN"),
            x_api_base=_env("X_API_BASE", "https://api.x.com"),
            x_request_timeout=_env_float("MKTX_X_TIMEOUT", 10.0),
            x_default_deadline=_env_float("MKTX_X_DEADLINE", 30.0),
            max_media_bytes=_env_int("MKTX_MAX_MEDIA_BYTES", 64 * 1024 * 1024),
            x_authorize_base=_env("X_AUTHORIZE_BASE", "https://x.com"),
            sandbox_port=_env_int("MKTX_SANDBOX_PORT", DEFAULT_SANDBOX_PORT),
            sandbox_host=_env("MKTX_SANDBOX_HOST", "127.0.0.1"),
            sandbox_tier=_env("MKTX_SANDBOX_TIER", "pro").lower(),
            x_sandbox=_env_bool("MKTX_X_SANDBOX", False),
            run_worker=_env_bool("MKTX_RUN_WORKER", True),
            worker_metrics_port=_env_int("MKTX_WORKER_METRICS_PORT", 9464),
            metrics=_env_bool("MKTX_METRICS", True),
            rate_limit_per_minute=_env_int("MKTX_RATE_LIMIT_PER_MINUTE", 100),
            rate_limit_burst=_env_int("MKTX_RATE_LIMIT_BURST", 20),
            rate_limit_storage=_env("MKTX_RATE_LIMIT_STORAGE"),
            rate_limit_cache_seconds=_env_float("MKTX_RATE_LIMIT_CACHE_SECONDS", 10.0),
            coalesce_reads=_env_bool("MKTX_COALESCE_READS", False),
            publish_grace_seconds=_env_float("MKTX_PUBLISH_GRACE", 3600.0),
            publish_concurrency=max(1, _env_int("MKTX_PUBLISH_CONCURRENCY", 16)),
            post_media_max_bytes=_env_int("MKTX_POST_MEDIA_MAX_BYTES", 512 * 1024 * 1024),
            media_ca_file=_env("MKTX_MEDIA_CA_FILE"),
            ai_base_url=_env("MKTX_AI_BASE_URL"),
            ai_api_key=_env("MKTX_AI_API_KEY"),
            ai_default_model=_env("MKTX_AI_MODEL", "gpt-4o-mini"),
            ai_timeout=_env_float("MKTX_AI_TIMEOUT", 20.0),
            ai_max_retries=max(0, _env_int("MKTX_AI_MAX_RETRIES", 1)),
            ai_breaker_failures=max(1, _env_int("MKTX_AI_BREAKER_FAILURES", 5)),
            ai_breaker_reset=_env_float("MKTX_AI_BREAKER_RESET", 30.0),
            ai_moderation=_env_bool("MKTX_AI_MODERATION", True),
            ai_http=_env("MKTX_AI_HTTP", "aiohttp").strip().lower(),
            auto_reply_concurrency=max(1, _env_int("MKTX_AUTO_REPLY_CONCURRENCY", 32)),
        )

    def replace(self, **changes: object) -> Settings:
        """Return a copy with ``changes`` applied (tests and the CLI use this)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
