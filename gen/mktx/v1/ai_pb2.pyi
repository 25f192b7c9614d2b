import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mktx.v1 import conversations_pb2 as _conversations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EscalationReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ESCALATION_REASON_UNSPECIFIED: _ClassVar[EscalationReason]
    ESCALATION_REASON_LOW_CONFIDENCE: _ClassVar[EscalationReason]
    ESCALATION_REASON_HUMAN_REQUESTED: _ClassVar[EscalationReason]
    ESCALATION_REASON_SENSITIVE_TOPIC: _ClassVar[EscalationReason]
    ESCALATION_REASON_CANNOT_ANSWER: _ClassVar[EscalationReason]
    ESCALATION_REASON_KEYWORD: _ClassVar[EscalationReason]
    ESCALATION_REASON_MODERATION_FLAGGED: _ClassVar[EscalationReason]
    ESCALATION_REASON_MALFORMED_OUTPUT: _ClassVar[EscalationReason]
    ESCALATION_REASON_MODEL_UNAVAILABLE: _ClassVar[EscalationReason]
    ESCALATION_REASON_BUDGET_EXHAUSTED: _ClassVar[EscalationReason]
    ESCALATION_REASON_MANUAL: _ClassVar[EscalationReason]

class AISlotType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AI_SLOT_TYPE_UNSPECIFIED: _ClassVar[AISlotType]
    AI_SLOT_TYPE_TEXT: _ClassVar[AISlotType]
    AI_SLOT_TYPE_NUMBER: _ClassVar[AISlotType]
    AI_SLOT_TYPE_EMAIL: _ClassVar[AISlotType]
    AI_SLOT_TYPE_PHONE: _ClassVar[AISlotType]
    AI_SLOT_TYPE_DATE: _ClassVar[AISlotType]
    AI_SLOT_TYPE_ORDER_ID: _ClassVar[AISlotType]
ESCALATION_REASON_UNSPECIFIED: EscalationReason
ESCALATION_REASON_LOW_CONFIDENCE: EscalationReason
ESCALATION_REASON_HUMAN_REQUESTED: EscalationReason
ESCALATION_REASON_SENSITIVE_TOPIC: EscalationReason
ESCALATION_REASON_CANNOT_ANSWER: EscalationReason
ESCALATION_REASON_KEYWORD: EscalationReason
ESCALATION_REASON_MODERATION_FLAGGED: EscalationReason
ESCALATION_REASON_MALFORMED_OUTPUT: EscalationReason
ESCALATION_REASON_MODEL_UNAVAILABLE: EscalationReason
ESCALATION_REASON_BUDGET_EXHAUSTED: EscalationReason
ESCALATION_REASON_MANUAL: EscalationReason
AI_SLOT_TYPE_UNSPECIFIED: AISlotType
AI_SLOT_TYPE_TEXT: AISlotType
AI_SLOT_TYPE_NUMBER: AISlotType
AI_SLOT_TYPE_EMAIL: AISlotType
AI_SLOT_TYPE_PHONE: AISlotType
AI_SLOT_TYPE_DATE: AISlotType
AI_SLOT_TYPE_ORDER_ID: AISlotType

class AISlot(_message.Message):
    __slots__ = ("name", "type", "required", "prompt")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: AISlotType
    required: bool
    prompt: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[AISlotType, str]] = ..., required: _Optional[bool] = ..., prompt: _Optional[str] = ...) -> None: ...

class AIIntent(_message.Message):
    __slots__ = ("name", "description", "examples", "slots")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    examples: _containers.RepeatedScalarFieldContainer[str]
    slots: _containers.RepeatedCompositeFieldContainer[AISlot]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., examples: _Optional[_Iterable[str]] = ..., slots: _Optional[_Iterable[_Union[AISlot, _Mapping]]] = ...) -> None: ...

class AIContextItem(_message.Message):
    __slots__ = ("role", "text", "create_time")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    role: str
    text: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, role: _Optional[str] = ..., text: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AISession(_message.Message):
    __slots__ = ("context_items", "current_intent", "missing_slots", "expire_time", "start_time")
    CONTEXT_ITEMS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_INTENT_FIELD_NUMBER: _ClassVar[int]
    MISSING_SLOTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    context_items: _containers.RepeatedCompositeFieldContainer[AIContextItem]
    current_intent: str
    missing_slots: _containers.RepeatedScalarFieldContainer[str]
    expire_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    def __init__(self, context_items: _Optional[_Iterable[_Union[AIContextItem, _Mapping]]] = ..., current_intent: _Optional[str] = ..., missing_slots: _Optional[_Iterable[str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AITokenUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "total_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ...) -> None: ...

class ProcessMessageRequest(_message.Message):
    __slots__ = ("conversation_id", "account_id", "contact_id", "text", "dry_run")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    account_id: str
    contact_id: str
    text: str
    dry_run: bool
    def __init__(self, conversation_id: _Optional[str] = ..., account_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., text: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class ProcessMessageResponse(_message.Message):
    __slots__ = ("conversation_id", "intent", "confidence", "slots", "response_text", "requires_escalation", "escalation_reason", "escalation_detail", "within_business_hours", "model", "usage", "latency", "missing_slots", "escalation_summary")
    class SlotsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TEXT_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_ESCALATION_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_REASON_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_DETAIL_FIELD_NUMBER: _ClassVar[int]
    WITHIN_BUSINESS_HOURS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    MISSING_SLOTS_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    intent: str
    confidence: float
    slots: _containers.ScalarMap[str, str]
    response_text: str
    requires_escalation: bool
    escalation_reason: EscalationReason
    escalation_detail: str
    within_business_hours: bool
    model: str
    usage: AITokenUsage
    latency: _duration_pb2.Duration
    missing_slots: _containers.RepeatedScalarFieldContainer[str]
    escalation_summary: str
    def __init__(self, conversation_id: _Optional[str] = ..., intent: _Optional[str] = ..., confidence: _Optional[float] = ..., slots: _Optional[_Mapping[str, str]] = ..., response_text: _Optional[str] = ..., requires_escalation: _Optional[bool] = ..., escalation_reason: _Optional[_Union[EscalationReason, str]] = ..., escalation_detail: _Optional[str] = ..., within_business_hours: _Optional[bool] = ..., model: _Optional[str] = ..., usage: _Optional[_Union[AITokenUsage, _Mapping]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., missing_slots: _Optional[_Iterable[str]] = ..., escalation_summary: _Optional[str] = ...) -> None: ...

class StreamProcessMessageRequest(_message.Message):
    __slots__ = ("conversation_id", "account_id", "contact_id", "text", "dry_run")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    account_id: str
    contact_id: str
    text: str
    dry_run: bool
    def __init__(self, conversation_id: _Optional[str] = ..., account_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., text: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class StreamProcessMessageResponse(_message.Message):
    __slots__ = ("text_delta", "result")
    TEXT_DELTA_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    text_delta: str
    result: ProcessMessageResponse
    def __init__(self, text_delta: _Optional[str] = ..., result: _Optional[_Union[ProcessMessageResponse, _Mapping]] = ...) -> None: ...

class GetConversationContextRequest(_message.Message):
    __slots__ = ("conversation_id", "message_limit")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    message_limit: int
    def __init__(self, conversation_id: _Optional[str] = ..., message_limit: _Optional[int] = ...) -> None: ...

class DetectedIntent(_message.Message):
    __slots__ = ("intent", "confidence", "message_id", "detect_time")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    DETECT_TIME_FIELD_NUMBER: _ClassVar[int]
    intent: str
    confidence: float
    message_id: str
    detect_time: _timestamp_pb2.Timestamp
    def __init__(self, intent: _Optional[str] = ..., confidence: _Optional[float] = ..., message_id: _Optional[str] = ..., detect_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ConversationContext(_message.Message):
    __slots__ = ("conversation_id", "contact_id", "recent_messages", "detected_intents", "slots", "summary", "summary_update_time", "escalated", "total_usage", "session")
    class SlotsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    RECENT_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    DETECTED_INTENTS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_USAGE_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    contact_id: str
    recent_messages: _containers.RepeatedCompositeFieldContainer[_conversations_pb2.Message]
    detected_intents: _containers.RepeatedCompositeFieldContainer[DetectedIntent]
    slots: _containers.ScalarMap[str, str]
    summary: str
    summary_update_time: _timestamp_pb2.Timestamp
    escalated: bool
    total_usage: AITokenUsage
    session: AISession
    def __init__(self, conversation_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., recent_messages: _Optional[_Iterable[_Union[_conversations_pb2.Message, _Mapping]]] = ..., detected_intents: _Optional[_Iterable[_Union[DetectedIntent, _Mapping]]] = ..., slots: _Optional[_Mapping[str, str]] = ..., summary: _Optional[str] = ..., summary_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., escalated: _Optional[bool] = ..., total_usage: _Optional[_Union[AITokenUsage, _Mapping]] = ..., session: _Optional[_Union[AISession, _Mapping]] = ...) -> None: ...

class EscalateConversationRequest(_message.Message):
    __slots__ = ("conversation_id", "reason", "assignee_user_id", "notify_contact")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_USER_ID_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_CONTACT_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    reason: str
    assignee_user_id: str
    notify_contact: bool
    def __init__(self, conversation_id: _Optional[str] = ..., reason: _Optional[str] = ..., assignee_user_id: _Optional[str] = ..., notify_contact: _Optional[bool] = ...) -> None: ...

class GetAISettingsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AISettings(_message.Message):
    __slots__ = ("enabled", "model", "temperature", "max_tokens", "escalation_threshold", "system_prompt", "business_hours_aware", "escalation_keywords", "handoff_message", "after_hours_message", "update_time", "etag", "intents", "handoff_intents", "daily_token_budget", "session_timeout", "moderation_enabled")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_HOURS_AWARE_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AFTER_HOURS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_INTENTS_FIELD_NUMBER: _ClassVar[int]
    DAILY_TOKEN_BUDGET_FIELD_NUMBER: _ClassVar[int]
    SESSION_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MODERATION_ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    model: str
    temperature: float
    max_tokens: int
    escalation_threshold: float
    system_prompt: str
    business_hours_aware: bool
    escalation_keywords: _containers.RepeatedScalarFieldContainer[str]
    handoff_message: str
    after_hours_message: str
    update_time: _timestamp_pb2.Timestamp
    etag: str
    intents: _containers.RepeatedCompositeFieldContainer[AIIntent]
    handoff_intents: _containers.RepeatedScalarFieldContainer[str]
    daily_token_budget: int
    session_timeout: _duration_pb2.Duration
    moderation_enabled: bool
    def __init__(self, enabled: _Optional[bool] = ..., model: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., escalation_threshold: _Optional[float] = ..., system_prompt: _Optional[str] = ..., business_hours_aware: _Optional[bool] = ..., escalation_keywords: _Optional[_Iterable[str]] = ..., handoff_message: _Optional[str] = ..., after_hours_message: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ..., intents: _Optional[_Iterable[_Union[AIIntent, _Mapping]]] = ..., handoff_intents: _Optional[_Iterable[str]] = ..., daily_token_budget: _Optional[int] = ..., session_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., moderation_enabled: _Optional[bool] = ...) -> None: ...

class UpdateAISettingsRequest(_message.Message):
    __slots__ = ("settings", "update_mask", "etag")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    settings: AISettings
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, settings: _Optional[_Union[AISettings, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...
