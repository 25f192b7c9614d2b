"""The server's method lookup, which refuses unauthenticated calls before reading
their request.

grpc.aio reads (and buffers) a unary request in full before any handler runs, so a
15 MB request without a valid token used to cost 15 MB before auth said no. The
lookup (``GenericRpcHandler.service``) sees the method and the metadata before a
byte of the message is read: a call to a non-public method whose metadata carries no
token that verifies (none at all, not a bearer token, forged, expired, ...) gets the
method's *refusal* handler instead: a client-streaming handler (so grpc never reads
the request) behind the same interceptor chain, whose auth stage answers
UNAUTHENTICATED, with the message saying which check failed, before the request is
touched. The answer, the log line and the metrics are exactly those of any
unauthenticated call. Only calls whose token verifies take the normal path, and the
server's maximum receive size bounds what they can send. Verifying here costs a
dictionary lookup for a token seen before (``TokenVerifier`` remembers verified
tokens); the auth stage's own check of it is then a second lookup.

One lookup serves every service: grpc.aio asks each registered generic handler in
turn, so one handler for all methods is one call per RPC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grpc

from ..core.errors import Unauthenticated
from ..methods import spec_for
from .auth import bearer_token

__all__ = ["REFUSAL", "GatedMethods"]


async def _refuse(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
    # Behind the chain the auth stage refuses first; this is only a backstop. The
    # request is never iterated, so never read.
    raise Unauthenticated("missing authorization metadata", reason="MISSING_CREDENTIALS")


#: The refusal behaviour, to be wrapped in the interceptor chain per method.
REFUSAL = grpc.stream_unary_rpc_method_handler(_refuse)


class GatedMethods(grpc.GenericRpcHandler):  # type: ignore[misc]
    """The methods of every service added (``{name: handler}`` per service), looked
    up by full method name; each method's refusal handler (:data:`REFUSAL` in the
    chain) answers calls whose token ``verify`` rejects (raises Unauthenticated)."""

    def __init__(self, verify: Callable[[str], object]) -> None:
        self._verify = verify
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        self._refusals: dict[str, grpc.RpcMethodHandler] = {}
        self._public: set[str] = set()

    def add(
        self,
        service: str,
        handlers: Mapping[str, grpc.RpcMethodHandler],
        refusals: Mapping[str, grpc.RpcMethodHandler],
    ) -> None:
        for name, handler in handlers.items():
            method = f"/{service}/{name}"
            self._handlers[method] = handler
            self._refusals[method] = refusals[name]
            if spec_for(method).public:
                self._public.add(method)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        method = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is None or method in self._public:
            return handler
        try:
            self._verify(bearer_token(handler_call_details.invocation_metadata))
        except Unauthenticated:
            return self._refusals[method]
        return handler
