"""The server's method lookup, which refuses credential-less calls before reading
their request.

grpc.aio reads (and buffers) a unary request in full before any handler runs, so a
15 MB request without a token used to cost 15 MB before auth said no. The lookup
(``GenericRpcHandler.service``) sees the method and the metadata before a byte of
the message is read: a call to a non-public method without ``authorization``
metadata gets the method's *refusal* handler instead: a client-streaming handler
(so grpc never reads the request) behind the same interceptor chain, whose auth
stage answers UNAUTHENTICATED before the request is touched. The answer, the log
line and the metrics are exactly those of any unauthenticated call. Calls with a
token, valid or not, take the normal path (the auth stage verifies it), and the
server's maximum receive size bounds what they can send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from ..core.errors import Unauthenticated
from ..methods import spec_for

__all__ = ["REFUSAL", "GatedMethods"]


async def _refuse(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
    # Behind the chain the auth stage refuses first; this is only a backstop. The
    # request is never iterated, so never read.
    raise Unauthenticated("missing authorization metadata", reason="MISSING_CREDENTIALS")


#: The refusal behaviour, to be wrapped in the interceptor chain per method.
REFUSAL = grpc.stream_unary_rpc_method_handler(_refuse)


def _has_authorization(metadata: Any) -> bool:
    return any(key == "authorization" for key, _ in metadata or ())


class GatedMethods(grpc.GenericRpcHandler):  # type: ignore[misc]
    """One service's methods (``{name: handler}``), looked up by full method name;
    ``refusals`` holds each method's refusal handler (:data:`REFUSAL` in the chain)."""

    def __init__(
        self,
        service: str,
        handlers: Mapping[str, grpc.RpcMethodHandler],
        refusals: Mapping[str, grpc.RpcMethodHandler],
    ) -> None:
        self._handlers = {f"/{service}/{name}": h for name, h in handlers.items()}
        self._refusals = {f"/{service}/{name}": h for name, h in refusals.items()}
        self._public = {m for m in self._handlers if spec_for(m).public}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        method = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is None or method in self._public:
            return handler
        if not _has_authorization(handler_call_details.invocation_metadata):
            return self._refusals.get(method, handler)
        return handler
