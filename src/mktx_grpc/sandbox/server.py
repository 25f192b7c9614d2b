"""Run the sandbox: in a background thread for tests, or in the foreground (CLI)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from mktx_grpc.x.client import XConfig

from ..core.asgi_thread import ThreadedASGIServer
from .app import create_sandbox_app
from .config import DEFAULT_PORT, DEFAULT_TIER, TIERS, SandboxConfig
from .delivery import WebhookDeliverer
from .persistence import StatePersister
from .state import SandboxState

__all__ = ["DEFAULT_PORT", "SandboxServer", "ThreadedASGIServer", "main"]


class SandboxServer:
    """The X sandbox on a loopback port, with its webhook deliverer and, when
    ``config.state_file`` is set, its state persister (loaded here, saved after
    changes and on :meth:`stop`).

    ``port`` 0 (the default, for tests) takes any free port; the CLI defaults to
    :data:`DEFAULT_PORT`.

    >>> with SandboxServer() as sandbox:
    ...     x = XClient(sandbox.x_config())
    """

    def __init__(
        self, config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or SandboxConfig()
        self.state = SandboxState(self.config)
        self.persister: StatePersister | None = None
        self.restored = False
        if self.config.state_file:
            self.persister = StatePersister(
                self.state, self.config.state_file, debounce=self.config.save_debounce
            )
            self.restored = self.persister.load()
        self.app = create_sandbox_app(state=self.state)
        self._deliverer = WebhookDeliverer(self.state)
        self._server = ThreadedASGIServer(self.app, host=host, port=port)

    @property
    def base_url(self) -> str:
        return self._server.base_url

    def start(self) -> SandboxServer:
        if self.persister is not None:
            self.persister.start()
        self._deliverer.start()
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving (stalled answers give up), deliver nothing more, and write
        the state file a last time."""
        self.state.stopping.set()
        self._server.stop()
        self._deliverer.stop()
        if self.persister is not None:
            self.persister.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def x_config(self, **overrides: Any) -> XConfig:
        """An ``XConfig`` with this sandbox's URLs and app credentials."""
        base = self.base_url
        values: dict[str, Any] = {
            "consumer_key": self.config.consumer_key,
            "consumer_secret": self.config.consumer_secret,
            "oauth2_client_id": self.config.oauth2_client_id,
            "oauth2_client_secret": self.config.oauth2_client_secret,
            "app_bearer_token": self.config.app_bearer_token,
            "api_base_url": base,
            "upload_base_url": base,
            "oauth1_authorize_url": f"{base}/oauth/authorize",
            "oauth2_authorize_url": f"{base}/i/oauth2/authorize",
        }
        values.update(overrides)
        return XConfig(**values)


def main(argv: list[str] | None = None) -> int:
    """Serve the sandbox in the foreground until interrupted (``mktx-grpc x-sandbox``)."""
    parser = argparse.ArgumentParser(prog="x-sandbox", description="Local emulator of X's API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0: any free port"
    )
    parser.add_argument("--tier", choices=TIERS, default=DEFAULT_TIER, help="X access tier")
    parser.add_argument(
        "--state-file", type=Path, default=None, help="keep users, tokens, webhooks... here"
    )
    parser.add_argument("--no-rate-limits", action="store_true", help="start with limits lifted")
    parser.add_argument("--no-echo", action="store_true", help="do not echo sent DMs to webhooks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = SandboxConfig(
        rate_limits_enabled=not args.no_rate_limits,
        echo_dm_to_webhook=not args.no_echo,
        tier=args.tier,
        state_file=args.state_file,
    )
    server = SandboxServer(config, host=args.host, port=args.port)
    stop = threading.Event()
    server.start()
    print(
        f"X sandbox on {server.base_url} (tier {config.tier}, "
        f"consumer key {config.consumer_key}, OAuth2 client id {config.oauth2_client_id}); "
        "admin API under /_sandbox"
        + (f"; state in {config.state_file}" if config.state_file else ""),
        flush=True,
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        server.stop()
    return 0
