"""The per-account DM budget in the database (sql/queries/budget.sql).

Every DM sender (inbox replies, campaigns, automation) draws from it through the X
client's ``DmBudget`` hook, so the account never exceeds X's per-user limits no
matter how many processes send. A unit is spent even when the send then fails:
X counts attempts.

Bulk senders announce their sends with :meth:`DbDmBudget.planned`; the budget then
reserves units for them in batches (one UPDATE for up to ``max_batch`` DMs) instead
of one round trip per DM. Reserved units are counted in the database at once, so
the limits hold across processes exactly as before; a process only ever uses units
it reserved, within the windows they were counted in. Units left over (the batch
stopped early) are handed back when the plan ends or they expire; units held by a
process that dies are never handed back and simply count as spent, which is the
safe side.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from ..core.db import Queries, use_connection
from ..x.errors import XRateLimited
from . import execute, fetch_one

Q = Queries("budget")
log = logging.getLogger(__name__)

DEFAULT_PER_15_MINUTES = 15
DEFAULT_PER_24_HOURS = 1440

#: Reserved units are used within this many seconds or handed back.
HOLD_SECONDS = 10.0
#: Reserved units are not used this close to the end of the window they count in.
WINDOW_MARGIN_SECONDS = 1.0


def budget_key(merchant_id: UUID, account_id: UUID) -> str:
    """The ``account_key`` the X client passes to :meth:`DbDmBudget.acquire`."""
    return f"{merchant_id}/{account_id}"


@dataclass(frozen=True, slots=True)
class BudgetLeft:
    """How many DMs an account may still send now, by its budget windows (None when
    the account is unknown), and when a spent window frees up (None: none is spent)."""

    left_now: int | None
    reset_at: datetime | None


async def dm_budget_left(merchant_id: UUID, account_id: UUID) -> BudgetLeft:
    """Read the account's DM budget on the current connection, without spending any
    (a bulk sender sizes its batch by it; sending still draws through DbDmBudget)."""
    row = await fetch_one(
        Q.budget_left,
        {
            "merchant_id": merchant_id,
            "account_id": account_id,
            "default_15": DEFAULT_PER_15_MINUTES,
            "default_24": DEFAULT_PER_24_HOURS,
        },
    )
    if row is None:
        return BudgetLeft(None, None)
    left = row["left_now"]
    return BudgetLeft(int(left) if left is not None else None, row["reset_at"])


@dataclass
class _Held:
    """Units reserved in the database and not yet used, for one account."""

    units: int
    valid_until: float  # monotonic
    w15_start: datetime
    w24_start: datetime


@dataclass
class _Account:
    lock: asyncio.Lock
    planned: int = 0  # sends announced by planned() and not yet acquired
    plans: int = 0  # planned() blocks open
    held: _Held | None = None


class DbDmBudget:
    """``mktx_grpc.x.DmBudget`` backed by ``account_dm_budget``.

    ``acquire`` runs on its own autocommitted connection, never in the caller's
    transaction, so a spent unit stays spent when the caller rolls back.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        max_batch: int = 64,
        hold_seconds: float = HOLD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._hold = hold_seconds
        self._clock = clock
        self._accounts: dict[str, _Account] = {}

    def _account(self, account_key: str) -> _Account:
        a = self._accounts.get(account_key)
        if a is None:
            a = self._accounts[account_key] = _Account(asyncio.Lock())
        return a

    @asynccontextmanager
    async def planned(self, account_key: str, sends: int) -> AsyncIterator[None]:
        """Announce that about ``sends`` DMs from the account follow, so
        :meth:`acquire` reserves for them in batches. On exit, units reserved and
        not used are handed back (when no other plan for the account is open)."""
        a = self._account(account_key)
        a.planned += sends
        a.plans += 1
        try:
            yield
        finally:
            a.plans -= 1
            if a.plans == 0:
                a.planned = 0
                if a.held is not None:
                    try:
                        async with a.lock:
                            await self._hand_back(account_key, a)
                    except Exception:  # they stay counted as spent: the safe side
                        log.warning("could not hand back reserved DMs", exc_info=True)

    async def acquire(self, account_key: str) -> None:
        """Spend one DM, or raise XRateLimited with ``reset_at`` when none is left."""
        a = self._account(account_key)
        async with a.lock:
            a.planned = max(0, a.planned - 1)
            held = a.held
            if held is not None:
                if held.units > 0 and self._clock() < held.valid_until:
                    held.units -= 1
                    return
                await self._hand_back(account_key, a)
            want = max(1, min(self._max_batch, a.planned + 1))
            row = await self._reserve(account_key, want)
            if row is None:
                raise XRateLimited(
                    "the account's DM budget is spent",
                    reset_at=await self._reset_at(account_key),
                    reason="DM_BUDGET_SPENT",
                )
            extra = int(row["granted"]) - 1  # one is this caller's
            if extra > 0:
                usable = min(self._hold, float(row["seconds_left"]) - WINDOW_MARGIN_SECONDS)
                a.held = _Held(extra, self._clock() + usable, row["w15_start"], row["w24_start"])

    async def _hand_back(self, account_key: str, a: _Account) -> None:
        """Return the account's unused reserved units (the caller holds its lock)."""
        held, a.held = a.held, None
        if held is None or held.units <= 0:
            return
        params = self._params(account_key)
        params.update(n=held.units, w15_start=held.w15_start, w24_start=held.w24_start)
        async with use_connection(self._pool):
            await execute(Q.return_dms, params)

    async def _reserve(self, account_key: str, want: int) -> dict[str, Any] | None:
        params = self._params(account_key)
        params["want"] = want
        async with use_connection(self._pool):
            row = await fetch_one(Q.reserve_dms, params)
            if row is None:  # spent, or the account's first DM ever
                await execute(Q.ensure_budget_row, params)
                row = await fetch_one(Q.reserve_dms, params)
        return row

    async def _reset_at(self, account_key: str) -> datetime:
        async with use_connection(self._pool):
            row = await fetch_one(Q.budget_reset_at, self._params(account_key))
        return row["reset_at"] if row else datetime.now(UTC)

    @staticmethod
    def _params(account_key: str) -> dict[str, Any]:
        merchant_s, _, account_s = account_key.partition("/")
        return {
            "merchant_id": UUID(merchant_s),
            "account_id": UUID(account_s),
            "default_15": DEFAULT_PER_15_MINUTES,
            "default_24": DEFAULT_PER_24_HOURS,
        }
