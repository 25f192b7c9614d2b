import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mktx.v1 import common_pb2 as _common_pb2
from mktx.v1 import conversations_pb2 as _conversations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CampaignType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMPAIGN_TYPE_UNSPECIFIED: _ClassVar[CampaignType]
    CAMPAIGN_TYPE_BULK_DM: _ClassVar[CampaignType]
    CAMPAIGN_TYPE_WELCOME: _ClassVar[CampaignType]
    CAMPAIGN_TYPE_FOLLOW_UP: _ClassVar[CampaignType]
    CAMPAIGN_TYPE_DRIP: _ClassVar[CampaignType]
    CAMPAIGN_TYPE_BROADCAST: _ClassVar[CampaignType]

class CampaignStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMPAIGN_STATUS_UNSPECIFIED: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_DRAFT: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_SCHEDULED: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_RUNNING: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_PAUSED: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_COMPLETED: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_CANCELLED: _ClassVar[CampaignStatus]

class MetricsGranularity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRICS_GRANULARITY_UNSPECIFIED: _ClassVar[MetricsGranularity]
    METRICS_GRANULARITY_HOUR: _ClassVar[MetricsGranularity]
    METRICS_GRANULARITY_DAY: _ClassVar[MetricsGranularity]

class CampaignRecipientState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMPAIGN_RECIPIENT_STATE_UNSPECIFIED: _ClassVar[CampaignRecipientState]
    CAMPAIGN_RECIPIENT_STATE_QUEUED: _ClassVar[CampaignRecipientState]
    CAMPAIGN_RECIPIENT_STATE_SENDING: _ClassVar[CampaignRecipientState]
    CAMPAIGN_RECIPIENT_STATE_SENT: _ClassVar[CampaignRecipientState]
    CAMPAIGN_RECIPIENT_STATE_DELIVERED: _ClassVar[CampaignRecipientState]
    CAMPAIGN_RECIPIENT_STATE_READ: _ClassVar[CampaignRecipientState]
    CAMPAIGN_RECIPIENT_STATE_REPLIED: _ClassVar[CampaignRecipientState]
    CAMPAIGN_RECIPIENT_STATE_FAILED: _ClassVar[CampaignRecipientState]
    CAMPAIGN_RECIPIENT_STATE_SKIPPED: _ClassVar[CampaignRecipientState]
CAMPAIGN_TYPE_UNSPECIFIED: CampaignType
CAMPAIGN_TYPE_BULK_DM: CampaignType
CAMPAIGN_TYPE_WELCOME: CampaignType
CAMPAIGN_TYPE_FOLLOW_UP: CampaignType
CAMPAIGN_TYPE_DRIP: CampaignType
CAMPAIGN_TYPE_BROADCAST: CampaignType
CAMPAIGN_STATUS_UNSPECIFIED: CampaignStatus
CAMPAIGN_STATUS_DRAFT: CampaignStatus
CAMPAIGN_STATUS_SCHEDULED: CampaignStatus
CAMPAIGN_STATUS_RUNNING: CampaignStatus
CAMPAIGN_STATUS_PAUSED: CampaignStatus
CAMPAIGN_STATUS_COMPLETED: CampaignStatus
CAMPAIGN_STATUS_CANCELLED: CampaignStatus
METRICS_GRANULARITY_UNSPECIFIED: MetricsGranularity
METRICS_GRANULARITY_HOUR: MetricsGranularity
METRICS_GRANULARITY_DAY: MetricsGranularity
CAMPAIGN_RECIPIENT_STATE_UNSPECIFIED: CampaignRecipientState
CAMPAIGN_RECIPIENT_STATE_QUEUED: CampaignRecipientState
CAMPAIGN_RECIPIENT_STATE_SENDING: CampaignRecipientState
CAMPAIGN_RECIPIENT_STATE_SENT: CampaignRecipientState
CAMPAIGN_RECIPIENT_STATE_DELIVERED: CampaignRecipientState
CAMPAIGN_RECIPIENT_STATE_READ: CampaignRecipientState
CAMPAIGN_RECIPIENT_STATE_REPLIED: CampaignRecipientState
CAMPAIGN_RECIPIENT_STATE_FAILED: CampaignRecipientState
CAMPAIGN_RECIPIENT_STATE_SKIPPED: CampaignRecipientState

class CampaignSchedule(_message.Message):
    __slots__ = ("start_time", "end_time", "time_zone", "send_window", "respect_contact_time_zone", "enrol_delay")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    SEND_WINDOW_FIELD_NUMBER: _ClassVar[int]
    RESPECT_CONTACT_TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    ENROL_DELAY_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    time_zone: str
    send_window: _common_pb2.WeeklySchedule
    respect_contact_time_zone: bool
    enrol_delay: _duration_pb2.Duration
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_zone: _Optional[str] = ..., send_window: _Optional[_Union[_common_pb2.WeeklySchedule, _Mapping]] = ..., respect_contact_time_zone: _Optional[bool] = ..., enrol_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CampaignStep(_message.Message):
    __slots__ = ("template_id", "delay", "variables")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    delay: _duration_pb2.Duration
    variables: _containers.ScalarMap[str, str]
    def __init__(self, template_id: _Optional[str] = ..., delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., variables: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CampaignExclusion(_message.Message):
    __slots__ = ("exclude_segment_ids", "exclude_messaged_within", "exclude_campaign_ids", "exclude_open_conversations")
    EXCLUDE_SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_MESSAGED_WITHIN_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_CAMPAIGN_IDS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_OPEN_CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    exclude_segment_ids: _containers.RepeatedScalarFieldContainer[str]
    exclude_messaged_within: _duration_pb2.Duration
    exclude_campaign_ids: _containers.RepeatedScalarFieldContainer[str]
    exclude_open_conversations: bool
    def __init__(self, exclude_segment_ids: _Optional[_Iterable[str]] = ..., exclude_messaged_within: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., exclude_campaign_ids: _Optional[_Iterable[str]] = ..., exclude_open_conversations: _Optional[bool] = ...) -> None: ...

class CampaignCounts(_message.Message):
    __slots__ = ("total", "queued", "sent", "delivered", "read", "clicked", "replied", "failed", "skipped")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    CLICKED_FIELD_NUMBER: _ClassVar[int]
    REPLIED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    total: int
    queued: int
    sent: int
    delivered: int
    read: int
    clicked: int
    replied: int
    failed: int
    skipped: int
    def __init__(self, total: _Optional[int] = ..., queued: _Optional[int] = ..., sent: _Optional[int] = ..., delivered: _Optional[int] = ..., read: _Optional[int] = ..., clicked: _Optional[int] = ..., replied: _Optional[int] = ..., failed: _Optional[int] = ..., skipped: _Optional[int] = ...) -> None: ...

class Campaign(_message.Message):
    __slots__ = ("id", "name", "description", "account_id", "type", "status", "status_reason", "template_id", "segment_ids", "exclusion", "variables", "schedule", "steps", "stop_on_reply", "attribution_window", "max_sends_per_hour", "counts", "launch_time", "complete_time", "create_time", "update_time", "etag")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    EXCLUSION_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STOP_ON_REPLY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_WINDOW_FIELD_NUMBER: _ClassVar[int]
    MAX_SENDS_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    LAUNCH_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    account_id: str
    type: CampaignType
    status: CampaignStatus
    status_reason: str
    template_id: str
    segment_ids: _containers.RepeatedScalarFieldContainer[str]
    exclusion: CampaignExclusion
    variables: _containers.ScalarMap[str, str]
    schedule: CampaignSchedule
    steps: _containers.RepeatedCompositeFieldContainer[CampaignStep]
    stop_on_reply: bool
    attribution_window: _duration_pb2.Duration
    max_sends_per_hour: int
    counts: CampaignCounts
    launch_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., account_id: _Optional[str] = ..., type: _Optional[_Union[CampaignType, str]] = ..., status: _Optional[_Union[CampaignStatus, str]] = ..., status_reason: _Optional[str] = ..., template_id: _Optional[str] = ..., segment_ids: _Optional[_Iterable[str]] = ..., exclusion: _Optional[_Union[CampaignExclusion, _Mapping]] = ..., variables: _Optional[_Mapping[str, str]] = ..., schedule: _Optional[_Union[CampaignSchedule, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[CampaignStep, _Mapping]]] = ..., stop_on_reply: _Optional[bool] = ..., attribution_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_sends_per_hour: _Optional[int] = ..., counts: _Optional[_Union[CampaignCounts, _Mapping]] = ..., launch_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class CreateCampaignRequest(_message.Message):
    __slots__ = ("campaign", "request_id")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    request_id: str
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetCampaignRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListCampaignsRequest(_message.Message):
    __slots__ = ("account_id", "status", "type", "name_contains", "page_size", "page_token")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    status: CampaignStatus
    type: CampaignType
    name_contains: str
    page_size: int
    page_token: str
    def __init__(self, account_id: _Optional[str] = ..., status: _Optional[_Union[CampaignStatus, str]] = ..., type: _Optional[_Union[CampaignType, str]] = ..., name_contains: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCampaignsResponse(_message.Message):
    __slots__ = ("campaigns", "next_page_token")
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[Campaign]
    next_page_token: str
    def __init__(self, campaigns: _Optional[_Iterable[_Union[Campaign, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateCampaignRequest(_message.Message):
    __slots__ = ("campaign", "update_mask", "etag")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class DeleteCampaignRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class StartCampaignRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class PauseCampaignRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class ResumeCampaignRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class CancelCampaignRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class SendTestMessageRequest(_message.Message):
    __slots__ = ("id", "contact_ids", "step_index", "variables")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_IDS_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    id: str
    contact_ids: _containers.RepeatedScalarFieldContainer[str]
    step_index: int
    variables: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., contact_ids: _Optional[_Iterable[str]] = ..., step_index: _Optional[int] = ..., variables: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SendTestResult(_message.Message):
    __slots__ = ("contact_id", "rendered_text", "x_message_id", "error")
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    RENDERED_TEXT_FIELD_NUMBER: _ClassVar[int]
    X_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    contact_id: str
    rendered_text: str
    x_message_id: str
    error: str
    def __init__(self, contact_id: _Optional[str] = ..., rendered_text: _Optional[str] = ..., x_message_id: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class SendTestMessageResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SendTestResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SendTestResult, _Mapping]]] = ...) -> None: ...

class GetCampaignMetricsRequest(_message.Message):
    __slots__ = ("id", "granularity", "start_time", "end_time", "time_zone")
    ID_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    id: str
    granularity: MetricsGranularity
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    time_zone: str
    def __init__(self, id: _Optional[str] = ..., granularity: _Optional[_Union[MetricsGranularity, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_zone: _Optional[str] = ...) -> None: ...

class CampaignMetricsBucket(_message.Message):
    __slots__ = ("start_time", "sent", "delivered", "read", "clicked", "replied", "failed", "skipped")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    CLICKED_FIELD_NUMBER: _ClassVar[int]
    REPLIED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    sent: int
    delivered: int
    read: int
    clicked: int
    replied: int
    failed: int
    skipped: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sent: _Optional[int] = ..., delivered: _Optional[int] = ..., read: _Optional[int] = ..., clicked: _Optional[int] = ..., replied: _Optional[int] = ..., failed: _Optional[int] = ..., skipped: _Optional[int] = ...) -> None: ...

class CampaignMetrics(_message.Message):
    __slots__ = ("campaign_id", "counts", "delivery_rate", "read_rate", "reply_rate", "click_rate", "failure_rate", "granularity", "timeline", "compute_time")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_RATE_FIELD_NUMBER: _ClassVar[int]
    READ_RATE_FIELD_NUMBER: _ClassVar[int]
    REPLY_RATE_FIELD_NUMBER: _ClassVar[int]
    CLICK_RATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_RATE_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    counts: CampaignCounts
    delivery_rate: float
    read_rate: float
    reply_rate: float
    click_rate: float
    failure_rate: float
    granularity: MetricsGranularity
    timeline: _containers.RepeatedCompositeFieldContainer[CampaignMetricsBucket]
    compute_time: _timestamp_pb2.Timestamp
    def __init__(self, campaign_id: _Optional[str] = ..., counts: _Optional[_Union[CampaignCounts, _Mapping]] = ..., delivery_rate: _Optional[float] = ..., read_rate: _Optional[float] = ..., reply_rate: _Optional[float] = ..., click_rate: _Optional[float] = ..., failure_rate: _Optional[float] = ..., granularity: _Optional[_Union[MetricsGranularity, str]] = ..., timeline: _Optional[_Iterable[_Union[CampaignMetricsBucket, _Mapping]]] = ..., compute_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CampaignRecipient(_message.Message):
    __slots__ = ("campaign_id", "contact_id", "contact", "step_index", "state", "reason", "x_event_id", "message_id", "due_time", "send_time", "deliver_time", "read_time", "click_time", "reply_time", "attempt_count", "update_time")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    X_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    DELIVER_TIME_FIELD_NUMBER: _ClassVar[int]
    READ_TIME_FIELD_NUMBER: _ClassVar[int]
    CLICK_TIME_FIELD_NUMBER: _ClassVar[int]
    REPLY_TIME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    contact_id: str
    contact: _conversations_pb2.ContactSummary
    step_index: int
    state: CampaignRecipientState
    reason: str
    x_event_id: str
    message_id: str
    due_time: _timestamp_pb2.Timestamp
    send_time: _timestamp_pb2.Timestamp
    deliver_time: _timestamp_pb2.Timestamp
    read_time: _timestamp_pb2.Timestamp
    click_time: _timestamp_pb2.Timestamp
    reply_time: _timestamp_pb2.Timestamp
    attempt_count: int
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, campaign_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., contact: _Optional[_Union[_conversations_pb2.ContactSummary, _Mapping]] = ..., step_index: _Optional[int] = ..., state: _Optional[_Union[CampaignRecipientState, str]] = ..., reason: _Optional[str] = ..., x_event_id: _Optional[str] = ..., message_id: _Optional[str] = ..., due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deliver_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., read_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., click_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reply_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt_count: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListCampaignRecipientsRequest(_message.Message):
    __slots__ = ("id", "state", "contact_id", "page_size", "page_token")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: CampaignRecipientState
    contact_id: str
    page_size: int
    page_token: str
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[CampaignRecipientState, str]] = ..., contact_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCampaignRecipientsResponse(_message.Message):
    __slots__ = ("recipients", "next_page_token")
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    recipients: _containers.RepeatedCompositeFieldContainer[CampaignRecipient]
    next_page_token: str
    def __init__(self, recipients: _Optional[_Iterable[_Union[CampaignRecipient, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
