"""Media upload in user context (v2 ``/2/media/upload``), for DMs and posts.

Small images go one-shot; everything else is chunked (INITIALIZE, APPEND each
chunk, FINALIZE), then STATUS is polled until processing ends. Uploads go to
``XConfig.upload_base``.

Failure modes:

- Every step except STATUS is a POST declared idempotent to the transport
  (:mod:`mktx_grpc.x.transport`): repeating one only ever costs an unused media id,
  which X expires, so 5xx and transport errors are retried. The ``deadline`` covers
  one request, not the whole upload; polling is bounded by
  ``XConfig.media_poll_max_wait``.
- An error in any step propagates as is; nothing is resumed or cleaned up: upload
  again from the start.
- Processing that ends ``failed`` raises :class:`XBadRequest` (X's message in
  ``detail``); still processing when the poll budget runs out raises
  :class:`XUnavailable`. Bad arguments raise ``ValueError`` before any request.
"""

from __future__ import annotations

from .context import CallContext
from .errors import XBadRequest, XUnavailable
from .models import MediaUpload
from .transport import response_data

__all__ = ["DEFAULT_CHUNK_BYTES", "ONE_SHOT_MAX_BYTES", "MediaUploads"]

# One-shot upload is for images; anything bigger or moving goes through chunks.
ONE_SHOT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024


class MediaUploads(CallContext):
    """Upload media as the connected user and wait until X can attach it."""

    async def upload_media(
        self,
        data: bytes,
        *,
        media_type: str,
        media_category: str,
        chunk_size: int = DEFAULT_CHUNK_BYTES,
        deadline: float | None = None,
    ) -> MediaUpload:
        """Upload media and wait until it is usable. Small images go one-shot;
        everything else is chunked. Raises XBadRequest if processing failed."""
        if media_category.endswith("_image") and len(data) <= ONE_SHOT_MAX_BYTES:
            return await self.upload_media_simple(
                data, media_type=media_type, media_category=media_category, deadline=deadline
            )
        return await self.upload_media_chunked(
            data,
            media_type=media_type,
            media_category=media_category,
            chunk_size=chunk_size,
            deadline=deadline,
        )

    async def upload_media_simple(
        self, data: bytes, *, media_type: str, media_category: str, deadline: float | None = None
    ) -> MediaUpload:
        """One-shot multipart ``POST /2/media/upload`` (images up to 5 MB)."""
        resp = await self._call(
            "POST",
            "/2/media/upload",
            files={"media": ("media", data, media_type)},
            multipart_data={"media_category": media_category, "media_type": media_type},
            base_url=self._client.config.upload_base,
            deadline=deadline,
            idempotent=True,  # a repeated upload only leaves an unused media id
        )
        return MediaUpload.from_json(response_data(resp))

    async def upload_media_chunked(
        self,
        data: bytes,
        *,
        media_type: str,
        media_category: str,
        chunk_size: int = DEFAULT_CHUNK_BYTES,
        deadline: float | None = None,
    ) -> MediaUpload:
        """INITIALIZE, APPEND each chunk, FINALIZE, then poll STATUS honouring
        ``check_after_secs`` until ``succeeded``. The deadline covers one request;
        polling is bounded by ``XConfig.media_poll_max_wait``. Raises XBadRequest
        when processing ends ``failed``, XUnavailable when polling times out."""
        if not 0 < chunk_size <= 5 * 1024 * 1024:
            raise ValueError("chunk_size must be within 1 byte and 5 MB")
        base = self._client.config.upload_base
        init = response_data(
            await self._call(
                "POST",
                "/2/media/upload/initialize",
                json={
                    "media_type": media_type,
                    "total_bytes": len(data),
                    "media_category": media_category,
                },
                base_url=base,
                deadline=deadline,
                idempotent=True,
            )
        )
        media_id = str(init["id"])
        for index, start in enumerate(range(0, len(data), chunk_size)):
            await self._call(
                "POST",
                f"/2/media/upload/{media_id}/append",
                files={
                    "media": ("chunk", data[start : start + chunk_size], "application/octet-stream")
                },
                multipart_data={"segment_index": str(index)},
                base_url=base,
                deadline=deadline,
                idempotent=True,
            )
        media = MediaUpload.from_json(
            response_data(
                await self._call(
                    "POST",
                    f"/2/media/upload/{media_id}/finalize",
                    base_url=base,
                    deadline=deadline,
                    idempotent=True,
                )
            )
        )
        return await self._await_processing(media, deadline)

    async def media_status(self, media_id: str, *, deadline: float | None = None) -> MediaUpload:
        """``GET /2/media/upload?command=STATUS&media_id=``."""
        resp = await self._call(
            "GET",
            "/2/media/upload",
            params={"command": "STATUS", "media_id": media_id},
            base_url=self._client.config.upload_base,
            deadline=deadline,
        )
        return MediaUpload.from_json(response_data(resp))

    async def _await_processing(self, media: MediaUpload, deadline: float | None) -> MediaUpload:
        client = self._client
        give_up_at = client._clock() + client.config.media_poll_max_wait
        while media.state in ("pending", "in_progress"):
            info = media.raw.get("processing_info") or {}
            wait = float(info.get("check_after_secs", 1))
            if client._clock() + wait > give_up_at:
                raise XUnavailable(f"media {media.id} still processing after the poll budget")
            await client._sleep(wait)
            media = await self.media_status(media.id, deadline=deadline)
        if media.state != "succeeded":
            info = media.raw.get("processing_info") or {}
            err = info.get("error") or {}
            raise XBadRequest(
                f"media {media.id} processing {media.state}: {err.get('message', 'unknown')}",
                detail=err.get("message"),
            )
        return media
