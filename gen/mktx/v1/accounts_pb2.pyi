import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mktx.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AccountStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCOUNT_STATUS_UNSPECIFIED: _ClassVar[AccountStatus]
    ACCOUNT_STATUS_PENDING: _ClassVar[AccountStatus]
    ACCOUNT_STATUS_ACTIVE: _ClassVar[AccountStatus]
    ACCOUNT_STATUS_INACTIVE: _ClassVar[AccountStatus]
    ACCOUNT_STATUS_ERROR: _ClassVar[AccountStatus]
    ACCOUNT_STATUS_DISCONNECTED: _ClassVar[AccountStatus]

class AuthMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTH_METHOD_UNSPECIFIED: _ClassVar[AuthMethod]
    AUTH_METHOD_OAUTH1: _ClassVar[AuthMethod]
    AUTH_METHOD_OAUTH2: _ClassVar[AuthMethod]
ACCOUNT_STATUS_UNSPECIFIED: AccountStatus
ACCOUNT_STATUS_PENDING: AccountStatus
ACCOUNT_STATUS_ACTIVE: AccountStatus
ACCOUNT_STATUS_INACTIVE: AccountStatus
ACCOUNT_STATUS_ERROR: AccountStatus
ACCOUNT_STATUS_DISCONNECTED: AccountStatus
AUTH_METHOD_UNSPECIFIED: AuthMethod
AUTH_METHOD_OAUTH1: AuthMethod
AUTH_METHOD_OAUTH2: AuthMethod

class Account(_message.Message):
    __slots__ = ("id", "x_user_id", "username", "display_name", "profile_image_url", "followers_count", "status", "status_reason", "auth_method", "scopes", "token_expire_time", "settings", "webhook", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    X_USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    FOLLOWERS_COUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    AUTH_METHOD_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    TOKEN_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    x_user_id: str
    username: str
    display_name: str
    profile_image_url: str
    followers_count: int
    status: AccountStatus
    status_reason: str
    auth_method: AuthMethod
    scopes: _containers.RepeatedScalarFieldContainer[str]
    token_expire_time: _timestamp_pb2.Timestamp
    settings: AccountSettings
    webhook: WebhookState
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., x_user_id: _Optional[str] = ..., username: _Optional[str] = ..., display_name: _Optional[str] = ..., profile_image_url: _Optional[str] = ..., followers_count: _Optional[int] = ..., status: _Optional[_Union[AccountStatus, str]] = ..., status_reason: _Optional[str] = ..., auth_method: _Optional[_Union[AuthMethod, str]] = ..., scopes: _Optional[_Iterable[str]] = ..., token_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., settings: _Optional[_Union[AccountSettings, _Mapping]] = ..., webhook: _Optional[_Union[WebhookState, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class AccountSettings(_message.Message):
    __slots__ = ("auto_reply_enabled", "business_hours", "dm_budget", "max_post_length")
    AUTO_REPLY_ENABLED_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_HOURS_FIELD_NUMBER: _ClassVar[int]
    DM_BUDGET_FIELD_NUMBER: _ClassVar[int]
    MAX_POST_LENGTH_FIELD_NUMBER: _ClassVar[int]
    auto_reply_enabled: bool
    business_hours: BusinessHours
    dm_budget: DmBudget
    max_post_length: int
    def __init__(self, auto_reply_enabled: _Optional[bool] = ..., business_hours: _Optional[_Union[BusinessHours, _Mapping]] = ..., dm_budget: _Optional[_Union[DmBudget, _Mapping]] = ..., max_post_length: _Optional[int] = ...) -> None: ...

class BusinessHours(_message.Message):
    __slots__ = ("enabled", "schedule")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    schedule: _common_pb2.WeeklySchedule
    def __init__(self, enabled: _Optional[bool] = ..., schedule: _Optional[_Union[_common_pb2.WeeklySchedule, _Mapping]] = ...) -> None: ...

class DmBudget(_message.Message):
    __slots__ = ("per_15_minutes", "per_24_hours")
    PER_15_MINUTES_FIELD_NUMBER: _ClassVar[int]
    PER_24_HOURS_FIELD_NUMBER: _ClassVar[int]
    per_15_minutes: int
    per_24_hours: int
    def __init__(self, per_15_minutes: _Optional[int] = ..., per_24_hours: _Optional[int] = ...) -> None: ...

class WebhookState(_message.Message):
    __slots__ = ("webhook_id", "url", "subscribed", "validate_time")
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    url: str
    subscribed: bool
    validate_time: _timestamp_pb2.Timestamp
    def __init__(self, webhook_id: _Optional[str] = ..., url: _Optional[str] = ..., subscribed: _Optional[bool] = ..., validate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StartConnectionRequest(_message.Message):
    __slots__ = ("auth_method", "callback_uri", "scopes")
    AUTH_METHOD_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_URI_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    auth_method: AuthMethod
    callback_uri: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, auth_method: _Optional[_Union[AuthMethod, str]] = ..., callback_uri: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ...) -> None: ...

class StartConnectionResponse(_message.Message):
    __slots__ = ("authorization_url", "state", "expire_time")
    AUTHORIZATION_URL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    authorization_url: str
    state: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, authorization_url: _Optional[str] = ..., state: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CompleteConnectionRequest(_message.Message):
    __slots__ = ("state", "oauth_verifier", "oauth_token", "code")
    STATE_FIELD_NUMBER: _ClassVar[int]
    OAUTH_VERIFIER_FIELD_NUMBER: _ClassVar[int]
    OAUTH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    state: str
    oauth_verifier: str
    oauth_token: str
    code: str
    def __init__(self, state: _Optional[str] = ..., oauth_verifier: _Optional[str] = ..., oauth_token: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListAccountsRequest(_message.Message):
    __slots__ = ("status", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: AccountStatus
    page_size: int
    page_token: str
    def __init__(self, status: _Optional[_Union[AccountStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAccountsResponse(_message.Message):
    __slots__ = ("accounts", "next_page_token")
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    accounts: _containers.RepeatedCompositeFieldContainer[Account]
    next_page_token: str
    def __init__(self, accounts: _Optional[_Iterable[_Union[Account, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateAccountSettingsRequest(_message.Message):
    __slots__ = ("account_id", "settings", "update_mask", "etag")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    settings: AccountSettings
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, account_id: _Optional[str] = ..., settings: _Optional[_Union[AccountSettings, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class DisconnectAccountRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RefreshAccountTokensRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RegisterWebhookRequest(_message.Message):
    __slots__ = ("id", "url")
    ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    id: str
    url: str
    def __init__(self, id: _Optional[str] = ..., url: _Optional[str] = ...) -> None: ...

class GetAccountStatisticsRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class AccountStatistics(_message.Message):
    __slots__ = ("account_id", "contacts", "conversations", "open_conversations", "messages_sent_this_month", "messages_received_this_month")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    OPEN_CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_SENT_THIS_MONTH_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_RECEIVED_THIS_MONTH_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    contacts: int
    conversations: int
    open_conversations: int
    messages_sent_this_month: int
    messages_received_this_month: int
    def __init__(self, account_id: _Optional[str] = ..., contacts: _Optional[int] = ..., conversations: _Optional[int] = ..., open_conversations: _Optional[int] = ..., messages_sent_this_month: _Optional[int] = ..., messages_received_this_month: _Optional[int] = ...) -> None: ...
