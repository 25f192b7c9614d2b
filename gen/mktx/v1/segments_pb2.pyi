import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mktx.v1 import contacts_pb2 as _contacts_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConditionGroupOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONDITION_GROUP_OPERATOR_UNSPECIFIED: _ClassVar[ConditionGroupOperator]
    CONDITION_GROUP_OPERATOR_AND: _ClassVar[ConditionGroupOperator]
    CONDITION_GROUP_OPERATOR_OR: _ClassVar[ConditionGroupOperator]

class ConditionOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONDITION_OPERATOR_UNSPECIFIED: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_EQUALS: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_NOT_EQUALS: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_CONTAINS: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_NOT_CONTAINS: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_STARTS_WITH: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_ENDS_WITH: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_GREATER_THAN: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_GREATER_OR_EQUAL: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_LESS_THAN: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_LESS_OR_EQUAL: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_BETWEEN: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_IN: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_NOT_IN: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_BEFORE: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_AFTER: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_WITHIN_LAST_DAYS: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_MORE_THAN_DAYS_AGO: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_IS_SET: _ClassVar[ConditionOperator]
    CONDITION_OPERATOR_IS_NOT_SET: _ClassVar[ConditionOperator]
CONDITION_GROUP_OPERATOR_UNSPECIFIED: ConditionGroupOperator
CONDITION_GROUP_OPERATOR_AND: ConditionGroupOperator
CONDITION_GROUP_OPERATOR_OR: ConditionGroupOperator
CONDITION_OPERATOR_UNSPECIFIED: ConditionOperator
CONDITION_OPERATOR_EQUALS: ConditionOperator
CONDITION_OPERATOR_NOT_EQUALS: ConditionOperator
CONDITION_OPERATOR_CONTAINS: ConditionOperator
CONDITION_OPERATOR_NOT_CONTAINS: ConditionOperator
CONDITION_OPERATOR_STARTS_WITH: ConditionOperator
CONDITION_OPERATOR_ENDS_WITH: ConditionOperator
CONDITION_OPERATOR_GREATER_THAN: ConditionOperator
CONDITION_OPERATOR_GREATER_OR_EQUAL: ConditionOperator
CONDITION_OPERATOR_LESS_THAN: ConditionOperator
CONDITION_OPERATOR_LESS_OR_EQUAL: ConditionOperator
CONDITION_OPERATOR_BETWEEN: ConditionOperator
CONDITION_OPERATOR_IN: ConditionOperator
CONDITION_OPERATOR_NOT_IN: ConditionOperator
CONDITION_OPERATOR_BEFORE: ConditionOperator
CONDITION_OPERATOR_AFTER: ConditionOperator
CONDITION_OPERATOR_WITHIN_LAST_DAYS: ConditionOperator
CONDITION_OPERATOR_MORE_THAN_DAYS_AGO: ConditionOperator
CONDITION_OPERATOR_IS_SET: ConditionOperator
CONDITION_OPERATOR_IS_NOT_SET: ConditionOperator

class Segment(_message.Message):
    __slots__ = ("id", "name", "description", "account_id", "conditions", "contact_count", "count_refresh_time", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    CONTACT_COUNT_FIELD_NUMBER: _ClassVar[int]
    COUNT_REFRESH_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    account_id: str
    conditions: ConditionGroup
    contact_count: int
    count_refresh_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., account_id: _Optional[str] = ..., conditions: _Optional[_Union[ConditionGroup, _Mapping]] = ..., contact_count: _Optional[int] = ..., count_refresh_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class ConditionGroup(_message.Message):
    __slots__ = ("operator", "nodes")
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    operator: ConditionGroupOperator
    nodes: _containers.RepeatedCompositeFieldContainer[ConditionNode]
    def __init__(self, operator: _Optional[_Union[ConditionGroupOperator, str]] = ..., nodes: _Optional[_Iterable[_Union[ConditionNode, _Mapping]]] = ...) -> None: ...

class ConditionNode(_message.Message):
    __slots__ = ("condition", "group")
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    condition: Condition
    group: ConditionGroup
    def __init__(self, condition: _Optional[_Union[Condition, _Mapping]] = ..., group: _Optional[_Union[ConditionGroup, _Mapping]] = ...) -> None: ...

class ConditionStringList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class ConditionNumberRange(_message.Message):
    __slots__ = ("min", "max")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    min: float
    max: float
    def __init__(self, min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class ConditionTimestampRange(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Condition(_message.Message):
    __slots__ = ("field", "operator", "string_value", "number_value", "bool_value", "timestamp_value", "string_list", "number_range", "timestamp_range", "days")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    NUMBER_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_LIST_FIELD_NUMBER: _ClassVar[int]
    NUMBER_RANGE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_RANGE_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    field: str
    operator: ConditionOperator
    string_value: str
    number_value: float
    bool_value: bool
    timestamp_value: _timestamp_pb2.Timestamp
    string_list: ConditionStringList
    number_range: ConditionNumberRange
    timestamp_range: ConditionTimestampRange
    days: int
    def __init__(self, field: _Optional[str] = ..., operator: _Optional[_Union[ConditionOperator, str]] = ..., string_value: _Optional[str] = ..., number_value: _Optional[float] = ..., bool_value: _Optional[bool] = ..., timestamp_value: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., string_list: _Optional[_Union[ConditionStringList, _Mapping]] = ..., number_range: _Optional[_Union[ConditionNumberRange, _Mapping]] = ..., timestamp_range: _Optional[_Union[ConditionTimestampRange, _Mapping]] = ..., days: _Optional[int] = ...) -> None: ...

class CreateSegmentRequest(_message.Message):
    __slots__ = ("segment", "request_id")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    request_id: str
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetSegmentRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListSegmentsRequest(_message.Message):
    __slots__ = ("account_id", "name_contains", "page_size", "page_token")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    name_contains: str
    page_size: int
    page_token: str
    def __init__(self, account_id: _Optional[str] = ..., name_contains: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSegmentsResponse(_message.Message):
    __slots__ = ("segments", "next_page_token")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    next_page_token: str
    def __init__(self, segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateSegmentRequest(_message.Message):
    __slots__ = ("segment", "update_mask", "etag")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class DeleteSegmentRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class PreviewSegmentRequest(_message.Message):
    __slots__ = ("segment_id", "conditions", "account_id", "sample_size")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    conditions: ConditionGroup
    account_id: str
    sample_size: int
    def __init__(self, segment_id: _Optional[str] = ..., conditions: _Optional[_Union[ConditionGroup, _Mapping]] = ..., account_id: _Optional[str] = ..., sample_size: _Optional[int] = ...) -> None: ...

class PreviewSegmentResponse(_message.Message):
    __slots__ = ("total_count", "sample_contacts")
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_CONTACTS_FIELD_NUMBER: _ClassVar[int]
    total_count: int
    sample_contacts: _containers.RepeatedCompositeFieldContainer[_contacts_pb2.Contact]
    def __init__(self, total_count: _Optional[int] = ..., sample_contacts: _Optional[_Iterable[_Union[_contacts_pb2.Contact, _Mapping]]] = ...) -> None: ...

class RefreshSegmentCountRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...
