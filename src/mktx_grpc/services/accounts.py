"""AccountsService: the read and settings path. Connection flows arrive with the X
client (they answer UNIMPLEMENTED until then)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import grpc
from google.protobuf import json_format

from mktx.v1 import accounts_pb2, accounts_pb2_grpc

from ..context import current_principal
from ..convert import ts
from ..deps import Deps
from ..errors import Aborted, NotFound
from ..pagination import decode_time_cursor, effective_page_size, time_page
from ..store import Row, etag_of
from ..store import accounts as store

STATUS_FROM_DB = {
    name: accounts_pb2.AccountStatus.Value(f"ACCOUNT_STATUS_{name}")
    for name in ("PENDING", "ACTIVE", "INACTIVE", "ERROR", "DISCONNECTED")
}
STATUS_TO_DB = {v: k for k, v in STATUS_FROM_DB.items()}
AUTH_FROM_DB = {"OAUTH1": accounts_pb2.AUTH_METHOD_OAUTH1, "OAUTH2": accounts_pb2.AUTH_METHOD_OAUTH2}


def settings_from_json(data: dict[str, Any]) -> accounts_pb2.AccountSettings:
    return json_format.ParseDict(data, accounts_pb2.AccountSettings(), ignore_unknown_fields=True)


def settings_to_json(settings: accounts_pb2.AccountSettings) -> dict[str, Any]:
    return json_format.MessageToDict(settings, preserving_proto_field_name=True)


def account_to_proto(row: Row) -> accounts_pb2.Account:
    """The public view of an account. Token columns are never read here."""
    return accounts_pb2.Account(
        id=str(row["id"]),
        x_user_id=row["x_user_id"],
        username=row["username"],
        display_name=row["display_name"],
        profile_image_url=row["profile_image_url"],
        followers_count=row["followers_count"],
        status=STATUS_FROM_DB[row["status"]],
        status_reason=row["status_reason"],
        auth_method=AUTH_FROM_DB[row["auth_method"]],
        scopes=row["scopes"],
        token_expire_time=ts(row["token_expires_at"]),
        settings=settings_from_json(row["settings"]),
        webhook=accounts_pb2.WebhookState(
            webhook_id=row["webhook_id"],
            url=row["webhook_url"],
            subscribed=row["webhook_subscribed"],
            validate_time=ts(row["webhook_validated_at"]),
        ),
        create_time=ts(row["created_at"]),
        update_time=ts(row["updated_at"]),
        etag=etag_of(row["id"], row["version"]),
    )


class AccountsServicer(accounts_pb2_grpc.AccountsServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def _load(self, merchant_id: UUID, account_id: str, *, for_update: bool = False) -> Row:
        row = await store.get(merchant_id, UUID(account_id), for_update=for_update)
        if row is None:
            raise NotFound("account", account_id)
        return row

    async def GetAccount(
        self, request: accounts_pb2.GetAccountRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.Account:
        return account_to_proto(await self._load(current_principal().merchant_id, request.id))

    async def ListAccounts(
        self, request: accounts_pb2.ListAccountsRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.ListAccountsResponse:
        merchant = current_principal().merchant_id
        filters = ["accounts", str(merchant), request.status]
        tokens = self._deps.page_tokens
        after = decode_time_cursor(tokens, request.page_token, filters)
        size = effective_page_size(request.page_size)
        rows = await store.list_page(
            merchant, status=STATUS_TO_DB.get(request.status), after=after, limit=size + 1
        )
        page, next_token = time_page(tokens, rows, size, filters)
        return accounts_pb2.ListAccountsResponse(
            accounts=[account_to_proto(r) for r in page], next_page_token=next_token
        )

    async def UpdateAccountSettings(
        self, request: accounts_pb2.UpdateAccountSettingsRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.Account:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.account_id, for_update=True)
        if request.etag and request.etag != etag_of(row["id"], row["version"]):
            raise Aborted("the account changed since it was read; re-read it and retry")
        if request.update_mask.paths:
            settings = settings_from_json(row["settings"])
            request.update_mask.MergeMessage(
                request.settings, settings, replace_message_field=True, replace_repeated_field=True
            )
        else:
            settings = request.settings
        updated = await store.update_settings(merchant, row["id"], settings_to_json(settings))
        return account_to_proto(updated)

    async def DisconnectAccount(
        self, request: accounts_pb2.DisconnectAccountRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.Account:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.id, for_update=True)
        if row["status"] == "DISCONNECTED":
            return account_to_proto(row)
        return account_to_proto(await store.disconnect(merchant, row["id"]))

    async def GetAccountStatistics(
        self, request: accounts_pb2.GetAccountStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.AccountStatistics:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.id)
        now = datetime.now(UTC)
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        stats = await store.statistics(merchant, row["id"], month_start)
        return accounts_pb2.AccountStatistics(
            account_id=str(row["id"]),
            contacts=stats["contacts"],
            conversations=stats["conversations"],
            open_conversations=stats["open_conversations"],
            messages_sent_this_month=stats["sent"],
            messages_received_this_month=stats["received"],
        )
