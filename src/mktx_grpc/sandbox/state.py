"""The sandbox's in-memory world: fake users, tokens, DMs, posts, media, webhooks.

Everything is guarded by one re-entrant lock, because the HTTP handlers run on
the server thread while tests poke the same object from theirs. Webhook
deliveries are handed to a :class:`~.delivery.WebhookDeliverer` queue so no
HTTP call happens under the lock.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mktx_grpc.x.signatures import webhook_signature

from .config import SandboxConfig
from .faults import FaultRule, Faults
from .limits import GROUPS, H24, limits_for

__all__ = [
    "USER_FIELDS",
    "ActivityRecord",
    "ConversationRecord",
    "Delivery",
    "DmRecord",
    "FakeUser",
    "Faults",
    "MediaRecord",
    "PostRecord",
    "Principal",
    "RateDecision",
    "SandboxState",
    "WebhookRecord",
]

#: ``user.fields`` values X accepts (its OpenAPI enum plus the older names clients
#: still send). Anything else is a 400, as on X.
USER_FIELDS = frozenset(
    "affiliation confirmed_email connection_status created_at description entities id "
    "is_identity_verified location most_recent_tweet_id name parody pinned_tweet_id "
    "profile_banner_url profile_image_url protected public_metrics receives_your_dm "
    "subscribes_to_you subscription subscription_type url username verified "
    "verified_followers_count verified_type withheld".split()
)

_TWEPOCH_MS = 1288834974657
WINDOW_15MIN = 900
WINDOW_24H = 86400


def iso(ts: float) -> str:
    """X's ISO-8601 with milliseconds and ``Z``."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{int(ts * 1000) % 1000:03d}Z"
    )


def v1_time(ts: float) -> str:
    """v1.1's ``created_at`` format, e.g. ``Wed Oct 10 20:19:24 +0000 2018``."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%a %b %d %H:%M:%S +0000 %Y")


@dataclass
class FakeUser:
    id: str
    username: str
    name: str
    accepts_dms: bool = True
    followers_count: int = 0
    following_count: int = 0
    tweet_count: int = 0
    listed_count: int = 0
    verified: bool = False
    # X Premium accounts may post up to 25,000 weighted characters.
    long_post: bool = False
    description: str = ""
    location: str | None = None
    url: str | None = None
    protected: bool = False
    created_at: float = field(default_factory=time.time)

    def v2(self, fields: Iterable[str] = ()) -> dict[str, Any]:
        """X's user object: ``id``, ``name``, ``username``, plus the requested
        ``user.fields`` that this user has (absent optional values are left out,
        as X does)."""
        want = set(fields)
        out: dict[str, Any] = {"id": self.id, "name": self.name, "username": self.username}
        if "created_at" in want:
            out["created_at"] = iso(self.created_at)
        if "description" in want:
            out["description"] = self.description
        if "location" in want and self.location:
            out["location"] = self.location
        if "url" in want:
            out["url"] = self.url or ""
        if "profile_image_url" in want:
            out["profile_image_url"] = f"https://pbs.twimg.com/profile_images/{self.id}/normal.jpg"
        if "protected" in want:
            out["protected"] = self.protected
        if "verified" in want:
            out["verified"] = self.verified
        if "verified_type" in want:
            out["verified_type"] = "blue" if self.verified else "none"
        if "receives_your_dm" in want:
            out["receives_your_dm"] = self.accepts_dms
        if "public_metrics" in want:
            out["public_metrics"] = {
                "followers_count": self.followers_count,
                "following_count": self.following_count,
                "tweet_count": self.tweet_count,
                "listed_count": self.listed_count,
            }
        return out

    def v1(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "id_str": self.id,
            "name": self.name,
            "screen_name": self.username,
            "profile_image_url_https": (
                f"https://pbs.twimg.com/profile_images/{self.id}/normal.jpg"
            ),
            "followers_count": self.followers_count,
            "friends_count": self.following_count,
            "statuses_count": self.tweet_count,
            "verified": self.verified,
            "protected": False,
        }


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made an API call: ``kind`` is oauth1, oauth2 or app."""

    kind: str
    user_id: str | None
    token_hint: str  # first characters only, for read-back in tests

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "user_id": self.user_id, "token_hint": self.token_hint}


@dataclass
class OAuth1Token:
    token: str
    secret: str
    kind: str  # "request" | "access"
    user_id: str | None = None
    callback: str | None = None
    verifier: str | None = None
    revoked: bool = False


@dataclass
class OAuth2Code:
    code: str
    client_id: str
    redirect_uri: str
    challenge: str
    method: str
    user_id: str
    scopes: tuple[str, ...]
    expires_at: float
    used: bool = False


@dataclass
class OAuth2Grant:
    token: str
    kind: str  # "access" | "refresh"
    user_id: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float | None = None
    used: bool = False
    revoked: bool = False


@dataclass
class ConversationRecord:
    """A group DM conversation (1:1 conversations need no record: their id is
    the two user ids)."""

    id: str
    participant_ids: list[str]
    created_by: str
    created_at: float


@dataclass
class DmRecord:
    id: str
    conversation_id: str
    sender_id: str
    recipient_id: str | None  # None in a group conversation
    text: str | None
    media_id: str | None
    created_at: float
    source: str  # "api" | "inbound"
    principal: Principal | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dm_conversation_id": self.conversation_id,
            "sender_id": self.sender_id,
            "recipient_id": self.recipient_id,
            "text": self.text,
            "media_id": self.media_id,
            "created_at": iso(self.created_at),
            "source": self.source,
            "auth": self.principal.as_dict() if self.principal else None,
        }


@dataclass
class PostRecord:
    id: str
    author_id: str
    text: str
    created_at: float
    media_ids: list[str] = field(default_factory=list)
    reply_to: str | None = None
    quote_tweet_id: str | None = None
    poll: dict[str, Any] | None = None
    reply_settings: str | None = None
    deleted: bool = False
    principal: Principal | None = None
    conversation_id: str | None = None
    in_reply_to_user_id: str | None = None
    tagged_user_ids: list[str] = field(default_factory=list)
    public_metrics: dict[str, int] = field(
        default_factory=lambda: {
            "retweet_count": 0,
            "reply_count": 0,
            "like_count": 0,
            "quote_count": 0,
            "bookmark_count": 0,
            "impression_count": 0,
        }
    )
    non_public_metrics: dict[str, int] = field(
        default_factory=lambda: {
            "impression_count": 0,
            "url_link_clicks": 0,
            "user_profile_clicks": 0,
            "engagements": 0,
        }
    )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "author_id": self.author_id,
            "text": self.text,
            "created_at": iso(self.created_at),
            "media_ids": list(self.media_ids),
            "reply_to": self.reply_to,
            "quote_tweet_id": self.quote_tweet_id,
            "poll": self.poll,
            "reply_settings": self.reply_settings,
            "tagged_user_ids": list(self.tagged_user_ids),
            "conversation_id": self.conversation_id or self.id,
            "in_reply_to_user_id": self.in_reply_to_user_id,
            "deleted": self.deleted,
            "public_metrics": dict(self.public_metrics),
            "non_public_metrics": dict(self.non_public_metrics),
            "auth": self.principal.as_dict() if self.principal else None,
        }


@dataclass
class MediaRecord:
    id: str
    media_key: str
    owner_id: str
    media_type: str
    category: str
    total_bytes: int
    created_at: float
    chunks: dict[int, int] = field(default_factory=dict)  # segment index -> length
    finalized: bool = False
    state: str = "pending"
    steps_left: int = 0
    steps_total: int = 0
    last_check: float = 0.0
    status_polls: list[float] = field(default_factory=list)
    # Set by the admin API: processing ends "failed" instead of "succeeded".
    fail_processing: bool = False
    alt_text: str | None = None

    @property
    def size(self) -> int:
        return sum(self.chunks.values())


@dataclass
class WebhookRecord:
    id: str
    url: str
    valid: bool
    created_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "valid": self.valid,
            "created_at": iso(self.created_at),
        }


@dataclass
class ActivityRecord:
    """One Account Activity payload for one user, kept for replay."""

    created_at: float
    for_user_id: str
    kind: str
    payload: dict[str, Any]


@dataclass
class Delivery:
    webhook_id: str
    url: str
    for_user_id: str
    kind: str
    body: bytes
    signature: str
    replay: bool
    status_code: int | None = None
    error: str | None = None
    delivered_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "webhook_id": self.webhook_id,
            "url": self.url,
            "for_user_id": self.for_user_id,
            "kind": self.kind,
            "replay": self.replay,
            "status_code": self.status_code,
            "error": self.error,
            "body": self.body.decode(),
            "signature": self.signature,
        }


@dataclass
class _Window:
    start: float
    count: int = 0


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of counting one call: whether it may proceed, X's headers, and
    (when refused) whether the endpoint is outside the tier altogether."""

    allowed: bool
    headers: dict[str, str]
    not_in_tier: bool = False


class SandboxState:
    """The emulated world. Public methods are thread-safe."""

    def __init__(self, config: SandboxConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.lock = threading.RLock()
        self._clock = clock
        self.clock_offset = 0.0
        self._last_ms = 0
        self._seq = 0
        self.users: dict[str, FakeUser] = {}
        self.next_consent_user_id: str | None = None
        self.oauth1_tokens: dict[str, OAuth1Token] = {}
        self.oauth2_codes: dict[str, OAuth2Code] = {}
        self.oauth2_grants: dict[str, OAuth2Grant] = {}
        self.app_bearers: set[str] = {config.app_bearer_token}
        self.seen_nonces: dict[tuple[str, str, str, str], float] = {}
        self.dms: list[DmRecord] = []
        self.conversations: dict[str, ConversationRecord] = {}
        self.posts: dict[str, PostRecord] = {}
        self.media: dict[str, MediaRecord] = {}
        self.webhooks: dict[str, WebhookRecord] = {}
        self.subscriptions: dict[str, set[str]] = {}
        self.activity: list[ActivityRecord] = []
        self.deliveries: list[Delivery] = []
        self.faults = Faults()
        self.fault_rules: list[FaultRule] = []
        # Processing of the next N finalized videos/GIFs ends "failed".
        self.media_fail_next = 0
        self.rng = random.Random(config.fault_seed)
        self._windows: dict[tuple[str, str, int], _Window] = {}
        self.request_log: list[tuple[str, str]] = []
        # Set by the server: called with a Delivery to send it (off the lock).
        self.enqueue_delivery: Callable[[Delivery], None] = lambda d: None
        # Bumped on every change worth persisting; the persister watches it.
        self.version = 0
        self.on_change: Callable[[], None] = lambda: None
        # Set while the server stops, so stalled answers give up at once.
        self.stopping = threading.Event()
        self.seed()

    def seed(self) -> None:
        """Add the configured seed users that are missing."""
        with self.lock:
            for uid, username, name in self.config.seed_users:
                if uid not in self.users:
                    self.add_user(uid, username, name)

    def touch(self) -> None:
        """Note a change (the state file is saved soon after)."""
        with self.lock:
            self.version += 1
        self.on_change()

    # -- time and ids ------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock forward (token/code expiry, rate windows)."""
        with self.lock:
            self.clock_offset += seconds
        self.touch()

    def snowflake(self) -> str:
        with self.lock:
            ms = int(self.now() * 1000)
            if ms <= self._last_ms:
                ms = self._last_ms
                self._seq += 1
                if self._seq >= 4096:
                    ms += 1
                    self._seq = 0
            else:
                self._seq = 0
            self._last_ms = ms
            return str(((ms - _TWEPOCH_MS) << 22) | (1 << 12) | self._seq)

    # -- users -------------------------------------------------------------------

    def add_user(
        self, user_id: str | None, username: str, name: str | None = None, **extra: Any
    ) -> FakeUser:
        with self.lock:
            uid = user_id or self.snowflake()
            extra.setdefault("created_at", self.now())
            user = FakeUser(id=uid, username=username, name=name or username, **extra)
            self.users[uid] = user
        self.touch()
        return user

    def user_by_username(self, username: str) -> FakeUser | None:
        with self.lock:
            for u in self.users.values():
                if u.username.lower() == username.lower():
                    return u
            return None

    def consent_user(self, requested: str | None) -> FakeUser | None:
        """The fake user who "logs in" at an authorize page."""
        with self.lock:
            uid = requested or self.next_consent_user_id
            if uid is None and self.users:
                uid = next(iter(self.users))
            return self.users.get(uid) if uid else None

    # -- tokens ------------------------------------------------------------------

    @staticmethod
    def _secret() -> str:
        return secrets.token_urlsafe(30)

    def new_request_token(self, callback: str) -> OAuth1Token:
        with self.lock:
            tok = OAuth1Token(
                secrets.token_urlsafe(24), self._secret(), "request", callback=callback
            )
            self.oauth1_tokens[tok.token] = tok
            return tok

    def new_access_token(self, user_id: str) -> OAuth1Token:
        with self.lock:
            tok = OAuth1Token(
                f"{user_id}-{secrets.token_urlsafe(30)}", self._secret(), "access", user_id=user_id
            )
            self.oauth1_tokens[tok.token] = tok
        self.touch()
        return tok

    def issue_oauth2(
        self, user_id: str, client_id: str, scopes: tuple[str, ...]
    ) -> tuple[OAuth2Grant, OAuth2Grant | None]:
        with self.lock:
            access = OAuth2Grant(
                secrets.token_urlsafe(40),
                "access",
                user_id,
                client_id,
                scopes,
                expires_at=self.now() + self.config.access_token_ttl,
            )
            self.oauth2_grants[access.token] = access
            refresh = None
            if "offline.access" in scopes:
                refresh = OAuth2Grant(
                    secrets.token_urlsafe(40), "refresh", user_id, client_id, scopes
                )
                self.oauth2_grants[refresh.token] = refresh
        self.touch()
        return access, refresh

    def check_nonce(self, key: tuple[str, str, str, str]) -> bool:
        """Record a nonce; False when it was seen inside the timestamp window."""
        with self.lock:
            now = self.now()
            if len(self.seen_nonces) > 10000:
                horizon = now - 2 * self.config.oauth1_timestamp_window
                self.seen_nonces = {k: t for k, t in self.seen_nonces.items() if t > horizon}
            if key in self.seen_nonces:
                return False
            self.seen_nonces[key] = now
            return True

    def revoke_user_tokens(self, user_id: str) -> int:
        """Revoke every OAuth1 and OAuth2 token of the user; returns how many."""
        n = 0
        with self.lock:
            for tok in self.oauth1_tokens.values():
                if tok.user_id == user_id and not tok.revoked:
                    tok.revoked = True
                    n += 1
            for g in self.oauth2_grants.values():
                if g.user_id == user_id and not g.revoked:
                    g.revoked = True
                    n += 1
        self.touch()
        return n

    # -- rate limits ---------------------------------------------------------------

    def take(self, endpoint: str, user_id: str | None) -> RateDecision:
        """Count one call to ``endpoint`` ("METHOD /2/path/:param") by ``user_id``
        (None: app-only) against the tier's windows; see ``limits.py`` for which
        windows apply. Nothing is counted while limits are lifted or when refused.

        Headers: the caller's shortest window as ``x-rate-limit-*``, a per-user
        24-hour window as ``x-user-limit-24hour-*`` and an app-wide 24-hour window
        as ``x-app-limit-24hour-*``, each with ``limit``, ``remaining`` and
        ``reset`` (epoch seconds).
        """
        cfg = self.config
        limits = limits_for(
            endpoint,
            cfg.tier,
            dm_15min=cfg.dm_limit_15min,
            dm_24h=cfg.dm_limit_24h,
            post_15min=cfg.post_limit_15min,
            default_15min=cfg.default_limit_15min,
        )
        if limits is None:
            return RateDecision(False, {}, not_in_tier=True)
        bucket = GROUPS.get(endpoint, endpoint)
        own_scope = user_id or "app"
        own = limits.user if user_id else limits.app
        shared = [w for w in limits.app if w[1] == H24] if user_id else []
        with self.lock:
            now = self.now()
            counted: list[tuple[str, int, int, _Window]] = []
            for scope, windows in ((own_scope, own), ("app", shared)):
                for limit, length in windows:
                    key = (scope, bucket, length)
                    w = self._windows.get(key)
                    if w is None or now >= w.start + length:
                        w = _Window(start=now)
                        self._windows[key] = w
                    counted.append((scope, limit, length, w))
            allowed = all(w.count < limit for _, limit, _, w in counted)
            if allowed and cfg.rate_limits_enabled and counted:
                for *_, w in counted:
                    w.count += 1
            headers: dict[str, str] = {}
            own_windows = [c for c in counted if c[0] == own_scope]
            primary = min(own_windows, key=lambda c: c[2]) if own_windows else None
            for c in counted:
                scope, limit, length, w = c
                if c is primary:
                    prefix = "x-rate-limit-"
                elif length == H24:
                    prefix = "x-app-limit-24hour-" if scope == "app" else "x-user-limit-24hour-"
                else:
                    continue
                headers[prefix + "limit"] = str(limit)
                headers[prefix + "remaining"] = str(max(0, limit - w.count))
                headers[prefix + "reset"] = str(math.ceil(w.start + length))
        if counted:
            self.touch()
        return RateDecision(allowed or not cfg.rate_limits_enabled, headers)

    def reset_limits(self) -> None:
        with self.lock:
            self._windows.clear()
        self.touch()

    # -- faults --------------------------------------------------------------------

    def take_fault(self) -> tuple[str, float] | None:
        """Consume one global fault: ("429", reset_after) or ("5xx", status)."""
        with self.lock:
            if self.faults.rate_limit_next > 0:
                self.faults.rate_limit_next -= 1
                return "429", self.faults.rate_limit_reset_after
            if self.faults.error_next > 0:
                self.faults.error_next -= 1
                return "5xx", float(self.faults.error_status)
            return None

    def add_fault_rule(self, rule: FaultRule) -> FaultRule:
        """Validate (ValueError) and install a per-route fault."""
        rule.validate()
        with self.lock:
            self.fault_rules.append(rule)
        return rule

    def take_rule(self, method: str, endpoint: str, handler: str, path: str) -> FaultRule | None:
        """The first matching per-route fault that fires for this request (its
        count spent), or None."""
        with self.lock:
            for rule in self.fault_rules:
                if rule.matches(method, endpoint, handler, path) and rule.take(self.rng):
                    return rule
            return None

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.rate_limit_next = self.faults.error_next = 0
            self.faults.latency = 0.0
            self.fault_rules.clear()

    # -- activity and webhooks -------------------------------------------------------

    def record_activity(self, for_user_id: str, kind: str, payload: dict[str, Any]) -> None:
        """Store an activity payload and deliver it to every webhook the user is
        subscribed to."""
        with self.lock:
            body = {"for_user_id": for_user_id, **payload}
            rec = ActivityRecord(self.now(), for_user_id, kind, body)
            self.activity.append(rec)
            # Replay reaches 24 h back; older activity is dead weight.
            horizon = rec.created_at - 86400 - 3600
            if self.activity[0].created_at < horizon:
                self.activity = [a for a in self.activity if a.created_at >= horizon]
            targets = self._targets(for_user_id)
        self.touch()
        for hook in targets:
            self._deliver(hook, rec, replay=False)

    def _targets(self, user_id: str) -> list[WebhookRecord]:
        return [
            self.webhooks[wid]
            for wid, users in self.subscriptions.items()
            if user_id in users and wid in self.webhooks
        ]

    def _deliver(self, hook: WebhookRecord, rec: ActivityRecord, *, replay: bool) -> None:
        body = json.dumps(rec.payload, separators=(",", ":")).encode()
        d = Delivery(
            webhook_id=hook.id,
            url=hook.url,
            for_user_id=rec.for_user_id,
            kind=rec.kind,
            body=body,
            signature=webhook_signature(self.config.consumer_secret, body),
            replay=replay,
        )
        with self.lock:
            self.deliveries.append(d)
        self.enqueue_delivery(d)

    def replay(self, webhook_id: str, start: float, end: float) -> int:
        """Re-deliver stored activity in ``[start, end]`` for the webhook's current
        subscribers. Returns the number of deliveries queued."""
        with self.lock:
            hook = self.webhooks[webhook_id]
            users = set(self.subscriptions.get(webhook_id, set()))
            recs = [
                r for r in self.activity if start <= r.created_at <= end and r.for_user_id in users
            ]
        for r in recs:
            self._deliver(hook, r, replay=True)
        return len(recs)

    def deliveries_for(self, user_id: str | None = None, kind: str | None = None) -> list[Delivery]:
        with self.lock:
            return [
                d
                for d in self.deliveries
                if (user_id is None or d.for_user_id == user_id)
                and (kind is None or d.kind == kind)
            ]

    # -- DMs -----------------------------------------------------------------------

    @staticmethod
    def conversation_id(a: str, b: str) -> str:
        lo, hi = sorted((a, b), key=int)
        return f"{lo}-{hi}"

    def add_dm(
        self,
        sender_id: str,
        recipient_id: str | None,
        text: str | None,
        media_id: str | None,
        *,
        source: str,
        principal: Principal | None,
        conversation_id: str | None = None,
    ) -> DmRecord:
        """Record a DM. A 1:1 DM (``recipient_id`` given) has its
        ``direct_message_events`` payload delivered to the recipient's webhooks and,
        when echo is on (or it is inbound), the sender's. A group DM
        (``conversation_id`` of a group, no recipient) is stored only: Account
        Activity does not deliver group conversations."""
        with self.lock:
            if recipient_id is not None:
                cid = self.conversation_id(sender_id, recipient_id)
            elif conversation_id is not None and conversation_id in self.conversations:
                cid = conversation_id
            else:
                raise ValueError("a DM needs a recipient or a group conversation id")
            rec = DmRecord(
                id=self.snowflake(),
                conversation_id=cid,
                sender_id=sender_id,
                recipient_id=recipient_id,
                text=text,
                media_id=media_id,
                created_at=self.now(),
                source=source,
                principal=principal,
            )
            self.dms.append(rec)
            payload = self._dm_payload(rec) if recipient_id is not None else None
        self.touch()
        if recipient_id is None or payload is None:
            return rec
        self.record_activity(recipient_id, "direct_message_events", payload)
        if source != "api" or self.config.echo_dm_to_webhook:
            self.record_activity(sender_id, "direct_message_events", payload)
        return rec

    def _dm_payload(self, rec: DmRecord) -> dict[str, Any]:
        message_data: dict[str, Any] = {
            "text": rec.text or "",
            "entities": {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []},
        }
        if rec.media_id:
            m = self.media.get(rec.media_id)
            message_data["attachment"] = {
                "type": "media",
                "media": {
                    "id": int(rec.media_id),
                    "id_str": rec.media_id,
                    "media_url_https": f"https://ton.twitter.com/1.1/ton/data/dm/{rec.id}/{rec.media_id}.jpg",
                    "type": "photo" if m is None or "image" in m.category else "video",
                },
            }
        users = {
            uid: self.users[uid].v1()
            for uid in (rec.sender_id, rec.recipient_id)
            if uid and uid in self.users
        }
        return {
            "direct_message_events": [
                {
                    "type": "message_create",
                    "id": rec.id,
                    "created_timestamp": str(int(rec.created_at * 1000)),
                    "message_create": {
                        "target": {"recipient_id": rec.recipient_id},
                        "sender_id": rec.sender_id,
                        "source_app_id": self.config.app_id,
                        "message_data": message_data,
                    },
                }
            ],
            "apps": {
                self.config.app_id: {
                    "id": self.config.app_id,
                    "name": self.config.app_name,
                    "url": "https://example.invalid",
                }
            },
            "users": users,
        }

    def new_group(self, creator: str, participant_ids: list[str]) -> ConversationRecord:
        """Create a group conversation of ``creator`` and ``participant_ids``."""
        with self.lock:
            members = list(dict.fromkeys([creator, *participant_ids]))
            conv = ConversationRecord(self.snowflake(), members, creator, self.now())
            self.conversations[conv.id] = conv
        self.touch()
        return conv

    def participants(self, conversation_id: str) -> list[str] | None:
        """The members of a conversation (1:1 ids are ``"{a}-{b}"``); None if unknown."""
        with self.lock:
            conv = self.conversations.get(conversation_id)
            if conv is not None:
                return list(conv.participant_ids)
        parts = conversation_id.split("-")
        return parts if len(parts) == 2 and all(p.isdigit() for p in parts) else None

    def dms_visible_to(
        self,
        user_id: str,
        participant_id: str | None,
        since: float,
        *,
        conversation_id: str | None = None,
    ) -> list[DmRecord]:
        """The user's DM events since ``since``, newest first: all of them, the 1:1
        with ``participant_id``, or one conversation."""
        with self.lock:
            mine = {c.id for c in self.conversations.values() if user_id in c.participant_ids}
            out = [
                d
                for d in self.dms
                if d.created_at >= since
                and (user_id in (d.sender_id, d.recipient_id) or d.conversation_id in mine)
                and (
                    participant_id is None
                    or (
                        d.recipient_id is not None
                        and participant_id in (d.sender_id, d.recipient_id)
                    )
                )
                and (conversation_id is None or d.conversation_id == conversation_id)
            ]
        out.sort(key=lambda d: int(d.id), reverse=True)
        return out

    def sent_dms(self, sender_id: str | None = None) -> list[DmRecord]:
        with self.lock:
            return [d for d in self.dms if sender_id is None or d.sender_id == sender_id]

    # -- account activity injections ---------------------------------------------------

    def inject_follow(self, source_id: str, target_id: str, kind: str = "follow") -> None:
        self.touch()
        with self.lock:
            src, tgt = self.users[source_id], self.users[target_id]
            delta = 1 if kind == "follow" else -1
            src.following_count = max(0, src.following_count + delta)
            tgt.followers_count = max(0, tgt.followers_count + delta)
            payload = {
                "follow_events": [
                    {
                        "type": kind,
                        "created_timestamp": str(int(self.now() * 1000)),
                        "target": tgt.v1(),
                        "source": src.v1(),
                    }
                ]
            }
        self.record_activity(target_id, "follow_events", payload)

    def inject_mention(
        self, author_id: str, mentioned_id: str, text: str, in_reply_to: str | None = None
    ) -> PostRecord:
        with self.lock:
            author, mentioned = self.users[author_id], self.users[mentioned_id]
            full = text if f"@{mentioned.username}" in text else f"@{mentioned.username} {text}"
            post = PostRecord(
                id=self.snowflake(),
                author_id=author_id,
                text=full,
                created_at=self.now(),
                reply_to=in_reply_to,
            )
            post.conversation_id = (
                self.posts[in_reply_to].conversation_id or in_reply_to
                if in_reply_to and in_reply_to in self.posts
                else post.id
            )
            self.posts[post.id] = post
            author.tweet_count += 1
            start = full.index(f"@{mentioned.username}")
            tweet = {
                "created_at": v1_time(post.created_at),
                "id": int(post.id),
                "id_str": post.id,
                "text": full,
                "source": "sandbox",
                "truncated": False,
                "in_reply_to_status_id": int(in_reply_to) if in_reply_to else None,
                "in_reply_to_status_id_str": in_reply_to,
                "in_reply_to_user_id_str": None,
                "user": author.v1(),
                "entities": {
                    "hashtags": [],
                    "urls": [],
                    "symbols": [],
                    "user_mentions": [
                        {
                            "screen_name": mentioned.username,
                            "name": mentioned.name,
                            "id": int(mentioned.id),
                            "id_str": mentioned.id,
                            "indices": [start, start + 1 + len(mentioned.username)],
                        }
                    ],
                },
                "timestamp_ms": str(int(post.created_at * 1000)),
            }
        self.record_activity(mentioned_id, "tweet_create_events", {"tweet_create_events": [tweet]})
        return post

    def inject_read_receipt(
        self, reader_id: str, for_user_id: str, last_read_event_id: str
    ) -> None:
        with self.lock:
            payload = {
                "direct_message_mark_read_events": [
                    {
                        "created_timestamp": str(int(self.now() * 1000)),
                        "sender_id": reader_id,
                        "target": {"recipient_id": for_user_id},
                        "last_read_event_id": last_read_event_id,
                    }
                ],
                "users": {
                    u: self.users[u].v1() for u in (reader_id, for_user_id) if u in self.users
                },
            }
        self.record_activity(for_user_id, "direct_message_mark_read_events", payload)

    def inject_revoke(self, user_id: str) -> int:
        """Deliver ``user_event.revoke`` to the user's webhooks, then revoke their
        tokens and drop their subscriptions, as X does when a user de-authorizes."""
        with self.lock:
            payload = {
                "user_event": {
                    "revoke": {
                        "date_time": datetime.fromtimestamp(self.now(), tz=UTC).isoformat(),
                        "target": {"app_id": self.config.app_id},
                        "source": {"user_id": user_id},
                    }
                }
            }
        self.record_activity(user_id, "user_event", payload)
        with self.lock:
            n = self.revoke_user_tokens(user_id)
            for users in self.subscriptions.values():
                users.discard(user_id)
        return n

    def snapshot_deliveries(self) -> list[dict[str, Any]]:
        with self.lock:
            return [d.as_dict() for d in self.deliveries]

    def iter_posts(self, author_id: str | None = None) -> Iterable[PostRecord]:
        with self.lock:
            return [p for p in self.posts.values() if author_id is None or p.author_id == author_id]

    def add_post(self, post: PostRecord) -> PostRecord:
        """Store a new post and count it on its author."""
        with self.lock:
            self.posts[post.id] = post
            author = self.users.get(post.author_id)
            if author is not None:
                author.tweet_count += 1
        self.touch()
        return post
