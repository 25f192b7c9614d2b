"""Validates every request: first the checks every message gets (no NUL or control
characters in any string, valid Timestamps and Durations anywhere:
:mod:`mktx_grpc.validation.wire`), then the method table's rule. The rule runs only
on a request that passed the first checks (rules may then convert times freely);
each step reports all its violations together. Client-streaming requests get the
first checks on every message as the servicer reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from ..core.errors import InvalidArgument
from ..methods import spec_for
from ..validation.wire import check_request
from .stage import Guard


class ValidationInterceptor(Guard):
    def check(self, request: Any, context: grpc.aio.ServicerContext, method_name: str) -> Any:
        if hasattr(request, "__aiter__"):
            return _checked_stream(request)
        violations = check_request(request)
        if violations:
            raise InvalidArgument(violations)
        rule = spec_for(method_name).validate
        if rule is not None:
            violations = rule(request)
            if violations:
                raise InvalidArgument(violations)
        return request


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for item in requests:
        violations = check_request(item)
        if violations:
            raise InvalidArgument(violations)
        yield item
