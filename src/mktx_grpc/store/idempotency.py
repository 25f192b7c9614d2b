"""Request-id idempotency for Create RPCs (AIP-155)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from . import Queries, execute, fetch_one

Q = Queries("idempotency")
T = TypeVar("T")


async def create_once(
    merchant_id: UUID,
    scope: str,
    request_id: str,
    create: Callable[[], Awaitable[tuple[UUID, T]]],
    load: Callable[[UUID], Awaitable[T]],
) -> T:
    """Run ``create`` at most once per (merchant, scope, request_id).

    Must run inside the caller's transaction: the key and the resource commit or roll
    back together, so a failed create leaves the key free for a retry. With an empty
    ``request_id`` it simply creates. A retry returns ``load(first_resource_id)``.
    """
    if not request_id:
        return (await create())[1]
    params = {"merchant_id": merchant_id, "scope": scope, "request_id": request_id}
    claimed = await fetch_one(Q.claim_request_id, params)
    if claimed is None:
        row = await fetch_one(Q.get_request_id, params)
        # Claim and record share one transaction, so a visible key has its resource.
        # If that resource was deleted since, load() reports NOT_FOUND.
        assert row is not None and row["resource_id"] is not None
        return await load(row["resource_id"])
    resource_id, result = await create()
    await execute(Q.record_request_id, {**params, "resource_id": resource_id})
    return result


async def existing(merchant_id: UUID, scope: str, request_id: str) -> UUID | None:
    """The resource a committed create with this ``request_id`` made, or None (no such
    create, or it has not committed yet). For creates that must do slow work (fetch,
    call out) before their transaction: a retry is answered without redoing it."""
    if not request_id:
        return None
    row = await fetch_one(
        Q.get_request_id, {"merchant_id": merchant_id, "scope": scope, "request_id": request_id}
    )
    return None if row is None else row["resource_id"]
