"""Per-request state carried in contextvars by the interceptor chain.

The interceptors set these before the servicer runs, so servicers and stores read
the principal and the unit of work's connection without threading them through
every call (the grpc async interceptor example does the same with its rpc id).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from .errors import Unauthenticated


@dataclass(frozen=True)
class Principal:
    """Who is calling: the merchant whose data the call may touch, and the user."""

    merchant_id: UUID
    user_id: str


request_id_var: ContextVar[str] = ContextVar("request_id", default="")
principal_var: ContextVar[Principal | None] = ContextVar("principal", default=None)
connection_var: ContextVar[AsyncConnection | None] = ContextVar("connection", default=None)


@dataclass(frozen=True)
class DeferredConnection:
    """A read's unit of work that has not borrowed a connection: the pool to borrow
    one from when a query needs it, and the longest to wait for it. Only coalesced
    point reads (``store/coalesce.py``) run under one: their batch's leader borrows
    a connection for the batch query, and the reads it answers borrow none."""

    pool: Any  # psycopg_pool.AsyncConnectionPool (not imported here: no cycle)
    wait: float | None


deferred_connection_var: ContextVar[DeferredConnection | None] = ContextVar(
    "deferred_connection", default=None
)
#: The unit of work's ``core.db.Snapshot`` for a ``snapshot`` read (see methods.py).
snapshot_var: ContextVar[Any] = ContextVar("snapshot", default=None)


def current_principal() -> Principal:
    """The authenticated principal. Raises Unauthenticated outside an authenticated RPC."""
    principal = principal_var.get()
    if principal is None:
        raise Unauthenticated("authentication required")
    return principal


def current_connection() -> AsyncConnection:
    """The unit of work's connection. Raises RuntimeError when called outside one."""
    conn = connection_var.get()
    if conn is None:
        raise RuntimeError("no unit of work: this method is not configured for database access")
    return conn
