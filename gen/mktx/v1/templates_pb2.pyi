import datetime

from google.protobuf import empty_pb2 as _empty_pb2
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

class TemplateType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEMPLATE_TYPE_UNSPECIFIED: _ClassVar[TemplateType]
    TEMPLATE_TYPE_TEXT: _ClassVar[TemplateType]
    TEMPLATE_TYPE_QUICK_REPLY: _ClassVar[TemplateType]
    TEMPLATE_TYPE_CARD: _ClassVar[TemplateType]
TEMPLATE_TYPE_UNSPECIFIED: TemplateType
TEMPLATE_TYPE_TEXT: TemplateType
TEMPLATE_TYPE_QUICK_REPLY: TemplateType
TEMPLATE_TYPE_CARD: TemplateType

class Template(_message.Message):
    __slots__ = ("id", "name", "description", "type", "content", "quick_replies", "card_media_url", "card_buttons", "variables", "tags", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    QUICK_REPLIES_FIELD_NUMBER: _ClassVar[int]
    CARD_MEDIA_URL_FIELD_NUMBER: _ClassVar[int]
    CARD_BUTTONS_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    type: TemplateType
    content: str
    quick_replies: _containers.RepeatedCompositeFieldContainer[_common_pb2.QuickReplyOption]
    card_media_url: str
    card_buttons: _containers.RepeatedCompositeFieldContainer[_common_pb2.CardButton]
    variables: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., type: _Optional[_Union[TemplateType, str]] = ..., content: _Optional[str] = ..., quick_replies: _Optional[_Iterable[_Union[_common_pb2.QuickReplyOption, _Mapping]]] = ..., card_media_url: _Optional[str] = ..., card_buttons: _Optional[_Iterable[_Union[_common_pb2.CardButton, _Mapping]]] = ..., variables: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class CreateTemplateRequest(_message.Message):
    __slots__ = ("template", "request_id")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    template: Template
    request_id: str
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetTemplateRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListTemplatesRequest(_message.Message):
    __slots__ = ("type", "name_contains", "page_size", "page_token")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    type: TemplateType
    name_contains: str
    page_size: int
    page_token: str
    def __init__(self, type: _Optional[_Union[TemplateType, str]] = ..., name_contains: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTemplatesResponse(_message.Message):
    __slots__ = ("templates", "next_page_token")
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[Template]
    next_page_token: str
    def __init__(self, templates: _Optional[_Iterable[_Union[Template, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateTemplateRequest(_message.Message):
    __slots__ = ("template", "update_mask", "etag")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    template: Template
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class DeleteTemplateRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class PreviewTemplateRequest(_message.Message):
    __slots__ = ("id", "variables")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    id: str
    variables: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., variables: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PreviewTemplateResponse(_message.Message):
    __slots__ = ("content", "quick_replies", "card_media_url", "card_buttons", "fallback_variables")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    QUICK_REPLIES_FIELD_NUMBER: _ClassVar[int]
    CARD_MEDIA_URL_FIELD_NUMBER: _ClassVar[int]
    CARD_BUTTONS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_VARIABLES_FIELD_NUMBER: _ClassVar[int]
    content: str
    quick_replies: _containers.RepeatedCompositeFieldContainer[_common_pb2.QuickReplyOption]
    card_media_url: str
    card_buttons: _containers.RepeatedCompositeFieldContainer[_common_pb2.CardButton]
    fallback_variables: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, content: _Optional[str] = ..., quick_replies: _Optional[_Iterable[_Union[_common_pb2.QuickReplyOption, _Mapping]]] = ..., card_media_url: _Optional[str] = ..., card_buttons: _Optional[_Iterable[_Union[_common_pb2.CardButton, _Mapping]]] = ..., fallback_variables: _Optional[_Iterable[str]] = ...) -> None: ...
