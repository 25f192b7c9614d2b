"""Credentials bound to the client: the base of every per-concern call mixin.

A :class:`CallContext` is the client plus one set of credentials. Its
:meth:`CallContext._call` is :meth:`Transport.request` with those credentials, so
every call a mixin makes (``users``, ``dms``, ``media``, ``posts``, ``webhooks``)
has the transport's deadline, retry, rate-limit and breaker rules and raises its
typed errors (see :mod:`mktx_grpc.x.transport`). A context holds no state of its
own beyond the credentials and is cheap to make per call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from .credentials import Credentials

if TYPE_CHECKING:
    from .client import XClient

__all__ = ["CallContext"]


class CallContext:
    """The client and the credentials every call of this context is made with."""

    def __init__(self, client: XClient, auth: Credentials) -> None:
        self._client = client
        self._auth = auth

    async def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return await self._client.request(method, path, auth=self._auth, **kw)
