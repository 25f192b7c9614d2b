import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReportGranularity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_GRANULARITY_UNSPECIFIED: _ClassVar[ReportGranularity]
    REPORT_GRANULARITY_DAY: _ClassVar[ReportGranularity]
    REPORT_GRANULARITY_WEEK: _ClassVar[ReportGranularity]
    REPORT_GRANULARITY_MONTH: _ClassVar[ReportGranularity]
REPORT_GRANULARITY_UNSPECIFIED: ReportGranularity
REPORT_GRANULARITY_DAY: ReportGranularity
REPORT_GRANULARITY_WEEK: ReportGranularity
REPORT_GRANULARITY_MONTH: ReportGranularity

class ReportPeriod(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DurationStats(_message.Message):
    __slots__ = ("count", "mean_seconds", "median_seconds", "p90_seconds")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    P90_SECONDS_FIELD_NUMBER: _ClassVar[int]
    count: int
    mean_seconds: float
    median_seconds: float
    p90_seconds: float
    def __init__(self, count: _Optional[int] = ..., mean_seconds: _Optional[float] = ..., median_seconds: _Optional[float] = ..., p90_seconds: _Optional[float] = ...) -> None: ...

class GetOverviewRequest(_message.Message):
    __slots__ = ("period", "account_id")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    period: ReportPeriod
    account_id: str
    def __init__(self, period: _Optional[_Union[ReportPeriod, _Mapping]] = ..., account_id: _Optional[str] = ...) -> None: ...

class Overview(_message.Message):
    __slots__ = ("time_zone", "period", "contacts", "conversations", "campaigns", "automation", "posts")
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    AUTOMATION_FIELD_NUMBER: _ClassVar[int]
    POSTS_FIELD_NUMBER: _ClassVar[int]
    time_zone: str
    period: ReportPeriod
    contacts: ContactsOverview
    conversations: ConversationsOverview
    campaigns: CampaignsOverview
    automation: AutomationOverview
    posts: PostsOverview
    def __init__(self, time_zone: _Optional[str] = ..., period: _Optional[_Union[ReportPeriod, _Mapping]] = ..., contacts: _Optional[_Union[ContactsOverview, _Mapping]] = ..., conversations: _Optional[_Union[ConversationsOverview, _Mapping]] = ..., campaigns: _Optional[_Union[CampaignsOverview, _Mapping]] = ..., automation: _Optional[_Union[AutomationOverview, _Mapping]] = ..., posts: _Optional[_Union[PostsOverview, _Mapping]] = ...) -> None: ...

class ContactsOverview(_message.Message):
    __slots__ = ("total", "new_contacts", "active")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    NEW_CONTACTS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    total: int
    new_contacts: int
    active: int
    def __init__(self, total: _Optional[int] = ..., new_contacts: _Optional[int] = ..., active: _Optional[int] = ...) -> None: ...

class ConversationsOverview(_message.Message):
    __slots__ = ("total", "open", "pending", "closed", "first_response_mean_seconds", "first_response_median_seconds", "resolution_mean_seconds")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    FIRST_RESPONSE_MEAN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FIRST_RESPONSE_MEDIAN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_MEAN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    total: int
    open: int
    pending: int
    closed: int
    first_response_mean_seconds: float
    first_response_median_seconds: float
    resolution_mean_seconds: float
    def __init__(self, total: _Optional[int] = ..., open: _Optional[int] = ..., pending: _Optional[int] = ..., closed: _Optional[int] = ..., first_response_mean_seconds: _Optional[float] = ..., first_response_median_seconds: _Optional[float] = ..., resolution_mean_seconds: _Optional[float] = ...) -> None: ...

class CampaignsOverview(_message.Message):
    __slots__ = ("active", "completed", "messages_sent")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_SENT_FIELD_NUMBER: _ClassVar[int]
    active: int
    completed: int
    messages_sent: int
    def __init__(self, active: _Optional[int] = ..., completed: _Optional[int] = ..., messages_sent: _Optional[int] = ...) -> None: ...

class AutomationOverview(_message.Message):
    __slots__ = ("active_flows", "executions_started", "executions_completed")
    ACTIVE_FLOWS_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_STARTED_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    active_flows: int
    executions_started: int
    executions_completed: int
    def __init__(self, active_flows: _Optional[int] = ..., executions_started: _Optional[int] = ..., executions_completed: _Optional[int] = ...) -> None: ...

class PostsOverview(_message.Message):
    __slots__ = ("published", "impressions", "engagements")
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    ENGAGEMENTS_FIELD_NUMBER: _ClassVar[int]
    published: int
    impressions: int
    engagements: int
    def __init__(self, published: _Optional[int] = ..., impressions: _Optional[int] = ..., engagements: _Optional[int] = ...) -> None: ...

class GetContactAnalyticsRequest(_message.Message):
    __slots__ = ("period", "account_id", "granularity", "read_mask")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    READ_MASK_FIELD_NUMBER: _ClassVar[int]
    period: ReportPeriod
    account_id: str
    granularity: ReportGranularity
    read_mask: _field_mask_pb2.FieldMask
    def __init__(self, period: _Optional[_Union[ReportPeriod, _Mapping]] = ..., account_id: _Optional[str] = ..., granularity: _Optional[_Union[ReportGranularity, str]] = ..., read_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class ContactSourceCounts(_message.Message):
    __slots__ = ("follow", "inbound_dm", "mention", "imported", "api", "total")
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    INBOUND_DM_FIELD_NUMBER: _ClassVar[int]
    MENTION_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    API_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    follow: int
    inbound_dm: int
    mention: int
    imported: int
    api: int
    total: int
    def __init__(self, follow: _Optional[int] = ..., inbound_dm: _Optional[int] = ..., mention: _Optional[int] = ..., imported: _Optional[int] = ..., api: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class ContactBucket(_message.Message):
    __slots__ = ("start_time", "end_time", "new_contacts", "active", "opted_out")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    NEW_CONTACTS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    OPTED_OUT_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    new_contacts: ContactSourceCounts
    active: int
    opted_out: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., new_contacts: _Optional[_Union[ContactSourceCounts, _Mapping]] = ..., active: _Optional[int] = ..., opted_out: _Optional[int] = ...) -> None: ...

class TagCount(_message.Message):
    __slots__ = ("tag", "contacts")
    TAG_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    tag: str
    contacts: int
    def __init__(self, tag: _Optional[str] = ..., contacts: _Optional[int] = ...) -> None: ...

class ContactAnalytics(_message.Message):
    __slots__ = ("time_zone", "granularity", "new_contacts", "active", "opted_out", "top_tags", "series")
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    NEW_CONTACTS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    OPTED_OUT_FIELD_NUMBER: _ClassVar[int]
    TOP_TAGS_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    time_zone: str
    granularity: ReportGranularity
    new_contacts: ContactSourceCounts
    active: int
    opted_out: int
    top_tags: _containers.RepeatedCompositeFieldContainer[TagCount]
    series: _containers.RepeatedCompositeFieldContainer[ContactBucket]
    def __init__(self, time_zone: _Optional[str] = ..., granularity: _Optional[_Union[ReportGranularity, str]] = ..., new_contacts: _Optional[_Union[ContactSourceCounts, _Mapping]] = ..., active: _Optional[int] = ..., opted_out: _Optional[int] = ..., top_tags: _Optional[_Iterable[_Union[TagCount, _Mapping]]] = ..., series: _Optional[_Iterable[_Union[ContactBucket, _Mapping]]] = ...) -> None: ...

class GetConversationAnalyticsRequest(_message.Message):
    __slots__ = ("period", "account_id", "granularity", "read_mask")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    READ_MASK_FIELD_NUMBER: _ClassVar[int]
    period: ReportPeriod
    account_id: str
    granularity: ReportGranularity
    read_mask: _field_mask_pb2.FieldMask
    def __init__(self, period: _Optional[_Union[ReportPeriod, _Mapping]] = ..., account_id: _Optional[str] = ..., granularity: _Optional[_Union[ReportGranularity, str]] = ..., read_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class ConversationBucket(_message.Message):
    __slots__ = ("start_time", "end_time", "opened", "resolved", "first_response", "first_response_business_hours", "resolution", "resolution_business_hours")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    FIRST_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    FIRST_RESPONSE_BUSINESS_HOURS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_BUSINESS_HOURS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    opened: int
    resolved: int
    first_response: DurationStats
    first_response_business_hours: DurationStats
    resolution: DurationStats
    resolution_business_hours: DurationStats
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., opened: _Optional[int] = ..., resolved: _Optional[int] = ..., first_response: _Optional[_Union[DurationStats, _Mapping]] = ..., first_response_business_hours: _Optional[_Union[DurationStats, _Mapping]] = ..., resolution: _Optional[_Union[DurationStats, _Mapping]] = ..., resolution_business_hours: _Optional[_Union[DurationStats, _Mapping]] = ...) -> None: ...

class BotStats(_message.Message):
    __slots__ = ("conversations", "first_response", "handled_mean_seconds", "resolved_by_bot")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    FIRST_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    HANDLED_MEAN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BY_BOT_FIELD_NUMBER: _ClassVar[int]
    conversations: int
    first_response: DurationStats
    handled_mean_seconds: float
    resolved_by_bot: int
    def __init__(self, conversations: _Optional[int] = ..., first_response: _Optional[_Union[DurationStats, _Mapping]] = ..., handled_mean_seconds: _Optional[float] = ..., resolved_by_bot: _Optional[int] = ...) -> None: ...

class AssigneeStats(_message.Message):
    __slots__ = ("assignee_user_id", "opened", "resolved", "responded", "first_response_mean_seconds", "resolution_mean_seconds")
    ASSIGNEE_USER_ID_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    RESPONDED_FIELD_NUMBER: _ClassVar[int]
    FIRST_RESPONSE_MEAN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_MEAN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    assignee_user_id: str
    opened: int
    resolved: int
    responded: int
    first_response_mean_seconds: float
    resolution_mean_seconds: float
    def __init__(self, assignee_user_id: _Optional[str] = ..., opened: _Optional[int] = ..., resolved: _Optional[int] = ..., responded: _Optional[int] = ..., first_response_mean_seconds: _Optional[float] = ..., resolution_mean_seconds: _Optional[float] = ...) -> None: ...

class ConversationAnalytics(_message.Message):
    __slots__ = ("time_zone", "granularity", "opened", "resolved", "first_response", "first_response_business_hours", "resolution", "resolution_business_hours", "bot", "bot_resolved_share", "escalation_rate", "assignees", "series")
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    FIRST_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    FIRST_RESPONSE_BUSINESS_HOURS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_BUSINESS_HOURS_FIELD_NUMBER: _ClassVar[int]
    BOT_FIELD_NUMBER: _ClassVar[int]
    BOT_RESOLVED_SHARE_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_RATE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEES_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    time_zone: str
    granularity: ReportGranularity
    opened: int
    resolved: int
    first_response: DurationStats
    first_response_business_hours: DurationStats
    resolution: DurationStats
    resolution_business_hours: DurationStats
    bot: BotStats
    bot_resolved_share: float
    escalation_rate: float
    assignees: _containers.RepeatedCompositeFieldContainer[AssigneeStats]
    series: _containers.RepeatedCompositeFieldContainer[ConversationBucket]
    def __init__(self, time_zone: _Optional[str] = ..., granularity: _Optional[_Union[ReportGranularity, str]] = ..., opened: _Optional[int] = ..., resolved: _Optional[int] = ..., first_response: _Optional[_Union[DurationStats, _Mapping]] = ..., first_response_business_hours: _Optional[_Union[DurationStats, _Mapping]] = ..., resolution: _Optional[_Union[DurationStats, _Mapping]] = ..., resolution_business_hours: _Optional[_Union[DurationStats, _Mapping]] = ..., bot: _Optional[_Union[BotStats, _Mapping]] = ..., bot_resolved_share: _Optional[float] = ..., escalation_rate: _Optional[float] = ..., assignees: _Optional[_Iterable[_Union[AssigneeStats, _Mapping]]] = ..., series: _Optional[_Iterable[_Union[ConversationBucket, _Mapping]]] = ...) -> None: ...

class GetCampaignAnalyticsRequest(_message.Message):
    __slots__ = ("period", "account_id", "granularity", "campaign_id")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    period: ReportPeriod
    account_id: str
    granularity: ReportGranularity
    campaign_id: str
    def __init__(self, period: _Optional[_Union[ReportPeriod, _Mapping]] = ..., account_id: _Optional[str] = ..., granularity: _Optional[_Union[ReportGranularity, str]] = ..., campaign_id: _Optional[str] = ...) -> None: ...

class CampaignReportCounts(_message.Message):
    __slots__ = ("sent", "delivered", "read", "replied", "failed")
    SENT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    REPLIED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    sent: int
    delivered: int
    read: int
    replied: int
    failed: int
    def __init__(self, sent: _Optional[int] = ..., delivered: _Optional[int] = ..., read: _Optional[int] = ..., replied: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class CampaignReportRates(_message.Message):
    __slots__ = ("delivery_rate", "read_rate", "reply_rate", "failure_rate")
    DELIVERY_RATE_FIELD_NUMBER: _ClassVar[int]
    READ_RATE_FIELD_NUMBER: _ClassVar[int]
    REPLY_RATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_RATE_FIELD_NUMBER: _ClassVar[int]
    delivery_rate: float
    read_rate: float
    reply_rate: float
    failure_rate: float
    def __init__(self, delivery_rate: _Optional[float] = ..., read_rate: _Optional[float] = ..., reply_rate: _Optional[float] = ..., failure_rate: _Optional[float] = ...) -> None: ...

class CampaignReportBucket(_message.Message):
    __slots__ = ("start_time", "end_time", "counts", "rates")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    RATES_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    counts: CampaignReportCounts
    rates: CampaignReportRates
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., counts: _Optional[_Union[CampaignReportCounts, _Mapping]] = ..., rates: _Optional[_Union[CampaignReportRates, _Mapping]] = ...) -> None: ...

class CampaignAnalytics(_message.Message):
    __slots__ = ("time_zone", "granularity", "campaign_id", "counts", "rates", "series")
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    RATES_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    time_zone: str
    granularity: ReportGranularity
    campaign_id: str
    counts: CampaignReportCounts
    rates: CampaignReportRates
    series: _containers.RepeatedCompositeFieldContainer[CampaignReportBucket]
    def __init__(self, time_zone: _Optional[str] = ..., granularity: _Optional[_Union[ReportGranularity, str]] = ..., campaign_id: _Optional[str] = ..., counts: _Optional[_Union[CampaignReportCounts, _Mapping]] = ..., rates: _Optional[_Union[CampaignReportRates, _Mapping]] = ..., series: _Optional[_Iterable[_Union[CampaignReportBucket, _Mapping]]] = ...) -> None: ...

class GetAutomationAnalyticsRequest(_message.Message):
    __slots__ = ("period", "account_id", "granularity")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    period: ReportPeriod
    account_id: str
    granularity: ReportGranularity
    def __init__(self, period: _Optional[_Union[ReportPeriod, _Mapping]] = ..., account_id: _Optional[str] = ..., granularity: _Optional[_Union[ReportGranularity, str]] = ...) -> None: ...

class FlowBucket(_message.Message):
    __slots__ = ("start_time", "end_time", "started", "completed", "failed")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    started: int
    completed: int
    failed: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class FlowNodeFunnel(_message.Message):
    __slots__ = ("node_id", "entered", "completed", "failed")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ENTERED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    entered: int
    completed: int
    failed: int
    def __init__(self, node_id: _Optional[str] = ..., entered: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class FlowAnalytics(_message.Message):
    __slots__ = ("flow_id", "name", "started", "completed", "failed", "series", "funnel")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    FUNNEL_FIELD_NUMBER: _ClassVar[int]
    flow_id: str
    name: str
    started: int
    completed: int
    failed: int
    series: _containers.RepeatedCompositeFieldContainer[FlowBucket]
    funnel: _containers.RepeatedCompositeFieldContainer[FlowNodeFunnel]
    def __init__(self, flow_id: _Optional[str] = ..., name: _Optional[str] = ..., started: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., series: _Optional[_Iterable[_Union[FlowBucket, _Mapping]]] = ..., funnel: _Optional[_Iterable[_Union[FlowNodeFunnel, _Mapping]]] = ...) -> None: ...

class AutomationAnalytics(_message.Message):
    __slots__ = ("time_zone", "granularity", "active_flows", "started", "completed", "failed", "flows")
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FLOWS_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    time_zone: str
    granularity: ReportGranularity
    active_flows: int
    started: int
    completed: int
    failed: int
    flows: _containers.RepeatedCompositeFieldContainer[FlowAnalytics]
    def __init__(self, time_zone: _Optional[str] = ..., granularity: _Optional[_Union[ReportGranularity, str]] = ..., active_flows: _Optional[int] = ..., started: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., flows: _Optional[_Iterable[_Union[FlowAnalytics, _Mapping]]] = ...) -> None: ...

class GetPostAnalyticsRequest(_message.Message):
    __slots__ = ("period", "account_id", "granularity", "max_posts")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    MAX_POSTS_FIELD_NUMBER: _ClassVar[int]
    period: ReportPeriod
    account_id: str
    granularity: ReportGranularity
    max_posts: int
    def __init__(self, period: _Optional[_Union[ReportPeriod, _Mapping]] = ..., account_id: _Optional[str] = ..., granularity: _Optional[_Union[ReportGranularity, str]] = ..., max_posts: _Optional[int] = ...) -> None: ...

class PostStats(_message.Message):
    __slots__ = ("post_id", "publish_time", "impressions", "engagements")
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TIME_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    ENGAGEMENTS_FIELD_NUMBER: _ClassVar[int]
    post_id: str
    publish_time: _timestamp_pb2.Timestamp
    impressions: int
    engagements: int
    def __init__(self, post_id: _Optional[str] = ..., publish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., impressions: _Optional[int] = ..., engagements: _Optional[int] = ...) -> None: ...

class PostBucket(_message.Message):
    __slots__ = ("start_time", "end_time", "impressions", "engagements")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    ENGAGEMENTS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    impressions: int
    engagements: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., impressions: _Optional[int] = ..., engagements: _Optional[int] = ...) -> None: ...

class PostAnalytics(_message.Message):
    __slots__ = ("time_zone", "granularity", "published", "impressions", "engagements", "posts", "series")
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    ENGAGEMENTS_FIELD_NUMBER: _ClassVar[int]
    POSTS_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    time_zone: str
    granularity: ReportGranularity
    published: int
    impressions: int
    engagements: int
    posts: _containers.RepeatedCompositeFieldContainer[PostStats]
    series: _containers.RepeatedCompositeFieldContainer[PostBucket]
    def __init__(self, time_zone: _Optional[str] = ..., granularity: _Optional[_Union[ReportGranularity, str]] = ..., published: _Optional[int] = ..., impressions: _Optional[int] = ..., engagements: _Optional[int] = ..., posts: _Optional[_Iterable[_Union[PostStats, _Mapping]]] = ..., series: _Optional[_Iterable[_Union[PostBucket, _Mapping]]] = ...) -> None: ...
