"""A minimal Account Activity webhook receiver for tests and demos.

Answers X's CRC with the consumer secret (or refuses, to test failures) and
records every delivery with its raw body and signature header, verified or not.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mktx_grpc.x.signatures import crc_response_token, verify_webhook_signature

from ..core.asgi_thread import ThreadedASGIServer

__all__ = ["ReceivedDelivery", "WebhookReceiver"]


@dataclass(frozen=True, slots=True)
class ReceivedDelivery:
    body: bytes
    signature: str | None
    signature_valid: bool

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """Serves ``/webhook`` on a loopback port. ``crc_mode`` is ``ok``, ``wrong``
    (answers with a bad token) or ``error`` (answers 500)."""

    def __init__(self, consumer_secret: str, *, crc_mode: str = "ok") -> None:
        self.consumer_secret = consumer_secret
        self.crc_mode = crc_mode
        self.crc_tokens: list[str] = []
        self.deliveries: list[ReceivedDelivery] = []
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/webhook", self._handle, methods=["GET", "POST"])])
        self._server = ThreadedASGIServer(app)

    @property
    def url(self) -> str:
        return f"{self._server.base_url}/webhook"

    def start(self) -> WebhookReceiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    async def _handle(self, request: Request) -> Response:
        if request.method == "GET":
            token = request.query_params.get("crc_token", "")
            with self._lock:
                self.crc_tokens.append(token)
            if self.crc_mode == "error":
                return Response(status_code=500)
            secret = self.consumer_secret if self.crc_mode == "ok" else "not-the-secret"
            return JSONResponse({"response_token": crc_response_token(secret, token)})
        body = await request.body()
        sig = request.headers.get("x-twitter-webhooks-signature")
        valid = verify_webhook_signature(self.consumer_secret, body, sig)
        with self._lock:
            self.deliveries.append(ReceivedDelivery(body, sig, valid))
        return Response(status_code=200)

    def wait_for(
        self, predicate: Callable[[list[ReceivedDelivery]], bool], timeout: float = 5.0
    ) -> list[ReceivedDelivery]:
        """Poll until ``predicate(deliveries)`` holds; raises TimeoutError otherwise."""
        give_up = time.monotonic() + timeout
        while True:
            with self._lock:
                snapshot = list(self.deliveries)
            if predicate(snapshot):
                return snapshot
            if time.monotonic() > give_up:
                raise TimeoutError(f"condition not met; {len(snapshot)} deliveries so far")
            time.sleep(0.01)
