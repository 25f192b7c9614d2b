"""Delivers webhook payloads from a worker thread, in order, off the request path."""

from __future__ import annotations

import logging
import queue
import threading

import httpx

from .state import Delivery, SandboxState

__all__ = ["WebhookDeliverer"]

log = logging.getLogger("mktx_grpc.sandbox.delivery")


class WebhookDeliverer:
    """A daemon thread POSTing queued deliveries with X's signature header.

    A slow or broken receiver never blocks the sandbox's request handling; each
    outcome (status code or error) is written back onto the Delivery record.
    """

    def __init__(self, state: SandboxState, *, timeout: float = 5.0) -> None:
        self._state = state
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._timeout = timeout
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)

    def start(self) -> None:
        self._state.enqueue_delivery = self._queue.put
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as http:
            while True:
                d = self._queue.get()
                if d is None:
                    return
                try:
                    resp = http.post(
                        d.url,
                        content=d.body,
                        headers={
                            "content-type": "application/json",
                            "x-twitter-webhooks-signature": d.signature,
                        },
                    )
                    with self._state.lock:
                        d.status_code = resp.status_code
                        d.delivered_at = self._state.now()
                except httpx.HTTPError as exc:
                    log.info("webhook delivery to %s failed: %s", d.url, type(exc).__name__)
                    with self._state.lock:
                        d.error = type(exc).__name__
                        d.delivered_at = self._state.now()
