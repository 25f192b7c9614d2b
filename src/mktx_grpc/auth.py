"""JWT verification and minting for the API's bearer tokens.

Tokens carry ``merchant_id`` (UUID) and ``sub`` (the user id). HS256 tokens are
verified with the configured secret; when an RS256 public key is configured, only
RS256 tokens are accepted. ``exp`` is required.
"""

from __future__ import annotations

import time
from uuid import UUID

import jwt

from .config import Settings
from .context import Principal
from .errors import Unauthenticated


class TokenVerifier:
    """Verifies bearer tokens into principals."""

    def __init__(self, settings: Settings) -> None:
        if settings.jwt_public_key:
            self._key: str | bytes = settings.jwt_public_key
            self._algorithms = ["RS256"]
        elif settings.jwt_secret:
            self._key = settings.jwt_secret
            self._algorithms = ["HS256"]
        else:
            raise ValueError("no JWT key configured")
        self._issuer = settings.jwt_issuer or None
        self._audience = settings.jwt_audience or None

    def verify(self, token: str) -> Principal:
        """Return the token's principal.

        Raises Unauthenticated (reason TOKEN_EXPIRED or INVALID_TOKEN) when the token
        is expired, forged, malformed or lacks a UUID ``merchant_id``.
        """
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "merchant_id"], "verify_aud": bool(self._audience)},
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from None
        except jwt.PyJWTError:
            raise Unauthenticated("invalid token", reason="INVALID_TOKEN") from None
        try:
            merchant_id = UUID(str(claims["merchant_id"]))
        except ValueError:
            raise Unauthenticated("invalid token", reason="INVALID_TOKEN") from None
        return Principal(merchant_id=merchant_id, user_id=str(claims.get("sub", "")))


def mint_token(
    settings: Settings,
    merchant_id: UUID,
    *,
    user_id: str = "dev",
    ttl_seconds: int = 24 * 3600,
    private_key: str | None = None,
) -> str:
    """Mint a token for ``merchant_id`` (HS256 with the configured secret, or RS256
    with ``private_key``). For development, tests and scripts."""
    now = int(time.time())
    claims: dict[str, object] = {
        "merchant_id": str(merchant_id),
        "sub": user_id,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if private_key:
        return jwt.encode(claims, private_key, algorithm="RS256")
    if not settings.jwt_secret:
        raise ValueError("minting needs MKTX_JWT_SECRET (or a private key for RS256)")
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
