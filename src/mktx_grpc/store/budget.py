"""The per-account DM budget in the database (sql/queries/budget.sql).

Every DM sender (inbox replies, campaigns, automation) draws from it through the X
client's ``DmBudget`` hook, so the account never exceeds X's per-user limits no
matter how many processes send. A unit is spent even when the send then fails:
X counts attempts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ..db import Queries
from ..x.errors import XRateLimited

Q = Queries("budget")

DEFAULT_PER_15_MINUTES = 15
DEFAULT_PER_24_HOURS = 1440


def budget_key(merchant_id: UUID, account_id: UUID) -> str:
    """The ``account_key`` the X client passes to :meth:`DbDmBudget.acquire`."""
    return f"{merchant_id}/{account_id}"


class DbDmBudget:
    """``mktx_grpc.x.DmBudget`` backed by ``account_dm_budget``.

    ``acquire`` runs on its own autocommitted connection, never in the caller's
    transaction, so a spent unit stays spent when the caller rolls back.
    """

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def acquire(self, account_key: str) -> None:
        """Spend one DM, or raise XRateLimited with ``reset_at`` when none is left."""
        merchant_s, _, account_s = account_key.partition("/")
        params = {
            "merchant_id": UUID(merchant_s),
            "account_id": UUID(account_s),
            "default_15": DEFAULT_PER_15_MINUTES,
            "default_24": DEFAULT_PER_24_HOURS,
        }
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(Q.spend_dm, params)
            if cur.rowcount == 0:
                await cur.execute(Q.ensure_budget_row, params)
                await cur.execute(Q.spend_dm, params)
            if cur.rowcount > 0:
                return
            await cur.execute(Q.budget_reset_at, params)
            row = await cur.fetchone()
        reset_at = row["reset_at"] if row else datetime.now(UTC)
        raise XRateLimited(
            "the account's DM budget is spent", reset_at=reset_at, reason="DM_BUDGET_SPENT"
        )
