"""JWT verification and minting for the API's bearer tokens.

Tokens carry ``merchant_id`` (UUID) and ``sub`` (the user id). HS256 tokens are
verified with the configured secret; when an RS256 public key is configured, only
RS256 tokens are accepted. ``exp`` is required; with ``MKTX_JWT_MAX_LIFETIME`` set
(recommended in production), a token whose ``exp`` lies further ahead than that is
refused, so a leaked long-lived token cannot be used for years.

A refused token's UNAUTHENTICATED message names the check that failed (signature,
expiry, not yet valid, issuer, audience, algorithm, a missing or malformed claim,
lifetime) and ``ErrorInfo.metadata["check"]`` carries the same as a word; neither
ever repeats the token, the key or a claim's value.
"""

from __future__ import annotations

import time
from uuid import UUID

import jwt

from .config import Settings
from .context import Principal
from .errors import Unauthenticated

#: Clock skew allowed on ``exp``, ``nbf`` and ``iat``, in seconds.
LEEWAY_SECONDS = 30
#: Verified tokens remembered per process (clients reuse one token for many calls).
CACHE_SIZE = 4096


class TokenVerifier:
    """Verifies bearer tokens into principals.

    A token that verified is remembered (up to ``CACHE_SIZE``, oldest dropped first)
    with the time window its ``iat``/``nbf``/``exp`` claims allow, so a client reusing
    one token does not pay for HMAC/RSA and JSON decoding on every call. A remembered
    token outside its window, and every token that failed, goes through the full
    verification again, so the outcome is the same as without the cache: the key,
    issuer and audience never change for the life of the verifier.
    """

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
        self._max_lifetime = settings.jwt_max_lifetime
        #: token -> (principal, valid from, valid until), both bounds in epoch seconds.
        self._verified: dict[str, tuple[Principal, float, float]] = {}

    def verify(self, token: str) -> Principal:
        """Return the token's principal.

        Raises Unauthenticated (reason TOKEN_EXPIRED or INVALID_TOKEN) when the token
        is expired, forged, malformed, lacks a UUID ``merchant_id`` or (with a maximum
        lifetime configured) expires too far ahead; the message says which.
        """
        hit = self._verified.get(token)
        if hit is not None:
            principal, valid_from, valid_until = hit
            if valid_from <= time.time() < valid_until:
                return principal
            del self._verified[token]
        claims = self._decode(token)
        try:
            merchant_id = UUID(str(claims["merchant_id"]))
        except ValueError:
            raise _invalid("merchant_id", "the merchant_id claim is not a UUID") from None
        if self._max_lifetime > 0:
            # exp - now, not exp - iat: the signer chooses iat too. A token that passes
            # this only gets closer to its exp, so remembering it below stays right.
            exp = claims["exp"]
            if not isinstance(exp, int | float) or exp > time.time() + self._max_lifetime:
                raise _invalid(
                    "lifetime",
                    f"it expires more than {self._max_lifetime} seconds from now, the longest "
                    "lifetime this server accepts (MKTX_JWT_MAX_LIFETIME)",
                )
        principal = Principal(merchant_id=merchant_id, user_id=str(claims.get("sub", "")))
        self._remember(token, principal, claims)
        return principal

    def _decode(self, token: str) -> dict[str, object]:
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "merchant_id"], "verify_aud": bool(self._audience)},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(
                "token expired: its exp is in the past; mint a new one",
                reason="TOKEN_EXPIRED",
                metadata={"check": "expiry"},
            ) from None
        except jwt.PyJWTError as exc:
            raise _invalid(*_failed_check(exc, self._algorithms)) from None
        return claims

    def _remember(self, token: str, principal: Principal, claims: dict[str, object]) -> None:
        # PyJWT accepts when iat <= now + leeway, nbf <= now + leeway and
        # exp > now - leeway; the window below is exactly that, so a hit inside it
        # is a token PyJWT would accept now.
        try:
            starts = [int(claims[c]) for c in ("iat", "nbf") if c in claims]  # type: ignore[call-overload]
            valid_until = float(int(claims["exp"]) + LEEWAY_SECONDS)  # type: ignore[call-overload]
        except (TypeError, ValueError, OverflowError):
            return
        valid_from = float(max(starts) - LEEWAY_SECONDS) if starts else float("-inf")
        if len(self._verified) >= CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (principal, valid_from, valid_until)


def _invalid(check: str, why: str) -> Unauthenticated:
    return Unauthenticated(
        f"invalid token: {why}", reason="INVALID_TOKEN", metadata={"check": check}
    )


def _failed_check(exc: jwt.PyJWTError, algorithms: list[str]) -> tuple[str, str]:
    """(check, explanation) for a PyJWT failure. Only fixed text and the names of
    claims and algorithms: nothing from the token's values or the key."""
    if isinstance(exc, jwt.InvalidSignatureError):
        return "signature", (
            "the signature does not verify with this server's key (was it minted with "
            "another secret? `mktx-grpc token` must use the server's MKTX_JWT_SECRET or "
            "its data directory)"
        )
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "algorithm", f"it is not signed with {' or '.join(algorithms)}"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return "claim", f"the required {exc.claim} claim is missing"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "not_before", "it is not valid yet (nbf or iat is in the future)"
    if isinstance(exc, jwt.InvalidIssuedAtError):
        return "issued_at", "its iat claim is not a number"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "issuer", "its iss claim is not the issuer this server requires"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "audience", "its aud claim does not name this server's audience"
    if isinstance(exc, jwt.DecodeError):
        return "format", "it is not a well-formed JWT (header.payload.signature)"
    return "claims", "a claim is malformed"


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
