"""Credentials a call is made with.

Secrets are excluded from ``repr`` so that a credential object printed into a
log line or a traceback leaks nothing. ``fingerprint`` gives a stable,
non-secret identifier for budgets and logs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = ["AppBearer", "Credentials", "OAuth1Credentials", "OAuth2Credentials"]


def _fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class OAuth1Credentials:
    """OAuth 1.0a user context: the user's access token and secret.

    ``consumer_key``/``consumer_secret`` default to the app's (``XConfig``); set
    them only when a user was connected through a different app.
    """

    token: str = field(repr=False)
    token_secret: str = field(repr=False)
    consumer_key: str | None = field(default=None, repr=False)
    consumer_secret: str | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        return "o1:" + _fingerprint(self.token)


@dataclass(frozen=True, slots=True)
class OAuth2Credentials:
    """OAuth 2.0 user context: a bearer access token from the PKCE flow."""

    access_token: str = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return "o2:" + _fingerprint(self.access_token)


@dataclass(frozen=True, slots=True)
class AppBearer:
    """App-only bearer token (webhook management, subscription removal)."""

    bearer_token: str = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return "app:" + _fingerprint(self.bearer_token)


Credentials = OAuth1Credentials | OAuth2Credentials | AppBearer
