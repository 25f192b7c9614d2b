"""AccountsService: proto in, domain call, proto out. No SQL here.

The RPCs that talk to X (connecting, refreshing, registering the webhook,
disconnecting) are operations in ``operations/accounts.py``; they hold no connection
while waiting on X.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from uuid import UUID

import grpc

from mktx.v1 import accounts_pb2, accounts_pb2_grpc

from ..core.context import current_principal
from ..core.errors import NotFound
from ..core.pagination import decode_time_cursor, effective_page_size, time_page
from ..deps import Deps
from ..mapping.accounts import (
    STATUS_TO_DB,
    account_to_proto,
    settings_from_json,
    settings_to_json,
)
from ..operations.accounts import AccountConnections, load_account
from ..store import Row, check_etag
from ..store import accounts as store

log = logging.getLogger(__name__)


class AccountsServicer(accounts_pb2_grpc.AccountsServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._flows = AccountConnections(deps)

    async def StartConnection(
        self, request: accounts_pb2.StartConnectionRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.StartConnectionResponse:
        return await self._flows.start(current_principal().merchant_id, request)

    async def CompleteConnection(
        self, request: accounts_pb2.CompleteConnectionRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.Account:
        return account_to_proto(
            await self._flows.complete(current_principal().merchant_id, request)
        )

    async def RefreshAccountTokens(
        self, request: accounts_pb2.RefreshAccountTokensRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.Account:
        row = await load_account(self._deps, current_principal().merchant_id, request.id)
        return account_to_proto(await self._flows.refresh(row))

    async def RegisterWebhook(
        self, request: accounts_pb2.RegisterWebhookRequest, context: grpc.aio.ServicerContext
    ) -> accounts_pb2.Account:
        row = await load_account(self._deps, current_principal().merchant_id, request.id)
        return account_to_proto(await self._flows.register_webhook(row, request.url))

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
        check_etag(request.etag, row, "account")
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
        row = await load_account(self._deps, current_principal().merchant_id, request.id)
        return account_to_proto(await self._flows.disconnect(row))

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
