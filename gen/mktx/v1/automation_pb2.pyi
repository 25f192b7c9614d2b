import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FlowStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLOW_STATUS_UNSPECIFIED: _ClassVar[FlowStatus]
    FLOW_STATUS_DRAFT: _ClassVar[FlowStatus]
    FLOW_STATUS_ACTIVE: _ClassVar[FlowStatus]
    FLOW_STATUS_INACTIVE: _ClassVar[FlowStatus]

class FlowTriggerType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLOW_TRIGGER_TYPE_UNSPECIFIED: _ClassVar[FlowTriggerType]
    FLOW_TRIGGER_TYPE_NEW_FOLLOWER: _ClassVar[FlowTriggerType]
    FLOW_TRIGGER_TYPE_INBOUND_MESSAGE: _ClassVar[FlowTriggerType]
    FLOW_TRIGGER_TYPE_KEYWORD: _ClassVar[FlowTriggerType]
    FLOW_TRIGGER_TYPE_MENTION: _ClassVar[FlowTriggerType]
    FLOW_TRIGGER_TYPE_TAG_ADDED: _ClassVar[FlowTriggerType]
    FLOW_TRIGGER_TYPE_TAG_REMOVED: _ClassVar[FlowTriggerType]
    FLOW_TRIGGER_TYPE_ATTRIBUTE_CHANGED: _ClassVar[FlowTriggerType]
    FLOW_TRIGGER_TYPE_QUICK_REPLY: _ClassVar[FlowTriggerType]
    FLOW_TRIGGER_TYPE_CONVERSATION_CLOSED: _ClassVar[FlowTriggerType]
    FLOW_TRIGGER_TYPE_MANUAL: _ClassVar[FlowTriggerType]
    FLOW_TRIGGER_TYPE_CONTACT_CREATED: _ClassVar[FlowTriggerType]

class FlowReentryPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLOW_REENTRY_POLICY_UNSPECIFIED: _ClassVar[FlowReentryPolicy]
    FLOW_REENTRY_POLICY_EVERY_TIME: _ClassVar[FlowReentryPolicy]
    FLOW_REENTRY_POLICY_ONCE: _ClassVar[FlowReentryPolicy]
    FLOW_REENTRY_POLICY_COOLDOWN: _ClassVar[FlowReentryPolicy]

class FlowNodeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLOW_NODE_TYPE_UNSPECIFIED: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_SEND_MESSAGE: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_WAIT: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_WAIT_FOR_REPLY: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_CONDITION: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_ADD_TAG: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_REMOVE_TAG: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_SET_ATTRIBUTE: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_ASSIGN: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_AI_REPLY: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_ESCALATE: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_CLOSE_CONVERSATION: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_END: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_RANDOMIZER: _ClassVar[FlowNodeType]
    FLOW_NODE_TYPE_START_FLOW: _ClassVar[FlowNodeType]

class FlowExecutionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLOW_EXECUTION_STATUS_UNSPECIFIED: _ClassVar[FlowExecutionStatus]
    FLOW_EXECUTION_STATUS_RUNNING: _ClassVar[FlowExecutionStatus]
    FLOW_EXECUTION_STATUS_WAITING: _ClassVar[FlowExecutionStatus]
    FLOW_EXECUTION_STATUS_COMPLETED: _ClassVar[FlowExecutionStatus]
    FLOW_EXECUTION_STATUS_FAILED: _ClassVar[FlowExecutionStatus]
    FLOW_EXECUTION_STATUS_CANCELLED: _ClassVar[FlowExecutionStatus]

class FlowStepStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLOW_STEP_STATUS_UNSPECIFIED: _ClassVar[FlowStepStatus]
    FLOW_STEP_STATUS_RUNNING: _ClassVar[FlowStepStatus]
    FLOW_STEP_STATUS_WAITING: _ClassVar[FlowStepStatus]
    FLOW_STEP_STATUS_COMPLETED: _ClassVar[FlowStepStatus]
    FLOW_STEP_STATUS_FAILED: _ClassVar[FlowStepStatus]
    FLOW_STEP_STATUS_SKIPPED: _ClassVar[FlowStepStatus]
FLOW_STATUS_UNSPECIFIED: FlowStatus
FLOW_STATUS_DRAFT: FlowStatus
FLOW_STATUS_ACTIVE: FlowStatus
FLOW_STATUS_INACTIVE: FlowStatus
FLOW_TRIGGER_TYPE_UNSPECIFIED: FlowTriggerType
FLOW_TRIGGER_TYPE_NEW_FOLLOWER: FlowTriggerType
FLOW_TRIGGER_TYPE_INBOUND_MESSAGE: FlowTriggerType
FLOW_TRIGGER_TYPE_KEYWORD: FlowTriggerType
FLOW_TRIGGER_TYPE_MENTION: FlowTriggerType
FLOW_TRIGGER_TYPE_TAG_ADDED: FlowTriggerType
FLOW_TRIGGER_TYPE_TAG_REMOVED: FlowTriggerType
FLOW_TRIGGER_TYPE_ATTRIBUTE_CHANGED: FlowTriggerType
FLOW_TRIGGER_TYPE_QUICK_REPLY: FlowTriggerType
FLOW_TRIGGER_TYPE_CONVERSATION_CLOSED: FlowTriggerType
FLOW_TRIGGER_TYPE_MANUAL: FlowTriggerType
FLOW_TRIGGER_TYPE_CONTACT_CREATED: FlowTriggerType
FLOW_REENTRY_POLICY_UNSPECIFIED: FlowReentryPolicy
FLOW_REENTRY_POLICY_EVERY_TIME: FlowReentryPolicy
FLOW_REENTRY_POLICY_ONCE: FlowReentryPolicy
FLOW_REENTRY_POLICY_COOLDOWN: FlowReentryPolicy
FLOW_NODE_TYPE_UNSPECIFIED: FlowNodeType
FLOW_NODE_TYPE_SEND_MESSAGE: FlowNodeType
FLOW_NODE_TYPE_WAIT: FlowNodeType
FLOW_NODE_TYPE_WAIT_FOR_REPLY: FlowNodeType
FLOW_NODE_TYPE_CONDITION: FlowNodeType
FLOW_NODE_TYPE_ADD_TAG: FlowNodeType
FLOW_NODE_TYPE_REMOVE_TAG: FlowNodeType
FLOW_NODE_TYPE_SET_ATTRIBUTE: FlowNodeType
FLOW_NODE_TYPE_ASSIGN: FlowNodeType
FLOW_NODE_TYPE_AI_REPLY: FlowNodeType
FLOW_NODE_TYPE_ESCALATE: FlowNodeType
FLOW_NODE_TYPE_CLOSE_CONVERSATION: FlowNodeType
FLOW_NODE_TYPE_END: FlowNodeType
FLOW_NODE_TYPE_RANDOMIZER: FlowNodeType
FLOW_NODE_TYPE_START_FLOW: FlowNodeType
FLOW_EXECUTION_STATUS_UNSPECIFIED: FlowExecutionStatus
FLOW_EXECUTION_STATUS_RUNNING: FlowExecutionStatus
FLOW_EXECUTION_STATUS_WAITING: FlowExecutionStatus
FLOW_EXECUTION_STATUS_COMPLETED: FlowExecutionStatus
FLOW_EXECUTION_STATUS_FAILED: FlowExecutionStatus
FLOW_EXECUTION_STATUS_CANCELLED: FlowExecutionStatus
FLOW_STEP_STATUS_UNSPECIFIED: FlowStepStatus
FLOW_STEP_STATUS_RUNNING: FlowStepStatus
FLOW_STEP_STATUS_WAITING: FlowStepStatus
FLOW_STEP_STATUS_COMPLETED: FlowStepStatus
FLOW_STEP_STATUS_FAILED: FlowStepStatus
FLOW_STEP_STATUS_SKIPPED: FlowStepStatus

class FlowTrigger(_message.Message):
    __slots__ = ("type", "config", "reentry_cooldown", "reentry")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    REENTRY_COOLDOWN_FIELD_NUMBER: _ClassVar[int]
    REENTRY_FIELD_NUMBER: _ClassVar[int]
    type: FlowTriggerType
    config: _struct_pb2.Struct
    reentry_cooldown: _duration_pb2.Duration
    reentry: FlowReentryPolicy
    def __init__(self, type: _Optional[_Union[FlowTriggerType, str]] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., reentry_cooldown: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., reentry: _Optional[_Union[FlowReentryPolicy, str]] = ...) -> None: ...

class FlowNodePosition(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class FlowNode(_message.Message):
    __slots__ = ("id", "type", "name", "config", "position")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: FlowNodeType
    name: str
    config: _struct_pb2.Struct
    position: FlowNodePosition
    def __init__(self, id: _Optional[str] = ..., type: _Optional[_Union[FlowNodeType, str]] = ..., name: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., position: _Optional[_Union[FlowNodePosition, _Mapping]] = ...) -> None: ...

class FlowConnection(_message.Message):
    __slots__ = ("from_node_id", "to_node_id", "branch")
    FROM_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TO_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    from_node_id: str
    to_node_id: str
    branch: str
    def __init__(self, from_node_id: _Optional[str] = ..., to_node_id: _Optional[str] = ..., branch: _Optional[str] = ...) -> None: ...

class FlowNodeStats(_message.Message):
    __slots__ = ("node_id", "entered_count", "completed_count", "waiting_count", "failed_count")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ENTERED_COUNT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    WAITING_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILED_COUNT_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    entered_count: int
    completed_count: int
    waiting_count: int
    failed_count: int
    def __init__(self, node_id: _Optional[str] = ..., entered_count: _Optional[int] = ..., completed_count: _Optional[int] = ..., waiting_count: _Optional[int] = ..., failed_count: _Optional[int] = ...) -> None: ...

class FlowStats(_message.Message):
    __slots__ = ("started_count", "active_count", "completed_count", "failed_count", "cancelled_count", "last_start_time", "waiting_count", "nodes")
    STARTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_COUNT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILED_COUNT_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_START_TIME_FIELD_NUMBER: _ClassVar[int]
    WAITING_COUNT_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    started_count: int
    active_count: int
    completed_count: int
    failed_count: int
    cancelled_count: int
    last_start_time: _timestamp_pb2.Timestamp
    waiting_count: int
    nodes: _containers.RepeatedCompositeFieldContainer[FlowNodeStats]
    def __init__(self, started_count: _Optional[int] = ..., active_count: _Optional[int] = ..., completed_count: _Optional[int] = ..., failed_count: _Optional[int] = ..., cancelled_count: _Optional[int] = ..., last_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., waiting_count: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[FlowNodeStats, _Mapping]]] = ...) -> None: ...

class FlowVersion(_message.Message):
    __slots__ = ("version", "trigger", "nodes", "connections", "publish_time")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TIME_FIELD_NUMBER: _ClassVar[int]
    version: int
    trigger: FlowTrigger
    nodes: _containers.RepeatedCompositeFieldContainer[FlowNode]
    connections: _containers.RepeatedCompositeFieldContainer[FlowConnection]
    publish_time: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., trigger: _Optional[_Union[FlowTrigger, _Mapping]] = ..., nodes: _Optional[_Iterable[_Union[FlowNode, _Mapping]]] = ..., connections: _Optional[_Iterable[_Union[FlowConnection, _Mapping]]] = ..., publish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Flow(_message.Message):
    __slots__ = ("id", "name", "description", "account_id", "status", "trigger", "nodes", "connections", "version", "stats", "activate_time", "create_time", "update_time", "etag", "published_version", "published", "has_unpublished_changes")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_VERSION_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    HAS_UNPUBLISHED_CHANGES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    account_id: str
    status: FlowStatus
    trigger: FlowTrigger
    nodes: _containers.RepeatedCompositeFieldContainer[FlowNode]
    connections: _containers.RepeatedCompositeFieldContainer[FlowConnection]
    version: int
    stats: FlowStats
    activate_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    published_version: int
    published: FlowVersion
    has_unpublished_changes: bool
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., account_id: _Optional[str] = ..., status: _Optional[_Union[FlowStatus, str]] = ..., trigger: _Optional[_Union[FlowTrigger, _Mapping]] = ..., nodes: _Optional[_Iterable[_Union[FlowNode, _Mapping]]] = ..., connections: _Optional[_Iterable[_Union[FlowConnection, _Mapping]]] = ..., version: _Optional[int] = ..., stats: _Optional[_Union[FlowStats, _Mapping]] = ..., activate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ..., published_version: _Optional[int] = ..., published: _Optional[_Union[FlowVersion, _Mapping]] = ..., has_unpublished_changes: _Optional[bool] = ...) -> None: ...

class FlowExecutionStep(_message.Message):
    __slots__ = ("node_id", "node_type", "status", "branch", "start_time", "end_time", "output", "error")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    node_type: FlowNodeType
    status: FlowStepStatus
    branch: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    output: _struct_pb2.Struct
    error: str
    def __init__(self, node_id: _Optional[str] = ..., node_type: _Optional[_Union[FlowNodeType, str]] = ..., status: _Optional[_Union[FlowStepStatus, str]] = ..., branch: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., output: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class FlowExecution(_message.Message):
    __slots__ = ("id", "flow_id", "flow_version", "contact_id", "conversation_id", "status", "current_node_id", "wake_time", "trigger_event", "start_time", "complete_time", "error", "steps")
    ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    WAKE_TIME_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_EVENT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    id: str
    flow_id: str
    flow_version: int
    contact_id: str
    conversation_id: str
    status: FlowExecutionStatus
    current_node_id: str
    wake_time: _timestamp_pb2.Timestamp
    trigger_event: _struct_pb2.Struct
    start_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    error: str
    steps: _containers.RepeatedCompositeFieldContainer[FlowExecutionStep]
    def __init__(self, id: _Optional[str] = ..., flow_id: _Optional[str] = ..., flow_version: _Optional[int] = ..., contact_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., status: _Optional[_Union[FlowExecutionStatus, str]] = ..., current_node_id: _Optional[str] = ..., wake_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trigger_event: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[FlowExecutionStep, _Mapping]]] = ...) -> None: ...

class CreateFlowRequest(_message.Message):
    __slots__ = ("flow", "request_id")
    FLOW_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    flow: Flow
    request_id: str
    def __init__(self, flow: _Optional[_Union[Flow, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetFlowRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListFlowsRequest(_message.Message):
    __slots__ = ("account_id", "status", "trigger_type", "page_size", "page_token")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    status: FlowStatus
    trigger_type: FlowTriggerType
    page_size: int
    page_token: str
    def __init__(self, account_id: _Optional[str] = ..., status: _Optional[_Union[FlowStatus, str]] = ..., trigger_type: _Optional[_Union[FlowTriggerType, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFlowsResponse(_message.Message):
    __slots__ = ("flows", "next_page_token")
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flows: _containers.RepeatedCompositeFieldContainer[Flow]
    next_page_token: str
    def __init__(self, flows: _Optional[_Iterable[_Union[Flow, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateFlowRequest(_message.Message):
    __slots__ = ("flow", "update_mask", "etag")
    FLOW_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    flow: Flow
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, flow: _Optional[_Union[Flow, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class ActivateFlowRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class DeactivateFlowRequest(_message.Message):
    __slots__ = ("id", "cancel_executions", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    CANCEL_EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    cancel_executions: bool
    etag: str
    def __init__(self, id: _Optional[str] = ..., cancel_executions: _Optional[bool] = ..., etag: _Optional[str] = ...) -> None: ...

class DeleteFlowRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class StartFlowExecutionRequest(_message.Message):
    __slots__ = ("flow_id", "contact_id", "request_id")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    flow_id: str
    contact_id: str
    request_id: str
    def __init__(self, flow_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CancelFlowExecutionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListFlowExecutionsRequest(_message.Message):
    __slots__ = ("flow_id", "status", "contact_id", "page_size", "page_token")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flow_id: str
    status: FlowExecutionStatus
    contact_id: str
    page_size: int
    page_token: str
    def __init__(self, flow_id: _Optional[str] = ..., status: _Optional[_Union[FlowExecutionStatus, str]] = ..., contact_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFlowExecutionsResponse(_message.Message):
    __slots__ = ("executions", "next_page_token")
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[FlowExecution]
    next_page_token: str
    def __init__(self, executions: _Optional[_Iterable[_Union[FlowExecution, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetFlowExecutionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...
