"""OAuth 1.0a HMAC-SHA1 request signing (user context and the 3-legged flow).

Query parameters and form-urlencoded body parameters are signed; JSON and
multipart bodies are not (X signs only the ``oauth_*`` parameters then).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from oauthlib.oauth1 import SIGNATURE_HMAC, SIGNATURE_TYPE_AUTH_HEADER
from oauthlib.oauth1 import Client as _OAuthlibClient

__all__ = [
    "FORM_CONTENT_TYPE",
    "OAuth1AccessToken",
    "OAuth1RequestToken",
    "encode_form",
    "oauth1_authorization_header",
]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class _DropOAuthlibDebug(logging.Filter):
    """oauthlib logs collected parameters and signature base strings at DEBUG,
    which include ``oauth_token``; credentials must never reach our logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


for _name in ("oauthlib.oauth1.rfc5849", "oauthlib.oauth1.rfc5849.signature"):
    logging.getLogger(_name).addFilter(_DropOAuthlibDebug())


@dataclass(frozen=True, slots=True)
class OAuth1RequestToken:
    """Step 1 result. The secret is needed again for step 3."""

    token: str
    token_secret: str = field(repr=False)
    callback_confirmed: bool


@dataclass(frozen=True, slots=True)
class OAuth1AccessToken:
    """Step 3 result: the user's long-lived token pair and identity."""

    token: str = field(repr=False)
    token_secret: str = field(repr=False)
    user_id: str
    screen_name: str


def encode_form(form: Mapping[str, str]) -> str:
    """RFC 3986 form encoding (space as %20), the same bytes that get signed."""
    return urlencode(list(form.items()), quote_via=quote, safe="~")


def oauth1_authorization_header(
    method: str,
    url: str,
    *,
    consumer_key: str,
    consumer_secret: str,
    token: str | None = None,
    token_secret: str | None = None,
    form_body: str | None = None,
    callback_uri: str | None = None,
    verifier: str | None = None,
    nonce: str | None = None,
    timestamp: str | None = None,
) -> str:
    """Return the ``Authorization: OAuth ...`` header value for one request.

    ``url`` is the full URL as sent (its query is signed). ``form_body`` is the
    exact urlencoded body when the request carries one; pass None for JSON,
    multipart or empty bodies. ``nonce``/``timestamp`` exist for test vectors;
    production calls let oauthlib generate fresh ones per request.

    Raises ``ValueError`` when ``form_body`` cannot be decoded as a form.
    """
    client = _OAuthlibClient(
        consumer_key,
        client_secret=consumer_secret,
        resource_owner_key=token,
        resource_owner_secret=token_secret,
        callback_uri=callback_uri,
        verifier=verifier,
        signature_method=SIGNATURE_HMAC,
        signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        nonce=nonce,
        timestamp=timestamp,
    )
    headers = {"Content-Type": FORM_CONTENT_TYPE} if form_body else None
    _, signed_headers, _ = client.sign(
        url, http_method=method.upper(), body=form_body or None, headers=headers
    )
    return str(signed_headers["Authorization"])
