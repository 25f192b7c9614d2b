"""UNIMPLEMENTED (with ErrorInfo) for every RPC a servicer does not define yet.

The generated base classes answer UNIMPLEMENTED without details; these stubs raise
the domain error instead, so the error interceptor attaches
``ErrorInfo(reason=NOT_IMPLEMENTED)`` naming the method, like every other error.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from ..core.errors import Unimplemented


def _stub(full_name: str) -> Any:
    async def method(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        raise Unimplemented(f"{full_name} is not implemented yet", metadata={"method": full_name})

    return method


def complete(servicer_cls: type, generated_base: type, service: ServiceDescriptor) -> type:
    """Return a subclass of ``servicer_cls`` whose missing RPCs raise Unimplemented.

    An RPC counts as implemented when ``servicer_cls`` overrides the method of the
    generated ``generated_base``.
    """
    namespace: dict[str, Any] = {}
    for m in service.methods:
        impl = getattr(servicer_cls, m.name, None)
        base_impl = getattr(generated_base, m.name, None)
        if impl is None or impl is base_impl:
            namespace[m.name] = _stub(f"{service.full_name}/{m.name}")
    return type(servicer_cls.__name__, (servicer_cls,), namespace)
