"""Merchant settings as protobuf."""

from __future__ import annotations

from uuid import UUID

from mktx.v1 import merchants_pb2

from ..core.config import Settings
from ..store import Row, etag_of
from .common import ts

#: Update mask paths a merchant may change.
UPDATABLE = ("time_zone",)
#: Paths that exist but only the operator sets.
READ_ONLY = ("rate_limit", "update_time", "etag")


def settings_to_proto(
    merchant_id: UUID, row: Row | None, settings: Settings
) -> merchants_pb2.MerchantSettings:
    """The merchant's settings; ``row`` None means the defaults."""
    per_minute = row["rate_limit_per_minute"] if row else None
    burst = row["rate_limit_burst"] if row else None
    limit = merchants_pb2.MerchantRateLimit(
        requests_per_minute=per_minute or settings.rate_limit_per_minute,
        burst=settings.rate_limit_burst if burst is None else burst,
        overridden=per_minute is not None,
    )
    return merchants_pb2.MerchantSettings(
        time_zone=row["time_zone"] if row else "UTC",
        rate_limit=limit,
        update_time=ts(row["updated_at"]) if row and row["version"] else None,
        etag=etag_of(merchant_id, row["version"] if row else 0),
    )
