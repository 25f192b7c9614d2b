"""Validation rules for MerchantsService requests."""

from __future__ import annotations

from mktx.v1 import merchants_pb2

from ..core.errors import FieldViolation
from ..domain.schedule import zone
from ..mapping.merchants import READ_ONLY, UPDATABLE
from . import rules


def update_merchant_settings(
    req: merchants_pb2.UpdateMerchantSettingsRequest,
) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    for i, path in enumerate(req.update_mask.paths):
        if path in READ_ONLY or path.startswith("rate_limit."):
            v.append(
                FieldViolation(
                    f"update_mask.paths[{i}]",
                    f"{path!r} is read-only (the operator sets the rate limit)",
                )
            )
    if not v:
        v += rules.mask_paths(req.update_mask, UPDATABLE, required=True)
    if "time_zone" in req.update_mask.paths:
        tz = req.settings.time_zone
        if not tz:
            v.append(FieldViolation("settings.time_zone", "is required"))
        elif len(tz) > 64 or zone(tz) is None:
            v.append(FieldViolation("settings.time_zone", "must be an IANA time zone name"))
    v += rules.text_field(req.etag, "etag", max_len=100)
    return v
