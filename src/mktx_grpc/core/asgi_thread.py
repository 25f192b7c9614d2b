"""An ASGI app served by uvicorn on a thread of its own: how the local stand-ins (the
X sandbox, the OpenAI-compatible stand-in, test receivers) run inside a process."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

__all__ = ["ThreadedASGIServer"]


class ThreadedASGIServer:
    """Any ASGI app served by uvicorn on its own thread and event loop.

    The socket is bound before the thread starts, so ``base_url`` is known at once
    and port 0 gives a free port. Works from sync and async callers alike.
    """

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            # Trust X-Forwarded-Proto from loopback, so a client reaching the
            # sandbox through a rewriting proxy still signs the URL it addressed.
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
            # A stalled request (fault injection) must not hold up a stop.
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """Where a client on this machine reaches it (a wildcard bind: loopback)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; raises RuntimeError if uvicorn is not up within ``timeout``."""
        self._thread.start()
        give_up = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > give_up:
                raise RuntimeError("ASGI server failed to start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
