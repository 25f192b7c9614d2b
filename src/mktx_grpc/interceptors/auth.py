"""Authenticates every non-public RPC from ``authorization: Bearer <JWT>``."""

from __future__ import annotations

from typing import Any

import grpc

from ..core.auth import TokenVerifier
from ..core.context import principal_var
from ..core.errors import Unauthenticated
from ..methods import spec_for
from .stage import Guard


class AuthInterceptor(Guard):
    """Sets the request's Principal, or raises Unauthenticated.

    Public methods (health, reflection) pass without a token.
    """

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    def check(self, request: Any, context: grpc.aio.ServicerContext, method_name: str) -> Any:
        if not spec_for(method_name).public:
            principal_var.set(self._verifier.verify(_bearer(context)))
        return request


def _bearer(context: grpc.aio.ServicerContext) -> str:
    return bearer_token(context.invocation_metadata())


def bearer_token(metadata: Any) -> str:
    """The token of the first ``authorization: Bearer <token>`` entry of ``metadata``;
    Unauthenticated when there is none or it is not a bearer token."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise Unauthenticated("authorization must be 'Bearer <token>'", reason="INVALID_TOKEN")
    raise Unauthenticated("missing authorization metadata", reason="MISSING_CREDENTIALS")
