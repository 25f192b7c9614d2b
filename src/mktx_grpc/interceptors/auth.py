"""Authenticates every non-public RPC from ``authorization: Bearer <JWT>``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from ..core.auth import TokenVerifier
from ..core.context import principal_var
from ..core.errors import Unauthenticated
from ..methods import spec_for
from ._stream import call_next


class AuthInterceptor(AsyncServerInterceptor):
    """Sets the request's Principal, or raises Unauthenticated.

    Public methods (health, reflection) pass without a token.
    """

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def intercept(
        self,
        method: Callable[..., Any],
        request: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        if not spec_for(method_name).public:
            principal_var.set(self._verifier.verify(_bearer(context)))
        return await call_next(method, request, context)


def _bearer(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise Unauthenticated("authorization must be 'Bearer <token>'", reason="INVALID_TOKEN")
    raise Unauthenticated("missing authorization metadata", reason="MISSING_CREDENTIALS")
