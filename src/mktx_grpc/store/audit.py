"""The audit log of destructive RPCs (sql/queries/audit.sql)."""

from __future__ import annotations

from ..core.context import current_principal, request_id_var
from . import Queries, execute

Q = Queries("audit")


async def record(method: str, resource_id: str) -> None:
    """Record that the current principal ran ``method`` on ``resource_id``, with the
    request id, on the current connection (so in the caller's transaction: the row
    commits or rolls back with the change it records). Raises Unauthenticated
    outside an authenticated RPC."""
    principal = current_principal()
    await execute(
        Q.record,
        {
            "merchant_id": principal.merchant_id,
            "user_id": principal.user_id,
            "request_id": request_id_var.get(),
            "method": method,
            "resource_id": resource_id,
        },
    )
