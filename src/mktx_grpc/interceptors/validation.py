"""Runs the method table's validation rule; all violations are reported together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from ..core.errors import InvalidArgument
from ..methods import spec_for
from ._stream import call_next


class ValidationInterceptor(AsyncServerInterceptor):
    async def intercept(
        self,
        method: Callable[..., Any],
        request: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        rule = spec_for(method_name).validate
        if rule is not None:
            violations = rule(request)
            if violations:
                raise InvalidArgument(violations)
        return await call_next(method, request, context)
