"""The per-merchant API rate limit, after auth and before validation.

Every authenticated call counts one hit against its merchant (a streaming call
counts once, when it starts). A call over the limit gets RESOURCE_EXHAUSTED with
reason ``RATE_LIMIT_EXCEEDED`` and ``google.rpc.RetryInfo``; every answered call,
success or error, carries the trailing metadata

- ``x-ratelimit-limit``: requests the merchant may make in any minute;
- ``x-ratelimit-remaining``: of those, how many are left now;
- ``x-ratelimit-reset``: when the next request frees up, in Unix seconds (X's own
  ``x-rate-limit-reset`` convention).

Health and reflection (public methods) are never limited, and calls rejected by auth
carry no rate-limit metadata (no merchant is known yet).

The algorithm and its storage are the ``limits`` package's: the sliding window
counter, over a window of one minute, allowing ``per_minute + burst`` requests. Why
that strategy: the moving window keeps one entry per request (in memory a list that
every hit inserts at the front, O(limit); in Redis a list of as many entries), and
the fixed window lets a client spend two windows' worth across a window boundary,
which would double the burst. The sliding window counter keeps two counters per
merchant (the current and the previous minute, weighted) and costs one Lua script
per hit on Redis. Burst: a merchant that was quiet may spend ``burst`` requests
above its sustained ``per_minute`` figure in a minute.

Storage: in-memory (one process) by default; a Redis URL in
``MKTX_RATE_LIMIT_STORAGE`` makes it one limit across every replica and worker
process. If the storage fails (Redis down), the call goes through without the
metadata and a warning is logged at most every 10 seconds: the limit fails open
rather than taking the API down with it.

The limit of a merchant is the operator's override (``merchant_settings``, set with
``mktx-grpc merchant-limits``) or the service default (``MKTX_RATE_LIMIT_PER_MINUTE``
and ``MKTX_RATE_LIMIT_BURST``). Overrides are read for every merchant at once and
kept for ``MKTX_RATE_LIMIT_CACHE_SECONDS`` (10 s), so a change takes effect within
that time on every process, without a query per call.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import grpc
from grpc_interceptor.server import AsyncServerInterceptor
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from psycopg_pool import AsyncConnectionPool

from ..core.config import Settings
from ..core.context import principal_var
from ..core.db import use_connection
from ..core.errors import QuotaExceeded
from ..methods import spec_for
from ..store import merchants as merchants_store
from ._stream import call_next

log = logging.getLogger("mktx_grpc.ratelimit")

#: Namespace of the limiter's keys in a shared storage.
KEY_PREFIX = "mktx-api"


def make_storage(url: str) -> Storage:
    """The ``limits`` async storage for ``MKTX_RATE_LIMIT_STORAGE``: empty for
    in-memory; ``redis://``, ``rediss://``, ``redis+sentinel://`` or
    ``redis+cluster://`` (the ``async+`` scheme prefix is added when missing).
    Raises ``ValueError`` for any other scheme."""
    if not url:
        return MemoryStorage()
    scheme = url.split("://", 1)[0]
    if scheme.startswith("async+"):
        scheme = scheme[len("async+") :]
        url = url.split("+", 1)[1]
    if scheme not in ("redis", "rediss", "redis+sentinel", "redis+cluster"):
        raise ValueError(f"MKTX_RATE_LIMIT_STORAGE must be a Redis URL, got scheme {scheme!r}")
    storage = storage_from_string(f"async+{url}")
    assert isinstance(storage, Storage)
    return storage


class MerchantLimits:
    """Each merchant's limit as a ``limits`` item: its override or the default.

    Overrides are loaded for every merchant at once and kept ``ttl`` seconds. The
    first call waits for the first load; after that a stale cache is reloaded in the
    background while calls use the old values, and a failed reload keeps them (and
    is retried after ``ttl``).
    """

    def __init__(self, settings: Settings, pool: AsyncConnectionPool | None, ttl: float) -> None:
        self._pool = pool
        self._ttl = ttl
        self._default = self.item(settings.rate_limit_per_minute, settings.rate_limit_burst)
        self._default_burst = settings.rate_limit_burst
        self._overrides: dict[UUID, RateLimitItem] = {}
        self._loaded_at = -math.inf
        self._refreshing: asyncio.Future[None] | None = None  # the load under way
        self._items: dict[int, RateLimitItem] = {}

    def item(self, per_minute: int, burst: int) -> RateLimitItem:
        return RateLimitItemPerMinute(max(1, per_minute + burst))

    async def item_for(self, merchant_id: UUID) -> RateLimitItem:
        if time.monotonic() - self._loaded_at >= self._ttl and self._pool is not None:
            if self._loaded_at == -math.inf:
                # Nothing loaded yet: wait for the first load rather than guess.
                if self._refreshing is None:
                    self._refreshing = asyncio.ensure_future(self._refresh())
                await asyncio.shield(self._refreshing)
            elif self._refreshing is None or self._refreshing.done():
                # Stale: reload in the background; this call uses the values it has
                # (no call waits for the database, even while it is unreachable).
                self._refreshing = asyncio.ensure_future(self._refresh())
        return self._overrides.get(merchant_id, self._default)

    async def _refresh(self) -> None:
        assert self._pool is not None
        try:
            async with use_connection(self._pool, transaction=False):
                rows = await merchants_store.rate_limit_overrides()
        except Exception as exc:
            log.warning("could not load the rate-limit overrides (keeping the last): %s", exc)
            self._loaded_at = time.monotonic()
            return
        self._overrides = {
            merchant_id: self.item(per_minute, self._default_burst if burst is None else burst)
            for merchant_id, (per_minute, burst) in rows.items()
        }
        self._loaded_at = time.monotonic()


class RateLimitInterceptor(AsyncServerInterceptor):
    """See the module docstring. ``storage`` defaults to the settings' storage."""

    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool | None,
        *,
        storage: Storage | None = None,
    ) -> None:
        self.storage = storage if storage is not None else make_storage(settings.rate_limit_storage)
        self._limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.limits = MerchantLimits(settings, pool, settings.rate_limit_cache_seconds)
        self._warned_at = -math.inf
        if storage is None and not settings.rate_limit_storage and settings.workers > 1:
            log.warning(
                "MKTX_WORKERS=%d with the rate limit in each process's memory: a merchant "
                "gets up to %d times its limit; set MKTX_RATE_LIMIT_STORAGE=redis://...",
                settings.workers,
                settings.workers,
            )

    async def intercept(
        self,
        method: Callable[..., Any],
        request: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        principal = principal_var.get()
        if principal is None or spec_for(method_name).public:
            return await call_next(method, request, context)
        item = await self.limits.item_for(principal.merchant_id)
        key = str(principal.merchant_id)
        try:
            allowed = await self._limiter.hit(item, KEY_PREFIX, key)
            reset_at, remaining = await self._limiter.get_window_stats(item, KEY_PREFIX, key)
        except Exception as exc:
            self._storage_failed(exc)
            return await call_next(method, request, context)
        context.set_trailing_metadata(
            (
                ("x-ratelimit-limit", str(item.amount)),
                ("x-ratelimit-remaining", str(remaining)),
                ("x-ratelimit-reset", str(math.ceil(reset_at))),
            )
        )
        if not allowed:
            retry_after = max(0.0, reset_at - time.time())
            raise QuotaExceeded(
                f"rate limit exceeded: {item.amount} requests per minute for this merchant",
                retry_after_seconds=retry_after,
                metadata={
                    "limit": str(item.amount),
                    "retry_after_ms": str(int(retry_after * 1000)),
                },
            )
        return await call_next(method, request, context)

    def _storage_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= 10.0:
            self._warned_at = now
            log.warning("rate-limit storage failed; letting calls through unlimited: %r", exc)
