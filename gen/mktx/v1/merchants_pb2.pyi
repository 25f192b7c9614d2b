import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MerchantSettings(_message.Message):
    __slots__ = ("time_zone", "rate_limit", "update_time", "etag")
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    time_zone: str
    rate_limit: MerchantRateLimit
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, time_zone: _Optional[str] = ..., rate_limit: _Optional[_Union[MerchantRateLimit, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class MerchantRateLimit(_message.Message):
    __slots__ = ("requests_per_minute", "burst", "overridden")
    REQUESTS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    BURST_FIELD_NUMBER: _ClassVar[int]
    OVERRIDDEN_FIELD_NUMBER: _ClassVar[int]
    requests_per_minute: int
    burst: int
    overridden: bool
    def __init__(self, requests_per_minute: _Optional[int] = ..., burst: _Optional[int] = ..., overridden: _Optional[bool] = ...) -> None: ...

class GetMerchantSettingsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateMerchantSettingsRequest(_message.Message):
    __slots__ = ("settings", "update_mask", "etag")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    settings: MerchantSettings
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, settings: _Optional[_Union[MerchantSettings, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...
