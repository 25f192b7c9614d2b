"""Background refresh of stored segment counts (``segments.contact_count``)."""

from __future__ import annotations

import logging

from google.protobuf import json_format

from ..core.db import use_connection
from ..core.errors import DomainError
from ..deps import Deps
from ..store import segments as store

log = logging.getLogger(__name__)

#: A count older than this is refreshed.
MAX_COUNT_AGE_SECONDS = 15 * 60
#: Segments refreshed per call before yielding to the other loops.
BATCH = 20


async def refresh_segment_counts(
    deps: Deps, *, max_age_seconds: float = MAX_COUNT_AGE_SECONDS, batch: int = BATCH
) -> float:
    """Recount up to ``batch`` segments, of every merchant, whose count is older than
    ``max_age_seconds`` (or was never computed), stalest first. Returns seconds to sleep.

    Each segment is claimed with ``FOR UPDATE SKIP LOCKED`` and recounted in its own
    short transaction, so several workers share the work and an UpdateSegment waits at
    most one count. A segment whose stored conditions no longer compile keeps its
    count, is marked refreshed (so it is not retried in a hot loop) and is logged.
    """
    done = 0
    while done < batch:
        async with use_connection(deps.pool, transaction=True):
            row = await store.claim_stale(max_age_seconds)
            if row is None:
                break
            try:
                count = await store.count_matching(
                    row["merchant_id"], row["conditions"], row["account_id"]
                )
            except (DomainError, json_format.ParseError) as exc:
                log.warning(
                    "segment conditions do not compile",
                    extra={"segment_id": str(row["id"]), "error": str(exc)},
                )
                await store.touch_count(row["merchant_id"], row["id"])
            else:
                await store.set_count(row["merchant_id"], row["id"], count)
        done += 1
    return 1.0 if done == batch else 60.0
