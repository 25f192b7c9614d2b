import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mktx.v1 import conversations_pb2 as _conversations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ContactSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTACT_SOURCE_UNSPECIFIED: _ClassVar[ContactSource]
    CONTACT_SOURCE_INBOUND_MESSAGE: _ClassVar[ContactSource]
    CONTACT_SOURCE_NEW_FOLLOWER: _ClassVar[ContactSource]
    CONTACT_SOURCE_MENTION: _ClassVar[ContactSource]
    CONTACT_SOURCE_IMPORT: _ClassVar[ContactSource]
    CONTACT_SOURCE_MANUAL: _ClassVar[ContactSource]

class TagMatchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TAG_MATCH_MODE_UNSPECIFIED: _ClassVar[TagMatchMode]
    TAG_MATCH_MODE_ANY: _ClassVar[TagMatchMode]
    TAG_MATCH_MODE_ALL: _ClassVar[TagMatchMode]

class ImportConflictPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMPORT_CONFLICT_POLICY_UNSPECIFIED: _ClassVar[ImportConflictPolicy]
    IMPORT_CONFLICT_POLICY_MERGE: _ClassVar[ImportConflictPolicy]
    IMPORT_CONFLICT_POLICY_SKIP: _ClassVar[ImportConflictPolicy]
CONTACT_SOURCE_UNSPECIFIED: ContactSource
CONTACT_SOURCE_INBOUND_MESSAGE: ContactSource
CONTACT_SOURCE_NEW_FOLLOWER: ContactSource
CONTACT_SOURCE_MENTION: ContactSource
CONTACT_SOURCE_IMPORT: ContactSource
CONTACT_SOURCE_MANUAL: ContactSource
TAG_MATCH_MODE_UNSPECIFIED: TagMatchMode
TAG_MATCH_MODE_ANY: TagMatchMode
TAG_MATCH_MODE_ALL: TagMatchMode
IMPORT_CONFLICT_POLICY_UNSPECIFIED: ImportConflictPolicy
IMPORT_CONFLICT_POLICY_MERGE: ImportConflictPolicy
IMPORT_CONFLICT_POLICY_SKIP: ImportConflictPolicy

class Contact(_message.Message):
    __slots__ = ("id", "account_id", "x_user_id", "username", "display_name", "profile_image_url", "source", "follows_account", "follow_time", "tags", "attributes", "time_zone", "language", "opted_out", "opt_out_time", "first_interaction_time", "last_interaction_time", "engagement", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    X_USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FOLLOWS_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_TIME_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    OPTED_OUT_FIELD_NUMBER: _ClassVar[int]
    OPT_OUT_TIME_FIELD_NUMBER: _ClassVar[int]
    FIRST_INTERACTION_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_INTERACTION_TIME_FIELD_NUMBER: _ClassVar[int]
    ENGAGEMENT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    account_id: str
    x_user_id: str
    username: str
    display_name: str
    profile_image_url: str
    source: ContactSource
    follows_account: bool
    follow_time: _timestamp_pb2.Timestamp
    tags: _containers.RepeatedScalarFieldContainer[str]
    attributes: _struct_pb2.Struct
    time_zone: str
    language: str
    opted_out: bool
    opt_out_time: _timestamp_pb2.Timestamp
    first_interaction_time: _timestamp_pb2.Timestamp
    last_interaction_time: _timestamp_pb2.Timestamp
    engagement: ContactEngagement
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., account_id: _Optional[str] = ..., x_user_id: _Optional[str] = ..., username: _Optional[str] = ..., display_name: _Optional[str] = ..., profile_image_url: _Optional[str] = ..., source: _Optional[_Union[ContactSource, str]] = ..., follows_account: _Optional[bool] = ..., follow_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., time_zone: _Optional[str] = ..., language: _Optional[str] = ..., opted_out: _Optional[bool] = ..., opt_out_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., first_interaction_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_interaction_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., engagement: _Optional[_Union[ContactEngagement, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class ContactEngagement(_message.Message):
    __slots__ = ("messages_sent", "messages_received", "average_response_time", "conversation_count", "first_interaction_time", "last_interaction_time")
    MESSAGES_SENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_RESPONSE_TIME_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_INTERACTION_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_INTERACTION_TIME_FIELD_NUMBER: _ClassVar[int]
    messages_sent: int
    messages_received: int
    average_response_time: _duration_pb2.Duration
    conversation_count: int
    first_interaction_time: _timestamp_pb2.Timestamp
    last_interaction_time: _timestamp_pb2.Timestamp
    def __init__(self, messages_sent: _Optional[int] = ..., messages_received: _Optional[int] = ..., average_response_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., conversation_count: _Optional[int] = ..., first_interaction_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_interaction_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateContactRequest(_message.Message):
    __slots__ = ("contact", "request_id")
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    contact: Contact
    request_id: str
    def __init__(self, contact: _Optional[_Union[Contact, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetContactRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListContactsRequest(_message.Message):
    __slots__ = ("account_id", "query", "tags", "tag_match_mode", "attributes", "source", "page_size", "page_token")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TAG_MATCH_MODE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    query: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    tag_match_mode: TagMatchMode
    attributes: _struct_pb2.Struct
    source: ContactSource
    page_size: int
    page_token: str
    def __init__(self, account_id: _Optional[str] = ..., query: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., tag_match_mode: _Optional[_Union[TagMatchMode, str]] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., source: _Optional[_Union[ContactSource, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListContactsResponse(_message.Message):
    __slots__ = ("contacts", "next_page_token")
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    contacts: _containers.RepeatedCompositeFieldContainer[Contact]
    next_page_token: str
    def __init__(self, contacts: _Optional[_Iterable[_Union[Contact, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateContactRequest(_message.Message):
    __slots__ = ("contact", "update_mask", "etag")
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    contact: Contact
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, contact: _Optional[_Union[Contact, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class AddContactTagsRequest(_message.Message):
    __slots__ = ("id", "tags")
    ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    id: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveContactTagRequest(_message.Message):
    __slots__ = ("id", "tag")
    ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    tag: str
    def __init__(self, id: _Optional[str] = ..., tag: _Optional[str] = ...) -> None: ...

class MergeContactAttributesRequest(_message.Message):
    __slots__ = ("id", "attributes", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    attributes: _struct_pb2.Struct
    etag: str
    def __init__(self, id: _Optional[str] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class ListContactConversationsRequest(_message.Message):
    __slots__ = ("id", "status", "page_size", "page_token")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: _conversations_pb2.ConversationStatus
    page_size: int
    page_token: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[_conversations_pb2.ConversationStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListContactConversationsResponse(_message.Message):
    __slots__ = ("conversations", "next_page_token")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[_conversations_pb2.Conversation]
    next_page_token: str
    def __init__(self, conversations: _Optional[_Iterable[_Union[_conversations_pb2.Conversation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteContactRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class ImportContactsOptions(_message.Message):
    __slots__ = ("account_id", "conflict_policy", "tags", "validate_only", "request_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CONFLICT_POLICY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    conflict_policy: ImportConflictPolicy
    tags: _containers.RepeatedScalarFieldContainer[str]
    validate_only: bool
    request_id: str
    def __init__(self, account_id: _Optional[str] = ..., conflict_policy: _Optional[_Union[ImportConflictPolicy, str]] = ..., tags: _Optional[_Iterable[str]] = ..., validate_only: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class ImportContactsRequest(_message.Message):
    __slots__ = ("options", "contacts")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    options: ImportContactsOptions
    contacts: _containers.RepeatedCompositeFieldContainer[Contact]
    def __init__(self, options: _Optional[_Union[ImportContactsOptions, _Mapping]] = ..., contacts: _Optional[_Iterable[_Union[Contact, _Mapping]]] = ...) -> None: ...

class ImportContactError(_message.Message):
    __slots__ = ("row_index", "x_user_id", "field", "description")
    ROW_INDEX_FIELD_NUMBER: _ClassVar[int]
    X_USER_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    row_index: int
    x_user_id: str
    field: str
    description: str
    def __init__(self, row_index: _Optional[int] = ..., x_user_id: _Optional[str] = ..., field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ImportContactsResponse(_message.Message):
    __slots__ = ("received_count", "created_count", "updated_count", "skipped_count", "failed_count", "errors", "errors_truncated", "validate_only")
    RECEIVED_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_COUNT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_COUNT_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILED_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    received_count: int
    created_count: int
    updated_count: int
    skipped_count: int
    failed_count: int
    errors: _containers.RepeatedCompositeFieldContainer[ImportContactError]
    errors_truncated: bool
    validate_only: bool
    def __init__(self, received_count: _Optional[int] = ..., created_count: _Optional[int] = ..., updated_count: _Optional[int] = ..., skipped_count: _Optional[int] = ..., failed_count: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[ImportContactError, _Mapping]]] = ..., errors_truncated: _Optional[bool] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class ExportContactsRequest(_message.Message):
    __slots__ = ("account_id", "query", "tags", "tag_match_mode", "attributes", "source", "segment_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TAG_MATCH_MODE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    query: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    tag_match_mode: TagMatchMode
    attributes: _struct_pb2.Struct
    source: ContactSource
    segment_id: str
    def __init__(self, account_id: _Optional[str] = ..., query: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., tag_match_mode: _Optional[_Union[TagMatchMode, str]] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., source: _Optional[_Union[ContactSource, str]] = ..., segment_id: _Optional[str] = ...) -> None: ...

class ExportContactsResponse(_message.Message):
    __slots__ = ("contacts",)
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    contacts: _containers.RepeatedCompositeFieldContainer[Contact]
    def __init__(self, contacts: _Optional[_Iterable[_Union[Contact, _Mapping]]] = ...) -> None: ...
