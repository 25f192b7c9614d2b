"""Run the stand-in: on a thread for tests and in-process use, or in the foreground."""

from __future__ import annotations

import argparse
from types import TracebackType
from typing import TYPE_CHECKING, Any

import uvicorn

from mktx_grpc.core.asgi_thread import ThreadedASGIServer

from .app import create_standin_app
from .config import DEFAULT_API_KEY, StandinConfig
from .state import FaultRule, StandinState

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["AIStandinServer", "main"]


class AIStandinServer:
    """The OpenAI-compatible stand-in on a loopback port.

    >>> with AIStandinServer() as standin:
    ...     client = standin.client()
    ...     await client.chat.completions.create(model="gpt-4o-mini", messages=[...])
    """

    def __init__(
        self, config: StandinConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or StandinConfig()
        self.state = StandinState(self.config)
        self.app = create_standin_app(self.state)
        self._server = ThreadedASGIServer(self.app, host=host, port=port)

    @property
    def base_url(self) -> str:
        """The server root; the admin API is under ``{base_url}/_standin``."""
        return self._server.base_url

    @property
    def openai_base_url(self) -> str:
        """What ``AsyncOpenAI(base_url=...)`` takes: ``{base_url}/v1``."""
        return f"{self._server.base_url}/v1"

    @property
    def api_key(self) -> str:
        """A key the stand-in accepts (the first configured one)."""
        return self.state.config.api_keys[0] if self.state.config.api_keys else ""

    def client(self, **overrides: Any) -> AsyncOpenAI:
        """An ``AsyncOpenAI`` pointed here with a valid key and no retries, unless
        ``overrides`` say otherwise."""
        # Imported here: openai takes seconds to import and the CLI never needs it.
        from openai import AsyncOpenAI

        kwargs: dict[str, Any] = {
            "base_url": self.openai_base_url,
            "api_key": self.api_key,
            "max_retries": 0,
        }
        kwargs.update(overrides)
        return AsyncOpenAI(**kwargs)

    def start(self) -> AIStandinServer:
        """Start serving; raises RuntimeError if the server is not up in 10 s."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests held by a timeout fault are released first."""
        self.state.closing.set()
        self._server.stop()

    def __enter__(self) -> AIStandinServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Serve the stand-in in the foreground until interrupted (``mktx-grpc ai-standin``)."""
    parser = argparse.ArgumentParser(
        prog="ai-standin", description="Local OpenAI-compatible stand-in (no model, no key)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help=f"a key to accept (repeatable; default {DEFAULT_API_KEY})",
    )
    parser.add_argument("--no-auth", action="store_true", help="accept requests with any key")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay every answer (load tests)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of probability faults")
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (off by default: the admin API's request log has them)",
    )
    args = parser.parse_args(argv)
    config = StandinConfig(
        api_keys=tuple(args.api_keys or (DEFAULT_API_KEY,)),
        require_auth=not args.no_auth,
        seed=args.seed,
    )
    state = StandinState(config)
    if args.latency_ms > 0:
        state.add_fault(
            FaultRule(id=state.next_id("fault"), kind="latency", latency_ms=args.latency_ms)
        )
    if args.no_auth:
        auth = "no key needed"
    elif args.api_keys:
        auth = f"{len(args.api_keys)} key(s) from --api-key"
    else:
        auth = f"key {DEFAULT_API_KEY}"
    print(
        f"AI stand-in on http://{args.host}:{args.port}/v1 ({auth}); admin API under /_standin",
        flush=True,
    )
    try:
        # uvicorn's access log costs more per request than most answers; the request
        # log under /_standin/requests records every request anyway.
        uvicorn.run(
            create_standin_app(state),
            host=args.host,
            port=args.port,
            log_level="info",
            access_log=args.access_log,
        )
    finally:
        state.closing.set()
    return 0
