"""The webhook sidecar application (Starlette).

* ``GET /webhooks/twitter?crc_token=T`` answers X's challenge-response check with
  ``{"response_token": "sha256=" + base64(HMAC-SHA256(consumer_secret, T))}``; a
  missing token is 400.
* ``POST /webhooks/twitter`` takes an Account Activity delivery. In order: a body
  over ``max_body_bytes`` is 413 (Content-Length and the streamed body are both
  checked); a body not received within ``receive_timeout`` is 408; a missing or
  wrong ``x-twitter-webhooks-signature`` (HMAC-SHA256 of the raw body, compared in
  constant time as bytes; any header, even non-ASCII, is simply wrong) is 401; bad
  JSON, JSON nested deeper than :data:`~.body.MAX_DEPTH`, or a body that is not an
  Account Activity object is 400. Nothing is stored for any of these. A signed
  delivery holding what jsonb cannot store (NUL, a lone surrogate, NaN/Infinity) is
  recorded as received, in ``raw_body``, as one DEAD row with its reason, and
  answered 200: it can never be processed, and X must not redeliver it for ever
  (:mod:`.body`). Otherwise
  every event is recorded in ``webhook_inbox`` with one INSERT, committed, and only
  then 200 is returned; known event keys insert nothing, so redelivery and replay
  are harmless. A database failure answers 503, so X delivers again. New events
  are then handed to the in-process :class:`~.processor.InboxProcessor`.
* ``GET /healthz``: whether the database answers.
* ``GET /metrics``: Prometheus text: every process's metrics, these counters and
  the database's queue gauges (see :mod:`mktx_grpc.metrics`).

The processor starts with the app's lifespan, or on the first delivery when the
server runs without lifespan events; on lifespan shutdown it drains briefly.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..core.db import database_ok, use_connection
from ..deps import Deps
from ..store import inbox as inbox_store
from ..x.signatures import crc_response_token, verify_webhook_signature
from .body import BadBody, parse_body, storable_text
from .events import BadPayload, InboxEvent, split_delivery
from .metrics import DEFAULT_METRICS, WebhookMetrics
from .options import IngestOptions
from .payload import as_str
from .processor import InboxProcessor

__all__ = ["crc_response_token", "create_webhook_app"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-twitter-webhooks-signature"


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _TooLarge
        except ValueError:
            pass
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def create_webhook_app(
    deps: Deps,
    consumer_secret: str,
    *,
    options: IngestOptions | None = None,
    metrics: WebhookMetrics | None = None,
) -> Starlette:
    """Build the sidecar.

    ``options`` default to :meth:`IngestOptions.from_settings` on ``deps.settings``;
    ``metrics`` to the process-wide :data:`~.metrics.DEFAULT_METRICS`. With an empty
    ``consumer_secret`` every delivery is refused (401): an empty HMAC key would let
    anyone forge signatures. The app exposes ``app.state.processor`` and
    ``app.state.metrics``.
    """
    opts = options or IngestOptions.from_settings(deps.settings)
    m = metrics or DEFAULT_METRICS
    processor = InboxProcessor(deps.pool, opts, m)
    if not consumer_secret:
        log.warning("webhook sidecar has no X consumer secret: all deliveries are refused")

    def reject(reason: str, status: int, message: str) -> Response:
        m.rejected[reason] += 1
        return JSONResponse({"error": message}, status_code=status)

    async def crc(request: Request) -> Response:
        token = request.query_params.get("crc_token", "")
        if not token or len(token) > 1024:
            return JSONResponse({"error": "crc_token is required"}, status_code=400)
        if not consumer_secret:
            return JSONResponse({"error": "webhook secret not configured"}, status_code=503)
        return JSONResponse({"response_token": crc_response_token(consumer_secret, token)})

    async def deliver(request: Request) -> Response:
        m.requests += 1
        try:
            async with asyncio.timeout(opts.receive_timeout):
                body = await _read_body(request, opts.max_body_bytes)
        except TimeoutError:
            return reject("slow_body", 408, "body not received in time")
        except _TooLarge:
            return reject("too_large", 413, "payload too large")
        except ClientDisconnect:
            return reject("disconnected", 400, "client disconnected")
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            return reject("missing_signature", 401, "signature required")
        if not consumer_secret or not verify_webhook_signature(consumer_secret, body, signature):
            return reject("bad_signature", 401, "bad signature")
        try:
            parsed_body = parse_body(body)
        except BadBody as exc:
            return reject(exc.reason, 400, str(exc))
        parsed: Any = parsed_body.value
        if parsed_body.unstorable:
            return await record_unstorable(body, parsed, parsed_body.unstorable)
        try:
            events, unhandled = split_delivery(parsed)
        except BadPayload as exc:
            return reject("bad_payload", 400, str(exc))
        for kind in unhandled:
            m.unhandled[kind] += 1
        unique: dict[str, InboxEvent] = {}
        for ev in events:
            unique.setdefault(ev.event_key, ev)
        if not unique:
            return JSONResponse({"recorded": 0, "new": 0})
        evs = list(unique.values())
        try:
            async with use_connection(deps.pool, wait=2.0):  # then 503, within X's timeout
                # Autocommit: committed when this returns, before the 200.
                rows = await inbox_store.insert_events(
                    [e.event_key for e in evs],
                    [e.for_user_id for e in evs],
                    [e.event_type for e in evs],
                    [e.payload_json() for e in evs],
                    claim_delay=opts.claim_delay,
                )
        except Exception:
            log.exception("could not record a webhook delivery")
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
        new = [(int(r["id"]), unique[r["event_key"]]) for r in rows]
        for _, ev in new:
            m.received[ev.event_type] += 1
        m.duplicates += len(evs) - len(new)
        if new:
            processor.submit(new)
        return JSONResponse({"recorded": len(evs), "new": len(new)})

    async def record_unstorable(body: bytes, parsed: Any, reason: str) -> Response:
        for_user = as_str(parsed.get("for_user_id")) if isinstance(parsed, dict) else ""
        if not storable_text(for_user) or len(for_user) > 64:
            for_user = ""
        key = f"{for_user}:raw:{hashlib.sha256(body).hexdigest()}"
        try:
            async with use_connection(deps.pool, wait=5.0):
                new = await inbox_store.insert_dead_delivery(
                    key, for_user, "unstorable", body, f"unstorable delivery: {reason}"
                )
        except Exception:
            log.exception("could not record a webhook delivery")
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
        m.unstorable += 1
        log.warning("recorded an unstorable webhook delivery as DEAD: %s", reason)
        return JSONResponse({"recorded": 1, "new": int(new is not None), "dead": 1})

    async def healthz(request: Request) -> Response:
        if not await database_ok(deps.pool, within=1.0):
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(request: Request) -> Response:
        from ..metrics import CONTENT_TYPE, scrape

        return Response(await scrape(deps, m), media_type=CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        processor.start()
        try:
            yield
        finally:
            await processor.stop()

    app = Starlette(
        routes=[
            Route("/webhooks/twitter", crc, methods=["GET"]),
            Route("/webhooks/twitter", deliver, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.processor = processor
    app.state.metrics = m
    app.state.options = opts
    return app
