"""Publishing use cases that fetch media or call X between short transactions
(``own_connections`` in the method table): CreatePost, UpdatePost, RetryPost,
DeletePost, RefreshPostMetrics and ValidatePost. The reads (GetPost, ListPosts,
GetPostMetrics) share :func:`post_view` and :func:`metrics_view`.

**Checks before anything is stored** (INVALID_ARGUMENT, one BadRequest naming every
bad field): the validation interceptor has checked the request's shape; here every
post rule is checked in one pass, with the account's own length limit and every media
URL probed (its first bytes sniffed, its size read) so that mixing, kinds and sizes
are checked too. ErrorInfo metadata carries ``<field>.weighted_length`` and
``<field>.remaining`` for each part whose text breaks a rule.

**Publishing at once** (CreatePost without a future time, RetryPost): the post is
stored already claimed by this call (a lease), then published by the engine of
``worker/publishing.py`` in a task of its own. The call waits for it until shortly
before the client's deadline and answers with the post as it stands; a publish still
going on then carries on (if this process dies, its lease runs out and a worker
takes over). So a client cancelling, or a deadline, never leaves a part unresolved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from mktx.v1 import publishing_pb2

from ..core.context import current_principal
from ..core.db import use_connection
from ..core.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from ..core.fetch import FetchError
from ..deps import Deps
from ..domain import publishing as domain
from ..domain.post_rules import MAX_THREAD_PARTS, check_media_url
from ..domain.post_text import parse_post_text
from ..mapping.common import ts
from ..mapping.publishing import (
    count_to_proto,
    draft_from_proto,
    draft_from_rows,
    metrics_to_proto,
    parts_from_proto,
    post_to_proto,
)
from ..store import Row, audit, check_etag, idempotency
from ..store import accounts as accounts_store
from ..store import publishing as store
from ..store.publishing import Claim
from ..worker.publishing import (
    UnsupportedMedia,
    emit,
    media_limit,
    options_for,
    publish_claimed,
    refresh_metrics,
)
from ..x import UserContext, XNotFound

log = logging.getLogger(__name__)
P = publishing_pb2

#: Media probed at once by one call, and how long each may take.
PROBE_CONCURRENCY = 8
PROBE_SECONDS = 20.0
#: What the call keeps of the client's deadline for answering.
ANSWER_MARGIN = 1.0
#: How long DeletePost holds a post while it deletes the parts at X.
DELETE_HOLD = timedelta(minutes=5)
#: History points returned by GetPostMetrics.
MAX_HISTORY = 2000

# Publishing tasks outliving their call (see the module docstring); kept referenced.
_background: set[asyncio.Task[None]] = set()


# ------------------------------------------------------------------ loading


async def load_post(merchant: UUID, post_id: str, *, for_update: bool = False) -> Row:
    row = await store.get(merchant, UUID(post_id), for_update=for_update)
    if row is None:
        raise NotFound("post", post_id)
    return row


async def post_view(merchant: UUID, post_id: UUID) -> P.Post:
    """The post as the API shows it (on the current connection)."""
    row = await store.get(merchant, post_id)
    if row is None:
        raise NotFound("post", str(post_id))
    return post_to_proto(row, await store.parts(merchant, post_id))


async def posts_view(merchant: UUID, rows: Sequence[Row]) -> list[P.Post]:
    parts = await store.parts_of(merchant, [r["id"] for r in rows])
    return [post_to_proto(r, parts[r["id"]]) for r in rows]


def check_not_busy(row: Row) -> None:
    """FailedPrecondition while a publisher or another call holds the post."""
    if row["lease_until"] is not None and row["lease_until"] > datetime.now(UTC):
        raise FailedPrecondition(
            "the post is being published or deleted right now; try again shortly",
            reason="INVALID_STATE_TRANSITION",
            metadata={"status": row["status"]},
        )


def _active(account: Row | None, account_id: str) -> Row:
    if account is None:
        raise NotFound("account", account_id)
    if account["status"] != "ACTIVE":
        raise FailedPrecondition(
            f"the account is {account['status']}, not ACTIVE",
            reason="ACCOUNT_NOT_ACTIVE",
            metadata={"account_id": account_id},
        )
    return account


# ------------------------------------------------------------------ checks


async def probe_media(
    deps: Deps, parts: Sequence[domain.PartDraft], path: str
) -> tuple[dict[tuple[int, int], domain.Probe], list[FieldViolation]]:
    """Fetch the start of every media (concurrently) to sniff it and learn its size.
    Returns the probes, and a violation per media that could not be fetched or is not
    media X takes."""
    limit = media_limit(options_for(deps).media_max_bytes)
    gate = asyncio.Semaphore(PROBE_CONCURRENCY)
    probes: dict[tuple[int, int], domain.Probe] = {}
    violations: list[FieldViolation] = []

    async def one(i: int, j: int, url: str) -> None:
        at = f"{path}parts[{i}].media[{j}]"
        async with gate:
            try:
                got = await deps.media.probe(url, limit, within=PROBE_SECONDS)
            except UnsupportedMedia as exc:
                violations.append(FieldViolation(at, str(exc)))
            except FetchError as exc:
                violations.append(FieldViolation(f"{at}.url", str(exc)))
            else:
                probes[(i, j)] = domain.Probe(got.head, got.size)

    await asyncio.gather(
        *(
            one(i, j, m.url)
            for i, p in enumerate(parts)
            for j, m in enumerate(p.media)
            if check_media_url(m.url) is None  # the rules report the others
        )
    )
    violations.sort(key=lambda v: v.field)
    return probes, violations


async def _check(
    deps: Deps, draft: domain.PostDraft, account: Row, *, now: datetime, path: str = "post"
) -> None:
    """The second pass of the module docstring; raises InvalidArgument."""
    if len(draft.parts) > MAX_THREAD_PARTS:
        # Not worth fetching anything for: the count alone keeps the answer small.
        raise InvalidArgument.single(
            f"{path}.parts",
            f"a thread has at most {MAX_THREAD_PARTS} parts, not {len(draft.parts)}",
        )
    probes, violations = await probe_media(deps, draft.parts, f"{path}.")
    limit = domain.account_limit(account["settings"])
    violations += domain.check_post(
        draft, max_weighted_length=limit, probes=probes, now=now, path=path
    )
    if violations:
        err = InvalidArgument(violations)
        bad = {v.field for v in violations}
        for i, part in enumerate(draft.parts):
            field = f"{path}.parts[{i}].text"
            if field in bad:
                parsed = parse_post_text(part.text, max_weighted_length=limit)
                err.metadata[f"{field}.weighted_length"] = str(parsed.weighted_length)
                err.metadata[f"{field}.remaining"] = str(parsed.remaining)
        raise err


# ------------------------------------------------------------------ publishing now


async def _publish_and_wait(deps: Deps, claim: Claim, wait: float | None) -> P.Post:
    """Publish the claimed post in a task of its own; wait for it up to ``wait``
    seconds (None: until done), then answer with the post as it stands."""
    task = asyncio.create_task(publish_claimed(deps, claim), name=f"publish-{claim.post_id}")
    _background.add(task)
    task.add_done_callback(_finished)
    try:
        await asyncio.wait_for(asyncio.shield(task), wait)
    except TimeoutError:
        pass
    async with use_connection(deps.pool):
        return await post_view(claim.merchant_id, claim.post_id)


def _finished(task: asyncio.Task[None]) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("publishing failed", exc_info=task.exception())


def _wait_budget(time_remaining: float | None) -> float | None:
    if time_remaining is None:
        return None
    return max(0.0, time_remaining - ANSWER_MARGIN)


async def create_post(
    deps: Deps, request: P.CreatePostRequest, *, time_remaining: float | None
) -> P.Post:
    """CreatePost (see the module docstring and the .proto)."""
    merchant = current_principal().merchant_id
    async with use_connection(deps.pool):
        done = await idempotency.existing(merchant, "post", request.request_id)
        if done is not None:
            return await post_view(merchant, done)
        account = _active(
            await accounts_store.get(merchant, UUID(request.post.account_id)),
            request.post.account_id,
        )
    now = datetime.now(UTC)
    draft = draft_from_proto(request.post)
    await _check(deps, draft, account, now=now)
    now_ = domain.publishes_now(draft.publish_at, now)
    lease = timedelta(seconds=options_for(deps).lease_seconds)

    async def create() -> tuple[UUID, tuple[Row, bool]]:
        row = await store.insert(
            merchant,
            draft,
            status=domain.PUBLISHING if now_ else domain.SCHEDULED,
            publish_at=now if now_ or draft.publish_at is None else draft.publish_at,
            lease=lease if now_ else None,
        )
        if not now_:
            await emit(row, "post.scheduled", publish_time=row["publish_at"].isoformat())
        return row["id"], (row, True)

    async def load(post_id: UUID) -> tuple[Row, bool]:
        return await load_post(merchant, str(post_id)), False

    async with use_connection(deps.pool, transaction=True):
        row, created = await idempotency.create_once(
            merchant, "post", request.request_id, create, load
        )
    if created and now_:
        claim = Claim(merchant, row["id"], row["lease_token"], domain.PUBLISHING, row["due_at"])
        return await _publish_and_wait(deps, claim, _wait_budget(time_remaining))
    async with use_connection(deps.pool):
        return await post_view(merchant, row["id"])


async def retry_post(
    deps: Deps, request: P.RetryPostRequest, *, time_remaining: float | None
) -> P.Post:
    """RetryPost: failed parts are reset and the post is published from the first part
    not at X."""
    merchant = current_principal().merchant_id
    lease = timedelta(seconds=options_for(deps).lease_seconds)
    async with use_connection(deps.pool, transaction=True):
        row = await load_post(merchant, request.id, for_update=True)
        check_etag(request.etag, row, "post")
        domain.check_transition(row["status"], "retry")
        check_not_busy(row)
        _active(await accounts_store.get(merchant, row["account_id"]), str(row["account_id"]))
        await store.reset_failed_parts(merchant, row["id"])
        claim = await store.take_lease(merchant, row["id"], lease)
    return await _publish_and_wait(deps, claim, _wait_budget(time_remaining))


# ------------------------------------------------------------------ changes


async def update_post(deps: Deps, request: P.UpdatePostRequest) -> P.Post:
    """UpdatePost: the masked fields of a SCHEDULED post, checked again as a whole."""
    merchant = current_principal().merchant_id
    async with use_connection(deps.pool):
        row = await load_post(merchant, request.post.id)
        domain.check_transition(row["status"], "update")
        current = draft_from_rows(row, await store.parts(merchant, row["id"]))
        account = await accounts_store.get(merchant, row["account_id"])
    if account is None:
        raise NotFound("account", str(row["account_id"]))
    incoming = draft_from_proto(request.post)
    now = datetime.now(UTC)
    paths = set(request.update_mask.paths)
    merged = domain.PostDraft(
        account_id=current.account_id,
        parts=incoming.parts if "parts" in paths else current.parts,
        reply_settings=incoming.reply_settings
        if "reply_settings" in paths
        else current.reply_settings,
        quote_post_id=incoming.quote_post_id if "quote_post_id" in paths else current.quote_post_id,
        reply_to_post_id=(
            incoming.reply_to_post_id if "reply_to_post_id" in paths else current.reply_to_post_id
        ),
        publish_at=(
            (incoming.publish_at or now) if "publish_time" in paths else current.publish_at
        ),
    )
    await _check(deps, merged, account, now=now)
    publish_at = merged.publish_at or now
    async with use_connection(deps.pool, transaction=True):
        locked = await load_post(merchant, request.post.id, for_update=True)
        check_etag(request.etag, locked, "post")
        domain.check_transition(locked["status"], "update")
        check_not_busy(locked)
        await store.update(merchant, locked["id"], merged, publish_at)
        return await post_view(merchant, locked["id"])


async def cancel_post(request: P.CancelScheduledPostRequest) -> P.Post:
    """CancelScheduledPost, on the caller's transaction (the servicer's unit of work)."""
    merchant = current_principal().merchant_id
    row = await load_post(merchant, request.id, for_update=True)
    check_etag(request.etag, row, "post")
    domain.check_transition(row["status"], "cancel")
    check_not_busy(row)
    cancelled = await store.set_status(merchant, row["id"], domain.CANCELLED)
    await emit(cancelled, "post.cancelled", publish_time=row["publish_at"].isoformat())
    return await post_view(merchant, row["id"])


#: The method the audit row of a post deletion names.
DELETE_POST_METHOD = "/mktx.v1.PublishingService/DeletePost"


async def delete_post(deps: Deps, request: P.DeletePostRequest) -> None:
    """DeletePost: published parts are deleted at X, last first, each recorded as it
    goes; then the post is DELETED with a ``post.deleted`` event."""
    merchant = current_principal().merchant_id
    async with use_connection(deps.pool, transaction=True):
        row = await load_post(merchant, request.id, for_update=True)
        check_etag(request.etag, row, "post")
        domain.check_transition(row["status"], "delete")
        if row["status"] == domain.DELETED:
            return
        check_not_busy(row)
        parts = await store.parts(merchant, row["id"])
        at_x = [p for p in parts if p["state"] == domain.PART_PUBLISHED]
        if not at_x:
            deleted = await store.set_status(merchant, row["id"], domain.DELETED)
            await emit(deleted, "post.deleted")
            await audit.record(DELETE_POST_METHOD, str(row["id"]))
            return
        token = await store.hold(merchant, row["id"], DELETE_HOLD)
        account = await accounts_store.get(merchant, row["account_id"])
    try:
        if account is None:
            raise NotFound("account", str(row["account_id"]))
        for part in reversed(at_x):
            await deps.xaccess.call(account, _deleter(part["x_post_id"]))
            async with use_connection(deps.pool):
                await store.mark_part_deleted(merchant, row["id"], int(part["idx"]))
    except BaseException:
        async with use_connection(deps.pool):
            await store.drop_hold(merchant, row["id"], token)
        raise
    async with use_connection(deps.pool, transaction=True):
        locked = await load_post(merchant, request.id, for_update=True)
        if locked["status"] != domain.DELETED:
            deleted = await store.set_status(merchant, locked["id"], domain.DELETED)
            await emit(deleted, "post.deleted")
            await audit.record(DELETE_POST_METHOD, str(locked["id"]))


def _deleter(x_post_id: str) -> Callable[[UserContext], Awaitable[bool]]:
    async def delete(u: UserContext) -> bool:
        try:
            return await u.delete_post(x_post_id)
        except XNotFound:
            return False  # already gone at X

    return delete


# ------------------------------------------------------------------ metrics


async def metrics_view(
    merchant: UUID,
    post_id: UUID,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> P.PostMetrics:
    """GetPostMetrics's answer (on the current connection)."""
    row = await store.get(merchant, post_id)
    if row is None:
        raise NotFound("post", str(post_id))
    history = await store.metrics_history(
        merchant, post_id, start_at=start_at, end_at=end_at, limit=MAX_HISTORY
    )
    latest = await store.latest_part_metrics(merchant, post_id)
    return P.PostMetrics(
        post_id=str(post_id),
        total=(
            metrics_to_proto(domain.MetricsValues.from_dict(row["metrics"]))
            if row["metrics"]
            else None
        ),
        parts=[
            P.PostPartMetrics(
                part_index=int(r["idx"]),
                x_post_id=r["x_post_id"] or "",
                values=metrics_to_proto(domain.MetricsValues.from_dict(r)),
            )
            for r in latest
        ],
        history=[
            P.PostMetricsPoint(
                observe_time=ts(h["observed_at"]),
                values=metrics_to_proto(domain.MetricsValues.from_dict(h)),
            )
            for h in history
        ],
        observe_time=ts(row["metrics_at"]),
        next_refresh_time=ts(row["metrics_next_at"]),
    )


async def refresh_post_metrics(deps: Deps, request: P.RefreshPostMetricsRequest) -> P.PostMetrics:
    merchant = current_principal().merchant_id
    async with use_connection(deps.pool):
        row = await load_post(merchant, request.id)
    domain.check_transition(row["status"], "refresh_metrics")
    await refresh_metrics(deps, merchant, row["account_id"], [row["id"]])
    async with use_connection(deps.pool):
        return await metrics_view(merchant, row["id"])


# ------------------------------------------------------------------ counting


async def validate_post(deps: Deps, request: P.ValidatePostRequest) -> P.ValidatePostResponse:
    """ValidatePost: counts and violations, never an error for a broken rule."""
    merchant = current_principal().merchant_id
    limit = domain.account_limit({})
    if request.account_id:
        async with use_connection(deps.pool):
            account = await accounts_store.get(merchant, UUID(request.account_id))
        if account is None:
            raise NotFound("account", request.account_id)
        limit = domain.account_limit(account["settings"])
    parts = parts_from_proto(request.parts)
    draft = domain.PostDraft(account_id="", parts=parts, quote_post_id=request.quote_post_id)
    probes: dict[tuple[int, int], domain.Probe] = {}
    violations: list[FieldViolation] = []
    if request.fetch_media:
        probes, violations = await probe_media(deps, parts, "")
    violations += domain.check_post(draft, max_weighted_length=limit, probes=probes, path="")
    return P.ValidatePostResponse(
        valid=not violations,
        parts=[
            count_to_proto(p.text, max_weighted_length=limit, has_media=bool(p.media))
            for p in parts
        ],
        violations=[P.PostViolation(field=v.field, description=v.description) for v in violations],
    )
