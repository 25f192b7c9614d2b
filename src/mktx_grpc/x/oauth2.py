"""OAuth 2.0 Authorization Code with PKCE (S256): helpers and token types."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OAuth2Token", "PkcePair", "new_pkce", "new_state", "s256_challenge"]


@dataclass(frozen=True, slots=True)
class PkcePair:
    """A PKCE verifier (kept by the caller until the code exchange) and its challenge."""

    verifier: str = field(repr=False)
    challenge: str


def s256_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(verifier))`` without padding (RFC 7636 S256)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pkce() -> PkcePair:
    """A fresh verifier of 64 URL-safe characters (RFC 7636 allows 43-128)."""
    verifier = secrets.token_urlsafe(48)
    return PkcePair(verifier=verifier, challenge=s256_challenge(verifier))


def new_state() -> str:
    """An unguessable ``state`` value (X allows up to 500 characters)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class OAuth2Token:
    """A token response. Refresh tokens rotate: store the new pair atomically.

    ``expires_at`` is epoch seconds computed from ``expires_in`` at receipt.
    ``refresh_token`` is None when the ``offline.access`` scope was not granted.
    """

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int | None
    expires_at: float | None
    scope: tuple[str, ...]
    refresh_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, now: float | None = None) -> OAuth2Token:
        """Parse X's token response; raises KeyError/TypeError on a malformed one."""
        received = time.time() if now is None else now
        expires_in = data.get("expires_in")
        exp = int(expires_in) if expires_in is not None else None
        scope = data.get("scope") or ""
        return cls(
            access_token=str(data["access_token"]),
            token_type=str(data.get("token_type", "bearer")),
            expires_in=exp,
            expires_at=received + exp if exp is not None else None,
            scope=tuple(str(scope).split()),
            refresh_token=data.get("refresh_token"),
        )
