"""Proto ⇄ domain and row conversions for accounts (shared by the servicer, validation and
other modules that need them)."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from mktx.v1 import accounts_pb2

from ..store import Row, etag_of
from .common import ts

STATUS_FROM_DB: dict[str, accounts_pb2.AccountStatus] = {
    "PENDING": accounts_pb2.ACCOUNT_STATUS_PENDING,
    "ACTIVE": accounts_pb2.ACCOUNT_STATUS_ACTIVE,
    "INACTIVE": accounts_pb2.ACCOUNT_STATUS_INACTIVE,
    "ERROR": accounts_pb2.ACCOUNT_STATUS_ERROR,
    "DISCONNECTED": accounts_pb2.ACCOUNT_STATUS_DISCONNECTED,
}

STATUS_TO_DB = {v: k for k, v in STATUS_FROM_DB.items()}

AUTH_FROM_DB = {
    "OAUTH1": accounts_pb2.AUTH_METHOD_OAUTH1,
    "OAUTH2": accounts_pb2.AUTH_METHOD_OAUTH2,
}


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


AUTH_TO_DB = {accounts_pb2.AUTH_METHOD_OAUTH1: "OAUTH1", accounts_pb2.AUTH_METHOD_OAUTH2: "OAUTH2"}
