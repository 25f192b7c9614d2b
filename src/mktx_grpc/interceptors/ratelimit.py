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
from typing import Any
from uuid import UUID

import grpc
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
from .stage import AsyncGuard

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


class _Tally:
    """A merchant's calls counted in this process since the storage last answered
    for it (in-memory storage only; see :class:`RateLimitInterceptor`)."""

    __slots__ = ("asking", "item", "pending", "remaining", "reset_at", "synced_at")

    def __init__(self, item: RateLimitItem) -> None:
        self.item = item
        #: What the storage said at ``synced_at`` (requests left, less the calls
        #: recorded since; and the reset time).
        self.remaining = 0
        self.reset_at = 0.0
        self.synced_at = -math.inf
        #: Calls let through since, not yet recorded in the storage.
        self.pending = 0
        #: Calls asking the storage now (their hits are in no answer yet).
        self.asking = 0


class RateLimitInterceptor(AsyncGuard):
    """See the module docstring. ``storage`` defaults to the settings' storage.

    With the in-memory storage (the default) the limit is decided without a call
    into ``limits`` for most requests: the storage's answer for a merchant (requests
    left, reset time) is kept for ``sync_interval`` seconds, and while the calls let
    through since then are fewer than what was left, a call is let through and
    counted locally; those counts are recorded in the storage (one ``hit`` with
    their number as its cost) within ``sync_interval``, and always before the
    storage is asked again. That is exact, not an estimate: this process is the only
    one counting in its memory, and a sliding window only frees requests as time
    passes, so "left at the last answer minus counted since" never exceeds what is
    really left. The call that would take the last request left by that figure, and
    the first call after ``sync_interval``, ask the storage as before. With a shared
    (Redis) storage every call asks it, since other processes count too.
    """

    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool | None,
        *,
        storage: Storage | None = None,
        sync_interval: float = 0.1,
    ) -> None:
        self.storage = storage if storage is not None else make_storage(settings.rate_limit_storage)
        self._limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.limits = MerchantLimits(settings, pool, settings.rate_limit_cache_seconds)
        self._warned_at = -math.inf
        #: Counting locally is exact only where this process is the storage's only user.
        self._local = isinstance(self.storage, MemoryStorage) and sync_interval > 0
        self._interval = sync_interval
        self._tallies: dict[UUID, _Tally] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        if storage is None and not settings.rate_limit_storage and settings.workers > 1:
            log.warning(
                "MKTX_WORKERS=%d with the rate limit in each process's memory: a merchant "
                "gets up to %d times its limit; set MKTX_RATE_LIMIT_STORAGE=redis://...",
                settings.workers,
                settings.workers,
            )

    async def check(self, request: Any, context: grpc.aio.ServicerContext, method_name: str) -> Any:
        principal = principal_var.get()
        if principal is None or spec_for(method_name).public:
            return request
        merchant = principal.merchant_id
        item = await self.limits.item_for(merchant)
        tally = self._tallies.get(merchant) if self._local else None
        if (
            tally is not None
            and tally.item is item
            and tally.remaining - tally.pending - tally.asking > 1
            and time.monotonic() - tally.synced_at < self._interval
        ):
            tally.pending += 1
            if self._flush is None:
                self._flush = asyncio.get_running_loop().call_later(
                    self._interval, self._start_flush
                )
            context.set_trailing_metadata(
                _metadata(item, tally.remaining - tally.pending, tally.reset_at)
            )
            return request
        key = str(merchant)
        if tally is not None:
            tally.asking += 1
        try:
            if tally is not None and tally.pending:
                await self._record(tally, key)
            allowed = await self._limiter.hit(item, KEY_PREFIX, key)
            reset_at, remaining = await self._limiter.get_window_stats(item, KEY_PREFIX, key)
        except Exception as exc:
            self._storage_failed(exc)
            return request
        finally:
            if tally is not None:
                tally.asking -= 1
        if self._local:
            if tally is None or tally.item is not item:
                # A changed limit starts a new tally (its pending calls are recorded).
                tally = self._tallies[merchant] = _Tally(item)
            # Calls counted while this one waited are not in this answer: they stay
            # pending on top of it.
            tally.remaining, tally.reset_at = remaining, reset_at
            tally.synced_at = time.monotonic()
        context.set_trailing_metadata(_metadata(item, remaining, reset_at))
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
        return request

    async def _record(self, tally: _Tally, key: str) -> None:
        """Record the tally's pending calls in the storage. They were let through
        already, so they are recorded as far as the window holds them (a refused
        ``hit`` of the whole number is retried in halves)."""
        count, tally.pending = tally.pending, 0
        # Recorded, they leave ``pending`` and are no longer in what the storage
        # said was left either.
        tally.remaining -= count
        cost = count
        while count > 0:
            if await self._limiter.hit(tally.item, KEY_PREFIX, key, cost=cost):
                count -= cost
                cost = min(cost, count)
            elif cost == 1:
                return  # the window is full
            else:
                cost //= 2

    def _start_flush(self) -> None:
        self._flush = None
        task = asyncio.ensure_future(self.flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def flush(self) -> None:
        """Record every merchant's pending calls; forget merchants idle for a minute."""
        idle_before = time.monotonic() - 60.0
        for merchant, tally in list(self._tallies.items()):
            if tally.pending:
                try:
                    await self._record(tally, str(merchant))
                except Exception as exc:
                    self._storage_failed(exc)
            elif tally.synced_at < idle_before:
                del self._tallies[merchant]

    def _storage_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= 10.0:
            self._warned_at = now
            log.warning("rate-limit storage failed; letting calls through unlimited: %r", exc)


def _metadata(item: RateLimitItem, remaining: int, reset_at: float) -> tuple[tuple[str, str], ...]:
    return (
        ("x-ratelimit-limit", str(item.amount)),
        ("x-ratelimit-remaining", str(remaining)),
        ("x-ratelimit-reset", str(math.ceil(reset_at))),
    )
