import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mktx.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConversationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONVERSATION_STATUS_UNSPECIFIED: _ClassVar[ConversationStatus]
    CONVERSATION_STATUS_OPEN: _ClassVar[ConversationStatus]
    CONVERSATION_STATUS_PENDING: _ClassVar[ConversationStatus]
    CONVERSATION_STATUS_SNOOZED: _ClassVar[ConversationStatus]
    CONVERSATION_STATUS_CLOSED: _ClassVar[ConversationStatus]

class MessageDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_DIRECTION_UNSPECIFIED: _ClassVar[MessageDirection]
    MESSAGE_DIRECTION_INBOUND: _ClassVar[MessageDirection]
    MESSAGE_DIRECTION_OUTBOUND: _ClassVar[MessageDirection]

class MessageType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_TYPE_UNSPECIFIED: _ClassVar[MessageType]
    MESSAGE_TYPE_TEXT: _ClassVar[MessageType]
    MESSAGE_TYPE_IMAGE: _ClassVar[MessageType]
    MESSAGE_TYPE_CARD: _ClassVar[MessageType]
    MESSAGE_TYPE_QUICK_REPLY: _ClassVar[MessageType]

class MessageOrigin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_ORIGIN_UNSPECIFIED: _ClassVar[MessageOrigin]
    MESSAGE_ORIGIN_CONTACT: _ClassVar[MessageOrigin]
    MESSAGE_ORIGIN_AGENT: _ClassVar[MessageOrigin]
    MESSAGE_ORIGIN_AI: _ClassVar[MessageOrigin]
    MESSAGE_ORIGIN_CAMPAIGN: _ClassVar[MessageOrigin]
    MESSAGE_ORIGIN_AUTOMATION: _ClassVar[MessageOrigin]
    MESSAGE_ORIGIN_EXTERNAL: _ClassVar[MessageOrigin]

class MessageDeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_DELIVERY_STATE_UNSPECIFIED: _ClassVar[MessageDeliveryState]
    MESSAGE_DELIVERY_STATE_PENDING: _ClassVar[MessageDeliveryState]
    MESSAGE_DELIVERY_STATE_SENT: _ClassVar[MessageDeliveryState]
    MESSAGE_DELIVERY_STATE_DELIVERED: _ClassVar[MessageDeliveryState]
    MESSAGE_DELIVERY_STATE_READ: _ClassVar[MessageDeliveryState]
    MESSAGE_DELIVERY_STATE_FAILED: _ClassVar[MessageDeliveryState]

class ConversationEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONVERSATION_EVENT_TYPE_UNSPECIFIED: _ClassVar[ConversationEventType]
    CONVERSATION_EVENT_TYPE_NEW_MESSAGE: _ClassVar[ConversationEventType]
    CONVERSATION_EVENT_TYPE_MESSAGE_UPDATED: _ClassVar[ConversationEventType]
    CONVERSATION_EVENT_TYPE_STATUS_CHANGED: _ClassVar[ConversationEventType]
    CONVERSATION_EVENT_TYPE_ASSIGNED: _ClassVar[ConversationEventType]
    CONVERSATION_EVENT_TYPE_UNASSIGNED: _ClassVar[ConversationEventType]
    CONVERSATION_EVENT_TYPE_ESCALATED: _ClassVar[ConversationEventType]
    CONVERSATION_EVENT_TYPE_MARKED_READ: _ClassVar[ConversationEventType]
    CONVERSATION_EVENT_TYPE_DELETED: _ClassVar[ConversationEventType]
    CONVERSATION_EVENT_TYPE_HEARTBEAT: _ClassVar[ConversationEventType]
CONVERSATION_STATUS_UNSPECIFIED: ConversationStatus
CONVERSATION_STATUS_OPEN: ConversationStatus
CONVERSATION_STATUS_PENDING: ConversationStatus
CONVERSATION_STATUS_SNOOZED: ConversationStatus
CONVERSATION_STATUS_CLOSED: ConversationStatus
MESSAGE_DIRECTION_UNSPECIFIED: MessageDirection
MESSAGE_DIRECTION_INBOUND: MessageDirection
MESSAGE_DIRECTION_OUTBOUND: MessageDirection
MESSAGE_TYPE_UNSPECIFIED: MessageType
MESSAGE_TYPE_TEXT: MessageType
MESSAGE_TYPE_IMAGE: MessageType
MESSAGE_TYPE_CARD: MessageType
MESSAGE_TYPE_QUICK_REPLY: MessageType
MESSAGE_ORIGIN_UNSPECIFIED: MessageOrigin
MESSAGE_ORIGIN_CONTACT: MessageOrigin
MESSAGE_ORIGIN_AGENT: MessageOrigin
MESSAGE_ORIGIN_AI: MessageOrigin
MESSAGE_ORIGIN_CAMPAIGN: MessageOrigin
MESSAGE_ORIGIN_AUTOMATION: MessageOrigin
MESSAGE_ORIGIN_EXTERNAL: MessageOrigin
MESSAGE_DELIVERY_STATE_UNSPECIFIED: MessageDeliveryState
MESSAGE_DELIVERY_STATE_PENDING: MessageDeliveryState
MESSAGE_DELIVERY_STATE_SENT: MessageDeliveryState
MESSAGE_DELIVERY_STATE_DELIVERED: MessageDeliveryState
MESSAGE_DELIVERY_STATE_READ: MessageDeliveryState
MESSAGE_DELIVERY_STATE_FAILED: MessageDeliveryState
CONVERSATION_EVENT_TYPE_UNSPECIFIED: ConversationEventType
CONVERSATION_EVENT_TYPE_NEW_MESSAGE: ConversationEventType
CONVERSATION_EVENT_TYPE_MESSAGE_UPDATED: ConversationEventType
CONVERSATION_EVENT_TYPE_STATUS_CHANGED: ConversationEventType
CONVERSATION_EVENT_TYPE_ASSIGNED: ConversationEventType
CONVERSATION_EVENT_TYPE_UNASSIGNED: ConversationEventType
CONVERSATION_EVENT_TYPE_ESCALATED: ConversationEventType
CONVERSATION_EVENT_TYPE_MARKED_READ: ConversationEventType
CONVERSATION_EVENT_TYPE_DELETED: ConversationEventType
CONVERSATION_EVENT_TYPE_HEARTBEAT: ConversationEventType

class ContactSummary(_message.Message):
    __slots__ = ("id", "x_user_id", "username", "display_name", "profile_image_url")
    ID_FIELD_NUMBER: _ClassVar[int]
    X_USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    id: str
    x_user_id: str
    username: str
    display_name: str
    profile_image_url: str
    def __init__(self, id: _Optional[str] = ..., x_user_id: _Optional[str] = ..., username: _Optional[str] = ..., display_name: _Optional[str] = ..., profile_image_url: _Optional[str] = ...) -> None: ...

class Conversation(_message.Message):
    __slots__ = ("id", "account_id", "contact_id", "contact", "x_conversation_id", "status", "assignee_user_id", "snooze_until_time", "close_reason", "close_time", "escalated", "escalation_reason", "last_message_preview", "last_message_time", "last_inbound_time", "unread_count", "message_count", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    X_CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_USER_ID_FIELD_NUMBER: _ClassVar[int]
    SNOOZE_UNTIL_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSE_REASON_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_REASON_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_INBOUND_TIME_FIELD_NUMBER: _ClassVar[int]
    UNREAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    account_id: str
    contact_id: str
    contact: ContactSummary
    x_conversation_id: str
    status: ConversationStatus
    assignee_user_id: str
    snooze_until_time: _timestamp_pb2.Timestamp
    close_reason: str
    close_time: _timestamp_pb2.Timestamp
    escalated: bool
    escalation_reason: str
    last_message_preview: str
    last_message_time: _timestamp_pb2.Timestamp
    last_inbound_time: _timestamp_pb2.Timestamp
    unread_count: int
    message_count: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., account_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., contact: _Optional[_Union[ContactSummary, _Mapping]] = ..., x_conversation_id: _Optional[str] = ..., status: _Optional[_Union[ConversationStatus, str]] = ..., assignee_user_id: _Optional[str] = ..., snooze_until_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., close_reason: _Optional[str] = ..., close_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., escalated: _Optional[bool] = ..., escalation_reason: _Optional[str] = ..., last_message_preview: _Optional[str] = ..., last_message_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_inbound_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., unread_count: _Optional[int] = ..., message_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("id", "conversation_id", "direction", "type", "text", "attachments", "quick_replies", "card_buttons", "quick_reply_metadata", "origin", "is_from_bot", "sender_user_id", "campaign_id", "flow_id", "x_message_id", "sent_time", "delivery_state", "deliver_time", "read_time", "failure_reason", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    QUICK_REPLIES_FIELD_NUMBER: _ClassVar[int]
    CARD_BUTTONS_FIELD_NUMBER: _ClassVar[int]
    QUICK_REPLY_METADATA_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    IS_FROM_BOT_FIELD_NUMBER: _ClassVar[int]
    SENDER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    X_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_TIME_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_STATE_FIELD_NUMBER: _ClassVar[int]
    DELIVER_TIME_FIELD_NUMBER: _ClassVar[int]
    READ_TIME_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    conversation_id: str
    direction: MessageDirection
    type: MessageType
    text: str
    attachments: _containers.RepeatedCompositeFieldContainer[_common_pb2.MediaAttachment]
    quick_replies: _containers.RepeatedCompositeFieldContainer[_common_pb2.QuickReplyOption]
    card_buttons: _containers.RepeatedCompositeFieldContainer[_common_pb2.CardButton]
    quick_reply_metadata: str
    origin: MessageOrigin
    is_from_bot: bool
    sender_user_id: str
    campaign_id: str
    flow_id: str
    x_message_id: str
    sent_time: _timestamp_pb2.Timestamp
    delivery_state: MessageDeliveryState
    deliver_time: _timestamp_pb2.Timestamp
    read_time: _timestamp_pb2.Timestamp
    failure_reason: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., direction: _Optional[_Union[MessageDirection, str]] = ..., type: _Optional[_Union[MessageType, str]] = ..., text: _Optional[str] = ..., attachments: _Optional[_Iterable[_Union[_common_pb2.MediaAttachment, _Mapping]]] = ..., quick_replies: _Optional[_Iterable[_Union[_common_pb2.QuickReplyOption, _Mapping]]] = ..., card_buttons: _Optional[_Iterable[_Union[_common_pb2.CardButton, _Mapping]]] = ..., quick_reply_metadata: _Optional[str] = ..., origin: _Optional[_Union[MessageOrigin, str]] = ..., is_from_bot: _Optional[bool] = ..., sender_user_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., flow_id: _Optional[str] = ..., x_message_id: _Optional[str] = ..., sent_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delivery_state: _Optional[_Union[MessageDeliveryState, str]] = ..., deliver_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., read_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure_reason: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListConversationsRequest(_message.Message):
    __slots__ = ("account_id", "status", "assignee_user_id", "unassigned", "contact_id", "update_time_after", "page_size", "page_token")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_USER_ID_FIELD_NUMBER: _ClassVar[int]
    UNASSIGNED_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_AFTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    status: ConversationStatus
    assignee_user_id: str
    unassigned: bool
    contact_id: str
    update_time_after: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, account_id: _Optional[str] = ..., status: _Optional[_Union[ConversationStatus, str]] = ..., assignee_user_id: _Optional[str] = ..., unassigned: _Optional[bool] = ..., contact_id: _Optional[str] = ..., update_time_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListConversationsResponse(_message.Message):
    __slots__ = ("conversations", "next_page_token")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[Conversation]
    next_page_token: str
    def __init__(self, conversations: _Optional[_Iterable[_Union[Conversation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetConversationRequest(_message.Message):
    __slots__ = ("id", "message_page_size", "message_page_token")
    ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    id: str
    message_page_size: int
    message_page_token: str
    def __init__(self, id: _Optional[str] = ..., message_page_size: _Optional[int] = ..., message_page_token: _Optional[str] = ...) -> None: ...

class GetConversationResponse(_message.Message):
    __slots__ = ("conversation", "messages", "next_message_page_token")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_MESSAGE_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conversation: Conversation
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    next_message_page_token: str
    def __init__(self, conversation: _Optional[_Union[Conversation, _Mapping]] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., next_message_page_token: _Optional[str] = ...) -> None: ...

class SendMessageRequest(_message.Message):
    __slots__ = ("conversation_id", "contact_id", "text", "attachments", "quick_replies", "template_id", "variables", "request_id")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    QUICK_REPLIES_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    contact_id: str
    text: str
    attachments: _containers.RepeatedCompositeFieldContainer[_common_pb2.MediaAttachment]
    quick_replies: _containers.RepeatedCompositeFieldContainer[_common_pb2.QuickReplyOption]
    template_id: str
    variables: _containers.ScalarMap[str, str]
    request_id: str
    def __init__(self, conversation_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., text: _Optional[str] = ..., attachments: _Optional[_Iterable[_Union[_common_pb2.MediaAttachment, _Mapping]]] = ..., quick_replies: _Optional[_Iterable[_Union[_common_pb2.QuickReplyOption, _Mapping]]] = ..., template_id: _Optional[str] = ..., variables: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SendMessageResponse(_message.Message):
    __slots__ = ("conversation", "messages")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    conversation: Conversation
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    def __init__(self, conversation: _Optional[_Union[Conversation, _Mapping]] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ...) -> None: ...

class CloseConversationRequest(_message.Message):
    __slots__ = ("id", "reason", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    reason: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., reason: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class ReopenConversationRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class AssignConversationRequest(_message.Message):
    __slots__ = ("id", "assignee_user_id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_USER_ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    assignee_user_id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., assignee_user_id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class UnassignConversationRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class MarkConversationPendingRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class SnoozeConversationRequest(_message.Message):
    __slots__ = ("id", "snooze_until_time", "snooze_duration", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    SNOOZE_UNTIL_TIME_FIELD_NUMBER: _ClassVar[int]
    SNOOZE_DURATION_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    snooze_until_time: _timestamp_pb2.Timestamp
    snooze_duration: _duration_pb2.Duration
    etag: str
    def __init__(self, id: _Optional[str] = ..., snooze_until_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., snooze_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class MarkConversationReadRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WatchConversationsRequest(_message.Message):
    __slots__ = ("account_id", "conversation_id", "event_types", "cursor")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    conversation_id: str
    event_types: _containers.RepeatedScalarFieldContainer[ConversationEventType]
    cursor: str
    def __init__(self, account_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., event_types: _Optional[_Iterable[_Union[ConversationEventType, str]]] = ..., cursor: _Optional[str] = ...) -> None: ...

class ConversationEvent(_message.Message):
    __slots__ = ("cursor", "type", "conversation", "message", "previous_status", "actor_user_id", "time")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    type: ConversationEventType
    conversation: Conversation
    message: Message
    previous_status: ConversationStatus
    actor_user_id: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, cursor: _Optional[str] = ..., type: _Optional[_Union[ConversationEventType, str]] = ..., conversation: _Optional[_Union[Conversation, _Mapping]] = ..., message: _Optional[_Union[Message, _Mapping]] = ..., previous_status: _Optional[_Union[ConversationStatus, str]] = ..., actor_user_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
