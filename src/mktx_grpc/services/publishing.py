"""PublishingService: proto in, operation or store call, proto out. No SQL here.

Reads and CancelScheduledPost run on the unit of work's connection; the RPCs that
fetch media or call X are operations (``operations/publishing.py``) that borrow
connections between short transactions. Publishing itself is ``worker/publishing.py``.
"""

from __future__ import annotations

from uuid import UUID

import grpc
from google.protobuf.empty_pb2 import Empty

from mktx.v1 import publishing_pb2, publishing_pb2_grpc

from ..core.context import current_principal
from ..core.pagination import decode_time_cursor, effective_page_size, time_page
from ..deps import Deps
from ..mapping.common import from_ts
from ..mapping.publishing import STATUS_TO_DB
from ..operations import publishing as ops
from ..store import publishing as store

P = publishing_pb2


class PublishingServicer(publishing_pb2_grpc.PublishingServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def CreatePost(
        self, request: P.CreatePostRequest, context: grpc.aio.ServicerContext
    ) -> P.Post:
        return await ops.create_post(self._deps, request, time_remaining=context.time_remaining())

    async def GetPost(self, request: P.GetPostRequest, context: grpc.aio.ServicerContext) -> P.Post:
        return await ops.post_view(current_principal().merchant_id, UUID(request.id))

    async def ListPosts(
        self, request: P.ListPostsRequest, context: grpc.aio.ServicerContext
    ) -> P.ListPostsResponse:
        merchant = current_principal().merchant_id
        start = (
            from_ts(request.start_time, "start_time") if request.HasField("start_time") else None
        )
        end = from_ts(request.end_time, "end_time") if request.HasField("end_time") else None
        filters = [
            "posts",
            str(merchant),
            request.account_id,
            request.status,
            start.isoformat() if start else "",
            end.isoformat() if end else "",
            request.show_deleted,
        ]
        tokens = self._deps.page_tokens
        after = decode_time_cursor(tokens, request.page_token, filters)
        size = effective_page_size(request.page_size)
        rows = await store.list_page(
            merchant,
            account_id=UUID(request.account_id) if request.account_id else None,
            status=STATUS_TO_DB.get(request.status),
            show_deleted=request.show_deleted,
            start_at=start,
            end_at=end,
            after=after,
            limit=size + 1,
        )
        page, next_token = time_page(tokens, rows, size, filters, time_key="publish_at")
        return P.ListPostsResponse(
            posts=await ops.posts_view(merchant, page), next_page_token=next_token
        )

    async def UpdatePost(
        self, request: P.UpdatePostRequest, context: grpc.aio.ServicerContext
    ) -> P.Post:
        return await ops.update_post(self._deps, request)

    async def DeletePost(
        self, request: P.DeletePostRequest, context: grpc.aio.ServicerContext
    ) -> Empty:
        await ops.delete_post(self._deps, request)
        return Empty()

    async def CancelScheduledPost(
        self, request: P.CancelScheduledPostRequest, context: grpc.aio.ServicerContext
    ) -> P.Post:
        return await ops.cancel_post(request)

    async def RetryPost(
        self, request: P.RetryPostRequest, context: grpc.aio.ServicerContext
    ) -> P.Post:
        return await ops.retry_post(self._deps, request, time_remaining=context.time_remaining())

    async def ValidatePost(
        self, request: P.ValidatePostRequest, context: grpc.aio.ServicerContext
    ) -> P.ValidatePostResponse:
        return await ops.validate_post(self._deps, request)

    async def RefreshPostMetrics(
        self, request: P.RefreshPostMetricsRequest, context: grpc.aio.ServicerContext
    ) -> P.PostMetrics:
        return await ops.refresh_post_metrics(self._deps, request)

    async def GetPostMetrics(
        self, request: P.GetPostMetricsRequest, context: grpc.aio.ServicerContext
    ) -> P.PostMetrics:
        return await ops.metrics_view(
            current_principal().merchant_id,
            UUID(request.id),
            start_at=from_ts(request.start_time, "start_time")
            if request.HasField("start_time")
            else None,
            end_at=(
                from_ts(request.end_time, "end_time") if request.HasField("end_time") else None
            ),
        )
