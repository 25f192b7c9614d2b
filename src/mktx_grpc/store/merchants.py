"""Merchant-wide settings (sql/queries/merchants.sql). A merchant without a row has
the defaults (UTC, the service's rate limit)."""

from __future__ import annotations

from uuid import UUID

from . import Queries, Row, execute, fetch_all, fetch_one

Q = Queries("merchants")


async def get_settings(merchant_id: UUID, *, for_update: bool = False) -> Row | None:
    """The merchant's settings row, or None while it has the defaults. With
    ``for_update`` the row is created (with the defaults) and locked."""
    if for_update:
        await execute(Q.ensure_settings, {"merchant_id": merchant_id})
        return await fetch_one(Q.get_settings_for_update, {"merchant_id": merchant_id})
    return await fetch_one(Q.get_settings, {"merchant_id": merchant_id})


async def time_zone(merchant_id: UUID) -> str:
    """The merchant's IANA time zone ("UTC" by default)."""
    row = await get_settings(merchant_id)
    return str(row["time_zone"]) if row else "UTC"


async def set_time_zone(merchant_id: UUID, time_zone: str) -> Row:
    row = await fetch_one(Q.set_time_zone, {"merchant_id": merchant_id, "time_zone": time_zone})
    assert row is not None  # the caller locked (and so created) the row
    return row


async def set_rate_limit(merchant_id: UUID, per_minute: int | None, burst: int | None) -> Row:
    """Set (or, with None, clear) the operator's rate-limit override for a merchant."""
    row = await fetch_one(
        Q.set_rate_limit, {"merchant_id": merchant_id, "per_minute": per_minute, "burst": burst}
    )
    assert row is not None
    return row


async def rate_limit_overrides() -> dict[UUID, tuple[int, int | None]]:
    """Every merchant's override: merchant id -> (per minute, burst or None)."""
    return {
        r["merchant_id"]: (int(r["rate_limit_per_minute"]), r["rate_limit_burst"])
        for r in await fetch_all(Q.rate_limit_overrides, {})
    }
