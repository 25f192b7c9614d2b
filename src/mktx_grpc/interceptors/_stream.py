from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc


async def call_next(
    method: Callable[..., Any], request: Any, context: grpc.aio.ServicerContext
) -> Any:
    """Invoke the next handler: await a unary result, pass an async iterator through."""
    result = method(request, context)
    if hasattr(result, "__aiter__"):
        return result
    return await result


def is_stream(result: Any) -> bool:
    return hasattr(result, "__aiter__")
