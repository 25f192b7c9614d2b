import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PostStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POST_STATUS_UNSPECIFIED: _ClassVar[PostStatus]
    POST_STATUS_SCHEDULED: _ClassVar[PostStatus]
    POST_STATUS_PUBLISHING: _ClassVar[PostStatus]
    POST_STATUS_PUBLISHED: _ClassVar[PostStatus]
    POST_STATUS_PARTIALLY_PUBLISHED: _ClassVar[PostStatus]
    POST_STATUS_FAILED: _ClassVar[PostStatus]
    POST_STATUS_CANCELLED: _ClassVar[PostStatus]
    POST_STATUS_DELETED: _ClassVar[PostStatus]

class PostPartState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POST_PART_STATE_UNSPECIFIED: _ClassVar[PostPartState]
    POST_PART_STATE_PENDING: _ClassVar[PostPartState]
    POST_PART_STATE_PUBLISHING: _ClassVar[PostPartState]
    POST_PART_STATE_PUBLISHED: _ClassVar[PostPartState]
    POST_PART_STATE_FAILED: _ClassVar[PostPartState]
    POST_PART_STATE_DELETED: _ClassVar[PostPartState]

class ReplySettings(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPLY_SETTINGS_UNSPECIFIED: _ClassVar[ReplySettings]
    REPLY_SETTINGS_EVERYONE: _ClassVar[ReplySettings]
    REPLY_SETTINGS_FOLLOWING: _ClassVar[ReplySettings]
    REPLY_SETTINGS_MENTIONED_USERS: _ClassVar[ReplySettings]

class PostMediaType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POST_MEDIA_TYPE_UNSPECIFIED: _ClassVar[PostMediaType]
    POST_MEDIA_TYPE_IMAGE: _ClassVar[PostMediaType]
    POST_MEDIA_TYPE_GIF: _ClassVar[PostMediaType]
    POST_MEDIA_TYPE_VIDEO: _ClassVar[PostMediaType]
POST_STATUS_UNSPECIFIED: PostStatus
POST_STATUS_SCHEDULED: PostStatus
POST_STATUS_PUBLISHING: PostStatus
POST_STATUS_PUBLISHED: PostStatus
POST_STATUS_PARTIALLY_PUBLISHED: PostStatus
POST_STATUS_FAILED: PostStatus
POST_STATUS_CANCELLED: PostStatus
POST_STATUS_DELETED: PostStatus
POST_PART_STATE_UNSPECIFIED: PostPartState
POST_PART_STATE_PENDING: PostPartState
POST_PART_STATE_PUBLISHING: PostPartState
POST_PART_STATE_PUBLISHED: PostPartState
POST_PART_STATE_FAILED: PostPartState
POST_PART_STATE_DELETED: PostPartState
REPLY_SETTINGS_UNSPECIFIED: ReplySettings
REPLY_SETTINGS_EVERYONE: ReplySettings
REPLY_SETTINGS_FOLLOWING: ReplySettings
REPLY_SETTINGS_MENTIONED_USERS: ReplySettings
POST_MEDIA_TYPE_UNSPECIFIED: PostMediaType
POST_MEDIA_TYPE_IMAGE: PostMediaType
POST_MEDIA_TYPE_GIF: PostMediaType
POST_MEDIA_TYPE_VIDEO: PostMediaType

class PostMedia(_message.Message):
    __slots__ = ("url", "alt_text", "type", "x_media_id", "size_bytes")
    URL_FIELD_NUMBER: _ClassVar[int]
    ALT_TEXT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    X_MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    url: str
    alt_text: str
    type: PostMediaType
    x_media_id: str
    size_bytes: int
    def __init__(self, url: _Optional[str] = ..., alt_text: _Optional[str] = ..., type: _Optional[_Union[PostMediaType, str]] = ..., x_media_id: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class PostPoll(_message.Message):
    __slots__ = ("options", "duration_minutes")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MINUTES_FIELD_NUMBER: _ClassVar[int]
    options: _containers.RepeatedScalarFieldContainer[str]
    duration_minutes: int
    def __init__(self, options: _Optional[_Iterable[str]] = ..., duration_minutes: _Optional[int] = ...) -> None: ...

class PostPart(_message.Message):
    __slots__ = ("text", "media", "poll", "state", "x_post_id", "url", "error", "publish_time", "weighted_length", "attempt_count")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    POLL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    X_POST_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TIME_FIELD_NUMBER: _ClassVar[int]
    WEIGHTED_LENGTH_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    text: str
    media: _containers.RepeatedCompositeFieldContainer[PostMedia]
    poll: PostPoll
    state: PostPartState
    x_post_id: str
    url: str
    error: str
    publish_time: _timestamp_pb2.Timestamp
    weighted_length: int
    attempt_count: int
    def __init__(self, text: _Optional[str] = ..., media: _Optional[_Iterable[_Union[PostMedia, _Mapping]]] = ..., poll: _Optional[_Union[PostPoll, _Mapping]] = ..., state: _Optional[_Union[PostPartState, str]] = ..., x_post_id: _Optional[str] = ..., url: _Optional[str] = ..., error: _Optional[str] = ..., publish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., weighted_length: _Optional[int] = ..., attempt_count: _Optional[int] = ...) -> None: ...

class PostMetricsValues(_message.Message):
    __slots__ = ("impressions", "likes", "reposts", "replies", "quotes", "bookmarks", "url_clicks", "profile_clicks")
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    LIKES_FIELD_NUMBER: _ClassVar[int]
    REPOSTS_FIELD_NUMBER: _ClassVar[int]
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    QUOTES_FIELD_NUMBER: _ClassVar[int]
    BOOKMARKS_FIELD_NUMBER: _ClassVar[int]
    URL_CLICKS_FIELD_NUMBER: _ClassVar[int]
    PROFILE_CLICKS_FIELD_NUMBER: _ClassVar[int]
    impressions: int
    likes: int
    reposts: int
    replies: int
    quotes: int
    bookmarks: int
    url_clicks: int
    profile_clicks: int
    def __init__(self, impressions: _Optional[int] = ..., likes: _Optional[int] = ..., reposts: _Optional[int] = ..., replies: _Optional[int] = ..., quotes: _Optional[int] = ..., bookmarks: _Optional[int] = ..., url_clicks: _Optional[int] = ..., profile_clicks: _Optional[int] = ...) -> None: ...

class Post(_message.Message):
    __slots__ = ("id", "account_id", "parts", "reply_settings", "quote_post_id", "reply_to_post_id", "publish_time", "status", "status_reason", "published_time", "metrics", "metrics_time", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    REPLY_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    QUOTE_POST_ID_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_POST_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_TIME_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    METRICS_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    account_id: str
    parts: _containers.RepeatedCompositeFieldContainer[PostPart]
    reply_settings: ReplySettings
    quote_post_id: str
    reply_to_post_id: str
    publish_time: _timestamp_pb2.Timestamp
    status: PostStatus
    status_reason: str
    published_time: _timestamp_pb2.Timestamp
    metrics: PostMetricsValues
    metrics_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., account_id: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[PostPart, _Mapping]]] = ..., reply_settings: _Optional[_Union[ReplySettings, str]] = ..., quote_post_id: _Optional[str] = ..., reply_to_post_id: _Optional[str] = ..., publish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[PostStatus, str]] = ..., status_reason: _Optional[str] = ..., published_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metrics: _Optional[_Union[PostMetricsValues, _Mapping]] = ..., metrics_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class CreatePostRequest(_message.Message):
    __slots__ = ("post", "request_id")
    POST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    post: Post
    request_id: str
    def __init__(self, post: _Optional[_Union[Post, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetPostRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListPostsRequest(_message.Message):
    __slots__ = ("account_id", "status", "start_time", "end_time", "show_deleted", "page_size", "page_token")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    SHOW_DELETED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    status: PostStatus
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    show_deleted: bool
    page_size: int
    page_token: str
    def __init__(self, account_id: _Optional[str] = ..., status: _Optional[_Union[PostStatus, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., show_deleted: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPostsResponse(_message.Message):
    __slots__ = ("posts", "next_page_token")
    POSTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    posts: _containers.RepeatedCompositeFieldContainer[Post]
    next_page_token: str
    def __init__(self, posts: _Optional[_Iterable[_Union[Post, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdatePostRequest(_message.Message):
    __slots__ = ("post", "update_mask", "etag")
    POST_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    post: Post
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, post: _Optional[_Union[Post, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class DeletePostRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class CancelScheduledPostRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class RetryPostRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class ValidatePostRequest(_message.Message):
    __slots__ = ("account_id", "parts", "quote_post_id", "fetch_media")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    QUOTE_POST_ID_FIELD_NUMBER: _ClassVar[int]
    FETCH_MEDIA_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    parts: _containers.RepeatedCompositeFieldContainer[PostPart]
    quote_post_id: str
    fetch_media: bool
    def __init__(self, account_id: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[PostPart, _Mapping]]] = ..., quote_post_id: _Optional[str] = ..., fetch_media: _Optional[bool] = ...) -> None: ...

class PostTextCount(_message.Message):
    __slots__ = ("weighted_length", "max_weighted_length", "remaining", "permillage", "valid", "valid_range_end")
    WEIGHTED_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_WEIGHTED_LENGTH_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    PERMILLAGE_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    VALID_RANGE_END_FIELD_NUMBER: _ClassVar[int]
    weighted_length: int
    max_weighted_length: int
    remaining: int
    permillage: int
    valid: bool
    valid_range_end: int
    def __init__(self, weighted_length: _Optional[int] = ..., max_weighted_length: _Optional[int] = ..., remaining: _Optional[int] = ..., permillage: _Optional[int] = ..., valid: _Optional[bool] = ..., valid_range_end: _Optional[int] = ...) -> None: ...

class PostViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ValidatePostResponse(_message.Message):
    __slots__ = ("valid", "parts", "violations")
    VALID_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    parts: _containers.RepeatedCompositeFieldContainer[PostTextCount]
    violations: _containers.RepeatedCompositeFieldContainer[PostViolation]
    def __init__(self, valid: _Optional[bool] = ..., parts: _Optional[_Iterable[_Union[PostTextCount, _Mapping]]] = ..., violations: _Optional[_Iterable[_Union[PostViolation, _Mapping]]] = ...) -> None: ...

class RefreshPostMetricsRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetPostMetricsRequest(_message.Message):
    __slots__ = ("id", "start_time", "end_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PostPartMetrics(_message.Message):
    __slots__ = ("part_index", "x_post_id", "values")
    PART_INDEX_FIELD_NUMBER: _ClassVar[int]
    X_POST_ID_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    part_index: int
    x_post_id: str
    values: PostMetricsValues
    def __init__(self, part_index: _Optional[int] = ..., x_post_id: _Optional[str] = ..., values: _Optional[_Union[PostMetricsValues, _Mapping]] = ...) -> None: ...

class PostMetricsPoint(_message.Message):
    __slots__ = ("observe_time", "values")
    OBSERVE_TIME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    observe_time: _timestamp_pb2.Timestamp
    values: PostMetricsValues
    def __init__(self, observe_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., values: _Optional[_Union[PostMetricsValues, _Mapping]] = ...) -> None: ...

class PostMetrics(_message.Message):
    __slots__ = ("post_id", "total", "parts", "history", "observe_time", "next_refresh_time")
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    OBSERVE_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_REFRESH_TIME_FIELD_NUMBER: _ClassVar[int]
    post_id: str
    total: PostMetricsValues
    parts: _containers.RepeatedCompositeFieldContainer[PostPartMetrics]
    history: _containers.RepeatedCompositeFieldContainer[PostMetricsPoint]
    observe_time: _timestamp_pb2.Timestamp
    next_refresh_time: _timestamp_pb2.Timestamp
    def __init__(self, post_id: _Optional[str] = ..., total: _Optional[_Union[PostMetricsValues, _Mapping]] = ..., parts: _Optional[_Iterable[_Union[PostPartMetrics, _Mapping]]] = ..., history: _Optional[_Iterable[_Union[PostMetricsPoint, _Mapping]]] = ..., observe_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_refresh_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
