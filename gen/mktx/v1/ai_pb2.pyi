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
ESCALATION_REASON_UNSPECIFIED: EscalationReason
ESCALATION_REASON_LOW_CONFIDENCE: EscalationReason
ESCALATION_REASON_HUMAN_REQUESTED: EscalationReason
ESCALATION_REASON_SENSITIVE_TOPIC: EscalationReason
ESCALATION_REASON_CANNOT_ANSWER: EscalationReason

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
    __slots__ = ("conversation_id", "intent", "confidence", "slots", "response_text", "requires_escalation", "escalation_reason", "escalation_detail", "within_business_hours", "model", "usage", "latency")
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
    def __init__(self, conversation_id: _Optional[str] = ..., intent: _Optional[str] = ..., confidence: _Optional[float] = ..., slots: _Optional[_Mapping[str, str]] = ..., response_text: _Optional[str] = ..., requires_escalation: _Optional[bool] = ..., escalation_reason: _Optional[_Union[EscalationReason, str]] = ..., escalation_detail: _Optional[str] = ..., within_business_hours: _Optional[bool] = ..., model: _Optional[str] = ..., usage: _Optional[_Union[AITokenUsage, _Mapping]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("conversation_id", "contact_id", "recent_messages", "detected_intents", "slots", "summary", "summary_update_time", "escalated", "total_usage")
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
    conversation_id: str
    contact_id: str
    recent_messages: _containers.RepeatedCompositeFieldContainer[_conversations_pb2.Message]
    detected_intents: _containers.RepeatedCompositeFieldContainer[DetectedIntent]
    slots: _containers.ScalarMap[str, str]
    summary: str
    summary_update_time: _timestamp_pb2.Timestamp
    escalated: bool
    total_usage: AITokenUsage
    def __init__(self, conversation_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., recent_messages: _Optional[_Iterable[_Union[_conversations_pb2.Message, _Mapping]]] = ..., detected_intents: _Optional[_Iterable[_Union[DetectedIntent, _Mapping]]] = ..., slots: _Optional[_Mapping[str, str]] = ..., summary: _Optional[str] = ..., summary_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., escalated: _Optional[bool] = ..., total_usage: _Optional[_Union[AITokenUsage, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("enabled", "model", "temperature", "max_tokens", "escalation_threshold", "system_prompt", "business_hours_aware", "escalation_keywords", "handoff_message", "after_hours_message", "intents", "update_time", "etag")
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
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
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
    intents: _containers.RepeatedScalarFieldContainer[str]
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, enabled: _Optional[bool] = ..., model: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., escalation_threshold: _Optional[float] = ..., system_prompt: _Optional[str] = ..., business_hours_aware: _Optional[bool] = ..., escalation_keywords: _Optional[_Iterable[str]] = ..., handoff_message: _Optional[str] = ..., after_hours_message: _Optional[str] = ..., intents: _Optional[_Iterable[str]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class UpdateAISettingsRequest(_message.Message):
    __slots__ = ("settings", "update_mask", "etag")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    settings: AISettings
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, settings: _Optional[_Union[AISettings, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...
