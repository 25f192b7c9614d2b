"""HMAC helpers for X's Account Activity webhooks (CRC and delivery signature).

Shared by the sandbox (which produces them) and the webhook sidecar (which checks
them), so both sides compute exactly the same thing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["crc_response_token", "verify_webhook_signature", "webhook_signature"]


def _b64_hmac(secret: str, message: bytes) -> str:
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def crc_response_token(consumer_secret: str, crc_token: str) -> str:
    """The ``response_token`` value answering X's CRC challenge ``crc_token``."""
    return _b64_hmac(consumer_secret, crc_token.encode())


def webhook_signature(consumer_secret: str, body: bytes) -> str:
    """The ``x-twitter-webhooks-signature`` header value for a raw delivery body."""
    return _b64_hmac(consumer_secret, body)


def verify_webhook_signature(consumer_secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of a delivery's signature header against its raw body.

    Compared as bytes: ``hmac.compare_digest`` raises TypeError on non-ASCII
    strings, and a header may hold anything. A header that does not encode (a lone
    surrogate) is simply wrong."""
    if not header:
        return False
    try:
        given = header.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(webhook_signature(consumer_secret, body).encode(), given)
