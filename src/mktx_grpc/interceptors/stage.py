"""The three shapes an interceptor stage of ours takes, so the chain can run them in
one frame (:mod:`.chain`).

Most stages do not need to wrap a call; they look at it before it runs or after it
ended:

- :class:`Guard` (and :class:`AsyncGuard`): looks at a call before it runs, and
  refuses it (raises) or lets it through, possibly with the request replaced (a
  client stream wrapped in a checking iterator). Decode, auth, the rate limit and
  validation are guards.
- :class:`Observer`: sees each call start and, once it ended, its outcome (for a
  response stream, once the stream ended). Logging and metrics are observers.
- :class:`ErrorMapper`: turns what a call raised into the status the client gets
  (it always raises). Error mapping is one.

Each is still a complete grpc-interceptor ``AsyncServerInterceptor`` (its
``intercept`` is written in terms of its hooks, so a stage has one implementation),
and can be registered with any server on its own. The chain, knowing the shapes,
runs a run of observers, an error mapper and guards as one coroutine per call
instead of one awaited frame per stage: while the handler waits for the database,
only that one frame sits above it, so each resumption of the call walks one frame,
not eight.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from ._stream import call_next

__all__ = ["AsyncGuard", "ErrorMapper", "Guard", "Observer"]


class Guard(AsyncServerInterceptor):
    """Checks a call before it runs (see the module docstring)."""

    def check(self, request: Any, context: grpc.aio.ServicerContext, method_name: str) -> Any:
        """The request to run the call with (usually ``request`` itself); raise to
        refuse the call."""
        raise NotImplementedError

    async def intercept(
        self,
        method: Callable[..., Any],
        request: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        return await call_next(method, self.check(request, context, method_name), context)


class AsyncGuard(AsyncServerInterceptor):
    """A :class:`Guard` whose check awaits (storage, a first load)."""

    async def check(self, request: Any, context: grpc.aio.ServicerContext, method_name: str) -> Any:
        raise NotImplementedError

    async def intercept(
        self,
        method: Callable[..., Any],
        request: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        request = await self.check(request, context, method_name)
        return await call_next(method, request, context)


class Observer(AsyncServerInterceptor):
    """Sees each call's start and outcome (see the module docstring). Both hooks are
    synchronous and must not raise."""

    def start(self, context: grpc.aio.ServicerContext, method_name: str) -> Any:
        """Called as the call starts; what it returns is given to :meth:`finish`."""
        raise NotImplementedError

    def finish(
        self,
        state: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
        exc: BaseException | None,
    ) -> None:
        """Called once the call ended: ``exc`` is what it raised, None when it
        returned (for a response stream: when the stream ended)."""
        raise NotImplementedError

    async def intercept(
        self,
        method: Callable[..., Any],
        request: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        state = self.start(context, method_name)
        try:
            # call_next inlined: the next stage returns an awaitable, whose result
            # is an async iterator for streaming RPCs.
            result = method(request, context)
            if not hasattr(result, "__aiter__"):
                result = await result
        except BaseException as exc:
            self.finish(state, context, method_name, exc)
            raise
        if hasattr(result, "__aiter__"):
            return self._stream(result, state, context, method_name)
        self.finish(state, context, method_name, None)
        return result

    async def _stream(
        self,
        it: AsyncIterator[Any],
        state: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> AsyncIterator[Any]:
        failure: BaseException | None = None
        try:
            async for item in it:
                yield item
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self.finish(state, context, method_name, failure)


class ErrorMapper(AsyncServerInterceptor):
    """Answers what a call raised (see the module docstring)."""

    async def on_error(
        self, exc: Exception, context: grpc.aio.ServicerContext, method_name: str
    ) -> NoReturn:
        """Abort the call with the status for ``exc`` (or re-raise it)."""
        raise NotImplementedError

    async def intercept(
        self,
        method: Callable[..., Any],
        request: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        try:
            result = await call_next(method, request, context)
        except Exception as exc:
            await self.on_error(exc, context, method_name)
        if hasattr(result, "__aiter__"):
            return self._stream(result, context, method_name)
        return result

    async def _stream(
        self, it: AsyncIterator[Any], context: grpc.aio.ServicerContext, method_name: str
    ) -> AsyncIterator[Any]:
        try:
            async for item in it:
                yield item
        except Exception as exc:
            await self.on_error(exc, context, method_name)
