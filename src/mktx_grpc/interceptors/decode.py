"""Requests decoded by us, so that bytes which are not a valid message answer
INVALID_ARGUMENT and not UNKNOWN.

grpc.aio runs a method's ``request_deserializer`` before any interceptor; when it
raises (``DecodeError`` on corrupt wire format or on nesting past the decoder's
depth limit), grpc answers UNKNOWN with the exception's text. Every method's
deserializer is therefore wrapped (:func:`checked_deserializer`, applied by
:func:`~.chain.chained_handler` to every method, health and reflection included):
it never raises, and returns an :class:`Undecodable` marker instead.
:class:`DecodeInterceptor`, the first stage after error mapping, turns the marker
into INVALID_ARGUMENT (field ``request``; no parser internals), before auth,
validation or any other work. For client-streaming methods it checks each message
as the servicer reads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from ..core.errors import FieldViolation, InvalidArgument
from .stage import Guard

__all__ = ["DecodeInterceptor", "Undecodable", "checked_deserializer"]


class Undecodable:
    """Stands for a request whose bytes did not decode."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def error(self) -> InvalidArgument:
        text = f"is not a valid {self.type_name} message (malformed protobuf bytes)"
        return InvalidArgument(
            [FieldViolation("request", text)], f"the request {text}", reason="MALFORMED_REQUEST"
        )


def checked_deserializer(
    deserializer: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    """``deserializer`` returning :class:`Undecodable` instead of raising."""
    if deserializer is None or getattr(deserializer, "_mktx_checked", False):
        return deserializer
    owner = getattr(deserializer, "__self__", None)
    type_name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request")

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # DecodeError, RecursionError, anything a parser raises
            return Undecodable(type_name)

    deserialize._mktx_checked = True  # type: ignore[attr-defined]
    return deserialize


class DecodeInterceptor(Guard):
    def check(self, request: Any, context: grpc.aio.ServicerContext, method_name: str) -> Any:
        if isinstance(request, Undecodable):
            raise request.error()
        if hasattr(request, "__aiter__"):
            return _checked_stream(request)
        return request


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for item in requests:
        if isinstance(item, Undecodable):
            raise item.error()
        yield item
