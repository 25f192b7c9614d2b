"""Publishing posts to X exactly once, and reading their metrics over time.

The rules are in ``domain/publishing.py``, the SQL in ``store/publishing.py``; this
module is the algorithm. It serves the background loops (:func:`publish_due_posts`,
:func:`refresh_due_metrics`) and the RPCs that publish or read X at once
(``operations/publishing.py``: CreatePost now, RetryPost, RefreshPostMetrics).

**One publisher per post.** A post is claimed with a lease (``posts.lease_until``)
and a fresh token (``lease_token``), by the worker (``FOR UPDATE SKIP LOCKED`` over
due posts: SCHEDULED ones whose time came, PUBLISHING ones whose publisher died or
backed off) or by an RPC. Every write names the token, so a publisher that lost its
lease changes nothing. The lease is extended before each part and before media work,
and is longer than any X call can take (the X client's deadline).

**Exactly once, per part** (the send-ledger pattern of ``worker/ledger.py``, a ledger
row per part in ``post_parts``):

1. Media first (nothing is posted yet): each is fetched over https (SSRF-guarded,
   size-capped, type sniffed; ``core/fetch.py``), checked against X's rules, uploaded
   (chunked, processing awaited) with its alt text, and its X media id kept on the
   part, so a retry within X's 24 hours does not upload again.
2. **Arm** (committed before the call): the part is PUBLISHING with ``armed_at`` and
   the X post it replies to (the previous part's, for a thread).
3. **Post** with no transaction open (``XAccess.call``: OAuth 2.0 tokens refreshed
   before expiry, a revoked account marked ERROR). Outcomes
   (``domain.classify_publish_error``): PUBLISHED (record it); FAILED (X refused, or
   the account cannot post: the part fails, the post is FAILED or PARTIALLY_PUBLISHED);
   WAIT (X's rate limit past the call's deadline: certainly not posted; the part is
   disarmed and the post waits for the reset, SCHEDULED if nothing is at X yet);
   UNCLEAR (a timeout, a 5xx, a dropped connection, a crash: it may be at X). X's
   "duplicate content" refusal is UNCLEAR too: after an unknown outcome it may be our
   own first attempt.
4. **Resolve** an UNCLEAR part before anything is sent again: the account's timeline
   is read (``XAccess.find_published_post``: our text, the same reply target and
   quote, posted since ``armed_at`` minus ``ledger.LOOKUP_SKEW``, excluding X posts
   already recorded for the account). Found: recorded PUBLISHED. Not found: right
   after the call it is looked up again later (X may not show it yet); at a later
   claim it is sent again (up to ``max_attempts``). X cannot answer now: later. The
   lookup can never be answered (the account lost its access): the part fails.

A thread's parts go in order, each replying to the previous one; a part that fails
stops the thread (PARTIALLY_PUBLISHED) with the published parts recorded, and RetryPost
continues from the failed part. Every settled post writes its event
(``post.published``, ``post.partially_published``, ``post.failed``) in the same
transaction.

**Scheduled posts** are claimed at their time; one more than the grace late (the
service was down) fails with the reason instead (``domain.missed_publish_time``).

**Metrics** (:func:`refresh_due_metrics`): posts whose ``metrics_next_at`` passed are
claimed across merchants, grouped per account, and read in lookups of up to 100 X ids
(``GET /2/tweets``), with non-public metrics for the account's own posts of the last
30 days. Each reading is stored (the history), the post's latest totals updated, the
next reading planned by ``domain.next_metrics_refresh`` (every 15 min the first day,
hourly for a week, daily up to 30 days), and ``post.metrics_refreshed`` written. X's
429 defers that account's posts to the reset.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any
from uuid import UUID

from ..core.db import use_connection
from ..core.errors import DomainError, FailedPrecondition, QuotaExceeded
from ..core.fetch import FetchedMedia, FetchError
from ..deps import Deps
from ..domain import publishing as domain
from ..domain.post_rules import (
    MAX_GIF_BYTES,
    MAX_IMAGE_BYTES,
    MAX_VIDEO_BYTES,
    Media,
    MediaKind,
    check_media,
    sniff_media_type,
)
from ..mapping.publishing import REPLY_TO_X
from ..store import Row
from ..store import accounts as accounts_store
from ..store import publishing as store
from ..store.events import append_event
from ..store.publishing import Claim
from ..x import UserContext, XForbidden
from ..x.models import Post
from ..x.posts import is_duplicate_refusal
from .ledger import LOOKUP_SKEW, RETRY_LOOKUP, Resolution

log = logging.getLogger(__name__)

#: Media ids X keeps for 24 hours; ours are reused for a little less.
MEDIA_REUSE = timedelta(hours=23)
_CATEGORY = {
    MediaKind.IMAGE: "tweet_image",
    MediaKind.GIF: "tweet_gif",
    MediaKind.VIDEO: "tweet_video",
}
_KIND_MAX = {
    MediaKind.IMAGE: MAX_IMAGE_BYTES,
    MediaKind.GIF: MAX_GIF_BYTES,
    MediaKind.VIDEO: MAX_VIDEO_BYTES,
}


@dataclass(frozen=True)
class PublishOptions:
    """Tunables; :meth:`from_settings` reads ``Settings`` attributes named
    ``publish_<field>`` when present."""

    #: Posts published at once by one process.
    concurrency: int = 16
    #: Seconds a publisher holds a post between extensions; longer than any X call.
    lease_seconds: float = 120.0
    #: Seconds added to the lease while a part's media is fetched, uploaded and
    #: processed (X's video processing can take minutes).
    media_lease_seconds: float = 900.0
    #: A scheduled post this late fails instead of going out.
    grace_seconds: float = 3600.0
    #: Back-off before an unclear part is looked up again: base doubling, capped.
    unclear_base: float = 5.0
    unclear_max: float = 300.0
    #: Sends of one part X did not confirm (looked up and not found) before it fails.
    max_attempts: int = 5
    #: Sleep when nothing was due.
    idle_sleep: float = 1.0
    #: Seconds one loop iteration keeps claiming new posts.
    pass_seconds: float = 10.0
    #: Largest media fetched.
    media_max_bytes: int = MAX_VIDEO_BYTES
    #: Metrics: posts claimed per pass, and how long a claim holds them.
    metrics_batch: int = 500
    metrics_hold_seconds: float = 600.0

    @classmethod
    def from_settings(cls, settings: Any) -> PublishOptions:
        values = {
            name: getattr(settings, f"publish_{name}")
            for name in cls.__dataclass_fields__
            if hasattr(settings, f"publish_{name}")
        }
        if hasattr(settings, "post_media_max_bytes"):
            values["media_max_bytes"] = settings.post_media_max_bytes
        return cls(**values)


def options_for(deps: Deps) -> PublishOptions:
    return PublishOptions.from_settings(deps.settings)


def _now() -> datetime:
    return datetime.now(UTC)


def _lease(opts: PublishOptions, extra: float = 0.0) -> timedelta:
    return timedelta(seconds=opts.lease_seconds + extra)


class UnsupportedMedia(FetchError):
    """The content is not media X takes (by its first bytes)."""


def media_limit(max_bytes: int) -> Callable[[bytes], int]:
    """The byte cap for a media whose first bytes are ``head``: X's limit for its kind
    (and at most ``max_bytes``). Content X does not take is refused at once
    (UnsupportedMedia)."""

    def limit(head: bytes) -> int:
        sniffed = sniff_media_type(head)
        if sniffed is None:
            raise UnsupportedMedia(
                "is not a JPEG, PNG, WEBP, GIF, MP4 or MOV file (by its content)"
            )
        return min(max_bytes, _KIND_MAX[sniffed.kind])

    return limit


# ------------------------------------------------------------------ events


def _payload(row: Row, **extra: Any) -> dict[str, Any]:
    return {"post_id": str(row["id"]), "account_id": str(row["account_id"]), **extra}


async def emit(row: Row, type_: str, **extra: Any) -> None:
    """Write a ``post.*`` event for ``row`` (in the caller's transaction)."""
    await append_event(row["merchant_id"], type_, row["id"], _payload(row, **extra))


# ------------------------------------------------------------------ publishing


class _Stop(Exception):
    """The run ends here (the post was settled or released). Raised outside any
    transaction block that must commit: raising inside one rolls it back."""


async def publish_claimed(deps: Deps, claim: Claim, options: PublishOptions | None = None) -> None:
    """Publish the claimed post as far as it goes now (see the module docstring): it
    ends PUBLISHED, FAILED or PARTIALLY_PUBLISHED, or released to be taken again
    (X's rate limit, an outcome to look up later). Raises only what the database
    raises; X's answers are recorded on the post."""
    run = _Run(deps, options or options_for(deps), claim)
    try:
        await run.start()
        await run.parts_in_order()
    except _Stop:
        pass


class _Run:
    def __init__(self, deps: Deps, opts: PublishOptions, claim: Claim) -> None:
        self.deps = deps
        self.opts = opts
        self.c = claim
        self.post: Row = {}
        self.account: Row = {}
        self.parts: list[Row] = []

    @property
    def m(self) -> UUID:
        return self.c.merchant_id

    async def start(self) -> None:
        now = _now()
        late: str | None = None
        async with use_connection(self.deps.pool, transaction=True):
            post = await store.get(self.m, self.c.post_id)
            if post is None or post["lease_token"] != self.c.token:
                raise _Stop
            if self.c.status == domain.SCHEDULED:
                late = domain.missed_publish_time(
                    self.c.due_at, now, timedelta(seconds=self.opts.grace_seconds)
                )
            if late is not None:
                row = await store.finish(self.c, domain.FAILED, late)
                if row is not None:
                    await emit(row, "post.failed", failed_part=0, reason=late)
            else:
                started = await store.start_publishing(self.c)
                if started is None:
                    raise _Stop  # taken over meanwhile; nothing here to commit
                self.post = started
                account = await accounts_store.get(self.m, post["account_id"])
                self.parts = await store.parts(self.m, self.c.post_id)
        if late is not None:
            raise _Stop  # outside the transaction, which must commit
        if account is None:
            await self.fail(0, "the account no longer exists")
            return
        self.account = account

    async def parts_in_order(self) -> None:
        previous: str | None = None
        for part in self.parts:
            idx = int(part["idx"])
            if part["state"] == domain.PART_PUBLISHED:
                previous = part["x_post_id"]
                continue
            if part["state"] != domain.PART_PENDING and part["state"] != domain.PART_PUBLISHING:
                # FAILED or DELETED: nothing after it can be sent (RetryPost resets it).
                await self.fail(idx, part["error"] or "the part cannot be sent")
            reply_to = domain.reply_target(idx, self.post["reply_to_post_id"], previous)
            if part["state"] == domain.PART_PUBLISHING:
                found = await self.resolve_armed(part)
                if found is not None:
                    previous = found
                    continue
                part = await self.reload(idx)
            media_ids = await self.media(part)
            previous = await self.send(part, reply_to, media_ids)
        if all(p["state"] == domain.PART_PUBLISHED for p in self.parts):
            # Every part was at X already (a run that died before settling the post).
            async with use_connection(self.deps.pool, transaction=True):
                await self.finish_published()

    async def reload(self, idx: int) -> Row:
        async with use_connection(self.deps.pool):
            rows = await store.parts(self.m, self.c.post_id)
        self.parts = rows
        return rows[idx]

    # -------------------------------------------------------------- settling

    async def fail(self, idx: int, reason: str) -> None:
        """Part ``idx`` fails: the post settles FAILED or PARTIALLY_PUBLISHED."""
        async with use_connection(self.deps.pool, transaction=True):
            await store.record_part_failed(self.c, idx, reason)
            parts = await store.parts(self.m, self.c.post_id)
            published = sum(p["state"] == domain.PART_PUBLISHED for p in parts)
            status = domain.status_after_failure(published)
            label = f"part {idx + 1} of {len(parts)}: {reason}" if len(parts) > 1 else reason
            row = await store.finish(
                self.c,
                status,
                label,
                published_at=max(
                    (p["published_at"] for p in parts if p["published_at"] is not None),
                    default=None,
                ),
                metrics_next_at=self._first_metrics(parts) if published else None,
            )
            if row is not None:
                event = "post.failed" if status == domain.FAILED else "post.partially_published"
                await emit(row, event, failed_part=idx, reason=reason)
        raise _Stop

    def _first_metrics(self, parts: Sequence[Row]) -> datetime | None:
        first = min((p["published_at"] for p in parts if p["published_at"]), default=None)
        return domain.next_metrics_refresh(first, _now()) if first else None

    async def release(
        self, reason: str, *, ready_at: datetime, due_at: datetime | None = None
    ) -> None:
        """Stop for now; the post is taken again from ``ready_at``."""
        async with use_connection(self.deps.pool, transaction=True):
            parts = await store.parts(self.m, self.c.post_id)
            nothing_sent = all(p["state"] == domain.PART_PENDING for p in parts)
            # Only X's rate limit before anything is at X makes the post SCHEDULED again
            # (it can then be cancelled or edited); otherwise it is still being published.
            status = domain.SCHEDULED if nothing_sent and due_at is not None else domain.PUBLISHING
            await store.release(self.c, status, reason, ready_at=ready_at, due_at=due_at)
        raise _Stop

    async def finish_published(self) -> None:
        """Settle the post PUBLISHED (in the caller's transaction when there is one):
        every part is at X."""
        parts = await store.parts(self.m, self.c.post_id)
        if not all(p["state"] == domain.PART_PUBLISHED for p in parts):
            return  # cannot happen: every other way out raised _Stop
        last = max(p["published_at"] for p in parts)
        row = await store.finish(
            self.c,
            domain.PUBLISHED,
            published_at=last,
            metrics_next_at=self._first_metrics(parts),
        )
        if row is not None:
            await emit(
                row,
                "post.published",
                part_count=len(parts),
                x_post_ids=[p["x_post_id"] for p in parts],
                published_at=last.isoformat(),
            )

    async def record(self, idx: int, post: Post, fallback_at: datetime) -> str:
        """Record part ``idx`` at X; the last part settles the post in the same
        transaction."""
        at = post.created_at or fallback_at
        url = domain.post_url(self.account["username"], post.id)
        async with use_connection(self.deps.pool, transaction=True):
            if not await store.record_part_published(
                self.c, idx, x_post_id=post.id, url=url, published_at=at
            ):
                raise _Stop  # lost the lease: the next publisher resolves it at X
            if idx == len(self.parts) - 1:
                await self.finish_published()
        log.info(
            "post part published",
            extra={"post_id": str(self.c.post_id), "part": idx, "x_post_id": post.id},
        )
        return post.id

    # -------------------------------------------------------------- resolution

    async def lookup(self, part: Row) -> tuple[Resolution, Post | None, str]:
        """Look the armed part up at X (step 4 of the module docstring)."""
        since = part["armed_at"] - LOOKUP_SKEW
        async with use_connection(self.deps.pool):
            known = await store.known_x_post_ids(
                self.m, self.post["account_id"], since - timedelta(days=1)
            )
        try:
            found = await self.deps.xaccess.find_published_post(
                self.account,
                part["text"],
                since,
                known,
                reply_to=part["in_reply_to"],
                quote_of=(self.post["quote_post_id"] or None) if part["idx"] == 0 else None,
                has_media=bool(part["media"]),
            )
        except FailedPrecondition as exc:
            return Resolution.UNCONFIRMABLE, None, f"unconfirmed: {exc.message}"
        except DomainError:
            return Resolution.RETRY_LATER, None, ""
        if found is None:
            return Resolution.NOT_SENT, None, ""
        return Resolution.FOUND, found, ""

    async def resolve_armed(self, part: Row) -> str | None:
        """A part armed by an earlier run: its X post id when it is at X, else None
        (it is then sent again), or the run stops (X cannot tell now, or never)."""
        kind, found, reason = await self.lookup(part)
        idx = int(part["idx"])
        if kind is Resolution.FOUND:
            assert found is not None
            return await self.record(idx, found, part["armed_at"])
        if kind is Resolution.RETRY_LATER:
            await self.release(
                f"resolving part {idx + 1} at X (X cannot answer now)",
                ready_at=_now() + RETRY_LOOKUP,
            )
        if kind is Resolution.UNCONFIRMABLE:
            await self.fail(idx, reason)
        if part["attempts"] >= self.opts.max_attempts:
            await self.fail(idx, f"X did not confirm the post after {part['attempts']} attempts")
        return None

    # -------------------------------------------------------------- media

    async def media(self, part: Row) -> list[str]:
        """The X media ids of the part (fetched, checked, uploaded, alt text set), or
        the run stops with the part failed or the post released."""
        items: list[dict[str, Any]] = [dict(m) for m in part["media"]]
        if not items:
            return []
        idx = int(part["idx"])
        now = _now()
        if all(_reusable(m, now) for m in items):
            return [str(m["x_media_id"]) for m in items]
        async with use_connection(self.deps.pool):
            if not await store.extend_lease(
                self.c, _lease(self.opts, self.opts.media_lease_seconds)
            ):
                raise _Stop
        fetched: list[FetchedMedia | None] = []
        try:
            for j, m in enumerate(items):
                if _reusable(m, now):
                    fetched.append(None)
                    continue
                try:
                    fetched.append(
                        await self.deps.media.fetch(
                            m["url"], media_limit(self.opts.media_max_bytes)
                        )
                    )
                except FetchError as exc:
                    await self.fail(idx, f"media[{j}]: {exc}")
            checks = [
                Media(
                    url=m["url"],
                    head=f.head if f else None,
                    size_bytes=f.size if f else None,
                    declared=_kind(m.get("declared")) if f else _kind(m.get("kind")),
                )
                for m, f in zip(items, fetched, strict=True)
            ]
            problems = check_media(checks, "media")
            if problems:
                await self.fail(idx, f"{problems[0].field} {problems[0].description}")
            for m, f in zip(items, fetched, strict=True):
                if f is None:
                    continue
                sniffed = sniff_media_type(f.head)
                assert sniffed is not None and f.file is not None
                media_id = await self._x(
                    idx, _uploader(f.file, sniffed.mime_type, sniffed.kind, m.get("alt_text"))
                )
                m.update(
                    kind=sniffed.kind.value,
                    mime_type=sniffed.mime_type,
                    size_bytes=f.size,
                    x_media_id=media_id,
                    uploaded_at=_now().isoformat(),
                )
                async with use_connection(self.deps.pool):
                    await store.set_part_media(self.c, idx, items)
        finally:
            for f in fetched:
                if f is not None:
                    f.close()
        return [str(m["x_media_id"]) for m in items]

    async def _x(self, idx: int, fn: Callable[[UserContext], Awaitable[str]]) -> str:
        """A media step at X; nothing is posted by it, so any failure other than a
        refusal just means trying again later."""
        try:
            return await self.deps.xaccess.call(self.account, fn)
        except Exception as exc:
            outcome = domain.classify_publish_error(exc, _now())
            if outcome.kind is domain.Outcome.FAILED:
                await self.fail(idx, outcome.reason)
            if outcome.kind is domain.Outcome.WAIT:
                assert outcome.retry_at is not None
                await self.release(
                    outcome.reason, ready_at=outcome.retry_at, due_at=outcome.retry_at
                )
            if not isinstance(exc, DomainError):
                log.exception(
                    "unexpected error in a media step", extra={"post_id": str(self.c.post_id)}
                )
            backoff = domain.unclear_backoff(
                self.post["attempts"], self.opts.unclear_base, self.opts.unclear_max
            )
            await self.release(
                f"media of part {idx + 1} could not be uploaded yet ({outcome.reason}); retrying",
                ready_at=_now() + backoff,
            )
            raise AssertionError("unreachable") from None

    # -------------------------------------------------------------- the post

    async def send(self, part: Row, reply_to: str | None, media_ids: list[str]) -> str:
        """Arm, post, record part ``part``; its X post id, or the run stops."""
        idx = int(part["idx"])
        async with use_connection(self.deps.pool, transaction=True):
            armed = await store.arm_part(self.c, idx, reply_to, _lease(self.opts))
        if armed is None:
            raise _Stop
        poll = part["poll"]
        quote = (self.post["quote_post_id"] or None) if idx == 0 else None
        duplicate = False

        async def create(u: UserContext) -> Post | None:
            nonlocal duplicate
            try:
                return await u.create_post(
                    part["text"] or None,
                    media_ids=media_ids or None,
                    reply_to=reply_to,
                    quote_tweet_id=quote,
                    poll_options=poll["options"] if poll else None,
                    poll_duration_minutes=int(poll["duration_minutes"]) if poll else None,
                    reply_settings=REPLY_TO_X[self.post["reply_settings"]],
                )
            except XForbidden as exc:
                if is_duplicate_refusal(exc):
                    duplicate = True
                    return None
                raise

        try:
            sent = await self.deps.xaccess.call(self.account, create)
        except Exception as exc:
            outcome = domain.classify_publish_error(exc, _now())
            if not isinstance(exc, DomainError):
                log.exception("unexpected error posting", extra={"post_id": str(self.c.post_id)})
        else:
            if sent is not None:
                return await self.record(idx, sent, armed["armed_at"])
            outcome = domain.PublishOutcome(domain.Outcome.UNCLEAR, "duplicate")
        if outcome.kind is domain.Outcome.FAILED:
            await self.fail(idx, outcome.reason)
        if outcome.kind is domain.Outcome.WAIT:
            assert outcome.retry_at is not None
            async with use_connection(self.deps.pool):
                await store.disarm_part(self.c, idx)
            await self.release(outcome.reason, ready_at=outcome.retry_at, due_at=outcome.retry_at)
        # UNCLEAR: it may be at X. Look now (X usually shows it at once); if it is not
        # there yet, look again later before anything is sent again.
        kind, found, reason = await self.lookup(armed)
        if kind is Resolution.FOUND:
            assert found is not None
            return await self.record(idx, found, armed["armed_at"])
        if kind is Resolution.UNCONFIRMABLE:
            await self.fail(idx, reason)
        if duplicate and kind is Resolution.NOT_SENT:
            await self.fail(
                idx,
                "X refused it as duplicate content: the account posted the same text recently",
            )
        backoff = domain.unclear_backoff(
            int(armed["attempts"]), self.opts.unclear_base, self.opts.unclear_max
        )
        await self.release(
            f"the outcome of publishing part {idx + 1} is unknown ({outcome.reason});"
            " checking X before anything is sent again",
            ready_at=_now() + backoff,
        )
        raise AssertionError("unreachable")


def _uploader(
    file: IO[bytes], mime_type: str, kind: MediaKind, alt_text: str | None
) -> Callable[[UserContext], Awaitable[str]]:
    """Upload one media item through the v2 chunked upload (INITIALIZE, APPEND,
    FINALIZE, then STATUS until processing ends) and set its alt text."""

    async def upload(u: UserContext) -> str:
        media = await u.upload_media_chunked(
            file, media_type=mime_type, media_category=_CATEGORY[kind]
        )
        if alt_text:
            await u.set_alt_text(media.id, alt_text)
        return media.id

    return upload


def _kind(value: Any) -> MediaKind | None:
    try:
        return MediaKind(value) if value else None
    except ValueError:
        return None


def _reusable(m: dict[str, Any], now: datetime) -> bool:
    at = m.get("uploaded_at")
    if not m.get("x_media_id") or not at:
        return False
    try:
        return now - datetime.fromisoformat(at) < MEDIA_REUSE
    except ValueError:
        return False


# ------------------------------------------------------------------ the loop


async def publish_due_posts(deps: Deps, options: PublishOptions | None = None) -> float:
    """Claim due posts (across merchants, FOR UPDATE SKIP LOCKED) and publish up to
    ``concurrency`` at once, claiming more as each finishes, for ``pass_seconds``; then
    wait for those in flight. Returns 0 when it claimed anything (more may be due),
    else the idle sleep. Safe in any number of processes."""
    opts = options or options_for(deps)
    running: set[asyncio.Task[None]] = set()
    claimed_any = False
    stop_claiming = time.monotonic() + opts.pass_seconds
    exhausted = False
    while True:
        free = opts.concurrency - len(running)
        if free > 0 and not exhausted and time.monotonic() < stop_claiming:
            async with use_connection(deps.pool, transaction=True):
                claims = await store.claim_due(free, _lease(opts))
            exhausted = len(claims) < free
            claimed_any = claimed_any or bool(claims)
            for c in claims:
                running.add(asyncio.create_task(_publish_logged(deps, opts, c)))
        if not running:
            break
        _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        if exhausted and time.monotonic() < stop_claiming:
            exhausted = False  # look again as slots free up: more may have come due
    return 0.0 if claimed_any else opts.idle_sleep


async def _publish_logged(deps: Deps, opts: PublishOptions, claim: Claim) -> None:
    try:
        await publish_claimed(deps, claim, opts)
    except Exception:
        log.exception("publishing failed", extra={"post_id": str(claim.post_id)})


# ------------------------------------------------------------------ metrics


@dataclass(frozen=True)
class _Due:
    merchant_id: UUID
    post_id: UUID
    account_id: UUID
    published_at: datetime | None


async def refresh_due_metrics(deps: Deps, options: PublishOptions | None = None) -> float:
    """Read the metrics of every post whose reading is due (see the module docstring).
    Returns 0 when a full batch was claimed, else 5 seconds."""
    opts = options or options_for(deps)
    async with use_connection(deps.pool, transaction=True):
        rows = await store.claim_metrics_due(
            opts.metrics_batch, timedelta(seconds=opts.metrics_hold_seconds)
        )
    by_account: dict[tuple[UUID, UUID], list[_Due]] = defaultdict(list)
    for r in rows:
        d = _Due(r["merchant_id"], r["id"], r["account_id"], r["published_at"])
        by_account[(d.merchant_id, d.account_id)].append(d)
    for (merchant_id, account_id), posts in by_account.items():
        try:
            await refresh_metrics(deps, merchant_id, account_id, [p.post_id for p in posts])
        except DomainError as exc:
            until = exc.retry_at if isinstance(exc, QuotaExceeded) and exc.retry_at else None
            until = until or _now() + timedelta(minutes=5)
            async with use_connection(deps.pool):
                await store.defer_metrics(merchant_id, [p.post_id for p in posts], until)
            log.info(
                "metrics refresh deferred",
                extra={
                    "account_id": str(account_id),
                    "reason": exc.reason,
                    "until": until.isoformat(),
                },
            )
        except Exception:
            log.exception("metrics refresh failed", extra={"account_id": str(account_id)})
    return 0.0 if len(rows) == opts.metrics_batch else 5.0


async def refresh_metrics(
    deps: Deps, merchant_id: UUID, account_id: UUID, post_ids: Sequence[UUID]
) -> dict[UUID, domain.MetricsValues]:
    """Read the metrics of ``post_ids`` (all of ``account_id``) from X in lookups of up
    to 100 ids, store each reading and plan the next. Returns each read post's totals.
    Raises the domain errors of ``XAccess.call`` (QuotaExceeded carries the reset)."""
    async with use_connection(deps.pool):
        account = await accounts_store.get(merchant_id, account_id)
        published = await store.published_parts(merchant_id, post_ids)
    if account is None:
        return {}
    now = _now()
    recent: list[tuple[UUID, list[str]]] = []
    older: list[tuple[UUID, list[str]]] = []
    first_at: dict[UUID, datetime] = {}
    for pid, parts in published.items():
        if not parts:
            continue
        first_at[pid] = min(p["published_at"] for p in parts)
        ids = [p["x_post_id"] for p in parts]
        (recent if domain.private_metrics_allowed(first_at[pid], now) else older).append((pid, ids))
    out: dict[UUID, domain.MetricsValues] = {}
    for group, private in ((recent, True), (older, False)):
        for batch in domain.batch_for_lookup(group):
            ids = [i for _, post_ids_ in batch for i in post_ids_]
            got = await _lookup(deps, account, ids, private)
            observed = _now()
            by_x = {p.id: p for p in got}
            async with use_connection(deps.pool, transaction=True):
                for pid, _ in batch:
                    per_part = [
                        (
                            int(p["idx"]),
                            domain.MetricsValues.from_x(
                                by_x[p["x_post_id"]].public_metrics,
                                by_x[p["x_post_id"]].non_public_metrics if private else None,
                                by_x[p["x_post_id"]].organic_metrics if private else None,
                            ),
                        )
                        for p in published[pid]
                        if p["x_post_id"] in by_x
                    ]
                    if not per_part:
                        # Gone at X (deleted there): nothing to record; keep to the plan.
                        await store.defer_metrics(
                            merchant_id, [pid], domain.next_metrics_refresh(first_at[pid], observed)
                        )
                        continue
                    total = domain.sum_metrics(v for _, v in per_part)
                    row = await store.record_metrics(
                        merchant_id,
                        pid,
                        observed,
                        per_part,
                        total,
                        domain.next_metrics_refresh(first_at[pid], observed),
                    )
                    if row is not None:
                        await emit(
                            row,
                            "post.metrics_refreshed",
                            **total.as_dict(),
                            observed_at=observed.isoformat(),
                        )
                    out[pid] = total
    return out


async def _lookup(deps: Deps, account: Row, ids: list[str], private: bool) -> list[Post]:
    async def get(u: UserContext) -> list[Post]:
        return await u.get_posts(ids, non_public_metrics=private)

    return await deps.xaccess.call(account, get)


__all__ = [
    "PublishOptions",
    "UnsupportedMedia",
    "emit",
    "media_limit",
    "options_for",
    "publish_claimed",
    "publish_due_posts",
    "refresh_due_metrics",
    "refresh_metrics",
]
