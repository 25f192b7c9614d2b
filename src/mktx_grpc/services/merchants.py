"""MerchantsService: proto in, store call, proto out. No SQL here."""

from __future__ import annotations

import grpc

from mktx.v1 import merchants_pb2, merchants_pb2_grpc

from ..core.context import current_principal
from ..deps import Deps
from ..mapping.merchants import settings_to_proto
from ..store import check_etag
from ..store import merchants as store

M = merchants_pb2


class MerchantsServicer(merchants_pb2_grpc.MerchantsServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def GetMerchantSettings(
        self, request: M.GetMerchantSettingsRequest, context: grpc.aio.ServicerContext
    ) -> M.MerchantSettings:
        merchant = current_principal().merchant_id
        row = await store.get_settings(merchant)
        return settings_to_proto(merchant, row, self._deps.settings)

    async def UpdateMerchantSettings(
        self, request: M.UpdateMerchantSettingsRequest, context: grpc.aio.ServicerContext
    ) -> M.MerchantSettings:
        merchant = current_principal().merchant_id
        row = await store.get_settings(merchant, for_update=True)
        assert row is not None
        check_etag(request.etag, {"id": merchant, "version": row["version"]}, "merchant settings")
        if row["time_zone"] != request.settings.time_zone:
            row = await store.set_time_zone(merchant, request.settings.time_zone)
        return settings_to_proto(merchant, row, self._deps.settings)
