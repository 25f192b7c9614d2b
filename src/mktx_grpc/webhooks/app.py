"""The webhook sidecar application.

``GET /webhooks/twitter?crc_token=T`` answers X's challenge-response check with
``{"response_token": "sha256=" + base64(HMAC-SHA256(consumer_secret, T))}``.
``GET /healthz`` reports whether the database answers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..deps import Deps


def crc_response_token(consumer_secret: str, crc_token: str) -> str:
    digest = hmac.new(consumer_secret.encode(), crc_token.encode(), hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def create_webhook_app(deps: Deps, consumer_secret: str) -> Starlette:
    async def crc(request: Request) -> Response:
        token = request.query_params.get("crc_token", "")
        if not token or len(token) > 1024:
            return JSONResponse({"error": "crc_token is required"}, status_code=400)
        return JSONResponse({"response_token": crc_response_token(consumer_secret, token)})

    async def healthz(request: Request) -> Response:
        try:
            async with deps.pool.connection(timeout=2.0) as conn:
                await conn.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure is unhealthy
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/webhooks/twitter", crc, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
